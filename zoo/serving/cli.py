"""``zoo-serving init|start|stop|status``: run a Cluster Serving deployment from a config.yaml.

- ``init`` writes a commented config.yaml; ``--host`` binds the frontend and the managed Redis off
  loopback, ``--secrets`` fills in a random bearer token and Redis password (the default off
  loopback, where they are required) and makes the file readable by its owner only.
- ``start`` starts a local redis-server when no ``redis.url`` is configured, then the workers
  (local processes, one Spark job with ``--master``, or one Flink job with ``--engine flink``) and the HTTP frontend, waits until they are
  ready, and records their process ids in ``.zoo-serving/state.json`` beside the config.
- ``stop`` asks the workers to finish their batch (stop key + SIGTERM), then stops the rest.
- ``status`` shows the processes, live workers, queue lengths and counters; exit code 3 when stopped.
- ``rollback --model NAME`` moves the registry alias a ``models:/name@alias`` model follows back to
  the version it named before (`zoo.registry.ModelRegistry.rollback`), which notifies the workers.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from zoo.serving import defaults as D
from zoo.serving.config import ServingConfig, is_loopback, load_config, render_template
from zoo.serving.errors import ServingConfigError

#: Config file the commands use when ``--config`` is not given.
DEFAULT_CONFIG = "config.yaml"
#: Seconds ``start`` waits for workers and the frontend to come up.
DEFAULT_START_TIMEOUT_S = 120.0
#: Seconds ``stop`` waits for a process to exit before it is killed.
DEFAULT_STOP_TIMEOUT_S = 15.0
#: ``status`` exit code when the deployment is not running (as LSB init scripts use).
EXIT_NOT_RUNNING = 3
#: Engines that run all workers as one job (state.json keys): Spark (``--master``) and Flink.
JOB_ENGINES = ("spark", "flink")


def state_dir(config_path: pathlib.Path) -> pathlib.Path:
    """Folder beside the config that holds state.json, logs and the managed Redis' files."""
    return config_path.resolve().parent / ".zoo-serving"


def _read_state(config_path: pathlib.Path) -> dict[str, Any] | None:
    path = state_dir(config_path) / "state.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of this process counts as dead
        finished, _ = os.waitpid(pid, os.WNOHANG)
        return finished == 0
    except ChildProcessError:
        return True


def _processes(state: dict[str, Any]) -> list[dict[str, Any]]:
    return [*state.get("workers", []), *[state[job] for job in JOB_ENGINES if state.get(job)],
            *([state["frontend"]] if state.get("frontend") else []),
            *([state["redis"]] if state.get("redis") else [])]


def _spawn(args: list[str], log: pathlib.Path, env: dict[str, str] | None = None) -> int:
    with open(log, "ab") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True, env={**os.environ, **(env or {})})
    return process.pid


def _tail(path: str, lines: int = 20) -> str:
    try:
        return "\n".join(pathlib.Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def cmd_init(args: argparse.Namespace) -> int:
    """Write the config template (with generated secrets when asked, or when off loopback)."""
    path = pathlib.Path(args.config)
    if path.exists() and not args.force:
        print(f"{path} already exists; pass --force to overwrite it.", file=sys.stderr)
        return 1
    with_secrets = args.secrets if args.secrets is not None else not is_loopback(args.host)
    token = secrets.token_urlsafe(32) if with_secrets else None
    password = secrets.token_urlsafe(32) if with_secrets else None
    # a file with secrets is created readable by its owner only, before anything is written to it
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if with_secrets else 0o644)
    if with_secrets:
        os.fchmod(fd, 0o600)  # also when --force replaced a file that others could read
    with os.fdopen(fd, "w") as handle:
        handle.write(render_template(host=args.host, token=token, password=password))
    note = (" It holds a generated bearer token (http.token) and Redis password (redis.password): it is readable "
            "by you only; clients send `Authorization: Bearer <http.token>`.") if with_secrets else ""
    print(f"Wrote {path}.{note} Set models[0].path to your model, then run `zoo-serving start -c {path}`.")
    return 0


def _terminate(pid: int, timeout_s: float) -> None:
    if not _alive(pid):
        return
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.05)
    if _alive(pid):
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _http_ready(config: ServingConfig) -> bool:
    try:
        with urllib.request.urlopen(f"http://{config.http.host}:{config.http.port}/health", timeout=1) as reply:
            return reply.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _live_workers(client: Any, model: str) -> int:
    return sum(1 for _ in client.scan_iter(match=D.heartbeat_pattern(model), count=1000))


