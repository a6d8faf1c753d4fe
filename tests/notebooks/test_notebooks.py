"""Execute every notebook under notebooks/ with nbclient: any cell error fails the test, and every
cell tagged "plot" must have rendered an image (a figure that silently failed to draw is caught)."""

from __future__ import annotations

import importlib.util
import os
import pathlib
import shutil
import signal
import sys

import pytest

nbformat = pytest.importorskip("nbformat", reason="notebook tests need nbformat: pip install 'spark-zoo[test]'")
nbclient = pytest.importorskip("nbclient", reason="notebook tests need nbclient: pip install 'spark-zoo[test]'")
pytest.importorskip("ipykernel", reason="notebook tests need ipykernel: pip install 'spark-zoo[test]'")
pytest.importorskip("matplotlib", reason="notebook tests need matplotlib: pip install 'spark-zoo[test]'")

from nbclient.exceptions import CellExecutionError  # noqa: E402

NOTEBOOK_DIR = pathlib.Path(__file__).resolve().parents[2] / "notebooks"
#: Seconds one cell may run before the notebook fails (a whole notebook takes well under a minute).
CELL_TIMEOUT_S = 300
#: Cells with this tag draw a figure; each must leave an image/png output.
PLOT_TAG = "plot"


def _module(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def _missing(checks: list[tuple[bool, str]]) -> str | None:
    """The install hint of every unmet requirement, or None when all are met."""
    hints = [hint for ok, hint in checks if not ok]
    return "; ".join(hints) if hints else None


#: The kernel of the Flink notebook: the Flink environment's Python (scripts/setup_flink.sh registers it).
FLINK_KERNEL = "zoo-flink"


def _flink_kernel_dir() -> pathlib.Path | None:
    """The Jupyter data folder holding the Flink environment's kernel, or None without that environment."""
    from zoo.flink.errors import FlinkSetupError
    from zoo.flink.runtime import flink_python

    try:
        python = pathlib.Path(flink_python())
    except FlinkSetupError:
        return None
    folder = python.parents[1] / "share" / "jupyter"
    return folder if (folder / "kernels" / FLINK_KERNEL).is_dir() else None


def _requirements(name: str) -> str | None:
    """Why notebook `name` cannot run here (what to install), or None."""
    if name.startswith("02_"):
        return _missing([(_module("PIL"), "Pillow: pip install pillow")])
    if name.startswith("03_"):
        return _missing([(_module("tensorflow") and _module("keras"),
                          "TensorFlow and Keras 3: pip install 'spark-zoo[tf]'")])
    if name.startswith("04_"):
        return _missing([
            (shutil.which("redis-server") is not None, "redis-server: apt-get install redis-server"),
            (_module("openvino"), "OpenVINO: pip install 'spark-zoo[inference]'"),
            (all(_module(m) for m in ("redis", "fastapi", "uvicorn", "httpx", "PIL")),
             "the serving extra: pip install 'spark-zoo[serving]'"),
        ])
    if name.startswith("05_"):
        return _missing([
            (shutil.which("redis-server") is not None, "redis-server: apt-get install redis-server"),
            (_flink_kernel_dir() is not None, "the Flink environment and its kernel: bash scripts/setup_flink.sh"),
        ])
    if name.startswith("06_"):
        return _missing([
            (shutil.which("redis-server") is not None, "redis-server: apt-get install redis-server"),
            (_module("mlflow"), "MLflow: pip install 'spark-zoo[registry]'"),
            (all(_module(m) for m in ("redis", "fastapi", "uvicorn")), "the serving extra: pip install 'spark-zoo[serving]'"),
        ])
    return None


NOTEBOOKS = sorted(p.name for p in NOTEBOOK_DIR.glob("*.ipynb"))


def _execute(nb, tmp_path: pathlib.Path):
    """Run `nb` in its kernel (python3, or the Flink environment's) whose working and temporary
    directory is `tmp_path`."""
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    kernel = nb.metadata.get("kernelspec", {}).get("name", "python3")
    manager = None
    if kernel == FLINK_KERNEL:
        from jupyter_client import KernelManager
        from jupyter_client.kernelspec import KernelSpecManager

        specs = KernelSpecManager(kernel_dirs=[str(_flink_kernel_dir() / "kernels")])
        manager = KernelManager(kernel_name=kernel, kernel_spec_manager=specs)
    client = nbclient.NotebookClient(nb, km=manager, kernel_name=kernel, timeout=CELL_TIMEOUT_S,
                                     resources={"metadata": {"path": str(tmp_path)}})
    try:
        return client.execute(env=env)
    finally:
        if manager is not None and manager.has_kernel:
            # nbclient shuts down only the kernels it started itself; the Flink kernel's mini-cluster
            # would otherwise run on beside the rest of the suite.
            manager.shutdown_kernel()
            assert not manager.is_alive(), f"the {kernel} kernel outlived its shutdown"


def _redis_servers_under(folder: pathlib.Path) -> list[int]:
    """Pids of live redis-server processes whose command line names a file under `folder`."""
    pids = []
    for entry in pathlib.Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "redis-server" in cmdline and str(folder) in cmdline:
            pids.append(int(entry.name))
    return pids


def _plot_cells(nb) -> list[int]:
    return [i for i, cell in enumerate(nb.cells) if PLOT_TAG in cell.metadata.get("tags", [])]


def _plot_cells_without_image(executed) -> list[int]:
    """Indexes of the cells tagged "plot" that left no image/png output."""
    return [i for i in _plot_cells(executed)
            if not any("image/png" in output.get("data", {}) for output in executed.cells[i].outputs)]


def test_there_are_six_notebooks():
    assert [n[:3] for n in NOTEBOOKS] == ["01_", "02_", "03_", "04_", "05_", "06_"], NOTEBOOKS


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_is_committed_without_outputs(name):
    nb = nbformat.read(NOTEBOOK_DIR / name, as_version=4)
    nbformat.validate(nb)
    dirty = [i for i, cell in enumerate(nb.cells)
             if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)]
    assert not dirty, (f"{name}: cells {dirty} hold outputs or execution counts. Clear them before committing "
                       f"(Jupyter: Edit > Clear Outputs of All Cells; or jupyter nbconvert --clear-output --inplace "
                       f"notebooks/{name}).")
    # The Flink notebook runs in the Flink environment's kernel (PyFlink cannot share .venv with TensorFlow).
    assert nb.metadata.get("kernelspec", {}).get("name") == (FLINK_KERNEL if name.startswith("05_") else "python3")


