"""`corpus export` and `corpus train --init`, on real token shards (tests/conftest.py): the
exported model's logits equal the checkpoint's as `corpus train` holds it (tests/probe_logits.py
under torchrun, ZeRO-1 and ZeRO-2 on 2 CPU ranks); transformers' Auto classes and pipeline()
load the folder offline; its tokenizer gives the corpus tokenizer's ids; a fine-tune starts
from exactly the exported weights; bad input is one `error:` line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from tests.conftest import ROOT, free_port, run_cli

MODEL = "pipelines/train/tiny.toml"
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def _train(tokens: Path, run: Path, zero: str, steps: int = 3, nproc: int = 2) -> None:
    r = run_cli("train", "--data", str(tokens), "--model", MODEL, "--deepspeed",
                f"pipelines/train/{zero}.json", "--out", str(run), "--max-steps", str(steps),
                "--global-batch", "4", "--micro-batch", "2", "--nproc-per-node", str(nproc),
                timeout=400)
    assert r.returncode == 0, r.stderr[-3000:]


def _hf_logits(folder: Path, batch: np.ndarray) -> np.ndarray:
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True).eval()
    with torch.no_grad():
        return model(input_ids=torch.from_numpy(batch[:, :-1])).logits.float().numpy()


@pytest.fixture(scope="module")
def exported(token_shards, tmp_path_factory) -> dict[str, Path]:
    """A ZeRO-2 run on 2 ranks, exported."""
    root = tmp_path_factory.mktemp("export")
    _train(token_shards, root / "run", "zero2")
    r = run_cli("export", str(root / "run"), str(root / "model"), env=OFFLINE)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "load it:" in r.stdout
    return {"run": root / "run", "model": root / "model", "root": root}


def _probe(tokens: Path, run: Path, zero: str, tag: str, out: Path) -> dict[str, np.ndarray]:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
           "--master_addr=127.0.0.1", f"--master_port={free_port()}",
           str(ROOT / "tests" / "probe_logits.py"), str(tokens), MODEL,
           f"pipelines/train/{zero}.json", str(run), tag, str(out)]
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=400,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert p.returncode == 0, p.stderr[-3000:]
    return dict(np.load(out))


@pytest.mark.slow
@pytest.mark.parametrize("zero", ["zero1", "zero2"])
def test_exported_logits_equal_the_checkpoint(zero, token_shards, exported, tmp_path):
    if zero == "zero2":
        run, model = exported["run"], exported["model"]
    else:
        run, model = tmp_path / "run", tmp_path / "model"
        _train(token_shards, run, zero)
        r = run_cli("export", str(run), str(model), env=OFFLINE)
        assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads((run / "config.json").read_text())["world_size"] == 2
    probe = _probe(token_shards, run, zero, "step3", tmp_path / "probe.npz")
    ours = _hf_logits(model, probe["batch"])
    assert ours.shape == probe["logits"].shape
    assert float(np.abs(ours - probe["logits"]).max()) <= 1e-5
    # and not trivially: the untrained model gives other logits
    from transformers import AutoConfig, AutoModelForCausalLM

    fresh = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(model))
    import torch

    with torch.no_grad():
        other = fresh(input_ids=torch.from_numpy(probe["batch"][:, :-1])).logits.numpy()
    assert float(np.abs(other - probe["logits"]).max()) > 1e-2


@pytest.mark.slow
def test_the_folder_is_what_transformers_expects(exported, site_tables, tokenizer_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer, pipeline

    model = exported["model"]
    names = {p.name for p in model.iterdir()}
    assert {"config.json", "model.safetensors", "generation_config.json", "tokenizer.json",
            "tokenizer_config.json", "special_tokens_map.json", "README.md"} <= names
    tok = AutoTokenizer.from_pretrained(model, local_files_only=True)
    assert tok.eos_token == tok.bos_token == tok.pad_token == "<|endoftext|>"
    assert AutoModelForCausalLM.from_pretrained(model).config.model_type == "gpt2"
    gen = pipeline("text-generation", model=str(model))
    text = gen("def add(a, b):", max_new_tokens=8, do_sample=False)[0]["generated_text"]
    assert text.startswith("def add(a, b):") and len(tok(text)["input_ids"]) > \
        len(tok("def add(a, b):")["input_ids"])

    # the exported tokenizer gives the corpus tokenizer's ids, on 1,000 real documents
    from corpus.tokens import bpe

    ref = bpe.for_documents(bpe.load(str(tokenizer_dir)))
    # the text files of the test corpus's packages (Python, Markdown, config, …), then the
    # standard library's own modules up to 1,000 documents
    import sysconfig

    contents = pq.read_table(Path(site_tables) / "contents.parquet", columns=["content"])
    docs = [c for c in contents.column("content").to_pylist() if c]
    for f in sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py")):
        docs.append(f.read_text(encoding="utf-8", errors="replace"))
    docs = [d for d in docs if d][:1000]
    assert len(docs) == 1000
    docs.append("x = '<|endoftext|>'  # the separator as text\n")
    got = tok(docs, add_special_tokens=False)["input_ids"]
    want = [e.ids for e in ref.encode_batch(docs, add_special_tokens=False)]
    assert got == want

    card = (model / "README.md").read_text()
    meta = card.split("---")[1]
    for key in ("library_name: transformers", "license:", "datasets:", "training:",
                "learning_rate:", "validation loss"):
        assert key in meta, key


@pytest.mark.slow
def test_fine_tune_starts_from_the_exported_weights(exported, token_shards, tmp_path):
    import torch
    import torch.nn.functional as F
    from transformers import AutoModelForCausalLM

    from corpus.train.data import TokenShards

    run = tmp_path / "fine"
    r = run_cli("train", "--init", str(exported["model"]), "--data", str(token_shards),
                "--model", MODEL, "--deepspeed", "pipelines/train/zero2.json", "--out",
                str(run), "--max-steps", "1", "--global-batch", "8", "--micro-batch", "8",
                env=OFFLINE, timeout=400)
    assert r.returncode == 0, r.stderr[-3000:]
    logged = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    assert logged[0]["event"] == "start" and str(exported["model"]) in logged[0]["model"]
    first = next(e["loss"] for e in logged if e["event"] == "train" and e["step"] == 1)
    batch = next(iter(TokenShards(str(token_shards), "train", batch_size=8, seed=1,
                                  rank=0, world_size=1)))
    model = AutoModelForCausalLM.from_pretrained(exported["model"]).eval()
    with torch.no_grad():
        logits = model(input_ids=batch[:, :-1]).logits
    expect = float(F.cross_entropy(logits.reshape(-1, logits.size(-1)),
                                   batch[:, 1:].reshape(-1)))
    assert first == pytest.approx(expect, abs=1e-5)
    # the same architecture freshly initialized starts elsewhere: the check above can fail
    torch.manual_seed(1)
    fresh = AutoModelForCausalLM.from_config(model.config).eval()
    with torch.no_grad():
        logits = fresh(input_ids=batch[:, :-1]).logits
    assert abs(float(F.cross_entropy(logits.reshape(-1, logits.size(-1)),
                                     batch[:, 1:].reshape(-1))) - first) > 1e-3


@pytest.mark.slow
def test_bad_input_is_one_line(exported, token_shards, tmp_path):
    from transformers import BertConfig

    empty = tmp_path / "empty-run"
    empty.mkdir()
    (empty / "config.json").write_text(
        (exported["run"] / "config.json").read_text())
    mine = tmp_path / "my-folder"  # something else: an export must not replace it
    mine.mkdir()
    (mine / "notes.txt").write_text("mine\n")
    for args, needle in [
        (["export", str(empty), str(tmp_path / "m1")], "no checkpoint"),
        (["export", str(exported["run"]), str(tmp_path / "m2"), "--step", "99"],
         "no checkpoint of step 99"),
        (["export", str(tmp_path / "nothing"), str(tmp_path / "m3")], "not a `corpus train`"),
        (["export", str(exported["run"]), str(mine)], "is not a `corpus export`"),
    ]:
        r = run_cli(*args, env=OFFLINE)
        _one_line(r, needle)

    bert = tmp_path / "bert"
    BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
               intermediate_size=64).save_pretrained(bert)
    foreign = tmp_path / "foreign"
    _foreign_model(exported["model"], foreign)
    for init, needle in [(bert, "'bert' model"), (foreign, "not with the tokenizer of --init")]:
        r = run_cli("train", "--init", str(init), "--data", str(token_shards), "--model",
                    MODEL, "--deepspeed", "pipelines/train/zero2.json", "--out",
                    str(tmp_path / "never"), "--max-steps", "1", env=OFFLINE)
        _one_line(r, needle)
    assert not (tmp_path / "never" / "checkpoints").exists()
    assert (mine / "notes.txt").read_text() == "mine\n"

    bad = tmp_path / "odd-batch.toml"
    bad.write_text((ROOT / MODEL).read_text().replace("global_batch = 8", "global_batch = 7"))
    r = run_cli("train", "--data", str(token_shards), "--model", str(bad), "--deepspeed",
                "pipelines/train/zero2.json", "--out", str(tmp_path / "odd"),
                "--nproc-per-node", "2")
    _one_line(r, "cannot be divided over 2 ranks")


def _one_line(r: subprocess.CompletedProcess[str], needle: str) -> None:
    assert r.returncode != 0, r.stdout[-2000:]
    errors = [x for x in r.stderr.splitlines() if x.startswith("error:")]
    assert len(errors) == 1 and needle in errors[0], r.stderr[-3000:]
    assert "Traceback" not in r.stderr


def _foreign_model(model: Path, out: Path) -> None:
    """The exported model with a tokenizer trained on other text (same size, other merges)."""
    import shutil

    from corpus.tokens import bpe

    shutil.copytree(model, out)
    tok, trainer = bpe.build(int(json.loads((model / "config.json").read_text())["vocab_size"]))
    texts = [p.read_text(errors="replace") for p in sorted((ROOT / "docs").glob("*.md"))]
    tok.train_from_iterator(texts, trainer=trainer)
    tok.save(str(out / "tokenizer.json"))