def cmd_start(args: argparse.Namespace) -> int:
    """Start Redis (when managed), the workers and the frontend; wait until they are ready."""
    config_path = pathlib.Path(args.config)
    config = load_config(config_path)
    from zoo.serving.worker import check_model_paths

    check_model_paths(config.models, str(config_path))
    folder = state_dir(config_path)
    previous = _read_state(config_path)
    if previous and any(_alive(p.get("pid")) for p in _processes(previous)):
        print(f"A deployment from {config_path} is already running; run `zoo-serving stop -c {config_path}` first.",
              file=sys.stderr)
        return 1
    (folder / "logs").mkdir(parents=True, exist_ok=True)
    state: dict[str, Any] = {"config": str(config_path.resolve()), "workers": [], "started": time.time()}
    state_file = folder / "state.json"

    def save():
        state_file.write_text(json.dumps(state, indent=2))

    try:
        if config.redis.url is None:
            from zoo.serving.redis_server import RedisServer

            data_dir = folder / "redis"
            data_dir.mkdir(exist_ok=True)
            server = RedisServer(host=config.redis.host, port=config.redis.port, password=config.redis.password,
                                 tls_cert=config.redis.server_tls_cert, tls_key=config.redis.server_tls_key,
                                 tls_ca_cert=config.redis.tls_ca_cert, data_dir=str(data_dir),
                                 appendonly=config.redis.appendonly,
                                 appendfsync=config.redis.appendfsync).start(detach=True)
            state["redis"] = {"role": "redis", "pid": server.pid, "url": server.url,
                              "log": str(data_dir / "redis.log")}
            save()
        from zoo.serving.connection import connect_config, publish_info

        client = connect_config(config)
        client.ping()
        if config.redis.url is not None:
            _warn_without_persistence(client, config.redis.url)
        for model in config.models:
            client.delete(D.stop_key(model.name))
            publish_info(client, model, config.queue)
        python, cfg = sys.executable, str(config_path.resolve())
        if args.master:
            log = folder / "logs" / "spark.log"
            state["spark"] = {"role": "spark", "pid": _spawn([python, "-m", "zoo.serving.spark", "--config", cfg,
                                                              "--master", args.master], log), "log": str(log)}
        elif args.engine == "flink":
            from zoo.flink.runtime import flink_python

            log = folder / "logs" / "flink.log"
            state["flink"] = {"role": "flink", "pid": _spawn([flink_python(), "-m", "zoo.flink.serving", "--config", cfg],
                                                             log), "log": str(log)}
        else:
            for model in config.models:
                for index in range(model.workers):
                    log = folder / "logs" / f"worker-{model.name}-{index}.log"
                    pid = _spawn([python, "-m", "zoo.serving.worker", "--config", cfg, "--model", model.name,
                                  "--consumer", f"{model.name}-{index}"], log,
                                 env={"OMP_NUM_THREADS": str(model.threads_per_worker)})
                    state["workers"].append({"role": f"worker {model.name}-{index}", "pid": pid, "log": str(log)})
        if config.http.enabled and not args.no_http:
            log = folder / "logs" / "frontend.log"
            state["frontend"] = {"role": "frontend", "pid": _spawn([python, "-m", "zoo.serving.frontend",
                                                                    "--config", cfg], log), "log": str(log),
                                 "url": f"http://{config.http.host}:{config.http.port}"}
        save()
        deadline = time.monotonic() + args.timeout
        while True:
            dead = [p for p in _processes(state) if not _alive(p["pid"])]
            if dead:
                raise RuntimeError("\n".join(f"{p['role']} (pid {p['pid']}) exited during start; last log lines:\n"
                                             f"{_tail(p.get('log', ''))}" for p in dead))
            workers_ready = all(_live_workers(client, m.name) >= m.workers for m in config.models)
            http_ready = "frontend" not in state or _http_ready(config)
            if workers_ready and http_ready:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"Workers or frontend not ready within {args.timeout} s. See logs in {folder / 'logs'}.")
            time.sleep(0.2)
        client.close()
    except BaseException:
        _stop_state(state, config, DEFAULT_STOP_TIMEOUT_S)
        state_file.unlink(missing_ok=True)
        raise
    print(f"Cluster Serving started: {len(config.models)} model(s) "
          f"{[m.name for m in config.models]}, Redis {config.redis.effective_url}"
          + (f", HTTP {state['frontend']['url']}" if "frontend" in state else "") + f". Logs: {folder / 'logs'}")
    return 0


