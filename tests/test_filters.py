"""Quality filters: each rule at and around its threshold, the whole stage against the
per-document reference on thousands of real files, edge cases, determinism."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from corpus import pipeline
from corpus.engine import Engine
from corpus.errors import ConfigError
from corpus.extract.duckdb_job import ExtractJob, ExtractOptions
from corpus.filters import reference as ref
from corpus.filters import rules as rl
from corpus.filters.metrics import METRICS
from corpus.filters.stage import FilterJob, FilterOptions, apply_rules, compute_metrics
from corpus.github.build import GithubTablesJob, GithubTablesOptions
from corpus.io import DatasetDir
from tests.conftest import QUERIES, ROOT, parquet_files

#: Real code in several languages, long minified lines included (bokeh's JavaScript).
FILTER_DISTS = ["pip", "sqlglot", "rich", "pygments", "dask", "numpy", "bokeh"]
CODEPARROT = pipeline.stage_of(pipeline.load(str(ROOT / "pipelines" / "codeparrot.toml"),
                                             files=False),
                               "filter").options


@pytest.fixture(scope="module")
def real_docs(engine, tmp_path_factory) -> Path:
    """Every text file of FILTER_DISTS in the 12 languages, as an extracted dataset."""
    root = tmp_path_factory.mktemp("filters")
    engine.run(GithubTablesJob(GithubTablesOptions(site_packages=True, include=FILTER_DISTS),
                               DatasetDir(str(root / "tables"))))
    engine.run(ExtractJob(ExtractOptions(str(QUERIES / "github_multilang.sql"),
                                         str(root / "tables"), params={"min_size": 0},
                                         partition_bytes=8 << 20),
                          DatasetDir(str(root / "raw"))))
    return root / "raw"


def documents(path: Path) -> pa.Table:
    return pq.read_table(sorted(path.glob("data/part-*.parquet")))


def test_every_metric_equals_reference_on_real_files(real_docs):
    t = documents(real_docs)
    assert t.num_rows >= 2000
    got = compute_metrics(t.column("content").combine_chunks(), {m: {} for m in METRICS})
    mismatches = {}
    for i, content in enumerate(t.column("content").to_pylist()):
        want = ref.metrics(content)
        for m in METRICS:
            if got[m][i] != want[m]:
                mismatches.setdefault(m, []).append(i)
    assert not mismatches, {m: len(v) for m, v in mismatches.items()}


def run_filter(engine, src: Path, out: Path, options: dict) -> dict:
    opts = pipeline._options(FilterOptions, options, "test")
    return engine.run(FilterJob(opts, DatasetDir(str(src)), DatasetDir(str(out))))


def test_stage_decides_like_the_reference(engine, real_docs, tmp_path):
    out = tmp_path / "filtered"
    manifest = run_filter(engine, real_docs, out, CODEPARROT)
    rules = rl.parse(CODEPARROT["rules"], "test")
    expected = {}
    for row in documents(real_docs).to_pylist():
        expected[(row["repo_name"], row["path"])] = ref.decide(
            ref.metrics(row["content"]), rules, CODEPARROT["seed"], row["id"])
    kept = documents(out)
    removed = pq.read_table(out / "removed").to_pylist()
    got = {(r["repo_name"], r["path"]): r["reason"] for r in removed}
    got.update({k: None for k in zip(kept.column("repo_name").to_pylist(),
                                     kept.column("path").to_pylist(), strict=True)})
    assert got == expected
    assert manifest["rows_in"] == len(expected) == manifest["rows"] + manifest["removed"]
    assert {r.split("=")[0].split(" ")[0] for r in expected.values() if r} >= {
        "line_max", "alpha_frac", "config_or_test", "assignments"}
    for m in ("line_mean", "alpha_frac", "config_or_test", "assignments", "char_token_ratio"):
        assert m in kept.column_names, "metrics stay as columns"
    assert sum(v["rows"] for v in manifest["reasons"].values()) == manifest["removed"]


def test_probabilistic_rules_same_on_1_and_2_workers_and_reruns(engine, real_docs, tmp_path):
    options = {"rules": [{"rule": "config_or_test", "probability": 0.5},
                         {"rule": "has_no_keywords", "probability": 0.5}], "seed": 7}
    run_filter(engine, real_docs, tmp_path / "two", options)
    with Engine(workers=1, progress=False) as one:
        run_filter(one, real_docs, tmp_path / "one", options)
    run_filter(engine, real_docs, tmp_path / "again", options | {"seed": 7})
    a = parquet_files(tmp_path / "two")
    assert a == parquet_files(tmp_path / "one") == parquet_files(tmp_path / "again")
    removed = pq.read_table(tmp_path / "two" / "removed").to_pylist()
    flagged = [r for r in documents(real_docs).to_pylist()
               if ref.is_config_or_test(r["content"]) or ref.has_no_keywords(r["content"])]
    assert 0.3 * len(flagged) < len(removed) < 0.7 * len(flagged), "about half are dropped"
    run_filter(engine, real_docs, tmp_path / "seed8", options | {"seed": 8})
    assert parquet_files(tmp_path / "seed8") != a, "another seed, another draw"


def decisions(docs: list[str | None], rules: list[dict], seed: int = 1) -> list[str | None]:
    """Reason per document (None: kept), through the stage's map() on one partition."""
    t = pa.table({"id": [f"{i:040x}" for i in range(len(docs))],
                  "repo_name": ["r"] * len(docs), "path": [f"p{i}" for i in range(len(docs))],
                  "content": pa.array(docs, pa.large_string())})
    kept, removed = apply_rules(t, rl.parse(rules, "test"), seed)
    assert kept.num_rows + removed.num_rows == len(docs)
    reasons = dict(zip(removed.column("path").to_pylist(), removed.column("reason").to_pylist(),
                       strict=True))
    return [reasons.get(f"p{i}") for i in range(len(docs))]


