"""What a Flink job of Zoo needs before it starts: PyFlink, a Java Flink runs on, Zoo's jars on
the JVM's class path, and Flink's Python workers pointed at this environment.

Every public function of `zoo.flink` goes through `table_environment` or `stream_environment`
(or `configure` on an environment the caller built), so the checks below run before Flink's
gateway JVM starts and a missing piece is reported with its fix rather than as a Java stack trace.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from zoo.flink.errors import SETUP_COMMAND, FlinkSetupError

#: Java major versions Flink 2.3 runs on.
SUPPORTED_JAVA = (11, 17, 21)
#: How Flink's Python workers run: one process per subtask. Loopback mode (PyFlink's default on a
#: local mini-cluster) runs every subtask as a thread of the client, so they share one GIL (about
#: 20% slower for Arrow UDFs) and training workers could not form a process group.
PYTHON_WORKER_MODE = "process"
#: Jars that must be on the JVM's own class path (Flink's lib/ folder), not in `pipeline.jars`:
#: JNA binds its native library to the first classloader that loads it, so a second job in the
#: same JVM would fail with UnsatisfiedLinkError if each job loaded JNA itself.
ZOO_FLINK_JAR = "zoo-flink.jar"
ZOO_INFERENCE_JAR = "zoo-inference.jar"
JNA_JAR = "jna.jar"
LIB_JARS = (ZOO_FLINK_JAR, ZOO_INFERENCE_JAR, JNA_JAR)


def require_pyflink():
    """Import and return the `pyflink` package, or say how to get an environment that has it."""
    try:
        import pyflink
    except ImportError:
        raise FlinkSetupError(
            f"PyFlink is not installed in this Python ({sys.executable}). Zoo runs Flink in its own "
            f"environment, because PyFlink's apache-beam and TensorFlow need incompatible protobuf "
            f"versions: build it with `{SETUP_COMMAND}` and run with .venv-flink/bin/python "
            f"(or the 'Python 3 (Zoo on Flink)' notebook kernel)."
        ) from None
    return pyflink


#: Environment variable naming the Flink environment's Python (default: <repo>/.venv-flink/bin/python).
FLINK_PYTHON_ENV = "ZOO_FLINK_PYTHON"


def flink_python() -> str:
    """The Python of the Flink environment, for starting Flink work from another environment
    (``zoo-serving start --engine flink``, the tests): $ZOO_FLINK_PYTHON, else
    <repo>/.venv-flink/bin/python beside this checkout, else this Python if it has PyFlink."""
    candidates = [os.environ.get(FLINK_PYTHON_ENV),
                  str(Path(__file__).resolve().parents[2] / ".venv-flink" / "bin" / "python")]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    try:
        require_pyflink()
        return sys.executable
    except FlinkSetupError:
        raise FlinkSetupError(
            f"No Flink environment found (tried ${FLINK_PYTHON_ENV} and {candidates[1]}). Build it with "
            f"`{SETUP_COMMAND}`, or set {FLINK_PYTHON_ENV} to the Python of an environment with Zoo and PyFlink."
        ) from None


def java_executable() -> str | None:
    """The `java` that PyFlink's gateway launches: $JAVA_HOME/bin/java, else `java` on PATH."""
    home = os.environ.get("JAVA_HOME")
    if home:
        candidate = os.path.join(home, "bin", "java")
        return candidate if os.access(candidate, os.X_OK) else None
    return shutil.which("java")


def java_major_version(java: str) -> int:
    """The major version `java -version` reports (8 for "1.8.0_x", 17 for "17.0.15")."""
    text = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60).stderr
    match = re.search(r'version "(\d+)(?:\.(\d+))?', text)
    if match is None:
        raise FlinkSetupError(f"Could not read the version of {java} from `java -version`: {text.strip()!r}.")
    major = int(match.group(1))
    return int(match.group(2)) if major == 1 and match.group(2) else major