def _warn_without_persistence(client: Any, url: str) -> None:
    """Say so when an external Redis keeps no append-only file: a restart of it loses the queue."""
    try:
        appendonly = client.config_get("appendonly").get("appendonly")
    except Exception:  # CONFIG may be disabled (managed Redis services): nothing to check
        return
    if appendonly == "no":
        print(f"zoo-serving start: warning: the Redis at {url} runs with appendonly no, so a restart of it loses "
              f"every queued request and result. Turn it on (CONFIG SET appendonly yes, and in its redis.conf) for "
              f"at-least-once delivery across restarts; see docs/operations.md.", file=sys.stderr)


def _stop_state(state: dict[str, Any], config: ServingConfig, timeout_s: float) -> None:
    try:
        from zoo.serving.spark import request_stop

        request_stop(config)
    except Exception:  # Redis may already be gone; signals below still stop the processes
        pass
    for job in (state[name] for name in JOB_ENGINES if state.get(name)):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and _alive(job["pid"]):
            time.sleep(0.1)
    for process in [*state.get("workers", []), *[state[job] for job in JOB_ENGINES if state.get(job)],
                    *([state["frontend"]] if state.get("frontend") else [])]:
        _terminate(process["pid"], timeout_s)
    if state.get("redis"):
        _terminate(state["redis"]["pid"], timeout_s)


def cmd_stop(args: argparse.Namespace) -> int:
    """Stop every process that `start` recorded."""
    config_path = pathlib.Path(args.config)
    state = _read_state(config_path)
    if state is None:
        print(f"No deployment of {config_path} is running (no state file).", file=sys.stderr)
        return EXIT_NOT_RUNNING
    _stop_state(state, load_config(config_path), args.timeout)
    (state_dir(config_path) / "state.json").unlink(missing_ok=True)
    print("Cluster Serving stopped.")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    """Print processes, live workers, queue lengths and counters."""
    config_path = pathlib.Path(args.config)
    config = load_config(config_path)
    state = _read_state(config_path) or {}
    report: dict[str, Any] = {"processes": [{"role": p["role"], "pid": p["pid"], "alive": _alive(p["pid"])}
                                            for p in _processes(state)], "models": []}
    try:
        from zoo.serving.connection import connect_config
        from zoo.serving.follow import heartbeat_versions
        from zoo.serving.metrics import SWAPS, SWAPS_REFUSED

        client = connect_config(config)
        for model in config.models:
            counters = {k.decode(): v.decode() for k, v in client.hgetall(D.metrics_key(model.name)).items()}
            beats = list(client.scan_iter(match=D.heartbeat_pattern(model.name), count=1000))
            report["models"].append({"name": model.name, "live_workers": _live_workers(client, model.name),
                                     "queue_length": client.xlen(D.stream_key(model.name)),
                                     "dead_letters": client.xlen(D.dead_letter_key(model.name)),
                                     "requests": int(counters.get("requests_total", 0)),
                                     "errors": int(counters.get("errors_total", 0)),
                                     "serving_versions": heartbeat_versions(client.mget(beats) if beats else []),
                                     "swaps": int(counters.get(SWAPS, 0)),
                                     "swaps_refused": int(counters.get(SWAPS_REFUSED, 0))})
        client.close()
        report["redis"] = "up"
    except Exception as exc:  # status reports an unreachable Redis instead of failing
        report["redis"] = f"unreachable: {exc}"
    running = any(p["alive"] for p in report["processes"]) or any(m["live_workers"] for m in report["models"])
    report["running"] = running
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"Cluster Serving: {'running' if running else 'stopped'} (Redis {report['redis']})")
        for p in report["processes"]:
            print(f"  {p['role']:<24} pid {p['pid']:<8} {'alive' if p['alive'] else 'dead'}")
        for m in report["models"]:
            versions = f", serving version(s) {m['serving_versions']}" if m["serving_versions"] else ""
            swaps = f", {m['swaps']} swaps ({m['swaps_refused']} refused)" if m["swaps"] or m["swaps_refused"] else ""
            print(f"  model {m['name']}: {m['live_workers']} live workers, queue {m['queue_length']}, "
                  f"{m['requests']} requests, {m['errors']} errors, {m['dead_letters']} dead letters{versions}{swaps}")
    return 0 if running else EXIT_NOT_RUNNING


