"""Engine settings from InitRequest.config_json, documented field by field and resolved once at Init;
a bad value fails with INVALID_ARGUMENT naming the field."""

import dataclasses
import json
import math
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from .errors import invalid


@dataclass(frozen=True)
class LoraConfig:
    """Low-rank adapters for Hugging Face models (needs `peft`)."""

    r: int = 16  # adapter rank
    alpha: int = 32  # scaling numerator (scale = alpha / r)
    dropout: float = 0.0  # dropout on the adapter input; 0 keeps log-probs deterministic
    target_modules: Tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")  # module names to adapt


@dataclass(frozen=True)
class EngineConfig:
    # --- builtin model (ignored for Hugging Face models) ---
    layers: int = 2  # transformer blocks
    d_model: int = 128  # residual width
    heads: int = 4  # attention heads; must divide d_model
    max_len: int = 512  # longest sequence (learned positions); prompt + completion must fit
    positions: str = "learned"  # "learned" absolute embeddings, or "alibi" (linear distance biases per head)
    copy_head: bool = False  # a pointer over earlier tokens mixed into the output (copies unseen details)
    vocab_size: int = 512  # token ids must be below this
    # --- optimizer and schedule ---
    lr: float = 3e-4  # base learning rate (OptimStep.learning_rate > 0 overrides it)
    weight_decay: float = 0.01  # AdamW decoupled weight decay
    betas: Tuple[float, float] = (0.9, 0.999)  # AdamW moment decay rates
    warmup_steps: int = 0  # linear warm-up from lr/warmup_steps to lr
    total_steps: int = 0  # cosine decay ends here; 0 keeps lr constant after warm-up
    min_lr_ratio: float = 0.0  # the cosine floor, as a fraction of the base lr
    # --- runtime ---
    seed: int = 0  # parameter init and default sampling; InitRequest.seed is used when this is absent
    device: str = "auto"  # "auto" (cuda when available), "cpu", "cuda" or "cuda:N"
    num_threads: int = 1  # torch CPU threads; one is fastest on small models; 0 keeps torch's default
    logprob_batch_size: int = 16  # sequences per forward pass in ComputeLogprobs
    # --- Hugging Face models only ---
    dtype: str = "auto"  # parameter dtype: auto (bfloat16 on cuda, float32 on cpu), float32, bfloat16, float16
    lora: Optional[LoraConfig] = None  # adapters instead of full fine-tuning
    gradient_checkpointing: bool = False  # trade compute for activation memory
    trust_remote_code: bool = False  # passed to from_pretrained

    def to_json(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)


_POSITIVE_INTS = ("layers", "d_model", "heads", "max_len", "vocab_size", "logprob_batch_size")
_NON_NEGATIVE_INTS = ("warmup_steps", "total_steps", "num_threads")
_DTYPES = ("auto", "float32", "bfloat16", "float16")


def parse_config(text: str) -> Tuple[EngineConfig, bool]:
    """Parses config_json; returns the config and whether it named a seed.

    Raises EngineError(INVALID_ARGUMENT) naming the field for unknown keys, wrong types or ranges."""
    raw = _load_object(text, "config_json")
    names = {f.name for f in dataclasses.fields(EngineConfig)}
    unknown = sorted(set(raw) - names)
    if unknown:
        raise invalid(f"config_json: unknown field(s) {unknown}; accepted: {sorted(names)}")
    values: Dict[str, Any] = {}
    for f in dataclasses.fields(EngineConfig):
        if f.name not in raw:
            continue
        value = raw[f.name]
        if f.name == "lora":
            values["lora"] = None if value is None else _parse_lora(value)
        elif f.name == "betas":
            values["betas"] = _parse_betas(value)
        else:
            values[f.name] = _coerce(f"config_json.{f.name}", value, type(f.default))
    cfg = EngineConfig(**values)
    _check_ranges(cfg)
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


def _coerce(name: str, value: Any, kind: type) -> Any:
    if kind is bool:
        if isinstance(value, bool):
            return value
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
    elif kind is str:
        if isinstance(value, str):
            return value
    raise invalid(f"{name} must be a {kind.__name__}, got {json.dumps(value)}")


def _parse_betas(value: Any) -> Tuple[float, float]:
    if not (isinstance(value, list) and len(value) == 2):
        raise invalid(f"config_json.betas must be a list of two numbers in [0, 1), got {json.dumps(value)}")
    betas = tuple(_coerce("config_json.betas[]", v, float) for v in value)
    if not all(0.0 <= b < 1.0 for b in betas):
        raise invalid(f"config_json.betas must be in [0, 1), got {list(betas)}")
    return betas  # type: ignore[return-value]


def _parse_lora(value: Any) -> LoraConfig:
    if not isinstance(value, dict):
        raise invalid(f"config_json.lora must be an object or null, got {json.dumps(value)}")
    names = {f.name for f in dataclasses.fields(LoraConfig)}
    unknown = sorted(set(value) - names)
    if unknown:
        raise invalid(f"config_json.lora: unknown field(s) {unknown}; accepted: {sorted(names)}")
    out: Dict[str, Any] = {}
    for key in ("r", "alpha"):
        if key in value:
            out[key] = _coerce(f"config_json.lora.{key}", value[key], int)
            if out[key] <= 0:
                raise invalid(f"config_json.lora.{key} must be > 0, got {out[key]}")
    if "dropout" in value:
        out["dropout"] = _coerce("config_json.lora.dropout", value["dropout"], float)
    if "target_modules" in value:
        modules: List[Any] = value["target_modules"]
        if not (isinstance(modules, list) and modules and all(isinstance(m, str) for m in modules)):
            raise invalid("config_json.lora.target_modules must be a non-empty list of module names")
        out["target_modules"] = tuple(modules)
    return LoraConfig(**out)


def _check_ranges(cfg: EngineConfig) -> None:
    for name in _POSITIVE_INTS:
        if getattr(cfg, name) <= 0:
            raise invalid(f"config_json.{name} must be > 0, got {getattr(cfg, name)}")
    for name in _NON_NEGATIVE_INTS:
        if getattr(cfg, name) < 0:
            raise invalid(f"config_json.{name} must be >= 0, got {getattr(cfg, name)}")
    if cfg.d_model % cfg.heads:
        raise invalid(f"config_json.d_model ({cfg.d_model}) must be divisible by heads ({cfg.heads})")
    if cfg.lr <= 0:
        raise invalid(f"config_json.lr must be > 0, got {cfg.lr}")
    if cfg.weight_decay < 0:
        raise invalid(f"config_json.weight_decay must be >= 0, got {cfg.weight_decay}")
    if not 0.0 <= cfg.min_lr_ratio <= 1.0:
        raise invalid(f"config_json.min_lr_ratio must be in [0, 1], got {cfg.min_lr_ratio}")
    if cfg.positions not in ("learned", "alibi"):
        raise invalid(f"config_json.positions must be 'learned' or 'alibi', got {cfg.positions!r}")
    if cfg.dtype not in _DTYPES:
        raise invalid(f"config_json.dtype must be one of {list(_DTYPES)}, got {cfg.dtype!r}")
    if not (cfg.device in ("auto", "cpu", "cuda") or cfg.device.startswith("cuda:")):
        raise invalid(f"config_json.device must be auto, cpu, cuda or cuda:N, got {cfg.device!r}")
