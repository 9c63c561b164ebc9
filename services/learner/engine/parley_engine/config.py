"""Engine settings from InitRequest.config_json, checked once at Init against config.schema.json (the one
declaration of every field, its type, range, default and meaning, which the run spec and the CRD are also
derived from); a bad value fails with INVALID_ARGUMENT naming the field."""

import json
import math
import os
import re
from dataclasses import asdict, dataclass
from typing import Any, Dict, List, Optional, Tuple

from .errors import invalid

SCHEMA_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "config.schema.json")
with open(SCHEMA_PATH, encoding="utf-8") as _f:
    SCHEMA: Dict[str, Any] = json.load(_f)


# Typed views of a validated config: field names and types agree with the schema (tests/test_config.py),
# and every value comes from config_json or the schema's default.
@dataclass(frozen=True)
class LoraConfig:
    r: int
    alpha: int
    dropout: float
    target_modules: Tuple[str, ...]


@dataclass(frozen=True)
class EngineConfig:
    layers: int
    d_model: int
    heads: int
    max_len: int
    positions: str
    copy_head: bool
    vocab_size: int
    lr: float
    weight_decay: float
    betas: Tuple[float, float]
    warmup_steps: int
    total_steps: int
    min_lr_ratio: float
    seed: int
    device: str
    num_threads: int
    logprob_batch_size: int
    dtype: str
    lora: Optional[LoraConfig]
    gradient_checkpointing: bool
    trust_remote_code: bool

    def to_json(self) -> Dict[str, Any]:
        return asdict(self)


def parse_config(text: str) -> Tuple[EngineConfig, bool]:
    """Parses config_json; returns the config and whether it named a seed.

    Raises EngineError(INVALID_ARGUMENT) naming the field for unknown keys, wrong types or ranges."""
    raw = _load_object(text, "config_json")
    _check(SCHEMA, raw, "config_json")
    cfg = EngineConfig(**_with_defaults(SCHEMA, raw))
    if cfg.d_model % cfg.heads:
        raise invalid(f"config_json.d_model ({cfg.d_model}) must be divisible by heads ({cfg.heads})")
    return cfg, "seed" in raw


def _load_object(text: str, what: str) -> Dict[str, Any]:
    if not text.strip():
        return {}
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as e:
        raise invalid(f"{what} is not valid JSON: {e}") from e
    if not isinstance(raw, dict):
        raise invalid(f"{what} must be a JSON object, got {type(raw).__name__}")
    return raw


def _with_defaults(schema: Dict[str, Any], raw: Dict[str, Any]) -> Dict[str, Any]:
    """Every property of `schema`, from `raw` or its default, as the dataclasses hold them (tuples, floats)."""
    out: Dict[str, Any] = {}
    for name, prop in schema["properties"].items():
        value = raw.get(name, prop.get("default"))
        if name == "lora":
            out[name] = None if value is None else LoraConfig(**_with_defaults(prop, value))
        else:
            out[name] = _typed(prop, value)
    return out


def _typed(prop: Dict[str, Any], value: Any) -> Any:
    if prop["type"] == "number":
        return float(value)
    if prop["type"] == "array":
        return tuple(_typed(prop["items"], v) for v in value)
    return value


_TYPE_NAMES = {"integer": "an integer", "number": "a number", "boolean": "a boolean", "string": "a string",
               "array": "a list", "object": "an object", "null": "null"}


def _is_type(kind: str, value: Any) -> bool:
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "string":
        return isinstance(value, str)
    if kind == "array":
        return isinstance(value, list)
    if kind == "object":
        return isinstance(value, dict)
    if kind == "null":
        return value is None
    raise ValueError(f"config.schema.json: unsupported type {kind!r}")


def _check(schema: Dict[str, Any], value: Any, path: str) -> None:
    """Validates `value` against the subset of JSON Schema that config.schema.json uses (listed in its
    description). Raises EngineError(INVALID_ARGUMENT) naming `path` and the rule."""
    kinds: List[str] = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    if not any(_is_type(k, value) for k in kinds):
        want = " or ".join(_TYPE_NAMES[k] for k in kinds)
        raise invalid(f"{path} must be {want}, got {json.dumps(value)}")
    if value is None:
        return
    if isinstance(value, dict):
        props: Dict[str, Any] = schema.get("properties", {})
        unknown = sorted(set(value) - set(props))
        if unknown and schema.get("additionalProperties") is False:
            raise invalid(f"{path}: unknown field(s) {unknown}; accepted: {sorted(props)}")
        for name, sub in props.items():
            if name in value:
                _check(sub, value[name], f"{path}.{name}")
        return
    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            raise invalid(f"{path} must have at least {schema['minItems']} item(s), got {json.dumps(value)}")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            raise invalid(f"{path} must have at most {schema['maxItems']} item(s), got {json.dumps(value)}")
        for i, item in enumerate(value):
            _check(schema["items"], item, f"{path}[{i}]")
        return
    if "enum" in schema and value not in schema["enum"]:
        raise invalid(f"{path} must be one of {schema['enum']}, got {json.dumps(value)}")
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            raise invalid(f"{path} must have at least {schema['minLength']} character(s), got {json.dumps(value)}")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            raise invalid(f"{path} must match {schema['pattern']}, got {json.dumps(value)}")
        return
    bounds = (("minimum", ">=", lambda v, b: v >= b), ("exclusiveMinimum", ">", lambda v, b: v > b),
              ("maximum", "<=", lambda v, b: v <= b), ("exclusiveMaximum", "<", lambda v, b: v < b))
    for key, op, ok in bounds:
        if key in schema and not isinstance(value, bool) and not ok(value, schema[key]):
            raise invalid(f"{path} must be {op} {schema[key]}, got {json.dumps(value)}")