def _redis_url_with_password(config: ServingConfig) -> str:
    """The deployment's Redis URL with its password in it, for the registry's notifications."""
    url, password = config.redis.effective_url, config.redis.password
    if not password or "@" in url.split("//", 1)[-1]:
        return url
    scheme, rest = url.split("//", 1)
    return f"{scheme}//:{urllib.parse.quote(password, safe='')}@{rest}"


def cmd_rollback(args: argparse.Namespace) -> int:
    """Move the alias the model follows back to its previous version; the workers swap to it."""
    from zoo.serving.follow import is_registry_uri, open_registry, parse_model_uri

    config = load_config(pathlib.Path(args.config))
    model = config.model(args.model)
    if not is_registry_uri(model.path):
        raise ServingConfigError(f"Model {model.name!r} is served from the file {model.path}, not from the registry, "
                                 f"so it has no alias to roll back. Serve it as models:/NAME@champion to follow an "
                                 f"alias.")
    name, alias, _ = parse_model_uri(model.path)
    if alias is None:
        raise ServingConfigError(f"Model {model.name!r} is pinned to one version ({model.path}); there is no alias to "
                                 f"roll back. Change `path` in {args.config} to the version to serve.")
    from zoo.registry import RegistryError

    registry = open_registry(model, redis_url=_redis_url_with_password(config))
    try:
        version = registry.rollback(name, alias=alias)
    except RegistryError as exc:
        raise ServingConfigError(f"Cannot roll back {name}@{alias}: {exc}") from exc
    print(f"{name}@{alias} now names version {version}; the workers of model {model.name!r} swap to it.")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``zoo-serving``."""
    parser = argparse.ArgumentParser(prog="zoo-serving", description="Zoo Cluster Serving over Redis Streams.")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, helptext in (("init", "write a config.yaml template"), ("start", "start a deployment"),
                           ("stop", "stop a deployment"), ("status", "show a deployment"),
                           ("rollback", "move a followed registry alias back to its previous version")):
        command = commands.add_parser(name, help=helptext)
        command.add_argument("-c", "--config", default=DEFAULT_CONFIG, help="path of config.yaml")
        if name == "init":
            command.add_argument("--force", action="store_true", help="overwrite an existing file")
            command.add_argument("--host", default=D.DEFAULT_HOST,
                                 help="address the HTTP frontend and the managed Redis bind (default: loopback)")
            command.add_argument("--secrets", action=argparse.BooleanOptionalAction, default=None,
                                 help="write a generated bearer token and Redis password (default: when --host "
                                      "is not a loopback address)")
        if name == "start":
            command.add_argument("--master", default=None,
                                 help="run the workers as a Spark job on this master (local[4], spark://..., yarn)")
            command.add_argument("--engine", choices=("local", "flink"), default="local",
                                 help="local: worker processes (default); flink: one Flink job, run in the "
                                      "Flink environment (.venv-flink, see scripts/setup_flink.sh)")
            command.add_argument("--no-http", action="store_true", help="do not start the HTTP frontend")
            command.add_argument("--timeout", type=float, default=DEFAULT_START_TIMEOUT_S,
                                 help="seconds to wait for readiness")
        if name == "stop":
            command.add_argument("--timeout", type=float, default=DEFAULT_STOP_TIMEOUT_S,
                                 help="seconds to wait before killing")
        if name == "status":
            command.add_argument("--json", action="store_true", help="print JSON")
        if name == "rollback":
            command.add_argument("--model", default=None,
                                 help="model name in config.yaml (default: the first); its path is models:/NAME@ALIAS")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``zoo-serving`` console script."""
    args = build_parser().parse_args(argv)
    handlers = {"init": cmd_init, "start": cmd_start, "stop": cmd_stop, "status": cmd_status, "rollback": cmd_rollback}
    try:
        return handlers[args.command](args)
    except (ServingConfigError, RuntimeError) as exc:
        print(f"zoo-serving {args.command}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
