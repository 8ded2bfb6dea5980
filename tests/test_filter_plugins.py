"""Filters over the table: a metric from outside corpus/ (tests/extra_filters.py) added with one
config line, thresholds per language and per extension, each checked against an independent
per-document computation on real files; and the config errors, one line each."""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from corpus import stage_options
from corpus.errors import ConfigError, InputError
from corpus.extract.duckdb_job import ExtractJob, ExtractOptions
from corpus.filters import reference as ref
from corpus.filters import registry
from corpus.filters import rules as rl
from corpus.filters.metrics import METRICS
from corpus.filters.stage import RuleSpec, apply_rules, compute_metrics
from corpus.github.build import GithubTablesJob, GithubTablesOptions
from corpus.io import DatasetDir
from tests import extra_filters
from tests.conftest import QUERIES, run_cli

PLUGIN = "tests.extra_filters:comment_frac"


@pytest.fixture(scope="module")
def code(engine, tmp_path_factory) -> Path:
    """Python, JavaScript and C files of installed packages, as an extracted dataset."""
    root = tmp_path_factory.mktemp("plugins")
    engine.run(GithubTablesJob(GithubTablesOptions(site_packages=True,
                                                   include=["rich", "bokeh", "numpy"]),
                               DatasetDir(str(root / "tables"))))
    engine.run(ExtractJob(ExtractOptions(str(QUERIES / "github_multilang.sql"),
                                         str(root / "tables"), params={"min_size": 0},
                                         partition_bytes=4 << 20),
                          DatasetDir(str(root / "raw"))))
    return root / "raw"


def rows(path: Path) -> list[dict]:
    return pq.read_table(sorted((path / "data").glob("part-*.parquet"))).to_pylist()


def test_plugin_metric_through_corpus_filter_with_one_config_line(code, tmp_path):
    config = tmp_path / "p.toml"
    config.write_text(f'''[pipeline]
output = "{tmp_path / "out"}"

[[stages]]
name = "filtered"
kind = "filter"
input = "{code}"
rules = [{{ rule = "{PLUGIN}", max = 0.3 }}]
''')
    out = tmp_path / "f"
    res = run_cli("filter", str(code), str(out), "--pipeline", str(config), "--workers", "2",
                  "--quiet")
    assert res.returncode == 0, res.stderr
    docs = rows(code)
    want = {(r["repo_name"], r["path"]): extra_filters.reference(r) for r in docs}
    removed = pq.read_table(out / "removed").to_pylist()
    assert {(r["repo_name"], r["path"]) for r in removed} == {k for k, v in want.items()
                                                              if v > 0.3}
    assert all(r["reason"].startswith("comment_frac=") and r["reason"].endswith(">0.3")
               for r in removed)
    kept = pq.read_table(sorted((out / "data").glob("part-*.parquet")))
    got = dict(zip(zip(kept.column("repo_name").to_pylist(), kept.column("path").to_pylist(),
                       strict=True), kept.column("comment_frac").to_pylist(), strict=True))
    assert got == {k: v for k, v in want.items() if v <= 0.3}, "the metric stays as a column"
    assert 0 < len(removed) < len(docs) and any(0 < v <= 0.3 for v in got.values())
    stats = json.loads(run_cli("stats", str(out), "--json").stdout)
    assert stats["reasons"]["comment_frac"]["rows"] == len(removed)


def test_every_metric_with_a_twin_equals_it_on_real_files(code):
    t = pq.read_table(sorted((code / "data").glob("part-*.parquet")))
    wanted = {m: {} for m in METRICS} | {PLUGIN: {}}
    got = compute_metrics(t, wanted)
    only_js = compute_metrics(t, {PLUGIN: {"markers": {"js": "//"}}})[PLUGIN]
    for i, row in enumerate(t.to_pylist()):
        for name in wanted:
            m = registry.resolve(name)
            assert m.reference is not None
            assert got[name][i] == m.reference(row), (name, row["path"])
        assert only_js[i] == extra_filters.reference(row, markers={"js": "//"})
    assert {r["language"] for r in t.to_pylist()} >= {"Python", "JavaScript", "C"}


def thresholds_by(row: dict, by: str, table: dict[str, int]) -> int | None:
    return table.get(ref.group_of(row, by), table.get("*"))


