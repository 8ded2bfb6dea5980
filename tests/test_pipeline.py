"""`corpus run`: stages in order, each in its own folder; finished stages are reused, changed
ones recomputed; the shipped demo config runs end to end."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from corpus import pipeline
from tests.conftest import QUERIES, ROOT, run_cli

CONFIG = """
[pipeline]
output = "{out}"

[[stages]]
name = "tables"
kind = "github-tables"
site_packages = true
include = ["idna", "urllib3", "certifi"]

[[stages]]
name = "python"
kind = "extract"
input = "tables"
query = "{queries}/github_python.sql"
params = {{ min_size = {min_size} }}
"""


def manifest(path: Path) -> dict:
    return json.loads((path / "manifest.json").read_text())


@pytest.mark.slow
def test_run_reuses_finished_stages_and_recomputes_changed_ones(tmp_path):
    out = tmp_path / "out"
    config = tmp_path / "p.toml"
    config.write_text(CONFIG.format(out=out, queries=QUERIES, min_size=1024))
    res = run_cli("run", str(config), "--workers", "2")
    assert res.returncode == 0, res.stderr
    assert f"outputs under {out}" in res.stdout
    rows = [line.split() for line in res.stdout.splitlines() if line.split()[:1] in
            (["tables"], ["python"])]  # the final table: one row per stage
    assert [r[0] for r in rows] == ["tables", "python"] and all(r[-1] == "computed" for r in rows)
    tables, python = manifest(out / "tables"), manifest(out / "python")
    assert tables["complete"] and python["complete"] and python["rows"] > 0
    assert python["input"] == "../tables"  # relative to the stage folder: the root can move

    res = run_cli("run", str(config), "--workers", "1")
    assert res.returncode == 0, res.stderr
    assert res.stderr.count("up to date") == 2
    assert manifest(out / "tables") == tables and manifest(out / "python") == python

    config.write_text(CONFIG.format(out=out, queries=QUERIES, min_size=4096))
    res = run_cli("run", str(config), "--workers", "1")
    assert res.returncode == 0, res.stderr
    assert manifest(out / "tables") == tables
    changed = manifest(out / "python")
    assert changed["fingerprint"] != python["fingerprint"]
    assert len(changed["runs"]) == 1 and 0 < changed["rows"] < python["rows"]


def test_shipped_configs_load():
    p = pipeline.load(str(ROOT / "pipelines" / "demo.toml"))
    assert [s.kind for s in p.stages][:2] == ["github-tables", "extract"]
    for s in p.stages:
        if s.kind == "extract":
            assert (ROOT / s.options["query"]).exists()


def _clone(tmp_path: Path) -> Path:
    """A clean clone of this checkout (its committed state), as a newcomer gets it."""
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True, timeout=120)
    return clone


@pytest.mark.slow
@pytest.mark.timeout(1800)  # make demo (~3 min) + the docs' snippets (~3 min) on 2 cores
def test_newcomer_path(tmp_path):
    """From a clean clone: `make demo`, then `corpus report` on its output, then every shell
    snippet of the README and docs/ that can run here. The clone's .venv is this test
    environment (a link): installing from the registries is what `make test` itself has just
    done, and `-o` keeps make from reinstalling because the clone's pyproject.toml is newer."""
    clone = _clone(tmp_path)
    venv = Path(sys.prefix)
    (clone / ".venv").symlink_to(venv, target_is_directory=True)
    env = {**os.environ, "PATH": f"{clone / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    res = subprocess.run(["make", "demo", "-o", ".venv/.installed"],
                         cwd=clone, env=env, capture_output=True, text=True, timeout=1200)
    assert res.returncode == 0, res.stderr[-3000:]
    assert (clone / "out" / "demo" / "report.html").exists()
    check_demo(clone / "out" / "demo", res)
    r = subprocess.run(["corpus", "report", "out/demo", "--out", "out/newcomer.html"],
                       cwd=clone, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and (clone / "out" / "newcomer.html").stat().st_size > 50_000
    from tests.test_docs import run_snippets

    failed = [(s, p) for s, p in run_snippets(clone, env) if p.returncode != 0]
    assert not failed, "\n\n".join(f"{s.file}:{s.line}\n{s.text}\n{p.stderr[-1500:]}"
                                     for s, p in failed)


def check_demo(root: Path, res: subprocess.CompletedProcess[str]) -> None:
    """What every stage of pipelines/demo.toml must have done."""
    python = manifest(root / "raw-python")
    multi = manifest(root / "raw-multilang")
    assert python["rows"] > 1000 and python["languages"] == {"Python": python["rows"]}
    assert len(multi["languages"]) >= 2
    filtered = manifest(root / "filtered")
    deduped = manifest(root / "deduped")
    assert filtered["rows_in"] == python["rows"] and filtered["removed"] > 0
    assert deduped["rows_in"] == filtered["rows"]
    assert set(filtered["reasons"]) <= {"autogenerated", "line_max", "line_mean", "alpha_frac",
                                        "char_token_ratio", "config_or_test",
                                        "has_no_keywords", "assignments"}
    near = manifest(root / "near-deduped")
    licensed = manifest(root / "licensed")
    scrubbed = manifest(root / "scrubbed")
    clean = manifest(root / "clean")
    assert licensed["rows_in"] == near["rows"] and scrubbed["rows_in"] == licensed["rows"]
    assert clean["rows_in"] == scrubbed["rows"] and clean["rows"] > 0
    assert all(r.startswith(("license-", "no-license")) for r in licensed["reasons"])
    assert scrubbed["secrets"] and set(scrubbed["secrets"]) >= {"EMAIL"}
    stats = subprocess.run([sys.executable, "-m", "corpus", "stats", str(root / "scrubbed")],
                           capture_output=True, text=True, cwd=ROOT)
    assert "secrets / PII redacted" in stats.stdout  # the stats of the scrub stage show them
    assert "over all runs" not in res.stdout  # the run prints one table, no stage's stats
    tokens = manifest(root / "tokens")
    assert tokens["rows_in"] == clean["rows"] and tokens["tokens"]["seq_len"] == 256
    parquet = json.loads((root / "parquet" / "_layout.json").read_text())
    assert parquet["rows_in"] == clean["rows"]
    assert parquet["splits"]["validation"]["rows"] == \
        tokens["tokens"]["splits"]["validation"]["documents"]
    first, last = map(float, re.search(r"train: loss ([\d.]+) → ([\d.]+) after 40 steps",
                                       res.stdout).groups())
    assert last < first - 1  # the tiny model learns
    assert "outputs under" in res.stdout
    check_demo_eval(root / "eval")
    check_demo_stats(root)


def check_demo_stats(root: Path) -> None:
    """`corpus stats` on every stage folder of the demo and on its root: each one's figures."""
    stages = [s["name"] for s in json.loads((root / "pipeline.json").read_text())["stages"]]
    for name in stages:
        r = subprocess.run([sys.executable, "-m", "corpus", "stats", str(root / name), "--json"],
                           capture_output=True, text=True, cwd=ROOT)
        assert r.returncode == 0, (name, r.stderr)
        s = json.loads(r.stdout)
        if s.get("kind") in ("tokenizer", "train", "model", "eval"):  # by its record, first
            assert s["line"], name
        else:
            m = manifest(root / name)
            assert (s.get("rows"), s.get("removed")) == (m.get("rows"), m.get("removed")), name
    r = subprocess.run([sys.executable, "-m", "corpus", "stats", str(root), "--json"],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    rows = {x["stage"]: x for x in json.loads(r.stdout)["stages"]}
    assert list(rows) == stages and all(x["state"] == "complete" for x in rows.values())
    clean = manifest(root / "clean")
    assert (rows["clean"]["rows_in"], rows["clean"]["rows"]) == (clean["rows_in"], clean["rows"])
    assert rows["train"]["line"].startswith("train: loss")


def check_demo_eval(folder: Path) -> None:
    """The demo's model is judged: a finite perplexity per language of the multi-language test
    split, and every HumanEval completion really executed, its outcome recorded. A completion
    that does not compile must say so; one that compiles must have run (passed, failed at run
    time or timed out), which only executing it can tell."""
    record = json.loads((folder / "eval.json").read_text())
    rows = record["perplexity"]["rows"]
    assert len(rows) >= 2 and all(r["tokens"] > 0 and 1 < r["perplexity"] < 1e6 for r in rows)
    he = record["humaneval"]
    problems = {p["task_id"]: p for p in map(json.loads, (folder / "problems.jsonl").open())}
    samples = [json.loads(line) for line in (folder / "humaneval" / "samples.jsonl").open()]
    results = {(r["task_id"], r["index"]): r
               for r in map(json.loads, (folder / "humaneval" / "results.jsonl").open())}
    assert len(samples) == len(results) == he["n"] * len(problems) == he["samples"]
    for s in samples:
        outcome = results[s["task_id"], s["index"]]["outcome"]
        p = problems[s["task_id"]]
        program = f"{p['prompt']}{s['completion']}\n{p['test']}\ncheck({p['entry_point']})\n"
        try:
            compile(program, "<completion>", "exec")
        except SyntaxError as e:
            assert outcome.startswith(f"failed: {type(e).__name__}"), (outcome, e)
        else:
            assert outcome == "passed" or outcome.startswith(("failed: ", "timed out")), outcome
    assert he["pass_at_k"]["pass@1"] == sum(r["passed"] for r in results.values()) / len(results)
