"""The Java inference handle (zoo/serving_java_api), built and tested from the Python suite.

One module-scoped step runs ``zoo/serving_java_api/build.sh --fresh-fixtures``: it exports the
fixtures with ``zoo.inference.export`` (this Python), compiles the library with javac against
Debian's JNA, runs the JUnit 5 tests on the real OpenVINO C library, and builds the jar. The tests
below then check the build, each JUnit test class's results (from its XML report), and the README's
stdin example end to end. Skipped only when no JDK (java/javac) is installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
PROJECT = REPO / "zoo" / "serving_java_api"
BUILD = PROJECT / "build"
#: The Java part must stay well under the suite's budget; build + tests take ~20 s on 2 cores.
BUILD_TIMEOUT_S = 300

pytestmark = pytest.mark.skipif(
    shutil.which("java") is None or shutil.which("javac") is None,
    reason="needs a JDK 17 (java and javac): apt-get install openjdk-17-jdk-headless",
)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["ZOO_PYTHON"] = sys.executable
    return env


@pytest.fixture(scope="module")
def build():
    """Runs build.sh once; returns its CompletedProcess (stdout and stderr merged)."""
    proc = subprocess.run(
        [str(PROJECT / "build.sh"), "--fresh-fixtures", "--no-color"],
        cwd=REPO,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=BUILD_TIMEOUT_S,
    )
    return proc


def _junit_cases() -> dict[str, list[tuple[str, bool]]]:
    """JUnit results by test class: [(test name, passed)]."""
    by_class: dict[str, list[tuple[str, bool]]] = {}
    for report in (BUILD / "test-reports").glob("TEST-*.xml"):
        for case in ET.parse(report).getroot().iter("testcase"):
            failed = any(case.find(tag) is not None for tag in ("failure", "error", "skipped"))
            cls = case.get("classname", "").rsplit(".", 1)[-1]
            by_class.setdefault(cls, []).append((case.get("name", ""), not failed))
    return by_class


def test_build_compiles_tests_and_packages_the_jar(build):
    assert build.returncode == 0, f"build.sh failed (exit {build.returncode}):\n{build.stdout[-8000:]}"
    assert (BUILD / "zoo-inference.jar").is_file()


@pytest.mark.parametrize(
    "junit_class, minimum",
    [
        ("InferenceModelTest", 15),  # MLP, CNN, two-input, int64 and int32 models in ONNX and IR, 1e-5
        ("ErrorsTest", 8),  # bad path, unknown property, IR without .bin, shape / dtype mismatch, inconsistent inputs, use after close
        ("ConcurrencyTest", 3),  # many threads on one handle, waiting, close during predictions
        ("OpenVinoLibraryTest", 4),  # property, env var and Python discovery; not-found message
        ("JTensorTest", 4),
        ("AbstractInferenceModelTest", 4),  # AZ's subclassing API: loadOpenVINO(xml, bin[, batch]), predict of samples, release
    ],
)
def test_junit_class_passed(build, junit_class, minimum):
    cases = _junit_cases().get(junit_class, [])
    assert len(cases) >= minimum, f"{junit_class}: expected >= {minimum} JUnit tests, found {cases}\n{build.stdout[-4000:]}"
    failed = [name for name, ok in cases if not ok]
    assert not failed, f"{junit_class} failed: {failed}\n{build.stdout[-8000:]}"


def _read(case: str, kind: str) -> np.ndarray:
    line = next(
        ln for ln in (BUILD / "fixtures" / "cases.txt").read_text().splitlines() if ln.endswith(f"{case}.{kind}.bin")
    )
    _, dtype, dims, name = line.split()
    return np.fromfile(BUILD / "fixtures" / name, dtype=np.dtype(dtype).newbyteorder("<")).reshape(
        [int(d) for d in dims.split(",")]
    )


def test_stdin_example_answers_each_line(build):
    assert build.returncode == 0, "build.sh failed; see test_build_compiles_tests_and_packages_the_jar"
    x = _read("mlp_b5", "in0")
    want = _read("mlp_b5", "out0")
    lines = [" ".join(repr(float(v)) for v in row) for row in x]
    lines.insert(2, "1 2 oops")
    proc = subprocess.run(
        ["java", "-jar", str(BUILD / "zoo-inference.jar"), str(BUILD / "fixtures" / "mlp.xml")],
        input="\n".join(lines) + "\n",
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    answers = proc.stdout.strip().splitlines()
    assert len(answers) == len(x) + 1, proc.stdout
    assert answers.pop(2).startswith("error: "), proc.stdout
    got = np.array([[float(v) for v in a.split()] for a in answers], dtype=np.float32)
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
