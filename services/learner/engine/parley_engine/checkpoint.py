"""Versioned, atomic weight checkpoints: <base>/v<version> holds the trainable weights (safetensors when
importable, else torch.save), optimizer state and engine.json. Written to a hidden temporary folder
and renamed, so a reader never sees a half-written version."""

import json
import os
import re
import shutil
import uuid
from dataclasses import dataclass
from typing import Any, Dict, Optional

import torch

from .errors import already_exists, invalid, not_found

FORMAT = "parley-engine-checkpoint/1"
META = "engine.json"
OPTIMIZER = "optimizer.pt"
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
        tensors = {k: v.detach().to("cpu").contiguous() for k, v in weights.items()}
        if _st_save is not None:
            weights_file = "model.safetensors"
            _st_save(tensors, os.path.join(tmp, weights_file))
        else:
            weights_file = "model.pt"
            torch.save(tensors, os.path.join(tmp, weights_file))
        if optimizer is not None:
            torch.save(optimizer, os.path.join(tmp, OPTIMIZER))
        if export is not None:
            export(os.path.join(tmp, "export"))
        doc = dict(meta, format=FORMAT, version=version, weights=weights_file,
                   optimizer=OPTIMIZER if optimizer is not None else None)
        with open(os.path.join(tmp, META), "w") as f:
            json.dump(doc, f, indent=2, sort_keys=True)
        _fsync_tree(tmp)
        os.rename(tmp, final)
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
    weights_path = os.path.join(folder, doc["weights"])
    if doc["weights"].endswith(".safetensors"):
        if _st_load is None:
            raise invalid(f"{weights_path} is safetensors, but the safetensors package is not installed")
        weights = _st_load(weights_path, device=str(device))
    else:
        weights = torch.load(weights_path, map_location=device, weights_only=True)
    optimizer = None
    if doc.get("optimizer"):
        optimizer = torch.load(os.path.join(folder, doc["optimizer"]), map_location=device, weights_only=True)
    return Loaded(version=int(doc["version"]), step=int(doc.get("step", 0)), model=doc.get("model", ""),
                  config=doc.get("config", {}), weights=weights, optimizer=optimizer)


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
