"""Checkpoints: model weights, optimizer state and position, written atomically by rank 0.

Layout of one checkpoint, ``<path>/checkpoint-<iteration>/``:
    model.pt      the model's state_dict (torch.save)
    optimizer.pt  the optimizer state; for sharded optimizers, per-element state is stored for the
                  whole flat parameter vector, so a checkpoint resumes on any number of workers
    meta.json     {"run_id", "epoch", "iteration", "step_in_epoch", "sharded", "num_params"}
A checkpoint is written to a hidden temporary directory and renamed into place, so a crash
never leaves a half-written checkpoint that looks complete.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import uuid

import torch

from zoo.engine.collective import FlatBuffers, all_gather_objects

PREFIX = "checkpoint-"


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
    """Write one checkpoint under `path`; with `overwrite`, remove the older ones. Returns its dir."""
    os.makedirs(path, exist_ok=True)
    final = os.path.join(path, f"{PREFIX}{meta['iteration']:09d}")
    staging = os.path.join(path, f".staging-{uuid.uuid4().hex}")
    os.makedirs(staging)
    try:
        with open(os.path.join(staging, "model.pt"), "wb") as f:
            f.write(model_state)
        torch.save(optimizer_state, os.path.join(staging, "optimizer.pt"))
        with open(os.path.join(staging, "meta.json"), "w") as f:
            json.dump(meta, f)
        if os.path.exists(final):
            shutil.rmtree(final)
        os.rename(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if overwrite:
        for name in os.listdir(path):
            if name.startswith(PREFIX) and os.path.join(path, name) != final:
                shutil.rmtree(os.path.join(path, name), ignore_errors=True)
    return final


def latest_checkpoint(path: str) -> str | None:
    """The directory of the newest complete checkpoint under `path`, or None."""
    if not os.path.isdir(path):
        return None
    names = sorted(n for n in os.listdir(path) if n.startswith(PREFIX)
                   and os.path.exists(os.path.join(path, n, "meta.json")))
    return os.path.join(path, names[-1]) if names else None


def load_checkpoint(directory: str) -> tuple[dict, bytes, dict]:
    """(meta, model state bytes, optimizer state) of one checkpoint directory."""
    with open(os.path.join(directory, "meta.json")) as f:
        meta = json.load(f)
    with open(os.path.join(directory, "model.pt"), "rb") as f:
        model_state = f.read()
    optimizer_state = torch.load(os.path.join(directory, "optimizer.pt"), weights_only=False)
    return meta, model_state, optimizer_state


def read_meta(directory: str) -> dict:
    """The meta.json of one checkpoint directory."""
    with open(os.path.join(directory, "meta.json")) as f:
        return json.load(f)


def model_state_from_bytes(blob: bytes) -> dict:
    """A state_dict from the bytes of model.pt."""
    return torch.load(io.BytesIO(blob), weights_only=True)
