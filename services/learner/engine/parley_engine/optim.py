"""AdamW with decay only on matrices, and the learning-rate schedule: linear warm-up, then cosine
decay to min_lr_ratio * lr at total_steps (constant after warm-up when total_steps is 0)."""

import math
from typing import Iterable

import torch
from torch import nn

from .config import EngineConfig


def build_optimizer(params: Iterable[nn.Parameter], cfg: EngineConfig) -> torch.optim.Optimizer:
    params = [p for p in params if p.requires_grad]
    # Biases, norms' gains and other vectors are not decayed: shrinking them only hurts.
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=cfg.lr, betas=cfg.betas)


def lr_at(step: int, base_lr: float, cfg: EngineConfig) -> float:
    """The learning rate of update number `step` (0 for the first)."""
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return base_lr * (step + 1) / cfg.warmup_steps
    if cfg.total_steps <= cfg.warmup_steps:
        return base_lr
    progress = min(1.0, (step - cfg.warmup_steps) / (cfg.total_steps - cfg.warmup_steps))
    floor = base_lr * cfg.min_lr_ratio
    return floor + (base_lr - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def grad_norm_and_clip(params: Iterable[nn.Parameter], max_norm: float) -> float:
    """Total L2 norm of the gradients before clipping; clips in place when max_norm > 0."""
    grads = [p for p in params if p.grad is not None]
    limit = max_norm if max_norm > 0 else float("inf")
    return float(torch.nn.utils.clip_grad_norm_(grads, limit))
