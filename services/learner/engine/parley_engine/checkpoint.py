"""Versioned, atomic checkpoints: <base>/v<version> holds weights and optimizer tensors (safetensors, else
torch.save) plus engine.json, written to a hidden temporary folder and renamed into place."""

import json
import os
import re
import shutil
import uuid
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

import torch

from .errors import already_exists, invalid, not_found

FORMAT = "parley-engine-checkpoint/1"
META = "engine.json"
_VERSION_DIR = re.compile(r"^v(\d+)$")

try:
    from safetensors.torch import load_file as _st_load, save_file as _st_save
except ImportError:  # Debian's CPU image has no safetensors
    _st_load = _st_save = None


@dataclass
class Loaded:
    version: int
    step: int
    model: str
    config: Dict[str, Any]
    weights: Dict[str, torch.Tensor]
    optimizer: Optional[Dict[str, Any]]


def version_dir(base: str, version: int) -> str:
    return os.path.join(base, f"v{version:08d}")


def save(base: str, version: int, weights: Dict[str, torch.Tensor], optimizer: Optional[Dict[str, Any]],
         meta: Dict[str, Any], export=None) -> str:
    """Writes version `version` under `base` and returns its folder. `export(folder)` may add files
    (a Hugging Face export). Raises EngineError: INVALID_ARGUMENT for a bad path or version,
    ALREADY_EXISTS when that version is there (versions are immutable)."""
    if not base:
        raise invalid("path is empty; give the checkpoint folder")
    if version < 0:
        raise invalid(f"version must be >= 0, got {version}")
    final = version_dir(base, version)
    if os.path.exists(final):
        raise already_exists(f"{final} already exists; checkpoint versions are immutable")
    os.makedirs(base, exist_ok=True)
    tmp = os.path.join(base, f".v{version:08d}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    os.makedirs(tmp)
    try:
        doc = dict(meta, format=FORMAT, version=version, weights=_write_tensors(tmp, "model", weights))
        if optimizer is not None:
            tensors, doc["optimizer_state"] = _split_optimizer(optimizer)
            doc["optimizer"] = _write_tensors(tmp, "optimizer", tensors)
        if export is not None:
            export(os.path.join(tmp, "export"))
        with open(os.path.join(tmp, META), "w") as f:
            json.dump(doc, f, indent=2, sort_keys=True)
        _fsync_tree(tmp)
        try:
            os.rename(tmp, final)
        except OSError as e:
            if os.path.exists(final):  # another writer got there first
                raise already_exists(f"{final} already exists; checkpoint versions are immutable") from e
            raise
        _fsync_dir(base)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def resolve(path: str) -> str:
    """A version folder as given, or the highest version under a base folder.
    Raises EngineError(NOT_FOUND) when there is none."""
    if os.path.isfile(os.path.join(path, META)):
        return path
    versions = []
    if os.path.isdir(path):
        for name in os.listdir(path):
            m = _VERSION_DIR.match(name)
            if m and os.path.isfile(os.path.join(path, name, META)):
                versions.append((int(m.group(1)), name))
    if not versions:
        raise not_found(f"no checkpoint at {path!r}: neither {META} nor v<version>/{META} folders")
    return os.path.join(path, max(versions)[1])


def load(path: str, device: torch.device) -> Loaded:
    """Reads the checkpoint at `path` (see resolve). Raises EngineError(NOT_FOUND) when missing,
    INVALID_ARGUMENT when it is not an engine checkpoint."""
    folder = resolve(path)
    with open(os.path.join(folder, META)) as f:
        doc = json.load(f)
    if doc.get("format") != FORMAT:
        raise invalid(f"{folder}/{META} has format {doc.get('format')!r}; this engine reads {FORMAT}")
    weights = _read_tensors(folder, doc["weights"], device)
    optimizer = None
    if doc.get("optimizer"):
        # On the CPU: load_state_dict moves moments to their parameters but keeps "step" where it is,
        # and torch 2.x's AdamW wants that on the CPU unless capturable.
        tensors = _read_tensors(folder, doc["optimizer"], torch.device("cpu"))
        optimizer = _join_optimizer(tensors, doc["optimizer_state"])
    return Loaded(version=int(doc["version"]), step=int(doc.get("step", 0)), model=doc.get("model", ""),
                  config=doc.get("config", {}), weights=weights, optimizer=optimizer)


def _write_tensors(folder: str, stem: str, tensors: Dict[str, torch.Tensor]) -> str:
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    if _st_save is not None:
        name = f"{stem}.safetensors"
        _st_save(tensors, os.path.join(folder, name))
    else:
        name = f"{stem}.pt"
        torch.save(tensors, os.path.join(folder, name))
    return name


def _read_tensors(folder: str, name: str, device: torch.device) -> Dict[str, torch.Tensor]:
    path = os.path.join(folder, name)
    if name.endswith(".safetensors"):
        if _st_load is None:
            raise invalid(f"{path} is safetensors, but the safetensors package is not installed")
        return _st_load(path, device=str(device))
    return torch.load(path, map_location=device, weights_only=True)


def _split_optimizer(state_dict: Dict[str, Any]) -> Tuple[Dict[str, torch.Tensor], Dict[str, Any]]:
    """An optimizer state dict -> (flat tensors "state.<param>.<key>", the JSON-able rest)."""
    tensors: Dict[str, torch.Tensor] = {}
    plain: Dict[str, Dict[str, Any]] = {}
    for param, entries in state_dict["state"].items():
        for key, value in entries.items():
            if torch.is_tensor(value):
                tensors[f"state.{param}.{key}"] = value
            else:
                plain.setdefault(str(param), {})[key] = value
    return tensors, {"param_groups": state_dict["param_groups"], "state": plain}


def _join_optimizer(tensors: Dict[str, torch.Tensor], rest: Dict[str, Any]) -> Dict[str, Any]:
    state: Dict[int, Dict[str, Any]] = {}
    for param, entries in rest["state"].items():
        state.setdefault(int(param), {}).update(entries)
    for name, tensor in tensors.items():
        _, param, key = name.split(".", 2)
        state.setdefault(int(param), {})[key] = tensor
    return {"state": state, "param_groups": rest["param_groups"]}


def folder_bytes(folder: str) -> int:
    return sum(os.path.getsize(os.path.join(root, name)) for root, _, names in os.walk(folder) for name in names)


def _fsync_tree(folder: str) -> None:
    for root, _, names in os.walk(folder):
        for name in names:
            fd = os.open(os.path.join(root, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(root)


def _fsync_dir(folder: str) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
