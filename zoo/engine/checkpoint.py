"""Checkpoints: model weights, optimizer state and position, written atomically by rank 0.

Layout of one checkpoint, ``<path>/checkpoint-<iteration>/``:
    model.pt      the model's weights as its adapter serializes them (`state_bytes`): a torch
                  state_dict for PyTorch, an .npz of every variable for Keras
    optimizer.pt  the optimizer state; for sharded optimizers, per-element state is stored for the
                  whole flat parameter vector, so a checkpoint resumes on any number of workers
    meta.json     {"run_id", "epoch", "iteration", "step_in_epoch", "sharded", "num_params"}
`path` is a local path or a URL (file://, hdfs://, s3://, s3a://; see `zoo.storage`). A
checkpoint is staged and committed atomically (`zoo.storage.staged`): renamed into place where the
file system renames atomically, and on object stores written with meta.json last. A checkpoint
counts only when its meta.json exists, so a crash never leaves a half-written one that looks complete.
"""

from __future__ import annotations

import io
import json
import os

import torch

from zoo import storage
from zoo.engine.collective import FlatBuffers, all_gather_objects

PREFIX = "checkpoint-"
MODEL_FILE = "model.pt"
OPTIMIZER_FILE = "optimizer.pt"
#: The commit marker: a checkpoint directory without it is incomplete and ignored.
META_FILE = "meta.json"


def gather_optimizer_state(optimizer, sharded: bool, buffers: FlatBuffers) -> dict:
    """The optimizer state to save; sharded per-element state is assembled from every worker."""
    state = optimizer.state_dict()
    if not sharded:
        return state
    per_param = state["state"].get(0, {})
    local = {k: v for k, v in per_param.items() if torch.is_tensor(v) and v.numel() == buffers.shard_size}
    # Shards are concatenated in buffer order, which is not rank order under every transport.
    shards = [state for _, state in sorted(all_gather_objects((buffers.shard_index, local)), key=lambda s: s[0])]
    full = dict(per_param)
    for key in local:
        full[key] = torch.cat([s[key] for s in shards])[: buffers.num_params].clone()
    return {"state": {0: full} if per_param else {}, "param_groups": state["param_groups"]}


def shard_optimizer_state(saved: dict, buffers: FlatBuffers) -> dict:
    """This worker's slice of a sharded optimizer state saved by `gather_optimizer_state`."""
    per_param = saved["state"].get(0)
    if per_param is None:
        return saved
    local = {}
    for key, value in per_param.items():
        if torch.is_tensor(value) and value.numel() == buffers.num_params:
            padded = torch.zeros(buffers.shard_size * buffers.world_size, dtype=value.dtype)
            padded[: buffers.num_params] = value
            local[key] = buffers.shard(padded).clone()
        else:
            local[key] = value
    return {"state": {0: local}, "param_groups": saved["param_groups"]}


def save_checkpoint(path: str, overwrite: bool, meta: dict, model_state: bytes, optimizer_state: dict) -> str:
    """Write one checkpoint under `path` (a path or URL); with `overwrite`, remove the older ones.
    Returns its directory's URL. meta.json is the commit marker (written last on object stores)."""
    final = storage.join(path, f"{PREFIX}{meta['iteration']:09d}")
    with storage.staged(final, marker=META_FILE) as folder:
        with open(os.path.join(folder, MODEL_FILE), "wb") as f:
            f.write(model_state)
        torch.save(optimizer_state, os.path.join(folder, OPTIMIZER_FILE))
        with open(os.path.join(folder, META_FILE), "w") as f:
            json.dump(meta, f)
    if overwrite:
        for name in storage.listdir(path):
            if name.startswith(PREFIX) and storage.join(path, name) != final:
                storage.remove(storage.join(path, name))
    return final


def checkpoint_names(path: str) -> list[str]:
    """The names of the complete checkpoints (those with a meta.json) under `path`, oldest first."""
    return [n for n in storage.listdir(path)
            if n.startswith(PREFIX) and storage.exists(storage.join(path, n, META_FILE))]


def latest_checkpoint(path: str) -> str | None:
    """The directory (URL) of the newest complete checkpoint under `path`, or None."""
    names = checkpoint_names(path)
    return storage.join(path, names[-1]) if names else None


def load_checkpoint(directory: str) -> tuple[dict, bytes, dict]:
    """(meta, model state bytes, optimizer state) of one checkpoint directory."""
    meta = read_meta(directory)
    model_state = storage.read_bytes(storage.join(directory, MODEL_FILE))
    optimizer_state = torch.load(io.BytesIO(storage.read_bytes(storage.join(directory, OPTIMIZER_FILE))),
                                 weights_only=False)
    return meta, model_state, optimizer_state


def read_meta(directory: str) -> dict:
    """The meta.json of one checkpoint directory."""
    return json.loads(storage.read_bytes(storage.join(directory, META_FILE)))