def check_java() -> str:
    """Return the Java executable Flink will use; raise `FlinkSetupError` when there is none or
    its version is not one Flink 2.3 runs on."""
    java = java_executable()
    where = f"JAVA_HOME={os.environ['JAVA_HOME']!r}" if os.environ.get("JAVA_HOME") else "PATH"
    if java is None:
        raise FlinkSetupError(
            f"Flink needs Java {' or '.join(map(str, SUPPORTED_JAVA))}, and none was found on {where}. "
            f"Install one (apt-get install openjdk-17-jdk-headless) or set JAVA_HOME to a JDK 17."
        )
    major = java_major_version(java)
    if major not in SUPPORTED_JAVA:
        raise FlinkSetupError(
            f"Flink 2.3 runs on Java {', '.join(map(str, SUPPORTED_JAVA))}; {java} (from {where}) is "
            f"Java {major}. Install openjdk-17-jdk-headless and point JAVA_HOME at it "
            f"(e.g. JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64)."
        )
    return java


def flink_lib_dir() -> Path:
    """Flink's lib/ folder inside the PyFlink package (the JVM's class path)."""
    return Path(require_pyflink().__file__).resolve().parent / "lib"


def zoo_jar_paths(required: bool = True) -> dict[str, Path]:
    """Name -> path of Zoo's jars in Flink's lib/ folder; with `required`, raise when one is missing."""
    lib = flink_lib_dir()
    paths = {name: lib / name for name in LIB_JARS}
    missing = [name for name, path in paths.items() if not path.exists()]
    if missing and required:
        raise FlinkSetupError(
            f"Zoo's Flink jars {missing} are not in Flink's lib folder {lib}, so the Java UDF and the "
            f"'zoo' model provider cannot load. Build them with `bash zoo/flink/java/build.sh` "
            f"(part of `{SETUP_COMMAND}`)."
        )
    return paths


def configure(config) -> None:
    """Point Flink's Python workers at this interpreter and run them one process per subtask.

    `config` is a `pyflink.common.Configuration` or a `TableConfig` (anything with `set`).
    Without `python.executable`, Flink's workers run whatever `python` is first on PATH.
    """
    put = getattr(config, "set_string", None) or config.set
    put("python.executable", sys.executable)
    put("python.client.executable", sys.executable)
    os.environ["_python_worker_execution_mode"] = PYTHON_WORKER_MODE


def _gateway_started() -> bool:
    from pyflink.java_gateway import _gateway

    return _gateway is not None


def prepare() -> None:
    """Checks to run before a Flink environment of this process is created; and the worker mode,
    which PyFlink reads when it creates an environment (a TableEnvironment created in loopback
    mode keeps running its UDFs inside the client)."""
    require_pyflink()
    os.environ["_python_worker_execution_mode"] = PYTHON_WORKER_MODE
    if not _gateway_started():
        check_java()
        # The Java inference handle finds OpenVINO's C library through a Python that has openvino.
        os.environ.setdefault("ZOO_PYTHON", sys.executable)


def stream_environment(parallelism: int | None = None, streaming: bool = True, settings: dict | None = None):
    """A configured `StreamExecutionEnvironment` (see `configure`), in streaming or batch mode,
    with Flink configuration `settings` (key -> value) on top."""
    prepare()
    from pyflink.common import Configuration
    from pyflink.datastream import RuntimeExecutionMode, StreamExecutionEnvironment

    config = Configuration()
    configure(config)
    for key, value in (settings or {}).items():
        config.set_string(key, str(value))
    env = StreamExecutionEnvironment.get_execution_environment(config)
    env.set_runtime_mode(RuntimeExecutionMode.STREAMING if streaming else RuntimeExecutionMode.BATCH)
    if parallelism is not None:
        env.set_parallelism(parallelism)
    return env


def table_environment(streaming: bool = True, parallelism: int | None = None):
    """A configured `TableEnvironment` in streaming or batch mode (see `configure`)."""
    prepare()
    from pyflink.table import EnvironmentSettings, TableEnvironment

    settings = EnvironmentSettings.in_streaming_mode() if streaming else EnvironmentSettings.in_batch_mode()
    t_env = TableEnvironment.create(settings)
    configure(t_env.get_config())
    if parallelism is not None:
        t_env.get_config().set("parallelism.default", str(parallelism))
    return t_env
