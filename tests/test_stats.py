"""`corpus stats`: the figures equal what reading the Parquet files directly gives."""

from __future__ import annotations

import json
import shutil
from collections import Counter

import pyarrow.parquet as pq
import pytest

from corpus.extract.duckdb_job import ExtractJob, ExtractOptions
from corpus.io import DatasetDir
from tests.conftest import QUERIES, run_cli


@pytest.fixture(scope="module")
def multilang(engine, site_tables, tmp_path_factory):
    out = tmp_path_factory.mktemp("ml")
    engine.run(ExtractJob(ExtractOptions(str(QUERIES / "github_multilang.sql"),
                                         str(site_tables), partition_bytes=1 << 20),
                          DatasetDir(str(out))))
    return out


def stats_json(path) -> dict:
    res = run_cli("stats", str(path), "--json")
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def direct(path) -> dict:
    t = pq.read_table(sorted(path.glob("data/part-*.parquet")))
    return {"rows": t.num_rows,
            "languages": Counter(t.column("language").to_pylist()),
            "licenses": Counter(t.column("license").to_pylist()),
            "content_bytes": sum(len(c.encode()) for c in t.column("content").to_pylist())}


def test_stats_from_manifest(multilang):
    s, d = stats_json(multilang), direct(multilang)
    assert s["rows"] == d["rows"] and s["removed"] == 0 and s["rows_in"] == d["rows"]
    assert Counter(s["languages"]) == d["languages"]
    assert Counter(s["licenses"]) == d["licenses"]
    assert s["content_bytes"] == d["content_bytes"]
    assert s["bytes"] == sum(p.stat().st_size for p in multilang.glob("data/part-*.parquet"))
    assert s["stage"] == "extract" and s["complete"]


def test_stats_without_manifest(multilang, tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    for p in multilang.glob("data/part-*.parquet"):
        shutil.copy(p, plain / p.name)
    s, d = stats_json(plain), direct(multilang)
    assert s["rows"] == d["rows"]
    assert Counter(s["languages"]) == d["languages"]
    assert Counter(s["licenses"]) == d["licenses"]
    assert s["content_bytes"] == d["content_bytes"]  # from the size column


def test_stats_of_tables(site_tables):
    s = stats_json(site_tables)
    for name in ("files", "contents", "licenses"):
        assert s["tables"][name]["rows"] == pq.read_metadata(site_tables / f"{name}.parquet") \
            .num_rows
    assert s["repos"] == s["tables"]["licenses"]["rows"] + s["unlicensed_repos"]
    res = run_cli("stats", str(site_tables))
    assert res.returncode == 0 and "contents" in res.stdout and "apache-2.0" in res.stdout