@pytest.mark.parametrize(("by", "table"), [
    ("language", {"Python": 120, "javascript": 2000, "*": 100}),
    ("extension", {"py": 150, ".JS": 3000}),  # no "*": other extensions are not bounded
])
def test_thresholds_per_group_on_real_code(code, by, table):
    t = pq.read_table(sorted((code / "data").glob("part-*.parquet")))
    rules = rl.parse([{"rule": "line_max", "by": by, "max": table}], "test")
    kept, removed = apply_rules(t, rules)
    normalized = {k.lower().removeprefix(".") if k != "*" else k: v for k, v in table.items()}
    want = {}
    for row in t.to_pylist():
        limit = thresholds_by(row, by, normalized)
        value = ref.line_max(row["content"])
        if limit is not None and value > limit:
            want[row["path"]] = f"line_max={value}>{limit} ({by}={ref.group_of(row, by) or 'none'})"
    got = dict(zip(removed.column("path").to_pylist(), removed.column("reason").to_pylist(),
                   strict=True))
    assert got == want and kept.num_rows + removed.num_rows == t.num_rows
    groups = {r.split(f"({by}=")[1].rstrip(")") for r in got.values()}
    assert len(groups) >= 2, "more than one group has removals"


def test_a_grouped_rule_needs_its_column():
    t = pa.table({"id": ["a"], "path": ["x.py"], "content": ["x = 1\n"]})
    rules = rl.parse([{"rule": "line_max", "by": "language", "max": {"python": 1}}], "test")
    with pytest.raises(InputError, match="reads column language"):
        apply_rules(t, rules)


@pytest.mark.parametrize(("rule", "message"), [
    ({"rule": "line_max", "by": "license", "max": {"mit": 3}},
     'rules #1.by: expected one of "language", "extension"'),
    ({"rule": "line_max", "max": {"python": 3}}, "a table of thresholds needs `by"),
    ({"rule": "line_max", "by": "language", "max": 3}, "needs min or max as a table"),
    ({"rule": "line_max", "by": "language", "max": {"python": "3"}},
     "rules #1.max.python: expected a number"),
    ({"rule": "line_max", "by": "extension", "max": {"py": 3, ".py": 4}}, "the same extension"),
    ({"rule": "line_max", "min": 10, "max": 5}, "min 10 > max 5"),
    ({"rule": "line_max", "by": "language", "min": {"*": 10}, "max": {"python": 5}},
     "min 10 > max 5 for language python"),
    ({"rule": "autogenerated", "by": "language"}, "is a flag"),
    ({"rule": "tests.extra_filters:nope", "max": 1}, "tests.extra_filters has no 'nope'"),
    ({"rule": "tests.no_such_module:f", "max": 1}, "cannot import tests.no_such_module"),
    ({"rule": "tests.extra_filters:not_a_metric", "max": 1}, "is not declared with @metric"),
    ({"rule": PLUGIN, "max": 1, "markers": 3}, "rules #1.markers: expected a table"),
    ({"rule": PLUGIN, "max": 1, "marker": {}}, "unknown key marker (did you mean markers?"),
    ({"rule": PLUGIN, "metric": PLUGIN, "max": 1}, "give `rule` or `metric`"),
])
def test_config_errors_are_one_line(rule, message):
    with pytest.raises(ConfigError) as e:
        stage_options.parse("filter", {"rules": [rule]}, 'stage "f" (filter)')
    text = str(e.value)
    assert message in text and "\n" not in text and text.startswith('stage "f" (filter): ')


def test_metric_is_a_synonym_of_rule_and_a_plugin_counts_once():
    a = rl.parse([{"metric": PLUGIN, "max": 0.5}, {"rule": "line_max", "max": 9}], "t")
    assert a[0].metric == "comment_frac" and a[0].source == PLUGIN and not a[0].is_flag
    with pytest.raises(ConfigError, match="appears twice with other options"):
        rl.parse([{"rule": PLUGIN, "max": 0.5}, {"rule": PLUGIN, "min": 0.1,
                                                  "markers": {"py": "#"}}], "t")


@pytest.mark.parametrize(("option", "message"), [
    ({"scan_lines": 0}, "rules #1.scan_lines: must be at least 1, got the integer 0"),
    ({"coeff": "0.1"}, "rules #1.coeff: expected a number, got the string"),
    ({"keywords": "test"}, "rules #1.keywords: expected"),
])
def test_rule_options_are_checked_from_the_metrics_signature(option, message):
    """A metric's keyword parameters are its options, their annotations the checks: RuleSpec
    lists no option of its own, so the two cannot drift."""
    assert set(RuleSpec.__annotations__) == {"rule", "metric", "min", "max", "by", "probability"}
    assert "scan_lines" in inspect.signature(METRICS["config_or_test"].fn).parameters
    with pytest.raises(ConfigError, match=re.escape(message)):
        stage_options.parse("filter", {"rules": [{"rule": "config_or_test", **option}]}, "t")
