"""`corpus extract --engine duckdb`: the transpiled BigQuery SQL against the same join and
predicates computed in plain Python over the same tables."""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from corpus.errors import ConfigError
from corpus.extract import template
from corpus.extract.duckdb_job import ExtractJob, ExtractOptions, id_bounds
from corpus.io import DatasetDir
from tests.conftest import QUERIES, parquet_files, run_cli

POLYCODER = {  # extension -> language, written out independently of the SQL
    ".c": "C", ".h": "C", ".cs": "C#", ".cpp": "C++", ".cc": "C++", ".cxx": "C++", ".c++": "C++",
    ".hpp": "C++", ".hh": "C++", ".hxx": "C++", ".h++": "C++", ".go": "Go", ".java": "Java",
    ".js": "JavaScript", ".php": "PHP", ".py": "Python", ".rb": "Ruby", ".rs": "Rust",
    ".scala": "Scala", ".ts": "TypeScript",
}


def python_join(tables: Path, keep_file, lo: int, hi: int) -> dict[tuple[str, str], dict]:
    """files ⨝ contents ⨝ licenses, NOT binary, size in [lo, hi], keep_file(path): in Python."""
    contents = {r["id"]: r for r in pq.read_table(tables / "contents.parquet").to_pylist()}
    licenses = {r["repo_name"]: r["license"]
                for r in pq.read_table(tables / "licenses.parquet").to_pylist()}
    out = {}
    for f in pq.read_table(tables / "files.parquet").to_pylist():
        c = contents.get(f["id"])
        if c is None or f["repo_name"] not in licenses or c["binary"]:
            continue
        if lo <= c["size"] <= hi and keep_file(f["path"]):
            out[(f["repo_name"], f["path"])] = {
                "id": f["id"], "copies": c["copies"], "size": c["size"],
                "content": c["content"], "license": licenses[f["repo_name"]]}
    return out


def extract(engine, tables: Path, out: Path, query: str, params=None, partition_bytes=1 << 20):
    job = ExtractJob(ExtractOptions(query=str(QUERIES / query), tables=str(tables),
                                    params=params or {}, partition_bytes=partition_bytes),
                     DatasetDir(str(out)))
    manifest = engine.run(job)
    rows = [r for p in sorted(out.glob("data/part-*.parquet"))
            for r in pq.read_table(p).to_pylist()]
    return job, manifest, rows


def test_python_query_equals_plain_python(engine, site_tables, tmp_path):
    job, manifest, rows = extract(engine, site_tables, tmp_path / "py", "github_python.sql")
    expected = python_join(site_tables, lambda p: p.endswith(".py"), 1024, 1048575)
    got = {(r["repo_name"], r["path"]): r for r in rows}
    assert len(got) == len(rows), "a file came out twice"
    assert set(got) == set(expected)
    assert len(expected) > 200
    for key, e in expected.items():
        g = got[key]
        assert {k: g[k] for k in e} == e, key
        assert g["language"] == "Python"
    assert manifest["rows"] == len(rows) == job.plan().rows


def test_multilang_query_fills_language(engine, site_tables, tmp_path):
    _, _, rows = extract(engine, site_tables, tmp_path / "ml", "github_multilang.sql")

    def ext(path: str) -> str | None:
        name = path.rsplit("/", 1)[-1]
        return "." + name.rsplit(".", 1)[1].lower() if "." in name else None

    expected = python_join(site_tables, lambda p: ext(p) in POLYCODER, 0, 1048575)
    got = {(r["repo_name"], r["path"]): r["language"] for r in rows}
    assert set(got) == set(expected)
    assert all(lang == POLYCODER[ext(path)] for (_, path), lang in got.items())
    assert len({lang for lang in got.values()}) >= 2, "the corpus has Python and more"


