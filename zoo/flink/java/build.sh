#!/usr/bin/env bash
# Builds Zoo's Flink jar offline (javac against the jars inside the apache-flink-libraries wheel)
# and puts it, the Zoo Java inference jar and Debian's jna.jar into Flink's lib/ folder, the JVM's
# own class path (like lib/ on a cluster): with jna.jar in `pipeline.jars` only the first job of a
# JVM could load JNA's native library.
#
#   zoo/flink/java/build.sh [--python .venv-flink/bin/python]
#
# Output: zoo/flink/java/build/zoo-flink.jar (ignored by git), holding
#   zoo.flink.ZooInferenceFunction    a ScalarFunction over zoo/serving_java_api (create_java_temporary_function)
#   zoo.flink.ZooModelProviderFactory the 'zoo' provider of CREATE MODEL ... / ML_PREDICT (META-INF/services)
# Idempotent; builds zoo/serving_java_api's jar first when it is missing.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../../.." && pwd)"
BUILD="$HERE/build"
PYTHON="$REPO/.venv-flink/bin/python"
JNA_JAR=/usr/share/java/jna.jar
ZOO_JAVA="$REPO/zoo/serving_java_api"

while (($#)); do
  case "$1" in
    --python) PYTHON="$2"; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "build.sh: unknown argument '$1'; expected --python PATH or --help" >&2; exit 2 ;;
  esac
done

for tool in javac jar; do
  command -v "$tool" >/dev/null || { echo "build.sh: '$tool' not found; install a JDK 17 (apt-get install openjdk-17-jdk-headless)" >&2; exit 3; }
done
[[ -x "$PYTHON" ]] || { echo "build.sh: no Flink environment at $PYTHON; run bash scripts/setup_flink.sh" >&2; exit 3; }
PYFLINK="$("$PYTHON" -c 'import os, pyflink; print(os.path.dirname(pyflink.__file__))')"
[[ -f "$ZOO_JAVA/build/zoo-inference.jar" ]] || "$ZOO_JAVA/build.sh" --no-test

CLASSPATH="$(ls "$PYFLINK"/lib/*.jar "$PYFLINK"/opt/flink-python-*.jar | grep -v '/zoo-\|/jna.jar' | tr '\n' ':')$JNA_JAR:$ZOO_JAVA/build/zoo-inference.jar"
rm -rf "$BUILD/classes"
mkdir -p "$BUILD/classes"
echo "== compiling zoo-flink against the Flink jars in $PYFLINK"
javac --release 17 -encoding UTF-8 -Xlint:all,-serial,-processing -Werror -cp "$CLASSPATH" -d "$BUILD/classes" \
  $(find "$HERE/src/main/java" -name '*.java')
cp -r "$HERE/src/main/resources/." "$BUILD/classes/"
jar --create --file "$BUILD/zoo-flink.jar" -C "$BUILD/classes" .
for jar in "$BUILD/zoo-flink.jar" "$ZOO_JAVA/build/zoo-inference.jar" "$JNA_JAR"; do
  ln -sf "$jar" "$PYFLINK/lib/$(basename "$jar")"
done
echo "== built $BUILD/zoo-flink.jar; linked it, zoo-inference.jar and jna.jar into $PYFLINK/lib"
