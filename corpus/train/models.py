"""The architectures `corpus train` builds: transformers' own GPT-2, GPT-Neo and GPT-NeoX
classes from explicit configs (nothing fetched by name), or a local Hugging Face folder to
fine-tune (`--init`).

The model TOML speaks one vocabulary (n_layer, n_embd, n_head, n_positions, dropout); each
architecture maps it onto its own config class, so a recipe reads the same whatever it builds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from corpus.errors import ConfigError, InputError
from corpus.train.config import ModelConfig

#: architecture name (the TOML's `architecture`, transformers' `model_type`) -> model class
ARCHITECTURES = {"gpt2": "GPT2LMHeadModel", "gpt_neo": "GPTNeoForCausalLM",
                 "gpt_neox": "GPTNeoXForCausalLM"}


def hf_config(m: ModelConfig, vocab_size: int, eos_id: int) -> Any:
    """The transformers config of the TOML's [model] table, for a vocabulary of vocab_size."""
    import transformers as tf

    common = {"vocab_size": vocab_size, "bos_token_id": eos_id, "eos_token_id": eos_id}
    if m.architecture == "gpt2":
        return tf.GPT2Config(n_positions=m.n_positions, n_embd=m.n_embd, n_layer=m.n_layer,
                             n_head=m.n_head, n_inner=m.intermediate_size,
                             resid_pdrop=m.dropout, embd_pdrop=m.dropout,
                             attn_pdrop=m.dropout, **common)
    if m.architecture == "gpt_neo":
        # GPT-Neo alternates global and local (windowed) attention layer by layer
        kinds = ["global", "local"] if m.n_layer % 2 == 0 else ["global"]
        return tf.GPTNeoConfig(
            max_position_embeddings=m.n_positions, hidden_size=m.n_embd, num_layers=m.n_layer,
            num_heads=m.n_head, attention_types=[[kinds, m.n_layer // len(kinds)]],
            window_size=m.window_size, intermediate_size=m.intermediate_size,
            resid_dropout=m.dropout, embed_dropout=m.dropout, attention_dropout=m.dropout,
            tie_word_embeddings=m.tie_embeddings if m.tie_embeddings is not None else True,
            **common)
    return tf.GPTNeoXConfig(
        max_position_embeddings=m.n_positions, hidden_size=m.n_embd, num_hidden_layers=m.n_layer,
        num_attention_heads=m.n_head, intermediate_size=m.intermediate_size or 4 * m.n_embd,
        hidden_dropout=m.dropout, attention_dropout=m.dropout,
        use_parallel_residual=m.parallel_residual,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0,
                         "partial_rotary_factor": m.rotary_pct},
        tie_word_embeddings=bool(m.tie_embeddings), **common)


def build(config: Any) -> Any:
    """A freshly initialized causal LM of this transformers config (fp32)."""
    import transformers as tf

    return getattr(tf, ARCHITECTURES[config.model_type])(config)


def count_params(config: Any) -> int:
    """Parameters of the model this config builds, counted on the meta device (no memory)."""
    import torch

    with torch.device("meta"):
        model = build(config)
    return sum(p.numel() for p in model.parameters())


def init_config(folder: str) -> Any:
    """The config of a local Hugging Face causal-LM folder, refused unless it is of an
    architecture this trainer builds."""
    from transformers import AutoConfig

    if not (Path(folder) / "config.json").is_file():
        raise InputError(f"--init {folder} is not a Hugging Face model folder (no config.json)")
    try:
        config = AutoConfig.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError, KeyError) as e:
        raise InputError(f"--init {folder}: cannot read its config.json: "
                         f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    if config.model_type not in ARCHITECTURES:
        raise ConfigError(f"--init {folder} is a {config.model_type!r} model; corpus train "
                          f"fine-tunes {', '.join(ARCHITECTURES)}")
    return config


def load_init(folder: str) -> Any:
    """The weights of a local folder, in fp32, in its own class."""
    import torch
    import transformers as tf

    config = init_config(folder)
    cls = getattr(tf, ARCHITECTURES[config.model_type])
    try:
        return cls.from_pretrained(folder, local_files_only=True, dtype=torch.float32)
    except (OSError, ValueError) as e:
        raise InputError(f"--init {folder}: cannot load its weights: "
                         f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None


def context_of(config: Any) -> int:
    """The longest sequence the model takes."""
    return int(getattr(config, "n_positions", None) or config.max_position_embeddings)


def enable_checkpointing(model: Any) -> None:
    """Recompute activations in the backward pass (less memory, about a third more compute)."""
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.config.use_cache = False