def lines_of(*lengths: int) -> str:
    return "\n".join("x" * n for n in lengths) + "\n"


@pytest.mark.parametrize("rule,docs,expected", [
    # mean line length 99 / 100 / 101 (two lines each)
    ({"rule": "line_mean", "max": 100}, [lines_of(98, 100), lines_of(100, 100),
                                         lines_of(101, 101)],
     [None, None, "line_mean=101>100"]),
    ({"rule": "line_max", "max": 1000}, [lines_of(999), lines_of(1000), lines_of(1001)],
     [None, None, "line_max=1001>1000"]),
    # alpha_frac: 1 of 4 characters alphanumeric is exactly 0.25
    ({"rule": "alpha_frac", "min": 0.25}, ["a+++", "ab++", "a++++"],
     [None, None, "alpha_frac=0.2<0.25"]),
    # keyword in line 5 counts, in line 6 not; any case
    ({"rule": "autogenerated"}, ["1\n2\n3\n4\n# Auto-Generated by x\n",
                                 "1\n2\n3\n4\n5\n# autogenerated\n", "x = 1\n"],
     ["autogenerated", None, None]),
    # 100 newlines: threshold int(0.05 * 100) = 5 occurrences of "test"
    ({"rule": "config_or_test"}, ["test\n" * 5 + "x\n" * 95, "test\n" * 6 + "x\n" * 94,
                                  "# unit tests for x\n" + "y = 1\n" * 9],
     [None, "config_or_test", "config_or_test"]),
    ({"rule": "has_no_keywords"}, ["x = 1\n", "def f(): pass\n", "FOR x in y: pass\n"],
     ["has_no_keywords", None, None]),
    ({"rule": "assignments", "min": 5}, ["a=1\n" * 4, "a=1\n" * 5, "a==b\n" * 3],
     ["assignments=4<5", None, None]),
    # 3 characters per token is the threshold: "ab cd" is 5 chars / 2 tokens = 2.5
    ({"rule": "char_token_ratio", "min": 2.5}, ["ab cd", "abc de", "a b c"],
     [None, None, "char_token_ratio=1.667<2.5"]),
    ({"rule": "num_tokens", "min": 100}, ["x " * 99, "x " * 100, "x " * 101],
     ["num_tokens=99<100", None, None]),
    ({"rule": "size", "max": 1000000}, ["x" * 999_999, "x" * 1_000_000, "é" * 500_001],
     [None, None, "size=1000002>1000000"]),
])
def test_rule_thresholds(rule, docs, expected):
    assert decisions(docs, [rule]) == expected


