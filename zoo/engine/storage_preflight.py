"""The storage checks of a fit, run on the driver before any Spark job of the fit starts.

`storage_preflight` validates the checkpoint URL and the TensorBoard URL (the scheme's package is
installed, S3 credentials are there, the location can be written) and returns the configuration
with both resolved (a scheme-less path against Spark's ``fs.defaultFS``) and with the driver's
storage options (`zoo.storage.storage_options`), which travel to the workers inside the config of
the task payload; each worker installs them (`zoo.storage.install_storage_options`).

`check_shared_storage` refuses a checkpoint path that executors on other hosts cannot see. Rank 0
writes checkpoints and every worker of a retried stage reads the latest one, possibly on another
host, so the path must be shared. HDFS and object stores are shared by definition, and local
masters (``local[N]``, ``local-cluster[...]``) run on one host. On a cluster, a local path is
tested for real: the driver writes a marker file holding a random token, and a barrier job with
one task per task slot (so every executor runs one) reports whether each task reads that token
and can write a file beside it (executors may run as another user than the driver, and an NFS
export may map them to nobody): the first checkpoint, an epoch later, would find out otherwise.
It lives here, not in `zoo.storage`, because it runs a Spark job; `zoo.storage` stays a leaf.
"""

from __future__ import annotations

import dataclasses
import re
import uuid

from zoo import storage
from zoo.engine.config import TrainingConfig
from zoo.storage import NotSharedError, NotWritableError
from zoo.warm_up import wait_for_warm_up

_LOCAL_MASTER = re.compile(r"^local(\[|-cluster\[|$)")


def _visible_on_executors(sc, marker: str, token: str, tasks: int) -> list[tuple[str, bool, str]]:
    """(host, saw the token, why it could not write beside it or "") from each of `tasks` barrier
    tasks that read the local file `marker` and, when they see it, write and remove a file beside it."""

    def probe(_):
        import os

        from pyspark import BarrierTaskContext

        context = BarrierTaskContext.get()
        # The executor's address as Spark knows it: host names may be shared (containers, VMs).
        host = context.getTaskInfos()[context.partitionId()].address.rsplit(":", 1)[0]
        try:
            with open(marker) as f:
                seen = f.read() == token
        except OSError:
            seen = False
        write_error = ""
        if seen:
            probe_file = f"{marker}-write-{context.partitionId()}"
            try:
                with open(probe_file, "wb") as f:
                    f.write(b"zoo")
                os.remove(probe_file)
            except OSError as exc:
                write_error = f"{type(exc).__name__}: {exc}"
        yield host, seen, write_error

    return sc.parallelize(range(tasks), tasks).barrier().mapPartitions(probe).collect()


def check_shared_storage(spark, url: str) -> None:
    """Raise unless every executor can see and write the checkpoint location `url` (see the module
    docstring).

    Raises:
        NotSharedError: naming the path, the hosts that cannot see it, and the fix.
        NotWritableError: naming the path, the hosts that see it but cannot write there, and why.
    """
    url = storage.resolve(url)
    sc = spark.sparkContext
    if not storage.is_local(url) or _LOCAL_MASTER.match(sc.master):
        return
    folder = storage.local_path(url)
    token = uuid.uuid4().hex
    marker = storage.join(folder, f".zoo-shared-{token}")
    storage.makedirs(folder)
    storage.write_bytes(marker, token.encode())
    wait_for_warm_up()  # the job needs every task slot at once
    try:
        answers = _visible_on_executors(sc, marker, token, sc.defaultParallelism)
    finally:
        storage.remove(marker)
    _refuse_unless_shared(url, folder, answers)


def _refuse_unless_shared(url: str, folder: str, answers: list[tuple[str, bool, str]]) -> None:
    """Raise NotSharedError or NotWritableError from the answers of `_visible_on_executors`."""
    blind = sorted({host for host, seen, _ in answers if not seen})
    if blind:
        raise NotSharedError(
            f"The checkpoint path {url!r} (scheme file) is not shared: executors on {blind} cannot see a file the "
            f"driver wrote there. Rank 0 writes checkpoints and every worker reads them back when a stage is retried, "
            f"so use a path every node sees: a shared mount (the same NFS path on every node), hdfs:// or s3:// "
            f"(s3a://).")
    unwritable = sorted({(host, error) for host, seen, error in answers if seen and error})
    if unwritable:
        hosts = sorted({host for host, _ in unwritable})
        raise NotWritableError(
            f"Could not write {url!r} (scheme file) from the executors on {hosts}: {unwritable[0][1]}. The driver "
            f"can write there, but rank 0 writes checkpoints from an executor, which may run as another user (an "
            f"NFS export may map it to nobody). Give the executors' user write access to {folder!r} or choose "
            f"another path.")


def storage_preflight(spark, config: TrainingConfig) -> TrainingConfig:
    """Check the fit's storage before any Spark job; returns the config with its URLs resolved and
    the storage options the workers install (``storage_options``). A config that already has
    storage options was checked: it is returned as it is, so callers may check early (nnframes
    does, before its input checks run Spark jobs) and the launcher again at no cost.

    Raises:
        FileSystemMissingError, CredentialsError, UnreachableError, NotWritableError: from
            `zoo.storage.check_writable`, naming the URL and the fix.
        NotSharedError: a local checkpoint path the executors cannot all see.
        NotWritableError: also for a local checkpoint path the executors see but cannot write.
    """
    if config.storage_options is not None:
        return config
    changes = {}
    if config.checkpoint is not None:
        path = storage.check_writable(config.checkpoint.path)
        check_shared_storage(spark, path)
        changes["checkpoint"] = dataclasses.replace(config.checkpoint, path=path)
    if config.tensorboard_dir is not None:
        changes["tensorboard_dir"] = storage.check_writable(config.tensorboard_dir)
    return dataclasses.replace(config, **changes, storage_options=storage.storage_options())
