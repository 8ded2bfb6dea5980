"""Every shipped pipeline config runs end to end on the embedded default (this environment's
installed packages as GitHub-shaped tables), each on a small include list: every stage
completes, every stage accounts for its input (kept + removed = the rows it read), and the
published steps are the ones that ran (the dedup normal form, the license requirement)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from corpus import pipeline
from tests.conftest import QUERIES, ROOT, run_cli

#: demo.toml runs in the newcomer test, ablation-near-dedup.toml in test_eval_compare.py
CONFIGS = sorted(p for p in (ROOT / "pipelines").glob("*.toml")
                 if p.stem not in ("demo", "ablation-near-dedup"))
INCLUDE = ["idna", "certifi", "click"]


def small(config: Path, out: Path) -> Path:
    """The config with its tables on INCLUDE, its output under out, its paths absolute."""
    text = config.read_text()
    assert text.count("site_packages = true") == 1, config
    text = text.replace("site_packages = true",
                        f"site_packages = true\ninclude = {json.dumps(INCLUDE)}")
    text = text.replace('"../queries/', f'"{QUERIES}/')
    text = re.sub(r'^output = ".*"$', f'output = "{out}"', text, count=1, flags=re.M)
    path = out.parent / f"{config.stem}.toml"
    path.write_text(text)
    return path


def manifest(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text())


@pytest.mark.slow
@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.stem)
def test_shipped_config_runs_end_to_end(config, tmp_path):
    out = tmp_path / "out"
    path = small(config, out)
    r = run_cli("run", str(path), "--workers", "1", timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    p = pipeline.load(str(path))
    rows_of: dict[str, int] = {}
    for s in p.stages:
        m = manifest(out / s.name)
        assert m["complete"], s.name
        if s.kind in ("github-tables", "tokenizer"):
            continue
        assert m["rows"] + m["removed"] == m["rows_in"], s.name
        if s.input in rows_of:
            assert m["rows_in"] == rows_of[s.input], f"{s.name} read all of {s.input}"
        rows_of[s.name] = m["rows"]
        kept = sum(pq.ParquetFile(f).metadata.num_rows for f in (out / s.name).glob(
            "data/part-*.parquet"))
        assert kept == m["rows"], s.name
    first = next(s for s in p.stages if s.kind == "extract")
    assert rows_of[first.name] > 20, "the small include list still gives documents"
    dedups = [s for s in p.stages if s.kind == "dedup" and s.options.get("method") == "exact"]
    expected = {"gpt-cc": {"variables": True}, "alphacode": {"ignore_whitespace": True},
                "codeparrot-clean": {"ignore_whitespace": True}, "codex": {}}
    if config.stem in expected:
        (d,) = dedups
        cfg = manifest(out / d.name)["config"]
        assert {k: cfg[k] for k in ("ignore_whitespace", "variables")} == {
            "ignore_whitespace": False, "variables": False, **expected[config.stem]}
    kinds = [s.kind for s in p.stages]
    if config.stem in ("polycoder", "alphacode", "codeparrot-clean", "gpt-cc"):
        assert "licenses" not in kinds, "as published: no license stage"
    if config.stem == "codeparrot-clean":
        assert "scrub" not in kinds and "decontaminate" not in kinds


def test_unlicensed_repositories_stay_when_licensed_is_false(engine, site_tables, tmp_path):
    # PolyCoder and AlphaCode had no license requirement: with one repository taken out of
    # `licenses`, its files are extracted (license NULL) with licensed = false, and not with
    # the default
    import shutil

    import pyarrow.compute as pc

    from corpus.extract.duckdb_job import ExtractJob, ExtractOptions
    from corpus.io import DatasetDir

    tables = tmp_path / "tables"
    tables.mkdir()
    for name in ("files", "contents"):
        shutil.copy(site_tables / f"{name}.parquet", tables)
    lic = pq.read_table(site_tables / "licenses.parquet")
    gone = lic.column("repo_name")[0].as_py()
    pq.write_table(lic.filter(pc.not_equal(lic["repo_name"], gone)), tables / "licenses.parquet")
    got = {}
    for licensed in (True, False):
        out = tmp_path / f"x{licensed}"
        engine.run(ExtractJob(ExtractOptions(str(QUERIES / "github_multilang.sql"), str(tables),
                                             params={"licensed": licensed}),
                              DatasetDir(str(out))))
        got[licensed] = pq.read_table(sorted(out.glob("data/part-*.parquet"))).to_pylist()
    of_gone = [r for r in got[False] if r["repo_name"] == gone]
    assert of_gone and all(r["license"] is None for r in of_gone)
    assert not [r for r in got[True] if r["repo_name"] == gone]
    assert len(got[False]) == len(got[True]) + len(of_gone)
