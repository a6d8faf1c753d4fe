"""Fixtures of the Flink tests. PyFlink cannot share .venv with TensorFlow, so these tests run Flink
programs (tests/flink/programs/) with the Flink environment's Python as subprocesses, each writing
its measurements as JSON; the assertions stay here, in the main pytest process. Skipped, with the
setup command, when the Flink environment has not been built."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess

import pytest

from tests.conftest import ROOT

PROGRAMS = pathlib.Path(__file__).resolve().parent / "programs"


def _flink_python() -> str | None:
    from zoo.flink.errors import FlinkSetupError
    from zoo.flink.runtime import flink_python

    try:
        return flink_python()
    except FlinkSetupError:
        return None


@pytest.fixture(scope="session")
def flink_python() -> str:
    """The Python of the Flink environment (.venv-flink)."""
    python = _flink_python()
    if python is None:
        pytest.skip("the Flink environment is missing: build it with `bash scripts/setup_flink.sh`")
    return python


def flink_env(**extra: str) -> dict[str, str]:
    """Environment of a Flink program: this checkout first on PYTHONPATH, no inherited venv."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONHOME")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    return {**env, **extra}


def run_program(python: str, name: str, out_dir: pathlib.Path, *args: str, timeout: float = 300,
                env: dict[str, str] | None = None, check: bool = True) -> dict:
    """Run tests/flink/programs/<name>.py with the Flink Python; return the JSON it wrote, plus
    "returncode" and "log" (its stdout and stderr). With `check`, fail on a non-zero exit."""
    result_file = out_dir / f"{name}.json"
    proc = subprocess.run([python, str(PROGRAMS / f"{name}.py"), str(result_file), *args], cwd=ROOT,
                          env=env or flink_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=timeout)
    if check and proc.returncode != 0:
        pytest.fail(f"{name}.py exited with {proc.returncode}:\n{proc.stdout[-6000:]}", pytrace=False)
    data = json.loads(result_file.read_text()) if result_file.exists() else {}
    return {**data, "returncode": proc.returncode, "log": proc.stdout}