def test_parameters_change_the_result(engine, site_tables, tmp_path):
    _, _, rows = extract(engine, site_tables, tmp_path / "big", "github_python.sql",
                         params={"min_size": "20000", "max_size": 60000})
    expected = python_join(site_tables, lambda p: p.endswith(".py"), 20000, 60000)
    assert {(r["repo_name"], r["path"]) for r in rows} == set(expected)
    assert len(expected) > 0


def test_partitions_are_id_ranges_sorted_and_complete(engine, site_tables, tmp_path):
    out = tmp_path / "parts"
    job, manifest, _ = extract(engine, site_tables, out, "github_python.sql",
                               partition_bytes=256 * 1024)
    n = job.plan().partitions
    assert n >= 8 and manifest["partitions_total"] == n
    bounds = ["", *id_bounds(n), "g"]
    total = 0
    for i in range(n):
        t = pq.read_table(out / "data" / f"part-{i:05d}.parquet").to_pylist()
        ids = [r["id"] for r in t]
        assert all(bounds[i] <= x < bounds[i + 1] for x in ids)
        keys = [(r["id"], r["repo_name"], r["path"]) for r in t]
        assert keys == sorted(keys)
        total += len(t)
    assert total == job.plan().rows
    content = [p["content_bytes"] for p in manifest["partitions"]]
    assert max(content) < 4 * 256 * 1024, "sha1 ranges should balance partitions"


def test_dry_run_prints_sql_and_estimate_and_writes_nothing(site_tables, tmp_path):
    out = tmp_path / "never"
    res = run_cli("extract", "--tables", str(site_tables), "--query",
                  str(QUERIES / "github_python.sql"), "--out", str(out), "--dry-run")
    assert res.returncode == 0, res.stderr
    assert "SELECT" in res.stdout and "1048575" in res.stdout
    # `binary` is a type name in DuckDB: sqlglot quotes it or not depending on its version
    # (bqemulator pins sqlglot < 30.12); DuckDB accepts both, the estimate below proves it ran
    assert re.search(r'NOT c\."?binary"?', res.stdout)
    expected = python_join(site_tables, lambda p: p.endswith(".py"), 1024, 1048575)
    assert f"estimate: {len(expected):,} rows" in res.stderr
    assert not out.exists()


def test_extract_cli_end_to_end_matches_library(engine, site_tables, tmp_path):
    lib, cli = tmp_path / "lib", tmp_path / "cli"
    extract(engine, site_tables, lib, "github_python.sql", partition_bytes=2 << 20)
    res = run_cli("extract", "--engine", "duckdb", "--tables", str(site_tables), "--query",
                  str(QUERIES / "github_python.sql"), "--param", "min_size=1024", "--out",
                  str(cli), "--partition-size", "2MiB", "--workers", "1", "--quiet")
    assert res.returncode == 0, res.stderr
    assert parquet_files(lib) == parquet_files(cli)
    assert "Python" in res.stdout  # the stats printed after the run


def test_template_declarations():
    t = template.load(str(QUERIES / "github_multilang.sql"))
    assert t.params["extensions"].type == "ARRAY<STRING>"
    assert ".py" in t.params["extensions"].default
    assert template.bind(t, {"extensions": ".py,.rs"})["extensions"] == [".py", ".rs"]
    assert template.bind(t, {"extensions": '[".go"]'})["extensions"] == [".go"]
    assert template.bind(t, {"min_size": "2_048"})["min_size"] == 2048
    with pytest.raises(ConfigError, match=r"parameter @min_size \(INT64\)"):
        template.bind(t, {"min_size": "big"})


def test_fsspec_urls_for_tables_and_output(engine, site_tables, tmp_path):
    plain, url = tmp_path / "plain", tmp_path / "url"
    extract(engine, site_tables, plain, "github_python.sql", partition_bytes=4 << 20)
    job = ExtractJob(ExtractOptions(query=str(QUERIES / "github_python.sql"),
                                    tables=f"file://{site_tables}", partition_bytes=4 << 20),
                     DatasetDir(f"file://{url}"))
    engine.run(job)
    assert parquet_files(plain) == parquet_files(url)