def test_kernel_runs_this_interpreter_and_a_plot_that_draws_nothing_is_caught(tmp_path):
    """The python3 kernel is this virtualenv's interpreter (so it sees zoo), and the image check
    tells a figure that was shown from one that was closed before it rendered."""
    new_cell = nbformat.v4.new_code_cell
    drawn, closed = new_cell("import matplotlib.pyplot as plt\nplt.plot([1, 2])\nplt.show()"), \
        new_cell("fig = plt.figure()\nplt.plot([1, 2])\nplt.close(fig)")
    drawn.metadata["tags"] = closed.metadata["tags"] = [PLOT_TAG]
    nb = nbformat.v4.new_notebook(cells=[new_cell("import sys, zoo\nprint(sys.executable)"), drawn, closed])
    executed = _execute(nb, tmp_path)
    printed = executed.cells[0].outputs[0]["text"].strip()
    assert os.path.realpath(printed) == os.path.realpath(sys.executable)
    assert _plot_cells_without_image(executed) == [2]


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_and_draws_its_plots(name, tmp_path):
    reason = _requirements(name)
    if reason:
        pytest.skip(f"{name} needs {reason}")
    nb = nbformat.read(NOTEBOOK_DIR / name, as_version=4)
    assert _plot_cells(nb), f"{name} has no cell tagged {PLOT_TAG!r}: every notebook shows at least one figure"
    try:
        try:
            executed = _execute(nb, tmp_path)
        except CellExecutionError as exc:
            pytest.fail(f"{name} failed:\n{exc}", pytrace=False)
    finally:
        leaked = _redis_servers_under(tmp_path)
        for pid in leaked:
            os.kill(pid, signal.SIGTERM)
    assert not leaked, f"{name} left redis-server processes running: {leaked}"
    blank = _plot_cells_without_image(executed)
    assert not blank, (f"{name}: cells {blank} (tagged {PLOT_TAG!r}) rendered no image. First of them:\n"
                       f"{executed.cells[blank[0]].source[:400]}" if blank else "")
