"""``scripts/dev-cluster`` (``python -m zoo.devcluster``): start, inspect, use and stop a dev cluster.

    scripts/dev-cluster up [--name dev] [--hosts 2] [--cores 2] [--memory 2g] [--bandwidth 1gbit] [--no-s3]
    scripts/dev-cluster status [--name dev] [--json]
    scripts/dev-cluster exec [--name dev] edge -- python my_job.py
    scripts/dev-cluster shape [--name dev] 100mbit|none [--host host1 ...]
    scripts/dev-cluster down [--name dev]

``up`` returns once the cluster is ready and leaves it running; the others find it through its
state file. Errors go to stderr with exit status 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from zoo.devcluster import cleanup, state
from zoo.devcluster.cluster import DEFAULT_CORES, DEFAULT_HOSTS, DEFAULT_MEMORY, DEFAULT_NAME, EDGE, DevCluster
from zoo.errors import DevClusterError, ZooValueError

#: How users call this CLI (shown in its messages).
PROG = "scripts/dev-cluster"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="A multi-host Spark cluster on this machine: network "
                                     "namespaces with private /dev/shm and /tmp, a switch, shaped links, S3.")
    commands = parser.add_subparsers(dest="command", required=True)

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        command = commands.add_parser(name, help=help_text, description=help_text)
        command.add_argument("--name", default=DEFAULT_NAME, help=f"the cluster's name (default {DEFAULT_NAME})")
        return command

    up = add("up", "start a cluster and leave it running")
    up.add_argument("--hosts", type=int, default=DEFAULT_HOSTS, help="worker hosts besides the edge host")
    up.add_argument("--cores", type=int, default=DEFAULT_CORES, help="cores each worker offers")
    up.add_argument("--memory", default=DEFAULT_MEMORY, help="memory each worker offers (= executor memory)")
    up.add_argument("--bandwidth", default=None, help="shape every link, both directions (tc rate: 1gbit, 100mbit)")
    up.add_argument("--no-s3", dest="s3", action="store_false", help="do not start the S3 server")
    up.add_argument("--redis", action="store_true", help="also start redis-server on the edge host")
    status = add("status", "show hosts, workers, S3 and shaping")
    status.add_argument("--json", action="store_true", help="print the status as JSON")
    run = add("exec", "run a command on a host with the host's environment (drivers: on edge)")
    run.add_argument("host", help=f"{EDGE}, host1, host2, ...")
    run.add_argument("argv", nargs=argparse.REMAINDER, help="-- then the command")
    shape = add("shape", "shape links to a rate (both directions), or 'none' to remove shaping")
    shape.add_argument("rate", help="tc rate such as 1gbit or 100mbit, or none")
    shape.add_argument("--host", action="append", dest="hosts", help="only this host's link (repeatable)")
    add("down", "stop the cluster and remove everything it made")
    reap = commands.add_parser("reap", help=argparse.SUPPRESS)  # internal: see zoo.devcluster.cleanup.reap
    reap.add_argument("--name", required=True)
    reap.add_argument("--owner", type=int, required=True)
    return parser


def _print_status(report: dict) -> None:
    print(f"Dev cluster {report['name']!r} (state: {report['state_file']})")
    for host in report["hosts"]:
        print(f"  {host['name']:<7} {host['ip']:<12} {'up' if host['alive'] else 'DOWN':<5} "
              f"netns {host['netns']}" + (f", link shaped to {host['shaping']}" if host.get("shaping") else ""))
    if "master_url" in report:
        print(f"Spark master  {report['master_url']}  (web UI {report['master_webui']}, from the hosts)")
        for worker in report["workers"]:
            print(f"  worker {worker['host']}  cores {worker['cores']} (used {worker['coresused']}), "
                  f"memory {worker['memory']} MB")
        if report.get("master_error"):
            print(f"  master unreachable: {report['master_error']}")
        for app in report.get("applications", []):
            print(f"  application {app['id']} {app['name']!r} ({app['cores']} cores)")
    if report["s3"]:
        print(f"S3            {report['s3']['endpoint']}  bucket s3://{report['s3']['bucket']}")
    for url in report["redis"]:
        print(f"Redis         {url}")
    print(f"Shared dir    {report['shared_dir']}  (same path on every host)")
    print(f"Logs          {report['logs_dir']}")


def _print_usage(cluster: DevCluster) -> None:
    name = "" if cluster.name == DEFAULT_NAME else f" --name {cluster.name}"
    print(f"\nRun a driver on the edge host (an edge node: client mode, executors on the worker hosts):\n"
          f"  {PROG} exec{name} {EDGE} -- python my_job.py\n"
          f"  # in my_job.py: spark = zoo.init_spark(os.environ['MASTER'], env_archive=None), or plain\n"
          f"  # SparkSession.builder.getOrCreate() (SPARK_CONF_DIR names the master)\n"
          f"A shell on a host: {PROG} exec{name} host1 -- bash\n"
          f"The hosts' addresses exist only inside the cluster. Commands run with `exec` get their host's\n"
          f"environment; on {EDGE}:")
    for key, value in sorted(cluster.edge.env.items()):
        if key not in ("PATH", "PYTHONPATH"):
            print(f"  export {key}={value}")
    print(f"Stop it with: {PROG} down{name}")


def main(argv: list[str] | None = None) -> int:
    """Run the CLI with `argv` (default: the command line); return the exit status."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "up":
            cluster = DevCluster(name=args.name, hosts=args.hosts, cores=args.cores, memory=args.memory,
                                 bandwidth=args.bandwidth, s3=args.s3).up(detach=True)
            if args.redis:
                cluster.start_redis()
            _print_status(cluster.status())
            _print_usage(cluster)
        elif args.command == "status":
            report = DevCluster.attach(args.name).status()
            if args.json:
                print(json.dumps(report, indent=2))
            else:
                _print_status(report)
        elif args.command == "exec":
            command = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
            if not command:
                raise ZooValueError(f"Expected a command after the host: `{PROG} exec {args.host} -- python job.py`.")
            host = DevCluster.attach(args.name).host(args.host)
            full = host.command(command)
            os.execvpe(full[0], full, host.environ())
        elif args.command == "shape":
            rate = None if args.rate.lower() in ("none", "off") else args.rate
            DevCluster.attach(args.name).shape(rate, args.hosts)
        elif args.command == "down":
            if state.read_state(args.name) is None and not cleanup.cluster_netns(args.name):
                print(f"No dev cluster named {args.name!r} runs: nothing to stop.")
            else:
                killed = cleanup.teardown(args.name)
                print(f"Dev cluster {args.name!r} is down ({len(killed)} processes stopped).")
        elif args.command == "reap":
            cleanup.reap(args.name, args.owner)
    except (DevClusterError, ZooValueError) as error:
        print(f"{PROG} {args.command}: {error}", file=sys.stderr)
        return 1
    return 0

