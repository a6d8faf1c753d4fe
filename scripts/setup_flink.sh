#!/usr/bin/env bash
# Build the Flink environment, .venv-flink: Zoo with PyFlink and without TensorFlow. Safe to run again.
#
# Why a second environment: apache-flink 2.3 pins apache-beam 2.61, which needs protobuf<6, and
# tensorflow-cpu>=2.21 needs protobuf>=6.31.1, so PyFlink and TensorFlow cannot share one. This
# environment gets Zoo with every extra but `tf` and `quant`; Keras models reach Flink exported to
# ONNX or OpenVINO (zoo.inference.export, in .venv). uv resolves it in seconds where pip
# backtracks for 20+ minutes. pyarrow is raised over beam's pin (<17) to 20.0.0: pyspark 4 needs
# >=18 at run time, PyFlink's own pin is <21, and PyFlink's Arrow UDFs run on 20.
#
# Then the Flink Java pieces (zoo/flink/java/build.sh) are compiled against the jars inside the
# apache-flink-libraries wheel. Environment:
#   ZOO_FLINK_VENV   where to build the environment (default: <repo>/.venv-flink)
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${ZOO_FLINK_VENV:-$PWD/.venv-flink}"
EXTRAS="flink,inference,serving,storage,cluster,test"
#: Over beam's pyarrow<17 (see above).
PYARROW_OVERRIDE="pyarrow==20.0.0"
started=$SECONDS

if [[ ! -x "$VENV/bin/python" ]]; then
  python3.11 -m venv "$VENV" 2>/dev/null || python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q uv
# uv does not read pip's configuration: pass its find-links on (where the local CPU torch wheel lies).
uv_args=()
for link in $("$VENV/bin/python" -m pip config get global.find-links 2>/dev/null || true); do
  uv_args+=(--find-links "$link")
done
overrides="$(mktemp)"
trap 'rm -f "$overrides"' EXIT
echo "$PYARROW_OVERRIDE" > "$overrides"
"$VENV/bin/uv" pip install -q --python "$VENV/bin/python" "${uv_args[@]}" --override "$overrides" \
  -e ".[$EXTRAS]" torch==2.13.0+cpu
# The notebook kernel of the Flink notebook (notebooks/05_*): this environment's Python.
"$VENV/bin/python" -m ipykernel install --sys-prefix --name zoo-flink \
  --display-name "Python 3 (Zoo on Flink)" >/dev/null

bash zoo/flink/java/build.sh --python "$VENV/bin/python"
echo "Flink environment ready in $VENV ($((SECONDS - started)) s)"
