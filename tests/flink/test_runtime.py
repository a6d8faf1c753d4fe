"""What Flink needs before a job starts (zoo/flink/runtime.py): PyFlink, a Java Flink runs on,
and the Flink environment; each missing piece is an error naming the fix."""

from __future__ import annotations

import importlib.util
import os
import stat
import subprocess

import pytest

from tests.conftest import ROOT
from tests.flink.conftest import flink_env
from zoo.flink.errors import FlinkSetupError
from zoo.flink.runtime import check_java


def _fake_java(folder, version: str) -> str:
    """A JAVA_HOME whose bin/java reports `version` the way `java -version` does (on stderr)."""
    java = folder / "bin" / "java"
    java.parent.mkdir(parents=True)
    java.write_text(f'#!/bin/sh\necho \'openjdk version "{version}" 2024-01-16\' >&2\n')
    java.chmod(java.stat().st_mode | stat.S_IXUSR)
    return str(folder)


@pytest.mark.skipif(importlib.util.find_spec("pyflink") is not None, reason="PyFlink is installed in this Python")
def test_flink_functions_outside_the_flink_environment_name_the_setup_command():
    from zoo.flink import inference_function

    with pytest.raises(FlinkSetupError, match="PyFlink is not installed in this Python.*bash scripts/setup_flink.sh"):
        inference_function("model.onnx")


@pytest.mark.parametrize("version, major", [("17.0.15", 17), ("21.0.2", 21), ("11.0.22", 11)])
def test_supported_java_passes(tmp_path, monkeypatch, version, major):
    monkeypatch.setenv("JAVA_HOME", _fake_java(tmp_path, version))
    assert check_java() == os.path.join(str(tmp_path), "bin", "java")


@pytest.mark.parametrize("version, shown", [("1.8.0_392", "Java 8"), ("25", "Java 25")])
def test_wrong_java_names_the_supported_versions_and_the_fix(tmp_path, monkeypatch, version, shown):
    monkeypatch.setenv("JAVA_HOME", _fake_java(tmp_path, version))
    with pytest.raises(FlinkSetupError, match=f"runs on Java 11, 17, 21; .* is {shown}.*openjdk-17-jdk-headless"):
        check_java()


def test_no_java_stops_a_flink_program_before_it_starts(flink_python, tmp_path):
    """The whole path in the Flink environment: JAVA_HOME without a java, then a TableEnvironment."""
    proc = subprocess.run([flink_python, "-c", "from zoo.flink import table_environment; table_environment()"],
                          cwd=ROOT, env=flink_env(JAVA_HOME=str(tmp_path)), capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode != 0
    assert "FlinkSetupError: Flink needs Java 11 or 17 or 21, and none was found on JAVA_HOME=" in proc.stderr
    assert "apt-get install openjdk-17-jdk-headless" in proc.stderr
