"""Model and recipe configs (pipelines/train/*.toml): an architecture (GPT-2, GPT-Neo,
GPT-NeoX) and its shape, the training recipe with its global batch, and what was published.

Checked when read, by `corpus train` and by a pipeline's load before any stage runs: only the
[model] and [train] tables, only known keys, real TOML types, the bounds below. The DeepSpeed
JSON beside it gets the same early look (check_deepspeed), so a typo there is not found after
the corpus was built.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field

from corpus.config_check import check_keys, read_toml, show, validate
from corpus.errors import ConfigError, InputError

#: AdamW's beta: in [0, 1)
Beta = Annotated[float, Field(ge=0, lt=1)]


@dataclass
class ModelConfig:
    n_layer: Annotated[int, Field(ge=1)]
    n_embd: Annotated[int, Field(ge=1)]
    n_head: Annotated[int, Field(ge=1)]
    #: transformers' class: GPT2LMHeadModel, GPTNeoForCausalLM or GPTNeoXForCausalLM
    architecture: Literal["gpt2", "gpt_neo", "gpt_neox"] = "gpt2"
    n_positions: Annotated[int, Field(ge=1)] = 1024
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.1
    #: None: the shards' vocabulary, rounded up to a multiple of 64
    vocab_size: Annotated[int, Field(ge=1)] | None = None
    #: the MLP's width; None: 4 × n_embd
    intermediate_size: Annotated[int, Field(ge=1)] | None = None
    #: gpt_neo: the window of its local-attention layers
    window_size: Annotated[int, Field(ge=1)] = 256
    #: gpt_neox: the share of each head's dimensions that rotary embeddings turn
    rotary_pct: Annotated[float, Field(gt=0, le=1)] = 1.0
    #: gpt_neox: attention and MLP side by side (GPT-J style) rather than one after the other
    parallel_residual: bool = False
    #: input and output embeddings shared; None: the architecture's usual (GPT-2 and GPT-Neo
    #: share them, GPT-NeoX does not)
    tie_embeddings: bool | None = None


@dataclass
class TrainConfig:
    steps: Annotated[int, Field(ge=2)] = 1000  # length of the cosine schedule (as --steps)
    warmup_steps: Annotated[int, Field(ge=0)] = 100
    lr: Annotated[float, Field(gt=0)] = 5e-4
    min_lr_ratio: Annotated[float, Field(ge=0, le=1)] = 0.1
    weight_decay: Annotated[float, Field(ge=0)] = 0.1
    betas: Annotated[list[Beta], Field(min_length=2, max_length=2)] = field(
        default_factory=lambda: [0.9, 0.95])
    eval_interval: Annotated[int, Field(ge=1)] = 500
    eval_batches: Annotated[int, Field(ge=1)] = 20
    save_interval: Annotated[int, Field(ge=1)] = 500
    log_interval: Annotated[int, Field(ge=1)] = 10
    seed: Annotated[int, Field(ge=0)] = 1  # numpy's SeedSequence takes no negative seed
    #: sequences per optimizer step, over all ranks; None: the DeepSpeed JSON's micro-batch ×
    #: accumulation × world size
    global_batch: Annotated[int, Field(ge=1)] | None = None
    #: sequences per rank per forward pass (the published per-GPU size); the accumulation
    #: makes up the rest of the global batch
    micro_batch: Annotated[int, Field(ge=1)] | None = None
    #: recompute activations in the backward pass (less memory, about 1/3 more compute)
    gradient_checkpointing: bool = False


@dataclass
class Published:
    """What the recipe's source reports, for the docs and the tests that hold us to it."""
    source: str
    params: Annotated[float, Field(gt=0)] | None = None  # model size as published
    gpus: Annotated[int, Field(ge=1)] | None = None  # devices of the published run
    tokens_per_step: Annotated[int, Field(ge=1)] | None = None
    vocab_size: Annotated[int, Field(ge=1)] | None = None  # the published tokenizer's


def load(path: str) -> tuple[ModelConfig, TrainConfig]:
    model, train, _ = load_recipe(path)
    return model, train


def load_recipe(path: str) -> tuple[ModelConfig, TrainConfig, Published | None]:
    data = read_toml(path, "model config")
    check_keys(data, ["model", "train", "published"], path, "table")
    if "model" not in data:
        raise ConfigError(f"{path}: needs a [model] table (n_layer, n_embd, n_head, …)")
    model = validate(ModelConfig, data["model"], f"{path}: [model]")
    train = validate(TrainConfig, data.get("train", {}), f"{path}: [train]")
    published = validate(Published, data["published"], f"{path}: [published]") \
        if "published" in data else None
    if model.n_embd % model.n_head:
        raise ConfigError(f"{path}: n_embd {model.n_embd} is not a multiple of n_head "
                          f"{model.n_head}")
    if train.warmup_steps >= train.steps:
        raise ConfigError(f"{path}: warmup_steps must be fewer than steps")
    return model, train, published


#: DeepSpeed keys the training loop reads; each a positive integer when given
BATCH_KEYS = ("train_micro_batch_size_per_gpu", "gradient_accumulation_steps")


def check_deepspeed(path: str) -> dict[str, Any]:
    """The DeepSpeed JSON as the loop will take it (corpus/train/loop.py ds_config): an object,
    batch sizes positive integers, no optimizer or scheduler (the recipe's)."""
    try:
        conf = json.loads(Path(path).read_text())
    except OSError as e:
        raise InputError(f"cannot read DeepSpeed config {path}: {e.strerror or e}") from e
    except ValueError as e:
        raise ConfigError(f"{path} is not valid JSON: {e}") from e
    if not isinstance(conf, dict):
        raise ConfigError(f"{path}: expected a JSON object, got {show(conf)}")
    for key in BATCH_KEYS:
        v = conf.get(key, 1)
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ConfigError(f"{path}: {key}: expected a positive integer, got {show(v)}")
    if "optimizer" in conf or "scheduler" in conf:
        raise ConfigError(f"{path}: leave out `optimizer` and `scheduler`: the recipe's AdamW "
                          "and cosine schedule come from the model config")
    return conf
