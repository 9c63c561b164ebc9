"""Hugging Face causal LMs (optionally with peft LoRA) behind the builtin model's call signature.
`transformers` and `peft` are optional: without them, Init fails with FAILED_PRECONDITION."""

import copy
import sys
from typing import Optional, Tuple

import torch
from torch import nn

from .config import EngineConfig
from .errors import precondition

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


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

    def new_cache(self, batch: int, capacity: int) -> HFCache:
        return HFCache()

    def forward(self, input_ids: torch.Tensor, position_ids: Optional[torch.Tensor] = None,
                key_valid: Optional[torch.Tensor] = None, cache: Optional[HFCache] = None) -> torch.Tensor:
        out = self.hf(
            input_ids=input_ids,
            attention_mask=None if key_valid is None else key_valid.long(),
            position_ids=position_ids,
            past_key_values=None if cache is None else cache.past,
            use_cache=cache is not None,
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
    """Loads `name` (a hub id or a local path) as (policy, frozen reference).

    Raises EngineError(FAILED_PRECONDITION) when transformers, or peft for a LoRA config, is missing."""
    try:
        import transformers
    except ImportError as e:
        raise precondition(
            f"model {name!r} needs the `transformers` package, which is not installed for "
            f"{sys.executable}; install transformers (and peft for LoRA) or use model 'builtin'") from e
    dtype = _DTYPES.get(cfg.dtype) or (torch.bfloat16 if device.type == "cuda" else torch.float32)
    hf = transformers.AutoModelForCausalLM.from_pretrained(
        name, torch_dtype=dtype, trust_remote_code=cfg.trust_remote_code)
    for module in hf.modules():  # log-probs must not depend on train/eval mode
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
    if cfg.gradient_checkpointing:
        hf.enable_input_require_grads()
    lora = peft.LoraConfig(r=cfg.lora.r, lora_alpha=cfg.lora.alpha, lora_dropout=cfg.lora.dropout,
                           target_modules=list(cfg.lora.target_modules), task_type="CAUSAL_LM")
    policy = HFCausalLM(peft.get_peft_model(hf, lora)).to(device)
    return policy, AdapterDisabledReference(policy)


def export_pretrained(policy: nn.Module, directory: str) -> None:
    """Writes the policy in Hugging Face format (a PEFT adapter folder for LoRA) for vLLM to load."""
    if isinstance(policy, HFCausalLM):
        policy.hf.save_pretrained(directory)
