#!/usr/bin/env bash
# Builds the Zoo Java inference handle offline with the JDK and Debian's jars, and runs its tests.
#
#   zoo/serving_java_api/build.sh            compile, export test fixtures, run JUnit 5, build the jar
#   zoo/serving_java_api/build.sh --no-test  compile and build the jar only
#   zoo/serving_java_api/build.sh --fresh-fixtures   re-export the fixtures even if up to date
#   zoo/serving_java_api/build.sh --no-color         plain JUnit output (for logs)
#
# Outputs go to zoo/serving_java_api/build/ (ignored by git):
#   zoo-inference.jar   library + examples (Main-Class: zoo.inference.examples.PredictStdin)
#   fixtures/           models and data exported by tests/make_fixtures.py
#   test-reports/       JUnit XML reports
#
# Environment:
#   ZOO_PYTHON   Python that has zoo, torch and openvino (default: <repo>/.venv/bin/python);
#                used to export fixtures and, by the tests, to locate libopenvino_c.
# Idempotent: installs the Debian packages only if missing, re-exports fixtures only when
# make_fixtures.py or the exporter (zoo/inference) changed. Exit status is non-zero if
# compilation or any test fails.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
BUILD="$HERE/build"
PYTHON="${ZOO_PYTHON:-$REPO/.venv/bin/python}"
JNA_JAR=/usr/share/java/jna.jar
JUNIT_API_JAR=/usr/share/java/junit-jupiter-api.jar
JUNIT_PARAMS_JAR=/usr/share/java/junit-jupiter-params.jar
OPENTEST4J_JAR=/usr/share/java/opentest4j.jar
APIGUARDIAN_JAR=/usr/share/java/apiguardian-api.jar
CONSOLE_JAR=/usr/share/java/junit-platform-console-standalone.jar
RUN_TESTS=1
FRESH_FIXTURES=0
JUNIT_COLORS=()

for arg in "$@"; do
  case "$arg" in
    --no-test) RUN_TESTS=0 ;;
    --fresh-fixtures) FRESH_FIXTURES=1 ;;
    --no-color) JUNIT_COLORS=(--disable-ansi-colors) ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "build.sh: unknown argument '$arg'; expected --no-test, --fresh-fixtures, --no-color or --help" >&2; exit 2 ;;
  esac
done

for tool in java javac jar; do
  command -v "$tool" >/dev/null || { echo "build.sh: '$tool' not found; install a JDK 17 (apt-get install openjdk-17-jdk-headless)" >&2; exit 3; }
done

if [[ ! -f "$JNA_JAR" || ! -f "$CONSOLE_JAR" || ! -f "$JUNIT_PARAMS_JAR" ]]; then
  echo "build.sh: installing Debian packages libjna-java junit5" >&2
  SUDO=""; [[ "$(id -u)" != 0 ]] && SUDO="sudo"
  $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -q libjna-java junit5 >/dev/null \
    || { $SUDO apt-get -o DPkg::Lock::Timeout=600 update -q >/dev/null \
         && $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -q libjna-java junit5 >/dev/null; }
fi

mkdir -p "$BUILD"
rm -rf "$BUILD/classes"
JAVAC=(javac --release 17 -encoding UTF-8 -Xlint:all -Werror)

echo "== compiling the library and examples"
"${JAVAC[@]}" -cp "$JNA_JAR" -d "$BUILD/classes/main" $(find "$HERE/src/main/java" -name '*.java')
"${JAVAC[@]}" -cp "$JNA_JAR:$BUILD/classes/main" -d "$BUILD/classes/example" $(find "$HERE/src/example/java" -name '*.java')

printf 'Main-Class: zoo.inference.examples.PredictStdin\nClass-Path: %s\n' "$JNA_JAR" > "$BUILD/MANIFEST.MF"
jar --create --file "$BUILD/zoo-inference.jar" --manifest "$BUILD/MANIFEST.MF" \
  -C "$BUILD/classes/main" . -C "$BUILD/classes/example" .
echo "== built $BUILD/zoo-inference.jar"

[[ "$RUN_TESTS" == 1 ]] || exit 0

echo "== compiling the tests"
TEST_CP="$JNA_JAR:$JUNIT_API_JAR:$JUNIT_PARAMS_JAR:$OPENTEST4J_JAR:$APIGUARDIAN_JAR:$BUILD/classes/main:$BUILD/classes/example"
"${JAVAC[@]}" -Xlint:-processing -cp "$TEST_CP" -d "$BUILD/classes/test" $(find "$HERE/src/test/java" -name '*.java')

FIXTURES="$BUILD/fixtures"
if [[ "$FRESH_FIXTURES" == 1 || ! -f "$FIXTURES/cases.txt" || "$HERE/tests/make_fixtures.py" -nt "$FIXTURES/cases.txt" \
      || -n "$(find "$REPO/zoo/inference" -name '*.py' -newer "$FIXTURES/cases.txt" 2>/dev/null | head -1)" ]]; then
  echo "== exporting test fixtures with $PYTHON"
  rm -rf "$FIXTURES"
  "$PYTHON" "$HERE/tests/make_fixtures.py" "$FIXTURES"
fi

echo "== running JUnit 5 tests"
rm -rf "$BUILD/test-reports"
java -Dzoo.python="$PYTHON" -Dzoo.test.fixtures="$FIXTURES" \
  -jar "$CONSOLE_JAR" \
  --class-path "$JNA_JAR:$BUILD/classes/main:$BUILD/classes/example:$BUILD/classes/test" \
  --scan-class-path "$BUILD/classes/test" \
  --disable-banner --details=tree --fail-if-no-tests "${JUNIT_COLORS[@]}" \
  --reports-dir "$BUILD/test-reports"
