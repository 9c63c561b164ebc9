"""Policy losses on aligned per-token tensors: PPO with clipping, dual clip, truncated importance
weights for off-policy samples, k3 KL to a reference and an entropy bonus; masked SFT cross-entropy.
The arithmetic follows verl's verl/trainer/ppo/core_algos.py (bounds, where the weights apply)."""

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


# verl's bounds (verl/trainer/ppo/core_algos.py): the log-ratio is clamped to +-20 before exp
# (compute_policy_loss_vanilla, and SAFETY_BOUND in rollout_corr_helper.py for the importance weights);
# the k3 estimate to +-10 after it (kl_penalty "low_var_kl").
LOG_RATIO_BOUND = 20.0
K3_BOUND = 10.0


def masked(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """values where mask is set and exactly 0 elsewhere. Unlike values * mask, an inf or NaN at a
    masked position (a -inf log-prob of padding) stays out of the result and of its gradient."""
    return torch.where(mask > 0, values, torch.zeros_like(values))


def aggregate(values: torch.Tensor, mask: torch.Tensor, how: str) -> torch.Tensor:
    """token_mean: sum over every masked token / number of masked tokens. seq_mean: the masked mean
    of each sequence, then the mean over sequences that have at least one masked token (verl's agg_loss
    "token-mean" and "seq-mean-token-mean")."""
    kept = masked(values, mask)
    if how == "token_mean":
        return kept.sum() / mask.sum().clamp(min=1)
    per_seq_tokens = mask.sum(-1)
    per_seq = kept.sum(-1) / per_seq_tokens.clamp(min=1)
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
    """The clipped policy-gradient loss, as verl computes it (verl/trainer/ppo/core_algos.py:
    compute_policy_loss_vanilla, kl_penalty "low_var_kl", agg_loss; the sum of the terms as in
    verl/workers/actor/dp_actor.py). All per-token tensors are [B, T] and aligned with the targets;
    off_policy is [B] bool. ref_logp is needed when kl_coef > 0, entropy when entropy_coef != 0.
    Masked positions may hold anything, inf and NaN included: they are replaced before any arithmetic.
    Returns the aggregated loss and detached metrics (token means)."""
    keep = mask > 0
    zero = torch.zeros_like(logp)
    # torch.where, not a product: its gradient at a masked position is 0 even where the value is not finite.
    logp = torch.where(keep, logp, zero)
    old_logp = torch.where(keep, old_logp, zero)
    behaviour_logp = torch.where(keep, behaviour_logp, zero)
    advantages = torch.where(keep, advantages, zero)

    log_ratio = torch.clamp(logp - old_logp, min=-LOG_RATIO_BOUND, max=LOG_RATIO_BOUND)
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

    # Truncated importance weights correct off-policy (guided) samples toward the policy the ratio is
    # taken against. As verl's rollout_is_weights they multiply the policy-gradient term only (not the
    # KL or entropy terms) and are not differentiated through.
    is_log = torch.clamp(old_logp - behaviour_logp, min=-LOG_RATIO_BOUND, max=LOG_RATIO_BOUND)
    is_weight = torch.clamp(torch.exp(is_log), max=s.is_cap).detach()
    weight = torch.where(off_policy[:, None], is_weight, torch.ones_like(is_weight))
    per_token = pg * weight

    kl = None
    if s.kl_coef > 0:
        if ref_logp is None:
            raise ValueError("ppo_loss: kl_coef > 0 needs ref_logp")
        d = torch.clamp(torch.where(keep, ref_logp, zero) - logp, min=-LOG_RATIO_BOUND, max=LOG_RATIO_BOUND)
        kl = torch.clamp(torch.exp(d) - d - 1.0, min=-K3_BOUND, max=K3_BOUND)  # k3: unbiased, >= 0
        per_token = per_token + s.kl_coef * kl
    if s.entropy_coef != 0:
        if entropy is None:
            raise ValueError("ppo_loss: entropy_coef != 0 needs entropy")
        per_token = per_token - s.entropy_coef * torch.where(keep, entropy, zero)

    # Every term is aggregated the same way, so one aggregation of their per-token sum equals verl's
    # pg_loss + kl_coef * kl_loss - entropy_coef * entropy_loss.
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
