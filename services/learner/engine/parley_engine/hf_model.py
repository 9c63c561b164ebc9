"""Hugging Face causal LMs (optionally with peft LoRA) behind the builtin model's call signature, loaded from a
local folder of safetensors weights. `transformers` and `peft` are optional: without them, Init fails with
FAILED_PRECONDITION."""

import copy
import glob
import inspect
import os
import sys
from typing import Optional, Sequence, Tuple

import torch
from torch import nn

from .config import EngineConfig
from .errors import invalid, precondition

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
# Config fields that set dropout probabilities in transformers' models, including those applied inside
# attention kernels rather than by an nn.Dropout module.
_DROPOUT_FIELDS = ("attention_dropout", "hidden_dropout", "dropout", "attn_pdrop", "resid_pdrop", "embd_pdrop",
                   "hidden_dropout_prob", "attention_probs_dropout_prob", "classifier_dropout")


class HFCache:
    """Holds past_key_values between decode calls."""

    def __init__(self):
        self.past = None
        self.length = 0


class HFCausalLM(nn.Module):
    """forward(input_ids, position_ids, key_valid, cache) -> logits, like TinyTransformer."""

    def __init__(self, hf: nn.Module):
        super().__init__()
        self.hf = hf
        self.vocab_size = int(hf.get_output_embeddings().weight.shape[0])
        self.max_len: Optional[int] = getattr(hf.config, "max_position_embeddings", None)
        base = hf.get_base_model() if hasattr(hf, "get_base_model") else hf
        # Decoding needs only the last position's logits: [B, 1, V] instead of [B, T, V] for the prompt.
        self._last_logits_only = "logits_to_keep" in inspect.signature(base.forward).parameters

    def new_cache(self, batch: int, capacity: int) -> HFCache:
        return HFCache()

    def forward(self, input_ids: torch.Tensor, position_ids: Optional[torch.Tensor] = None,
                key_valid: Optional[torch.Tensor] = None, cache: Optional[HFCache] = None) -> torch.Tensor:
        kwargs = {"logits_to_keep": 1} if cache is not None and self._last_logits_only else {}
        out = self.hf(
            input_ids=input_ids,
            attention_mask=None if key_valid is None else key_valid.long(),
            position_ids=position_ids,
            past_key_values=None if cache is None else cache.past,
            use_cache=cache is not None,
            **kwargs,
        )
        if cache is not None:
            cache.past = out.past_key_values
            cache.length += input_ids.shape[1]
        return out.logits


class AdapterDisabledReference(nn.Module):
    """The reference model of a LoRA policy: the same network with its adapters switched off."""

    def __init__(self, policy: HFCausalLM):
        super().__init__()
        self._policy = [policy]  # a list, so the policy's parameters are not registered twice

    def forward(self, input_ids: torch.Tensor, **kwargs) -> torch.Tensor:
        policy = self._policy[0]
        with policy.hf.disable_adapter():
            return policy(input_ids, **kwargs)


def load_hf(name: str, cfg: EngineConfig, device: torch.device) -> Tuple[HFCausalLM, nn.Module]:
    """Loads the model in folder `name` (config.json and safetensors weights) as (policy, frozen reference).

    Raises EngineError: INVALID_ARGUMENT naming `model` when the folder is missing or has no config.json or
    safetensors weights, naming `config_json.lora` when LoRA cannot adapt the model (a target module that
    matches nothing); FAILED_PRECONDITION when transformers, or peft for a LoRA config, is missing."""
    _check_folder(name)
    try:
        import transformers
    except ImportError as e:
        raise precondition(
            f"model {name!r} needs the `transformers` package, which is not installed for "
            f"{sys.executable}; run scripts/setup-engine-env.sh and use .venv-engine/bin/python, or use model 'builtin'") from e
    try:
        config = transformers.AutoConfig.from_pretrained(name, trust_remote_code=cfg.trust_remote_code,
                                                         local_files_only=True)
    except (OSError, ValueError) as e:
        raise invalid(f"model {name!r}: its config.json cannot be read: {e}") from e
    for field in _DROPOUT_FIELDS:  # log-probs must not depend on train/eval mode
        if isinstance(getattr(config, field, None), float):
            setattr(config, field, 0.0)
    dtype = _DTYPES.get(cfg.dtype) or (torch.bfloat16 if device.type == "cuda" else torch.float32)
    hf = transformers.AutoModelForCausalLM.from_pretrained(
        name, config=config, dtype=dtype, trust_remote_code=cfg.trust_remote_code, local_files_only=True,
        use_safetensors=True)
    for module in hf.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0.0
    if cfg.gradient_checkpointing:
        hf.gradient_checkpointing_enable()
    if cfg.lora is None:
        reference_hf = copy.deepcopy(hf).requires_grad_(False).eval()
        return HFCausalLM(hf).to(device), HFCausalLM(reference_hf).to(device)
    try:
        import peft
    except ImportError as e:
        raise precondition(
            f"config_json.lora needs the `peft` package, which is not installed for {sys.executable}") from e
    _check_lora_targets(hf, cfg.lora.target_modules, name)
    if cfg.gradient_checkpointing:
        hf.enable_input_require_grads()
    lora = peft.LoraConfig(r=cfg.lora.r, lora_alpha=cfg.lora.alpha, lora_dropout=cfg.lora.dropout,
                           target_modules=list(cfg.lora.target_modules), task_type="CAUSAL_LM")
    try:
        adapted = peft.get_peft_model(hf, lora)
    except ValueError as e:  # e.g. a target that is not a layer type LoRA supports
        raise invalid(f"config_json.lora.target_modules: peft cannot adapt {name!r}: {e}") from e
    policy = HFCausalLM(adapted).to(device)
    return policy, AdapterDisabledReference(policy)


def _check_folder(name: str) -> None:
    if not os.path.isdir(name):
        raise invalid(f"model {name!r} is neither 'builtin' nor a folder; give a folder with a Hugging Face "
                      "model (config.json and safetensors weights)")
    if not os.path.isfile(os.path.join(name, "config.json")):
        raise invalid(f"model {name!r} has no config.json")
    if not glob.glob(os.path.join(glob.escape(name), "*.safetensors")):
        found = sorted(os.listdir(name))[:10]
        raise invalid(f"model {name!r} has no safetensors weights (*.safetensors; found {found}); the engine "
                      "loads only safetensors: convert other weights with save_pretrained(safe_serialization=True)")


def _check_lora_targets(hf: nn.Module, targets: Sequence[str], name: str) -> None:
    """Every target must name some module, as peft matches them (the full name or its last parts): a typo
    would otherwise leave that layer untrained without a word."""
    modules = [n for n, _ in hf.named_modules() if n]
    linear = sorted({n.rsplit(".", 1)[-1] for n, m in hf.named_modules() if isinstance(m, nn.Linear)})
    for i, target in enumerate(targets):
        if not any(n == target or n.endswith("." + target) for n in modules):
            raise invalid(f"config_json.lora.target_modules[{i}] is {target!r}, which matches no module of "
                          f"{name!r}; its linear layers are named {linear}")


def export_pretrained(policy: nn.Module, directory: str) -> None:
    """Writes the policy in Hugging Face format (a PEFT adapter folder for LoRA) for vLLM to load."""
    if isinstance(policy, HFCausalLM):
        policy.hf.save_pretrained(directory)
