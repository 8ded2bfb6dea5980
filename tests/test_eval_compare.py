"""`corpus eval compare` and the ablation config (docs/eval.md "Ablations"): two models' numbers
side by side with the ratios recomputed here, a comparison over other documents refused in one
line, pass@k of two scored sample files; and (slow) pipelines/ablation-near-dedup.toml run
whole: both models judged on exactly the same test documents, none of which trained either."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.conftest import ROOT, run_cli
from tests.eval_models import tiny_model_folder
from tests.test_eval_humaneval import humaneval_rows, write_jsonl

ONE_THREAD = {"OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def two_models(tokenizer_dir, tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("compare-models")
    return (tiny_model_folder(tokenizer_dir, root / "a", context=64, seed=0),
            tiny_model_folder(tokenizer_dir, root / "b", context=64, seed=1))


def perplexity_json(model: Path, data: Path, out: Path, *extra: str) -> Path:
    res = run_cli("eval", "perplexity", str(model), "--data", str(data), "--split", "all",
                  "--by", "extension", "--max-docs", "6", "--json", "--quiet", *extra,
                  env=ONE_THREAD)
    assert res.returncode == 0, res.stderr[-2000:]
    out.write_text(res.stdout)
    return out


def test_two_models_side_by_side(two_models, python_docs, tmp_path):
    a = perplexity_json(two_models[0], python_docs, tmp_path / "a.json")
    b = perplexity_json(two_models[1], python_docs, tmp_path / "b.json")
    res = run_cli("eval", "compare", str(a), str(b), "--json")
    assert res.returncode == 0, res.stderr
    got = json.loads(res.stdout)
    ra, rb = (json.loads(p.read_text()) for p in (a, b))
    assert ra["documents_sha256"] == rb["documents_sha256"]
    want = {g["group"]: (g["perplexity"], h["perplexity"], g["tokens"])
            for g, h in zip(ra["groups"] + [ra["all"]], rb["groups"] + [rb["all"]], strict=True)}
    assert {r["group"] for r in got["perplexity"]} == set(want) and "all" in want
    for row in got["perplexity"]:
        pa_, pb, tokens = want[row["group"]]
        assert row["perplexity"] == [pa_, pb] and row["tokens"] == tokens
        assert row["ratio"][0] == 1.0 and abs(row["ratio"][1] - pb / pa_) < 1e-12
    assert pa_ != pb  # two different models, not one read twice
    text = run_cli("eval", "compare", str(a), str(b))
    assert text.returncode == 0 and "(baseline)" in text.stdout and "[1]/[0]" in text.stdout


def test_other_documents_are_refused(two_models, python_docs, tmp_path):
    a = perplexity_json(two_models[0], python_docs, tmp_path / "a.json")
    b = perplexity_json(two_models[1], python_docs, tmp_path / "b.json", "--max-docs", "3")
    res = run_cli("eval", "compare", str(a), str(b))
    lines = res.stderr.strip().splitlines()
    assert res.returncode != 0 and len(lines) == 1, res.stderr
    assert lines[0].startswith("error:") and "different documents" in lines[0]
    for bad in ([str(a)], [str(a), str(tmp_path / "nothing")]):
        res = run_cli("eval", "compare", *bad)
        assert res.returncode != 0 and res.stderr.strip().startswith("error:"), res.stderr
        assert len(res.stderr.strip().splitlines()) == 1


def test_pass_at_k_of_two_sample_files(tmp_path):
    rows = humaneval_rows()[:3]
    problems = write_jsonl(tmp_path / "problems.jsonl", rows)
    outs = []
    for name, body in (("good", None), ("none", "    return None\n")):
        samples = write_jsonl(tmp_path / f"{name}.jsonl", [
            {"task_id": r["task_id"], "completion": body or r["canonical_solution"]}
            for r in rows for _ in range(2)])
        res = run_cli("eval", "humaneval", "--samples", str(samples), "--problems",
                      str(problems), "--k", "1,2", "--out", str(tmp_path / name), "--quiet")
        assert res.returncode == 0, res.stderr
        outs.append(str(tmp_path / name))
    res = run_cli("eval", "compare", *outs, "--json")
    assert res.returncode == 0, res.stderr
    got = json.loads(res.stdout)
    assert got["pass_at_k"] == {"pass@1": [1.0, 0.0], "pass@2": [1.0, 0.0]}
    assert got["perplexity"] == []


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_the_ablation_config(tmp_path):
    """Both branches trained and judged; the same test documents in both evaluations and out of
    both trainings; the comparison and the report show both."""
    config = ROOT / "pipelines" / "ablation-near-dedup.toml"
    out = tmp_path / "abl"
    res = run_cli("run", str(config), "--output", str(out), "--quiet", timeout=1400)
    assert res.returncode == 0, res.stderr[-3000:]
    near = json.loads((out / "near-deduped" / "manifest.json").read_text())
    assert near["removed"] > 0  # the branches differ
    evals = [json.loads((out / f"eval-{b}" / "eval.json").read_text()) for b in ("exact", "near")]
    ppl = [e["perplexity"] for e in evals]
    assert ppl[0]["documents_sha256"] == ppl[1]["documents_sha256"]
    assert ppl[0]["tokenizer_sha256"] == ppl[1]["tokenizer_sha256"]
    assert ppl[0]["all"]["tokens"] == ppl[1]["all"]["tokens"] > 0
    assert ppl[0]["all"]["perplexity"] != ppl[1]["all"]["perplexity"]
    # the scored documents: the test split of `deduped`, which is branch A's test split; B's
    # is within it (near-dedup removed some); neither branch trained on any of them
    held_out = _ids(out / "tokens-exact", "test")
    assert held_out and _ids(out / "tokens-near", "test") <= held_out
    assert ppl[0]["all"]["documents"] == len(held_out)
    for branch in ("exact", "near"):
        trained = _ids(out / f"tokens-{branch}", "train")
        assert trained and not trained & held_out
    res = run_cli("eval", "compare", str(out / "eval-exact"), str(out / "eval-near"), "--json")
    assert res.returncode == 0, res.stderr
    got = {r["group"]: r for r in json.loads(res.stdout)["perplexity"]}
    assert got["all"]["perplexity"] == [p["all"]["perplexity"] for p in ppl]
    res = run_cli("report", str(out))
    assert res.returncode == 0, res.stderr
    html = (out / "report.html").read_text()
    assert "Side by side, eval-exact the baseline" in html and "eval-near / eval-exact" in html


def _ids(tokens: Path, split: str) -> set[tuple[str, str, str]]:
    """(id, repo, path) of the documents of one split of a token shard folder."""
    files = sorted(tokens.glob(f"{split}-*.docs.parquet"))
    t = pq.read_table(files, columns=["id", "repo_name", "path"]) if files else None
    return set() if t is None else set(zip(*(t.column(c).to_pylist() for c in t.column_names),
                                           strict=True))
