"""zoo-submit: spark-submit that packs the active Python environment and ships it with the job.

    zoo-submit --cluster-mode standalone --master spark://host:7077 \
        --num-executors 2 --executor-cores 1 --executor-memory 2g  train.py --epochs 5

A console script of the ``spark-zoo`` package (``python -m zoo.submit`` runs it too). It runs
under the interpreter of the environment to ship (activate the venv, or call
``.venv/bin/zoo-submit ...``). It packs that environment once (cached by its
installed packages, see zoo.packaging), zips editable packages for --py-files, and runs
spark-submit with the same settings init_spark(cluster_mode=...) would use. Inside the job,
``init_spark()`` picks the submitted settings up; the script needs no change.

Options (everything else before the application file goes to spark-submit as it is):
    --cluster-mode MODE     local, local-cluster, standalone, yarn-client, yarn-cluster, k8s-client
    --master URL            spark://..., k8s://https://...; implied for local, local-cluster, yarn
    --num-executors N, --executor-cores N, --executor-memory MEM
    --driver-cores N, --driver-memory MEM
    --conf KEY=VALUE        extra Spark setting (repeatable); wins over Zoo's
    --archive PATH|URL      ship this environment archive instead of packing one
    --no-pack               ship nothing: executors run --conf spark.pyspark.python or this Python
                            (implied for local and local-cluster, whose executors run on this machine)
    --exclude PATTERN, --include PATTERN   pack filters (repeatable; see zoo.packaging.pack_env)
    --cache-dir DIR         where packed archives are cached (default $ZOO_ENV_CACHE or ~/.cache/zoo/envs)
    --format FMT            archive format: tar.gz (default) or tgz
    --dry-run               print the spark-submit command (one argument per line) and exit,
                            without checking that the master answers
"""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
import sys

from zoo.errors import UsageError

VALUE_OPTIONS = {"--cluster-mode", "--master", "--num-executors", "--executor-cores", "--executor-memory",
                 "--driver-cores", "--driver-memory", "--conf", "--archive", "--exclude", "--include",
                 "--cache-dir", "--format"}
FLAG_OPTIONS = {"--no-pack", "--dry-run", "--help", "-h"}
# spark-submit options that take a value, passed through untouched.
SPARK_VALUE_OPTIONS = {"--jars", "--packages", "--exclude-packages", "--repositories", "--files", "--py-files",
                       "--archives", "--name", "--properties-file", "--driver-java-options",
                       "--driver-library-path", "--driver-class-path", "--queue", "--principal", "--keytab",
                       "--class", "--total-executor-cores", "--proxy-user", "--deploy-mode"}


def parse(argv: list[str]) -> tuple[dict, list[str], str, list[str]]:
    """(zoo options, spark-submit pass-through, application file, application args)."""
    options: dict = {"conf": [], "exclude": [], "include": []}
    passthrough: list[str] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        name, has_value, inline = token.partition("=") if token.startswith("--") else (token, "", "")
        if name in VALUE_OPTIONS:
            if has_value:
                value = inline
            elif i + 1 < len(argv):
                i += 1
                value = argv[i]
            else:
                raise UsageError(f"{name} needs a value.")
            key = name[2:].replace("-", "_")
            if key in ("conf", "exclude", "include"):
                options[key].append(value)
            else:
                options[key] = value
        elif name in FLAG_OPTIONS:
            options[name.lstrip("-").replace("-", "_")] = True
        elif name in SPARK_VALUE_OPTIONS:
            if name == "--deploy-mode":
                raise UsageError("Use --cluster-mode (yarn-client, yarn-cluster, ...) instead of --deploy-mode.")
            passthrough.append(token)
            if not has_value:
                if i + 1 >= len(argv):
                    raise UsageError(f"{name} needs a value.")
                i += 1
                passthrough.append(argv[i])
        elif token.startswith("-"):
            passthrough.append(token)
        else:
            return options, passthrough, token, argv[i + 1:]
        i += 1
    raise UsageError("Expected the application file (app.py) after the options.")


def _int(options: dict, key: str) -> int | None:
    if key not in options:
        return None
    try:
        return int(options[key])
    except ValueError:
        raise UsageError(f"--{key.replace('_', '-')} takes a whole number. Received: {options[key]!r}.") from None


def spark_submit_executable() -> str:
    """$SPARK_HOME/bin/spark-submit, else the one inside the pip-installed pyspark."""
    home = os.environ.get("SPARK_HOME")
    if not home:
        import pyspark

        home = os.path.dirname(pyspark.__file__)
    return os.path.join(home, "bin", "spark-submit")


def _shipped_env(options: dict, cluster_mode: str):
    """The PackedEnv that --archive, --no-pack and the pack filters name for `cluster_mode`, or None.

    Nothing ships in local mode; local-cluster executors run on this machine, so it packs nothing
    unless --archive names an archive.
    """
    from zoo import packaging
    from zoo.context import resolve_env

    if "archive" in options:
        env_archive = options["archive"]
    else:
        env_archive = None if options.get("no_pack") else "auto"
    env = resolve_env(env_archive, cluster_mode, explicit_mode=True, cache_dir=options.get("cache_dir"),
                       format=options.get("format", packaging.DEFAULT_FORMAT),
                       exclude=list(packaging.DEFAULT_EXCLUDES) + options["exclude"], include=options["include"])
    if env is not None and env.kind != packaging.GIVEN and not env.cached:
        logging.getLogger("zoo-submit").info("Packed %s in %.1f s", env.archive, env.pack_seconds)
    return env


def build_command(argv: list[str]) -> tuple[dict, list[str]]:
    """(zoo options, the spark-submit command) for a zoo-submit command line; packs if needed."""
    from zoo.cluster import ClusterRequest, spark_submit_args
    from zoo.network import check_master_reachable, node_ip

    options, passthrough, app, app_args = parse(argv)
    conf = {}
    for item in options["conf"]:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--conf takes KEY=VALUE. Received: {item!r}.")
        conf[key] = value
    if "archive" in options and options.get("no_pack"):
        raise UsageError("--archive and --no-pack contradict each other; pass one.")
    request = ClusterRequest(cluster_mode=options.get("cluster_mode") or None, master=options.get("master"),
                             cores=_int(options, "executor_cores"), memory=options.get("executor_memory"),
                             num_executors=_int(options, "num_executors"), driver_cores=_int(options, "driver_cores"),
                             driver_memory=options.get("driver_memory"), conf=conf)
    spec = request.spec()  # validates the command line before anything is packed
    if not options.get("dry_run"):
        check_master_reachable(spec.master)
    spec = request.spec(env=_shipped_env(options, spec.cluster_mode), driver_host=node_ip())
    return options, spark_submit_args(spec, app, app_args, spark_submit_executable(), passthrough)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``zoo-submit``: pack, then run spark-submit; 2 on a bad command line."""
    argv = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.INFO, format="zoo-submit: %(message)s")
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    try:
        options, command = build_command(argv)
    except (UsageError, ValueError, RuntimeError, ConnectionError) as exc:
        print(f"zoo-submit: {exc}", file=sys.stderr)
        return 2
    if options.get("dry_run"):
        print("\n".join(command))
        return 0
    logging.getLogger("zoo-submit").info("%s", " ".join(shlex.quote(c) for c in command))
    return subprocess.call(command)


if __name__ == "__main__":
    sys.exit(main())
