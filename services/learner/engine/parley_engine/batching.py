"""Checks parley.v1.Sequence messages and packs them into right-padded tensors. Every per-token array
is aligned with token_ids; token 0 has no log-prob (nothing precedes it), so its mask is always 0."""

import math
from dataclasses import dataclass
from typing import List, Optional, Sequence

import torch

from .errors import invalid

_FLOAT_FIELDS = ("behaviour_logprobs", "old_logprobs", "advantages")
_LOGPROB_FIELDS = ("behaviour_logprobs", "old_logprobs")
# Group-normalised advantages are a few units; anything near this is a forged or broken batch.
MAX_ABS_ADVANTAGE = 1e4
# Log-probs are <= 0; float32 rounding of a near-certain token may land a hair above.
LOGPROB_TOLERANCE = 1e-6


@dataclass
class Batch:
    input_ids: torch.Tensor  # [B, T] long, padded with 0
    lengths: List[int]
    loss_mask: Optional[torch.Tensor] = None  # [B, T] float; 0 on token 0 and padding
    behaviour_logprobs: Optional[torch.Tensor] = None  # [B, T]
    old_logprobs: Optional[torch.Tensor] = None  # [B, T]; behaviour where the sequence had none
    advantages: Optional[torch.Tensor] = None  # [B, T]
    off_policy: Optional[torch.Tensor] = None  # [B] bool

    @property
    def tokens(self) -> int:
        return sum(self.lengths)


def validate(seqs: Sequence, vocab_size: int, max_len: Optional[int], kind: str) -> None:
    """kind: "ppo" (needs loss_mask, advantages, behaviour_logprobs), "sft" (needs loss_mask) or
    "logprobs" (token ids only). Raises EngineError(INVALID_ARGUMENT) naming field and index."""
    if len(seqs) == 0:
        raise invalid("sequences is empty; send at least one sequence")
    required = {"ppo": ("loss_mask", "advantages", "behaviour_logprobs"), "sft": ("loss_mask",), "logprobs": ()}[kind]
    masked_tokens = 0
    for i, seq in enumerate(seqs):
        where = f"sequences[{i}]"
        n = len(seq.token_ids)
        if n == 0:
            raise invalid(f"{where}.token_ids is empty")
        if max_len is not None and n > max_len:
            raise invalid(f"{where}.token_ids has {n} tokens; the model takes at most {max_len}")
        top = max(seq.token_ids)
        if top >= vocab_size:
            raise invalid(f"{where}.token_ids contains {top}; token ids must be < vocab_size {vocab_size}")
        for name in required:
            if len(getattr(seq, name)) == 0:
                raise invalid(f"{where}.{name} is empty; a {kind} batch needs it for every sequence")
        for name in ("loss_mask",) + _FLOAT_FIELDS:
            m = len(getattr(seq, name))
            if m and m != n:
                raise invalid(f"{where}.{name} has {m} entries but token_ids has {n}; they must be equal")
        if kind == "logprobs":
            continue
        if any(v not in (0, 1) for v in seq.loss_mask):
            raise invalid(f"{where}.loss_mask must hold only 0 and 1")
        for name in _FLOAT_FIELDS:
            if not all(math.isfinite(v) for v in getattr(seq, name)):
                raise invalid(f"{where}.{name} contains a non-finite value")
        j = _first(seq.advantages, lambda v: abs(v) > MAX_ABS_ADVANTAGE)
        if j is not None:
            raise invalid(f"{where}.advantages[{j}] is {seq.advantages[j]:g}; advantages must be within "
                          f"±{MAX_ABS_ADVANTAGE:g}")
        for name in _LOGPROB_FIELDS:
            values = getattr(seq, name)
            j = _first(values, lambda v: v > LOGPROB_TOLERANCE)
            if j is not None:
                raise invalid(f"{where}.{name}[{j}] is {values[j]:g}; log-probs must be <= 0")
        masked_tokens += sum(seq.loss_mask[1:])
    if kind != "logprobs" and masked_tokens == 0:
        raise invalid("no token has loss_mask 1 (the mask of token 0 never counts); nothing to train on")


def _first(values: Sequence[float], bad) -> Optional[int]:
    return next((j for j, v in enumerate(values) if bad(v)), None)


def collate(seqs: Sequence, device: torch.device, training: bool) -> Batch:
    """Packs validated sequences; `training` adds the mask and, where present, the PPO arrays."""
    lengths = [len(s.token_ids) for s in seqs]
    b, t = len(seqs), max(lengths)
    ids = torch.zeros(b, t, dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : lengths[i]] = torch.tensor(list(s.token_ids), dtype=torch.long)
    batch = Batch(input_ids=ids.to(device), lengths=lengths)
    if not training:
        return batch

    def padded(rows: List[List[float]]) -> torch.Tensor:
        out = torch.zeros(b, t, dtype=torch.float32)
        for i, row in enumerate(rows):
            if row:
                out[i, : len(row)] = torch.tensor(row, dtype=torch.float32)
        return out.to(device)

    mask = padded([list(s.loss_mask) for s in seqs])
    mask[:, 0] = 0.0
    batch.loss_mask = mask
    behaviour = [list(s.behaviour_logprobs) for s in seqs]
    batch.behaviour_logprobs = padded(behaviour)
    batch.old_logprobs = padded([list(s.old_logprobs) or beh for s, beh in zip(seqs, behaviour)])
    batch.advantages = padded([list(s.advantages) for s in seqs])
    batch.off_policy = torch.tensor([bool(s.off_policy) for s in seqs], dtype=torch.bool, device=device)
    return batch
