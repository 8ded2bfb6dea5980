"""Model and recipe configs (pipelines/train/*.toml): a GPT-2 shape and the training recipe."""

from __future__ import annotations

from dataclasses import dataclass, field

from corpus.errors import ConfigError


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


def load(path: str) -> tuple[ModelConfig, TrainConfig]:
    from corpus.pipeline import _options, read_toml

    data = read_toml(path, "model config")
    if "model" not in data:
        raise ConfigError(f"{path}: needs a [model] table (n_layer, n_embd, n_head, …)")
    model = _options(ModelConfig, data["model"], f"{path} [model]")
    train = _options(TrainConfig, data.get("train", {}), f"{path} [train]")
    if model.n_embd % model.n_head:
        raise ConfigError(f"{path}: n_embd {model.n_embd} is not a multiple of n_head "
                          f"{model.n_head}")
    if train.warmup_steps >= train.steps:
        raise ConfigError(f"{path}: warmup_steps must be fewer than steps")
    return model, train
