"""Policy losses on aligned per-token tensors: PPO with clipping, dual clip, truncated importance
weights for off-policy samples, k3 KL to a reference and an entropy bonus; masked SFT cross-entropy."""

import math
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import torch

from .errors import invalid

DEFAULT_CLIP = 0.2
DEFAULT_IS_CAP = 2.0
AGGREGATIONS = ("token_mean", "seq_mean")


@dataclass(frozen=True)
class LossSettings:
    """LossConfig with proto3's unset zeros resolved. Zero means "default" where zero would be
    meaningless (clips, is_cap, kind, aggregation) and "off" where off is a real choice
    (dual_clip, kl_coef, entropy_coef)."""

    kind: str = "ppo"
    clip_low: float = DEFAULT_CLIP
    clip_high: float = DEFAULT_CLIP
    dual_clip: float = 0.0
    kl_coef: float = 0.0
    entropy_coef: float = 0.0
    aggregation: str = "token_mean"
    is_cap: float = DEFAULT_IS_CAP

    @staticmethod
    def from_proto(cfg) -> "LossSettings":
        """Resolves a parley.v1.LossConfig. Raises EngineError(INVALID_ARGUMENT) naming the field."""
        for name in ("clip_low", "clip_high", "dual_clip", "kl_coef", "entropy_coef", "is_cap"):
            if not math.isfinite(getattr(cfg, name)):
                raise invalid(f"loss.{name} must be finite, got {getattr(cfg, name)}")
        s = LossSettings(
            kind=cfg.kind or "ppo",
            clip_low=cfg.clip_low or DEFAULT_CLIP,
            clip_high=cfg.clip_high or DEFAULT_CLIP,
            dual_clip=cfg.dual_clip,
            kl_coef=cfg.kl_coef,
            entropy_coef=cfg.entropy_coef,
            aggregation=cfg.aggregation or "token_mean",
            is_cap=cfg.is_cap or DEFAULT_IS_CAP,
        )
        if s.kind not in ("ppo", "sft"):
            raise invalid(f"loss.kind must be ppo or sft, got {s.kind!r}")
        if s.aggregation not in AGGREGATIONS:
            raise invalid(f"loss.aggregation must be token_mean or seq_mean, got {s.aggregation!r}")
        if not 0 < s.clip_low < 1:
            raise invalid(f"loss.clip_low must be in (0, 1) (0 means the default {DEFAULT_CLIP}), got {s.clip_low}")
        if s.clip_high <= 0:
            raise invalid(f"loss.clip_high must be > 0 (0 means the default {DEFAULT_CLIP}), got {s.clip_high}")
        if s.dual_clip != 0 and s.dual_clip <= 1:
            raise invalid(f"loss.dual_clip must be 0 (off) or > 1, got {s.dual_clip}")
        if s.kl_coef < 0:
            raise invalid(f"loss.kl_coef must be >= 0, got {s.kl_coef}")
        if s.is_cap <= 0:
            raise invalid(f"loss.is_cap must be > 0 (0 means the default {DEFAULT_IS_CAP}), got {s.is_cap}")
        return s


def token_logprobs(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """log p(targets) under logits; logits [B, T, V] (already shifted), targets [B, T] -> [B, T]."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    return logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1)


def token_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Entropy of each next-token distribution: [B, T, V] -> [B, T]."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    return -(logp.exp() * logp).sum(-1)


def aggregate(values: torch.Tensor, mask: torch.Tensor, how: str) -> torch.Tensor:
    """token_mean: sum over every masked token / number of masked tokens. seq_mean: the masked mean
    of each sequence, then the mean over sequences that have at least one masked token."""
    if how == "token_mean":
        return (values * mask).sum() / mask.sum().clamp(min=1)
    per_seq_tokens = mask.sum(-1)
    per_seq = (values * mask).sum(-1) / per_seq_tokens.clamp(min=1)
    has_tokens = (per_seq_tokens > 0).float()
    return (per_seq * has_tokens).sum() / has_tokens.sum().clamp(min=1)


def ppo_loss(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    behaviour_logp: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    off_policy: torch.Tensor,
    s: LossSettings,
    ref_logp: Optional[torch.Tensor] = None,
    entropy: Optional[torch.Tensor] = None,
) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
    """The clipped policy-gradient loss. All per-token tensors are [B, T] and aligned with the
    targets; off_policy is [B] bool. ref_logp is needed when kl_coef > 0, entropy when
    entropy_coef != 0. Returns the aggregated loss and detached metrics (token means)."""
    log_ratio = logp - old_logp
    ratio = torch.exp(log_ratio)
    pg_unclipped = -advantages * ratio
    pg_clipped = -advantages * torch.clamp(ratio, 1.0 - s.clip_low, 1.0 + s.clip_high)
    pg = torch.maximum(pg_unclipped, pg_clipped)
    dual_clipped = torch.zeros_like(pg, dtype=torch.bool)
    if s.dual_clip > 0:
        # For negative advantages the clipped loss grows with the ratio without bound; cap it.
        bound = -advantages * s.dual_clip
        dual_clipped = (advantages < 0) & (pg > bound)
        pg = torch.where(advantages < 0, torch.minimum(pg, bound), pg)

    per_token = pg
    kl = None
    if s.kl_coef > 0:
        if ref_logp is None:
            raise ValueError("ppo_loss: kl_coef > 0 needs ref_logp")
        d = ref_logp - logp
        kl = torch.exp(d) - d - 1.0  # k3: unbiased, always >= 0
        per_token = per_token + s.kl_coef * kl
    if s.entropy_coef != 0:
        if entropy is None:
            raise ValueError("ppo_loss: entropy_coef != 0 needs entropy")
        per_token = per_token - s.entropy_coef * entropy

    # Truncated importance weights correct off-policy (guided) samples toward the policy the
    # ratio is taken against; they scale the gradient and are not differentiated through.
    weight = torch.ones_like(logp)
    is_weight = torch.clamp(torch.exp(old_logp - behaviour_logp), max=s.is_cap).detach()
    weight = torch.where(off_policy[:, None], is_weight, weight)
    per_token = per_token * weight

    loss = aggregate(per_token, mask, s.aggregation)
    with torch.no_grad():
        tmean = lambda v: aggregate(v.float(), mask, "token_mean")  # noqa: E731
        metrics = {
            "pg_loss": aggregate(pg * weight, mask, s.aggregation),
            "clip_frac": tmean(pg_clipped > pg_unclipped),
            "dual_clip_frac": tmean(dual_clipped),
            "approx_kl": tmean(torch.exp(-log_ratio) - 1.0 + log_ratio),  # k3 estimate of KL(old || policy)
            "ratio_mean": tmean(ratio),
        }
        if kl is not None:
            metrics["kl"] = tmean(kl)
        off_mask = mask * off_policy[:, None].float()
        if off_mask.sum() > 0:
            metrics["importance_weight_mean"] = aggregate(is_weight, off_mask, "token_mean")
            metrics["off_policy_tokens"] = off_mask.sum()
    return loss, metrics


def sft_loss(logp: torch.Tensor, mask: torch.Tensor, aggregation: str) -> torch.Tensor:
    """Masked next-token cross-entropy, aggregated like the policy loss."""
    return aggregate(-logp, mask, aggregation)
