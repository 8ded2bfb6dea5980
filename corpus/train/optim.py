"""The Codex / CodeParrot optimizer recipe: AdamW (β = 0.9, 0.95), weight decay on the matrices
only (not biases, not LayerNorm), a linear warmup then a cosine decay to lr × min_lr_ratio."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from corpus.train.config import TrainConfig


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    decay, no_decay = [], []
    norms = tuple(m for m in model.modules() if isinstance(m, torch.nn.LayerNorm))
    norm_params = {id(p) for m in norms for p in m.parameters(recurse=False)}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if name.endswith("bias") or id(p) in norm_params:
            no_decay.append(p)
        else:
            decay.append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def cosine_with_warmup(cfg: TrainConfig) -> Callable[[int], float]:
    """The LR multiplier at optimizer step `step` (0-based)."""
    def factor(step: int) -> float:
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        progress = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps))
        return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    return factor


def build(model: torch.nn.Module, cfg: TrainConfig) -> tuple[torch.optim.Optimizer, Any]:
    """torch's AdamW (a DeepSpeed config optimizer would JIT-compile fused_adam on CPU)."""
    opt = torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.lr,
                            betas=(cfg.betas[0], cfg.betas[1]), eps=1e-8)
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, cosine_with_warmup(cfg))
