"""`corpus stats` on every kind of output of a real (small) run: a TABLES folder, dataset
directories, a tokenizer, Parquet and token shards, an eval folder, a model folder, and the run
root (one table of all its stages). The demo's stages and root: tests/test_pipeline.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from corpus import stats_records as sr
from tests.conftest import QUERIES, run_cli
from tests.eval_models import tiny_model_folder

CONFIG = """
[pipeline]
output = "{out}"

[[stages]]
name = "tables"
kind = "github-tables"
site_packages = true
include = ["idna", "urllib3", "certifi", "click"]

[[stages]]
name = "python"
kind = "extract"
input = "tables"
query = "{queries}/github_python.sql"

[[stages]]
name = "filtered"
kind = "filter"
input = "python"
rules = [{{ rule = "line_mean", max = 30 }}]

[[stages]]
name = "tokenizer"
kind = "tokenizer"
input = "filtered"
vocab_size = 1024
sample_docs = 200

[[stages]]
name = "parquet"
kind = "shard"
input = "filtered"
format = "parquet"
valid_fraction = 0.1

[[stages]]
name = "tokens"
kind = "shard"
input = "filtered"
format = "tokens"
tokenizer = "tokenizer"
seq_len = 64

[[stages]]
name = "eval"
kind = "eval"
input = "{model}"
data = "filtered"
split = "all"
max_docs = 3
"""


def manifest(path: Path) -> dict:
    return json.loads((path / "manifest.json").read_text())


@pytest.fixture(scope="module")
def run_root(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("stats-run")
    root, config = base / "run", base / "p.toml"
    config.write_text(CONFIG.format(out=root, queries=QUERIES, model=base / "model"))
    first = CONFIG.split("[[stages]]\nname = \"eval\"")[0]  # the model needs the tokenizer
    (base / "first.toml").write_text(first.format(out=root, queries=QUERIES))
    r = run_cli("run", str(base / "first.toml"), "--workers", "2", "--quiet", timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    tiny_model_folder(root / "tokenizer", base / "model")
    r = run_cli("run", str(config), "--workers", "2", "--quiet", timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    return root


def stats(path: Path) -> tuple[str, dict]:
    text = run_cli("stats", str(path))
    js = run_cli("stats", str(path), "--json")
    assert text.returncode == 0 and js.returncode == 0, text.stderr + js.stderr
    return text.stdout, json.loads(js.stdout)


def test_every_stage_output(run_root):
    out, s = stats(run_root / "tables")
    assert s["kind"] == "tables" and s["tables"]["files"]["rows"] > 0 and "contents" in out
    for name in ("python", "filtered"):
        m = manifest(run_root / name)
        out, s = stats(run_root / name)
        assert (s["rows"], s["removed"]) == (m["rows"], m["removed"])
        assert f"rows: {m['rows']:,} kept, {m['removed']:,} removed" in out
    assert manifest(run_root / "filtered")["removed"] > 0
    out, s = stats(run_root / "tokenizer")
    report = json.loads((run_root / "tokenizer" / "corpus_tokenizer.json").read_text())
    assert s["kind"] == "tokenizer" and f"tokenizer: {report['vocab_size']:,} tokens" in out
    out, s = stats(run_root / "parquet")
    splits = manifest(run_root / "parquet")["parquet"]["splits"]
    assert set(s["splits"]) == set(splits) and "train" in splits
    assert f"train: {splits['train']['rows']:,} (" in out
    out, s = stats(run_root / "tokens")
    t = manifest(run_root / "tokens")["tokens"]
    assert f"{t['splits']['train']['sequences']:,} sequences of 64 tokens" in out
    out, s = stats(run_root / "eval")
    record = json.loads((run_root / "eval" / "eval.json").read_text())
    assert s["kind"] == "eval" and out.count("eval: perplexity") == 1
    assert f"over {record['perplexity']['all']['tokens']:,} tokens" in out
    out, s = stats(run_root.parent / "model")
    assert s["kind"] == "model" and "a Hugging Face gpt2 folder" in out


def test_run_root_is_one_table(run_root):
    out, s = stats(run_root)
    stages = {r["stage"]: r for r in s["stages"]}
    assert list(stages) == ["tables", "python", "filtered", "tokenizer", "parquet", "tokens",
                            "eval"]
    for name in ("python", "filtered", "parquet", "tokens"):
        m = manifest(run_root / name)
        r = stages[name]
        assert (r["rows_in"], r["rows"], r["removed"], r["bytes"]) == \
            (m["rows_in"], m["rows"], m["removed"], m["bytes"])
        assert [f"{m['rows_in']:,}", f"{m['rows']:,}", f"{m['removed']:,}"] == \
            next(line.split() for line in out.splitlines() if line.split()[:1] == [name])[2:5]
    assert {r["kind"] for r in stages.values()} == {"github-tables", "extract", "filter",
                                                    "tokenizer", "shard", "eval"}
    assert all(r["state"] == "complete" for r in stages.values()), stages
    lines = [line.split() for line in out.splitlines()[1:]]
    assert all(any(cells[:1] == [n] for cells in lines) for n in stages), out
    assert sr.kind_of(str(run_root)) == "run"
