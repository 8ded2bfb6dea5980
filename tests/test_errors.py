"""Bad input gets one clear line and a non-zero exit, never a traceback, and before any work."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import QUERIES, run_cli


def fails(res, *phrases: str) -> None:
    assert res.returncode != 0, res.stdout
    assert "Traceback" not in res.stderr, res.stderr
    for phrase in phrases:
        assert phrase in res.stderr, res.stderr


@pytest.fixture
def tables_copy(site_tables, tmp_path) -> Path:
    dst = tmp_path / "tables"
    shutil.copytree(site_tables, dst)
    return dst


def extract(tables: Path, out: Path, *extra: str):
    return run_cli("extract", "--tables", str(tables), "--query",
                   str(QUERIES / "github_python.sql"), "--out", str(out), "--workers", "1",
                   *extra)


def test_missing_table(tables_copy, tmp_path):
    (tables_copy / "licenses.parquet").unlink()
    res = extract(tables_copy, tmp_path / "out")
    fails(res, "missing table 'licenses'", "licenses.parquet")
    assert not (tmp_path / "out").exists()


def test_table_as_folder_and_other_files_are_fine(tables_copy, tmp_path):
    (tables_copy / "licenses").mkdir()
    (tables_copy / "licenses.parquet").rename(tables_copy / "licenses" / "part-0.parquet")
    (tables_copy / "README.txt").write_text("notes")
    res = extract(tables_copy, tmp_path / "out", "--dry-run")
    assert res.returncode == 0, res.stderr


def test_wrong_column_types(tables_copy, tmp_path):
    t = pq.read_table(tables_copy / "contents.parquet")
    t = t.set_column(t.schema.get_field_index("size"), "size",
                     t.column("size").cast(pa.string()))
    pq.write_table(t, tables_copy / "contents.parquet")
    fails(extract(tables_copy, tmp_path / "out"),
          "table 'contents'", "column 'size' is string, expected INT64")


def test_missing_column(tables_copy, tmp_path):
    t = pq.read_table(tables_copy / "files.parquet").drop_columns(["path"])
    pq.write_table(t, tables_copy / "files.parquet")
    fails(extract(tables_copy, tmp_path / "out"), "table 'files'", "missing column 'path'")


def test_unreadable_parquet(tables_copy, tmp_path):
    (tables_copy / "files.parquet").write_bytes(b"this is not parquet" * 10)
    fails(extract(tables_copy, tmp_path / "out"), "cannot read Parquet file",
          "files.parquet")


def test_unknown_and_missing_parameters(site_tables, tmp_path):
    fails(extract(site_tables, tmp_path / "out", "--param", "min_sise=10"),
          "unknown parameter @min_sise", "declares: max_size, min_size")
    fails(extract(site_tables, tmp_path / "out", "--param", "min_size=ten"),
          "parameter @min_size (INT64)")
    query = tmp_path / "q.sql"
    query.write_text("-- @param lang STRING\nSELECT f.id FROM "
                     "`bigquery-public-data.github_repos.files` f WHERE f.path = @lang")
    res = run_cli("extract", "--tables", str(site_tables), "--query", str(query), "--dry-run")
    fails(res, "needs parameter @lang (STRING)")
    query.write_text("SELECT f.id FROM `bigquery-public-data.github_repos.files` f "
                     "WHERE f.path = @undeclared")
    fails(run_cli("extract", "--tables", str(site_tables), "--query", str(query), "--dry-run"),
          "uses @undeclared without declaring it")


def test_bad_queries(site_tables, tmp_path):
    query = tmp_path / "q.sql"
    query.write_text("SELEC f.id FROM files f")
    fails(run_cli("extract", "--tables", str(site_tables), "--query", str(query), "--dry-run"),
          "does not parse as BigQuery SQL")
    query.write_text("SELECT f.id, f.path FROM `bigquery-public-data.github_repos.files` f")
    fails(run_cli("extract", "--tables", str(site_tables), "--query", str(query), "--dry-run"),
          "missing column 'content'", "missing column 'license'")
    query.write_text("SELECT * FROM `bigquery-public-data.samples.shakespeare`")
    fails(run_cli("extract", "--tables", str(site_tables), "--query", str(query), "--dry-run"),
          "reads table bigquery-public-data.samples.shakespeare")
    query.write_text("DELETE FROM `bigquery-public-data.github_repos.files` WHERE TRUE")
    fails(run_cli("extract", "--tables", str(site_tables), "--query", str(query), "--dry-run"),
          "only SELECT queries")
    fails(run_cli("extract", "--tables", str(site_tables), "--query", str(tmp_path / "no.sql"),
                  "--dry-run"), "cannot read query")


def test_other_bad_inputs(tmp_path):
    fails(run_cli("stats", str(tmp_path / "nothing")), "no such dataset directory")
    fails(run_cli("extract", "--tables", str(tmp_path / "none"), "--query",
                  str(QUERIES / "github_python.sql"), "--dry-run"), "does not exist")
    fails(run_cli("github-tables", "--out", str(tmp_path / "t")), "nothing to read")
    fails(run_cli("github-tables", "--site-packages", "--include", "no-such-package-xyz",
                  "--out", str(tmp_path / "t")), "no repositories found")
    bad = tmp_path / "bad.toml"
    bad.write_text("[pipeline\n")
    fails(run_cli("run", str(bad)), "is not valid TOML")
    bad.write_text('[pipeline]\noutput = "x"\n[[stages]]\nname = "a"\nkind = "teleport"\n')
    fails(run_cli("run", str(bad)), "unknown kind 'teleport'")
    bad.write_text('[pipeline]\noutput = "x"\n[[stages]]\nname = "a"\nkind = "github-tables"\n'
                   'site_packages = true\nsite_pakages = true\n')
    fails(run_cli("run", str(bad)), "unknown option site_pakages")
    res = run_cli("extract", "--tables", "x", "--query", "y")
    assert res.returncode == 2 and "--out is required" in res.stderr