def test_edge_cases_get_defined_results():
    docs = ["", "x" * 5_000_000, " \t \n  \n", "a = 1\r\nb = 2\rc = 3\n", "\ufeffdef f():\n  pass",
            "def größe(): return 1  # naïve\n", None, "\n\n\n"]
    rules = [{"rule": m, **({} if pa.types.is_boolean(METRICS[m].type) else {"min": -1})}
             for m in METRICS]
    assert decisions(docs, rules)[6] == "null-content"
    assert all(r is None or r == "null-content" or r in ("autogenerated", "config_or_test",
                                                         "has_no_keywords")
               for r in decisions(docs, rules))
    got = compute_metrics(pa.array([d for d in docs if d is not None], pa.large_string()),
                          {m: {} for m in METRICS})
    for i, d in enumerate(d for d in docs if d is not None):
        assert {m: got[m][i] for m in METRICS} == ref.metrics(d), repr(d[:20])
    assert got["line_max"][1] == 5_000_000 and got["line_mean"][0] == 0
    assert got["line_mean"][3] == 5.0  # three lines of 5 characters: \r\n and \r both break
    codeparrot = decisions(docs, CODEPARROT["rules"])
    assert codeparrot[0].startswith("alpha_frac=0<") and codeparrot[1].startswith("line_max")


def test_tokenizer_file_counts_its_tokens(tmp_path, real_docs):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    texts = documents(real_docs).column("content").to_pylist()[:150]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=500, show_progress=False))
    path = tmp_path / "tok.json"
    tok.save(str(path))
    got = compute_metrics(pa.array(texts, pa.large_string()), {"num_tokens": {}},
                          tokenizer=str(path))["num_tokens"]
    assert got.tolist() == [len(tok.encode(t, add_special_tokens=False).ids) for t in texts]
    assert got.tolist() != [ref.num_tokens(t) for t in texts]


@pytest.mark.parametrize("rules,message", [
    ([{"rule": "nope"}], "unknown rule 'nope'"),
    ([{"rule": "autogenerated", "max": 1}], "is a flag"),
    ([{"rule": "line_max"}], "needs `min` and/or `max`"),
    ([{"rule": "line_max", "max": 5, "probability": 0.5}], "only flag rules"),
    ([{"rule": "autogenerated", "probability": 2}], "probability must be in"),
    ([{"rule": "autogenerated", "scan_line": 3}], "unknown key scan_line .did you mean scan_lines"),
])
def test_bad_rules(rules, message):
    with pytest.raises(ConfigError, match=message):
        rl.parse(rules, "test")


def test_shipped_configs():
    for name in ("codex", "codeparrot", "polycoder", "demo"):
        spec = pipeline.stage_of(pipeline.load(str(ROOT / "pipelines" / f"{name}.toml"),
                                               files=False),
                                 "filter")
        assert rl.parse(spec.options["rules"], name)
    poly = pipeline.stage_of(pipeline.load(str(ROOT / "pipelines/polycoder.toml"), files=False),
                             "filter")
    assert {"rule": "num_tokens", "min": 100} in poly.options["rules"]


def test_filter_cli_and_stats(real_docs, tmp_path):
    from tests.conftest import run_cli

    res = run_cli("filter", str(real_docs), str(tmp_path / "f"), "--pipeline",
                  "pipelines/codex.toml", "--workers", "2", "--quiet")
    assert res.returncode == 0, res.stderr
    stats = json.loads(run_cli("stats", str(tmp_path / "f"), "--json").stdout)
    assert stats["reasons"]["line_max"]["rows"] > 0 and stats["reasons"]["line_max"]["bytes"] > 0
    assert "line_max" in res.stdout and "removed because" in res.stdout
