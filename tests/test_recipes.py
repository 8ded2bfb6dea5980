"""The shipped recipes (pipelines/train/*.toml) are the published models: the built model's
parameter count (on the meta device) equals an independent count of the declared shape and is
within 2 % of the published size; the global batch gives the published tokens per optimizer
step on the published number of GPUs and the same batch on 2 CPU ranks through accumulation;
a tiny variant of each architecture learns on CPU."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from corpus.errors import ConfigError
from corpus.train import batch, models
from corpus.train.config import ModelConfig, load_recipe
from tests.conftest import ROOT, run_cli

RECIPES = sorted((ROOT / "pipelines" / "train").glob("*.toml"))
PUBLISHED = {"codeparrot-small", "codeparrot", "polycoder-160m", "polycoder-0.4b",
             "polycoder-2.7b", "gpt-cc-125m", "mingpt"}
TINY = ["tiny", "tiny-neo", "tiny-neox"]


def shape_count(m: ModelConfig, vocab: int) -> int:
    """Parameters of the shape by the architectures' published layouts, counted by hand."""
    h, L, inner = m.n_embd, m.n_layer, m.intermediate_size or 4 * m.n_embd
    mlp = h * inner + inner + inner * h + h
    if m.architecture == "gpt2":  # fused qkv with bias, learned positions, tied output
        layer = 4 * h + (3 * h * h + 3 * h) + (h * h + h) + mlp
        return L * layer + vocab * h + m.n_positions * h + 2 * h
    if m.architecture == "gpt_neo":  # q, k, v without bias, learned positions, tied
        layer = 4 * h + 3 * h * h + (h * h + h) + mlp
        return L * layer + vocab * h + m.n_positions * h + 2 * h
    # gpt_neox: fused qkv with bias, rotary (no position table), untied output unless asked
    layer = 4 * h + (3 * h * h + 3 * h) + (h * h + h) + mlp
    return L * layer + vocab * h * (1 if m.tie_embeddings else 2) + 2 * h


def test_every_published_model_has_a_recipe():
    names = {p.stem for p in RECIPES}
    assert PUBLISHED | set(TINY) <= names
    for p in RECIPES:
        if p.stem in PUBLISHED:
            head = p.read_text().split("[model]")[0]
            assert "Source" in head or "source" in head.lower(), p.name  # cites its source


@pytest.mark.parametrize("path", RECIPES, ids=[p.stem for p in RECIPES])
def test_the_built_model_is_the_published_size(path: Path):
    m, _t, pub = load_recipe(str(path))
    vocab = pub.vocab_size if pub and pub.vocab_size else 8192
    config = models.hf_config(m, vocab, 0)
    n = models.count_params(config)
    assert n == shape_count(m, vocab)
    assert config.model_type == m.architecture
    if path.stem in PUBLISHED and path.stem != "mingpt":  # the minGPT post names no size
        assert pub is not None and pub.params
        assert abs(n / pub.params - 1) <= 0.02, (n, pub.params)


@pytest.mark.parametrize("path", RECIPES, ids=[p.stem for p in RECIPES])
def test_the_global_batch_holds_on_any_ranks(path: Path):
    m, t, pub = load_recipe(str(path))
    assert t.global_batch, "every shipped recipe states its global batch"
    if pub and pub.gpus and pub.tokens_per_step:
        on_gpus = batch.plan(t.global_batch, pub.gpus, m.n_positions, t.micro_batch)
        assert on_gpus.tokens == pub.tokens_per_step
        assert on_gpus.micro_batch == t.micro_batch and on_gpus.adjusted is None
    on_cpu = batch.plan(t.global_batch, 2, m.n_positions, t.micro_batch)
    assert on_cpu.sequences == t.global_batch
    assert on_cpu.tokens == t.global_batch * m.n_positions


def test_codeparrot_batches_as_published():
    small = load_recipe(str(ROOT / "pipelines/train/codeparrot-small.toml"))[1]
    big = load_recipe(str(ROOT / "pipelines/train/codeparrot.toml"))[1]
    p = batch.plan(small.global_batch, 16, 1024, small.micro_batch)
    assert (p.micro_batch, p.grad_accum, p.tokens) == (12, 1, 196_608)
    p = batch.plan(small.global_batch, 2, 1024, small.micro_batch)
    assert (p.micro_batch, p.grad_accum, p.tokens) == (12, 8, 196_608)
    p = batch.plan(big.global_batch, 16, 1024, big.micro_batch)
    assert (p.micro_batch, p.grad_accum, p.tokens) == (2, 16, 524_288)
    p = batch.plan(big.global_batch, 2, 1024, big.micro_batch)
    assert (p.micro_batch, p.grad_accum, p.tokens) == (2, 128, 524_288)
    assert big.gradient_checkpointing and not small.gradient_checkpointing


def test_plans_that_cannot_hold():
    with pytest.raises(ConfigError, match="cannot be divided over 5 ranks"):
        batch.plan(192, 5, 1024, 12)
    p = batch.plan(12, 1, 64, 5)  # 5 does not divide 12: the largest divisor below does
    assert (p.micro_batch, p.grad_accum, p.sequences) == (4, 3, 12) and p.adjusted
    assert "micro-batch 4 × accumulation 3 × 1 rank" in p.describe()


def _losses(run: Path) -> dict[int, float]:
    return {e["step"]: e["loss"] for e in map(json.loads, (run / "log.jsonl").read_text()
                                              .splitlines()) if e["event"] == "train"}


def _train(tokens: Path, model: Path | str, run: Path, steps: int) -> dict[int, float]:
    r = run_cli("train", "--data", str(tokens), "--model", str(model), "--deepspeed",
                "pipelines/train/zero2.json", "--out", str(run), "--max-steps", str(steps),
                "--steps", "40", "--global-batch", "8", "--micro-batch", "8", timeout=400)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "global batch 8 sequences" in r.stdout
    return _losses(run)


@pytest.mark.slow
@pytest.mark.parametrize("name", TINY)
def test_a_tiny_variant_of_each_architecture_learns(name, token_shards, tmp_path):
    losses = _train(token_shards, f"pipelines/train/{name}.toml", tmp_path / "run", 20)
    assert sorted(losses) == list(range(1, 21))
    first = sum(losses[s] for s in range(1, 6)) / 5
    last = sum(losses[s] for s in range(16, 21)) / 5
    assert last < first, losses
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["hf_config"]["model_type"] == name.replace("tiny-neox", "gpt_neox").replace(
        "tiny-neo", "gpt_neo").replace("tiny", "gpt2")


@pytest.mark.slow
def test_gradient_checkpointing_changes_memory_not_math(token_shards, tmp_path):
    plain = _train(token_shards, "pipelines/train/tiny.toml", tmp_path / "plain", 3)
    recipe = tmp_path / "ckpt.toml"
    recipe.write_text((ROOT / "pipelines/train/tiny.toml").read_text().replace(
        "[train]\n", "[train]\ngradient_checkpointing = true\n"))
    checkpointed = _train(token_shards, recipe, tmp_path / "ckpt", 3)
    assert json.loads((tmp_path / "ckpt" / "config.json").read_text())["train"][
        "gradient_checkpointing"] is True
    for step in (1, 2, 3):
        assert checkpointed[step] == pytest.approx(plain[step], abs=1e-5)
