"""`corpus run`: stages in order, each in its own folder; finished stages are reused, changed
ones recomputed; the shipped demo config runs end to end."""

from __future__ import annotations

import json
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
    assert f"outputs under {out}" in res.stdout and "Python" in res.stdout
    tables, python = manifest(out / "tables"), manifest(out / "python")
    assert tables["complete"] and python["complete"] and python["rows"] > 0
    assert python["input"] == str(out / "tables")

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


@pytest.mark.slow
def test_demo_pipeline_runs(tmp_path):
    res = run_cli("run", "pipelines/demo.toml", "--output", str(tmp_path / "demo"), "--quiet",
                  timeout=600)
    assert res.returncode == 0, res.stderr
    python = manifest(tmp_path / "demo" / "raw-python")
    multi = manifest(tmp_path / "demo" / "raw-multilang")
    assert python["rows"] > 1000 and python["languages"] == {"Python": python["rows"]}
    assert len(multi["languages"]) >= 2
    assert "outputs under" in res.stdout
