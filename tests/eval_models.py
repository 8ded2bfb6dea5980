"""Small Hugging Face model folders for the eval tests, built locally: a transformers model
from an explicit config and the corpus tokenizer as `corpus export` writes it (nothing fetched
by name). Untrained weights, seeded: fast, deterministic, real architectures."""

from __future__ import annotations

from pathlib import Path


def tiny_model_folder(tokenizer_dir: Path, out: Path, architecture: str = "gpt2",
                      context: int = 256, seed: int = 0) -> Path:
    """A model folder (config.json, model.safetensors, generation_config.json, tokenizer files)
    whose tokenizer is the corpus tokenizer in `tokenizer_dir`."""
    import json

    import torch
    from transformers import GenerationConfig

    from corpus.tokens import bpe
    from corpus.train import models
    from corpus.train.config import ModelConfig
    from corpus.train.export import SPECIAL, tokenizer

    tok_file = bpe.tokenizer_file(str(tokenizer_dir))
    vocab = json.loads(tok_file.read_text())["model"]["vocab"]
    eos = vocab[bpe.EOT]
    shape = ModelConfig(n_layer=2, n_embd=64, n_head=4, architecture=architecture,
                        n_positions=context, dropout=0.0)
    torch.manual_seed(seed)
    model = models.build(models.hf_config(shape, -(-len(vocab) // 64) * 64, eos)).eval()
    model.generation_config = GenerationConfig(bos_token_id=eos, eos_token_id=eos,
                                               pad_token_id=eos)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer(tok_file, context).save_pretrained(out)
    (out / "special_tokens_map.json").write_text(json.dumps(SPECIAL) + "\n")
    return out
