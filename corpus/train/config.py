"""Model and recipe configs (pipelines/train/*.toml): a GPT-2 shape and the training recipe."""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from typing import Any

from corpus.errors import ConfigError, InputError


@dataclass
class ModelConfig:
    n_layer: int
    n_embd: int
    n_head: int
    n_positions: int = 1024
    dropout: float = 0.1
    vocab_size: int | None = None  # None: the shards' vocabulary, rounded up to a multiple of 64


@dataclass
class TrainConfig:
    steps: int = 1000  # length of the cosine schedule
    warmup_steps: int = 100
    lr: float = 5e-4
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.1
    betas: list[float] = field(default_factory=lambda: [0.9, 0.95])
    eval_interval: int = 500
    eval_batches: int = 20
    save_interval: int = 500
    log_interval: int = 10
    seed: int = 1


def _build(cls: type, table: dict[str, Any], where: str) -> Any:
    allowed = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown option {', '.join(unknown)} "
                          f"(allowed: {', '.join(sorted(allowed))})")
    try:
        return cls(**table)
    except TypeError as e:
        raise ConfigError(f"{where}: {e}") from e


def load(path: str) -> tuple[ModelConfig, TrainConfig]:
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as e:
        raise InputError(f"cannot read model config {path}: {e.strerror or e}") from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path} is not valid TOML: {e}") from e
    if "model" not in data:
        raise ConfigError(f"{path}: needs a [model] table (n_layer, n_embd, n_head, …)")
    model = _build(ModelConfig, data["model"], f"{path} [model]")
    train = _build(TrainConfig, data.get("train", {}), f"{path} [train]")
    if model.n_embd % model.n_head:
        raise ConfigError(f"{path}: n_embd {model.n_embd} is not a multiple of n_head "
                          f"{model.n_head}")
    if train.warmup_steps >= train.steps:
        raise ConfigError(f"{path}: warmup_steps must be fewer than steps")
    return model, train
