"""Versioned, atomic checkpoints: <base>/v<version> holds weights and optimizer tensors (safetensors, else
torch.save) plus engine.json, written to a hidden temporary folder and renamed into place. engine.json
lists each tensor file's size and SHA-256 and carries a SHA-256 of its own text; load checks both, so a
damaged file is DATA_LOSS instead of weights that load as NaN. Checkpoints written before the checksums
load unchecked."""

import hashlib
import json
import os
import re
import shutil
import uuid
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

import torch

from .errors import already_exists, data_loss, invalid, not_found

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
        # The export (a Hugging Face folder for vLLM) is not listed: the engine never loads it.
        doc["files"] = {name: _file_entry(os.path.join(tmp, name)) for name in (doc["weights"], doc.get("optimizer"))
                        if name}
        if export is not None:
            export(os.path.join(tmp, "export"))
        with open(os.path.join(tmp, META), "w") as f:
            f.write(_with_checksum(doc))
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
    """Reads the checkpoint at `path` (see resolve). Raises EngineError: NOT_FOUND when missing,
    INVALID_ARGUMENT when it is not an engine checkpoint, DATA_LOSS naming the file when engine.json
    does not parse or a file does not match its checksum."""
    folder = resolve(path)
    doc = _read_meta(os.path.join(folder, META))
    if doc.get("format") != FORMAT:
        raise invalid(f"{folder}/{META} has format {doc.get('format')!r}; this engine reads {FORMAT}")
    for name in (doc["weights"], doc.get("optimizer")):
        if name and "files" in doc:
            _verify(os.path.join(folder, name), doc["files"].get(name))
    weights = _read_tensors(folder, doc["weights"], device)
    optimizer = None
    if doc.get("optimizer"):
        # On the CPU: load_state_dict moves moments to their parameters but keeps "step" where it is,
        # and torch 2.x's AdamW wants that on the CPU unless capturable.
        tensors = _read_tensors(folder, doc["optimizer"], torch.device("cpu"))
        optimizer = _join_optimizer(tensors, doc["optimizer_state"])
    return Loaded(version=int(doc["version"]), step=int(doc.get("step", 0)), model=doc.get("model", ""),
                  config=doc.get("config", {}), weights=weights, optimizer=optimizer)


def _digest(body: Dict[str, Any]) -> str:
    """engine.json's "sha256": the hash of its dump without that key (parsing and dumping again gives the
    same text)."""
    return hashlib.sha256(json.dumps(body, indent=2, sort_keys=True).encode()).hexdigest()


def _with_checksum(doc: Dict[str, Any]) -> str:
    return json.dumps(dict(doc, sha256=_digest(doc)), indent=2, sort_keys=True)


def _read_meta(path: str) -> Dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise data_loss(f"{path} is unreadable: {e}; load an earlier version") from e
    if not isinstance(doc, dict):
        raise data_loss(f"{path} is not a JSON object; load an earlier version")
    if "sha256" in doc and doc["sha256"] != _digest({k: v for k, v in doc.items() if k != "sha256"}):
        raise data_loss(f"{path} does not match its sha256: changed or damaged after it was saved; "
                        f"load an earlier version")
    return doc


def _file_entry(path: str) -> Dict[str, Any]:
    return {"bytes": os.path.getsize(path), "sha256": _sha256(path)}


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _verify(path: str, entry: Optional[Dict[str, Any]]) -> None:
    """Raises EngineError(DATA_LOSS) naming `path` when it is missing from the manifest or differs from it."""
    if not entry:
        raise data_loss(f"{path} is not in {META}'s file list; the checkpoint is damaged, load an earlier version")
    size = os.path.getsize(path) if os.path.isfile(path) else None
    if size != entry["bytes"] or _sha256(path) != entry["sha256"]:
        raise data_loss(f"{path} does not match its size and sha256 in {META} ({size} bytes, expected "
                        f"{entry['bytes']}): damaged after it was saved; load an earlier version")


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
