"""`corpus run`: relative paths of a config are relative to its file; --dry-run prints the
plan and writes nothing; --only / --from run what they name; the run ends with one table."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import QUERIES, ROOT

#: every path relative to the config's folder: the root, the query, the second config's input
CONFIG = """
[pipeline]
output = "out"

[[stages]]
name = "tables"
kind = "github-tables"
site_packages = true
include = ["idna", "certifi"]

[[stages]]
name = "raw"
kind = "extract"
input = "tables"
query = "queries/python.sql"

[[stages]]
name = "filtered"
kind = "filter"
input = "raw"
rules = [{{ rule = "line_max", max = {line_max} }}]

[[stages]]
name = "deduped"
kind = "dedup"
input = "filtered"
method = "exact"
"""

#: a second config reading the first one's output by a path relative to its own folder
SECOND = """
[pipeline]
output = "../second"

[[stages]]
name = "scrubbed"
kind = "scrub"
input = "../conf/out/raw"
"""

STAGES = ("tables", "raw", "filtered", "deduped")
COLUMNS = ("stage", "kind", "rows in", "→ kept", "bytes", "seconds", "MB/s/core")


def corpus(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The command from another directory than the configs' (the repository code on the
    path, as the fixtures' run_cli has it)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get(
        "PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "corpus", *args, "--workers", "1", "--quiet"],
                          capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


def manifest(path: Path) -> dict:
    return json.loads((path / "manifest.json").read_text())


def table(stdout: str) -> dict[str, list[str]]:
    """The final table's rows by stage (its words), checking its header."""
    lines = stdout.splitlines()
    head = next(i for i, line in enumerate(lines) if line.split()[:1] == ["stage"])
    assert all(c in lines[head] for c in COLUMNS), lines[head]
    return {line.split()[0]: line.split() for line in lines[head + 1:]
            if line.split() and line.split()[0] in {*STAGES, "scrubbed"}}


def files(root: Path) -> dict[str, float]:
    return {str(p.relative_to(root)): p.stat().st_mtime for p in root.rglob("*")}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A config in conf/, run from elsewhere/: everything lands next to the config."""
    base = tmp_path_factory.mktemp("run")
    conf, elsewhere = base / "conf", base / "elsewhere"
    (conf / "queries").mkdir(parents=True)
    elsewhere.mkdir()
    shutil.copy(QUERIES / "github_python.sql", conf / "queries" / "python.sql")
    (conf / "p.toml").write_text(CONFIG.format(line_max=1000))
    res = corpus(elsewhere, "run", str(conf / "p.toml"))
    assert res.returncode == 0, res.stderr
    return {"base": base, "conf": conf, "elsewhere": elsewhere, "first": res}


def test_relative_paths_resolve_from_the_config_folder(run):
    conf, elsewhere = run["conf"], run["elsewhere"]
    assert list(elsewhere.iterdir()) == []  # nothing under the cwd
    for name in STAGES:
        assert manifest(conf / "out" / name)["complete"], name
    assert manifest(conf / "out" / "raw")["rows"] > 0
    (conf / "second.toml").write_text(SECOND)
    res = corpus(elsewhere, "run", "../conf/second.toml")  # a relative config path too
    assert res.returncode == 0, res.stderr
    scrubbed = manifest(run["base"] / "second" / "scrubbed")
    assert scrubbed["complete"] and scrubbed["rows_in"] == manifest(conf / "out" / "raw")["rows"]
    assert list(elsewhere.iterdir()) == []


def test_the_run_ends_with_one_table_not_per_stage_dumps(run):
    first = run["first"].stdout
    rows = table(first)
    assert list(rows) == list(STAGES)
    raw, deduped = manifest(run["conf"] / "out" / "raw"), manifest(run["conf"] / "out" / "deduped")
    assert rows["raw"][2:4] == [f"{raw['rows_in']:,}", f"{raw['rows']:,}"]
    assert rows["deduped"][3] == f"{deduped['rows']:,}"
    for words in rows.values():
        assert words[-1] == "computed", words
        assert float(words[-2]) > 0 and float(words[-3]) >= 0  # MB/s/core, seconds
    # the header, a row per stage, where the outputs are, the report: no stats per stage
    assert len(first.splitlines()) == 1 + len(STAGES) + 2, first
    assert "over all runs" not in first  # the last line of a stage's stats
    again = corpus(run["elsewhere"], "run", str(run["conf"] / "p.toml"))
    assert again.returncode == 0, again.stderr
    assert all(words[-3:] == ["up", "to", "date"] for words in table(again.stdout).values())


def test_dry_run_prints_the_plan_and_writes_nothing(run, tmp_path):
    conf = run["conf"]
    config = tmp_path / "changed.toml"  # same root, the filter changed
    config.write_text(CONFIG.format(line_max=500).replace('"out"', f'"{conf / "out"}"')
                      .replace('"queries/', f'"{conf}/queries/'))
    before = files(conf)
    res = corpus(run["elsewhere"], "run", str(config), "--dry-run")
    assert res.returncode == 0, res.stderr
    status = {line.split()[0]: line.split()[-1] for line in res.stdout.splitlines()
              if line.split()[:1] and line.split()[0] in STAGES}
    assert status == {"tables": "date", "raw": "date", "filtered": "run", "deduped": "run"}
    assert res.stdout.count("up to date") == 2 and res.stdout.count("will run") == 2
    assert "dry run: 2 of 4 stages would run" in res.stdout
    assert files(conf) == before
    fresh = tmp_path / "fresh.toml"
    fresh.write_text(CONFIG.format(line_max=1000).replace('"queries/', f'"{conf}/queries/'))
    res = corpus(run["elsewhere"], "run", str(fresh), "--dry-run")
    assert res.returncode == 0 and res.stdout.count("will run") == 4, res.stdout
    assert not (tmp_path / "out").exists()


def test_only_and_from_run_what_they_name(run):
    conf, out = run["conf"], run["conf"] / "out"
    (conf / "p.toml").write_text(CONFIG.format(line_max=400))
    old = {n: manifest(out / n) for n in STAGES}
    res = corpus(run["elsewhere"], "run", str(conf / "p.toml"), "--only", "filtered")
    assert res.returncode == 0, res.stderr
    assert list(table(res.stdout)) == ["filtered"]
    new = {n: manifest(out / n) for n in STAGES}
    assert new["filtered"]["fingerprint"] != old["filtered"]["fingerprint"]
    assert {n: new[n] for n in ("tables", "raw", "deduped")} == \
        {n: old[n] for n in ("tables", "raw", "deduped")}  # deduped: stale, not run
    res = corpus(run["elsewhere"], "run", str(conf / "p.toml"), "--from", "deduped")
    assert res.returncode == 0, res.stderr
    assert list(table(res.stdout)) == ["deduped"]
    assert manifest(out / "deduped")["fingerprint"] != old["deduped"]["fingerprint"]
    assert manifest(out / "deduped")["rows_in"] == manifest(out / "filtered")["rows"]
    res = corpus(run["elsewhere"], "run", str(conf / "p.toml"), "--only", "nope")
    assert res.returncode == 1 and "no stage named 'nope' (stages: tables, raw, filtered, " \
        "deduped)" in res.stderr
