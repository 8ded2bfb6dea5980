"""What a run trains: a model built from the recipe's [model] table, or the weights of a local
Hugging Face folder (`--init`) whose tokenizer must be the token shards' tokenizer.

Tokenizers are compared by what decides the ids (model type, vocabulary, merges, added tokens,
pre-tokenizer, normalizer), not by file bytes: `save_pretrained` rewrites tokenizer.json with
other whitespace and padding fields, and the ids stay the same.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from corpus.errors import ConfigError, InputError
from corpus.train import models
from corpus.train.config import ModelConfig


def tokenizer_identity(tokenizer_json: str) -> str:
    """sha256 of the parts of a tokenizer.json that decide its ids."""
    t = json.loads(tokenizer_json)
    model = t.get("model") or {}
    merges = [m.split(" ", 1) if isinstance(m, str) else list(m)
              for m in model.get("merges") or []]
    added = sorted((a["id"], a["content"], bool(a.get("special")))
                   for a in t.get("added_tokens") or [])
    key = {"type": model.get("type"), "vocab": model.get("vocab"), "merges": merges,
           "added": added, "pre_tokenizer": t.get("pre_tokenizer"),
           "normalizer": t.get("normalizer")}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def folder_tokenizer_json(folder: str) -> str:
    """The tokenizer.json of a model folder (or the fast tokenizer transformers makes of its
    vocab.json and merges.txt)."""
    f = Path(folder) / "tokenizer.json"
    if f.is_file():
        return f.read_text(encoding="utf-8")
    try:
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        return str(tok.backend_tokenizer.to_str())
    except (OSError, ValueError, AttributeError) as e:
        raise InputError(f"--init {folder} has no tokenizer that transformers can load "
                         f"({type(e).__name__}): the shards' tokenizer cannot be checked") \
            from None


def check_init_tokenizer(init: str, shards: str, shards_tokenizer: str) -> None:
    """Refuse a fine-tune whose token shards were made with another tokenizer: the ids would
    mean other words to the model. `shards_tokenizer`: the tokenizer.json the shards carry."""
    mine = tokenizer_identity(shards_tokenizer)
    theirs_json = folder_tokenizer_json(init)
    if tokenizer_identity(theirs_json) == mine:
        return
    vocab = len((json.loads(theirs_json).get("model") or {}).get("vocab") or {})
    ours = len((json.loads(shards_tokenizer).get("model") or {}).get("vocab") or {})
    raise InputError(f"the token shards {shards} were made with their own tokenizer "
                     f"({ours:,} tokens), not with the tokenizer of --init {init} "
                     f"({vocab:,} tokens): re-shard with `corpus shard IN OUT --format tokens "
                     f"--tokenizer {init}`")


def build_model(model_cfg: ModelConfig, meta: dict[str, Any], init: str | None,
                shards: str, shards_tokenizer: str) -> tuple[Any, str]:
    """The model to train and where it came from (a line for the log)."""
    if init:
        models.init_config(init)  # the architecture first: a clearer error than the tokenizer
        check_init_tokenizer(init, shards, shards_tokenizer)
        model = models.load_init(init)
        if model.get_input_embeddings().num_embeddings < int(meta["vocab_size"]):
            raise ConfigError(f"--init {init} has {model.get_input_embeddings().num_embeddings:,}"
                              f" embeddings, the tokenizer {meta['vocab_size']:,} tokens")
        return model, f"{model.config.model_type} from {init} (the recipe's [model] shape is " \
                      "not used)"
    vocab = model_cfg.vocab_size or -(-int(meta["vocab_size"]) // 64) * 64
    if vocab < int(meta["vocab_size"]):
        raise ConfigError(f"vocab_size {vocab} is smaller than the tokenizer's "
                          f"{meta['vocab_size']}")
    return models.build(models.hf_config(model_cfg, vocab, int(meta["eos_id"]))), \
        f"{model_cfg.architecture} from the recipe"
