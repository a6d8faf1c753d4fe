#!/usr/bin/env bash
# Set up everything Zoo, its tests and its examples need on a fresh Debian machine:
# system packages (JDK for Spark, redis-server for Cluster Serving, JNA and JUnit 5 for the Java
# library), a virtualenv in .venv, and Zoo with all its extras; then the Flink environment
# .venv-flink (scripts/setup_flink.sh). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v java >/dev/null 2>&1 || need+=(openjdk-17-jdk-headless)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
[[ -f /usr/share/java/jna.jar ]] || need+=(libjna-java)
[[ -f /usr/share/java/junit-platform-console-standalone.jar ]] || need+=(junit5)
if ((${#need[@]})); then
  echo "Installing system packages: ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 "${need[@]}" >/dev/null
fi

if [[ ! -x .venv/bin/python ]]; then
  python3.11 -m venv .venv 2>/dev/null || python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
# torch==2.13.0+cpu names the local CPU wheel: a bare 2.13.0 lets pip prefer the CUDA build
# (+cu130 sorts above +cpu), whose triton crashes on import beside TensorFlow.
.venv/bin/python -m pip install -q -e ".[all,test]" torch==2.13.0+cpu

# The Flink environment (.venv-flink): PyFlink cannot share .venv with TensorFlow (protobuf).
bash scripts/setup_flink.sh
