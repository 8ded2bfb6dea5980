"""Repository selection as GPT-Code-Clippy and PolyCoder published it, over a SEART-shaped
export of the test corpus's repositories: the queries' row sets equal a plain-Python
evaluation of the same criteria over the same tables, on DuckDB and on the BigQuery emulator.

The code is real (installed distributions); the metadata is not (no stars exist for them
offline): each repository's stars, commits, fork flag, license and main language come from a
hash of its name, chosen so that every criterion both admits and rejects repositories."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from corpus import schema
from corpus.errors import InputError
from corpus.extract.duckdb_job import ExtractJob, ExtractOptions
from corpus.github import repos as repo_list
from corpus.github.build import GithubTablesJob, GithubTablesOptions
from corpus.io import DatasetDir
from tests.conftest import DISTS, QUERIES

SEART = ["name", "isFork", "commits", "branches", "defaultBranch", "releases", "contributors",
         "license", "watchers", "stargazers", "forks", "size", "createdAt", "pushedAt",
         "updatedAt", "homepage", "mainLanguage", "totalIssues", "openIssues"]
LICENSE_NAMES = {"mit": "MIT License", "apache-2.0": "Apache License 2.0",
                 "bsd-3-clause": 'BSD 3-Clause "New" or "Revised" License'}
#: PolyCoder's languages by extension, as the paper's 12 languages are spelled by GitHub
EXT = {".c": "C", ".h": "C", ".cs": "C#", **dict.fromkeys(
    [".cpp", ".cc", ".cxx", ".c++", ".hpp", ".hh", ".hxx", ".h++"], "C++"), ".go": "Go",
    ".java": "Java", ".js": "JavaScript", ".php": "PHP", ".py": "Python", ".rb": "Ruby",
    ".rs": "Rust", ".scala": "Scala", ".ts": "TypeScript"}


def _n(name: str, salt: str, mod: int) -> int:
    return int(hashlib.sha256(f"{salt}:{name}".encode()).hexdigest(), 16) % mod


def seart_export(tables: Path) -> str:
    """A SEART GitHub Search CSV of the tables' repositories, plus two it does not hold."""
    files = pq.read_table(tables / "files.parquet").to_pylist()
    lic = {r["repo_name"]: r["license"] for r in pq.read_table(tables / "licenses.parquet")
           .to_pylist()}
    names = [*sorted({f["repo_name"] for f in files}), "someone/elsewhere", "other/place"]
    out = io.StringIO()
    w = csv.DictWriter(out, SEART)
    w.writeheader()
    for name in names:
        key = lic.get(name)
        w.writerow({
            "name": name, "isFork": "true" if _n(name, "fork", 5) == 0 else "false",
            "commits": _n(name, "commits", 6), "branches": 1, "defaultBranch": "main",
            "releases": 0, "contributors": 3,
            "license": "" if _n(name, "lic", 4) == 0 else LICENSE_NAMES.get(key, "Other"),
            "watchers": 1, "stargazers": _n(name, "stars", 120), "forks": _n(name, "forks", 9),
            "size": 1000 + _n(name, "size", 5000), "createdAt": "2019-03-22T12:03:32",
            "pushedAt": "2021-10-01T08:00:00", "updatedAt": "2021-10-02T08:00:00",
            "homepage": "",
            "mainLanguage": "Python" if _n(name, "lang", 3) else "C", "totalIssues": 0,
            "openIssues": 0})
    return out.getvalue()


@pytest.fixture(scope="module")
def repo_tables(engine, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("repos")
    export = root / "seart.csv"
    plain = root / "plain"
    engine.run(GithubTablesJob(GithubTablesOptions(site_packages=True, include=DISTS),
                               DatasetDir(str(plain))))
    export.write_text(seart_export(plain))
    out = root / "tables"
    m = engine.run(GithubTablesJob(GithubTablesOptions(site_packages=True, include=DISTS,
                                                       repos=str(export)),
                                   DatasetDir(str(out))))
    assert m["repos_listed"] == {"walked": len(DISTS), "not_walked": 2,
                                 "walked_not_listed": 0}
    return out


def _tables(tables: Path) -> tuple[list[dict], dict[str, dict], dict[str, str], dict]:
    files = pq.read_table(tables / "files.parquet").to_pylist()
    contents = {r["id"]: r for r in pq.read_table(tables / "contents.parquet").to_pylist()}
    lic = {r["repo_name"]: r["license"] for r in pq.read_table(tables / "licenses.parquet")
           .to_pylist()}
    with open(tables.parent / "seart.csv", newline="") as f:
        meta = {r["name"]: r for r in csv.DictReader(f)}
    return files, contents, lic, meta


def _ext(path: str) -> str | None:
    m = re.search(r"(\.[^./]+)$", path)
    return m[1].lower() if m else None


def gptcc_python(tables: Path, exts: list[str]) -> set[tuple[str, str]]:
    files, contents, _, meta = _tables(tables)
    chosen = {n for n, r in meta.items() if int(r["stargazers"]) > 10 and int(r["commits"]) > 2
              and r["license"] != "" and r["isFork"] == "false"}
    return {(f["repo_name"], f["path"]) for f in files
            if f["repo_name"] in chosen and _ext(f["path"]) in exts
            and not contents[f["id"]]["binary"] and contents[f["id"]]["size"] < 70708}


def polycoder_python(tables: Path, per_language: int) -> set[tuple[str, str]]:
    files, contents, _, meta = _tables(tables)
    chosen: dict[str, str] = {}
    for lang in set(EXT.values()):
        ranked = sorted((r for r in meta.values() if r["mainLanguage"] == lang
                         and int(r["stargazers"]) >= 50),
                        key=lambda r: (-int(r["stargazers"]), r["name"]))
        chosen |= {r["name"]: lang for r in ranked[:per_language]}
    return {(f["repo_name"], f["path"]) for f in files
            if f["repo_name"] in chosen and chosen[f["repo_name"]] == EXT.get(_ext(f["path"]))
            and not contents[f["id"]]["binary"] and contents[f["id"]]["size"] <= 1048575}


def extracted(engine, tables: Path, query: str, out: Path, **params) -> set[tuple[str, str]]:
    engine.run(ExtractJob(ExtractOptions(str(QUERIES / query), str(tables), params=params),
                          DatasetDir(str(out))))
    return {(r["repo_name"], r["path"]) for r in
            pq.read_table(sorted(out.glob("data/part-*.parquet"))).to_pylist()}


GPTCC_EXTS = json.loads(re.search(r"@param extensions ARRAY<STRING> = (\[.*?\])",
                                  (QUERIES / "github_gptcc.sql").read_text())[1])


def test_repos_table_from_a_seart_export(repo_tables):
    t = pq.read_table(repo_tables / "repos.parquet")
    assert t.column_names == [c.name for c in schema.REPOS]
    rows = {r["repo_name"]: r for r in t.to_pylist()}
    _, _, _, meta = _tables(repo_tables)
    assert set(rows) == set(meta)
    for name, r in rows.items():
        m = meta[name]
        assert r["stars"] == int(m["stargazers"]) and r["commits"] == int(m["commits"])
        assert r["is_fork"] == (m["isFork"] == "true")
        assert r["license"] == ({v: k for k, v in LICENSE_NAMES.items()}.get(
            m["license"], "other") if m["license"] else None)
        assert r["created_at"].isoformat() == "2019-03-22T12:03:32+00:00"


def test_gptcc_selection_equals_python(engine, repo_tables, tmp_path):
    want = gptcc_python(repo_tables, GPTCC_EXTS)
    got = extracted(engine, repo_tables, "github_gptcc.sql", tmp_path / "g")
    assert got == want and len(want) > 50
    # every criterion rejects something: the selection is smaller than the files it reads
    assert len({r for r, _ in want}) < len(DISTS)


@pytest.mark.parametrize("per_language", [25000, 2])
def test_polycoder_selection_equals_python(engine, repo_tables, tmp_path, per_language):
    want = polycoder_python(repo_tables, per_language)
    got = extracted(engine, repo_tables, "github_polycoder.sql", tmp_path / "p",
                    per_language=per_language)
    assert got == want and want
    if per_language == 2:
        assert len({r for r, _ in want}) <= 2 * 2


@pytest.mark.parametrize("export,message", [
    ("name,stargazers\nx/y,many\n", "row 2: stars 'many' is not INT64"),
    ("name,stargazers\nx/y,1\nx/y,2\n", "row 3: x/y is listed twice (first at row 2)"),
    ('[{"full_name": "a/b", "fork": "maybe"}]', "row 1: is_fork 'maybe' is not BOOL"),
    ('{"items": [{"stargazers_count": 3}]}', "row 1: no repository name"),
])
def test_bad_exports_name_the_row(tmp_path, export, message):
    path = tmp_path / ("r.csv" if export.startswith("name") else "r.json")
    path.write_text(export)
    with pytest.raises(InputError, match=re.escape(message)):
        repo_list.read(str(path))


def test_github_api_dump_as_json_lines(tmp_path):
    path = tmp_path / "api.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in [
        {"full_name": "o/a", "stargazers_count": 12, "forks_count": 1, "fork": False,
         "size": 10, "language": "Go", "license": {"key": "mit", "spdx_id": "MIT"},
         "created_at": "2020-01-01T00:00:00Z", "pushed_at": "2021-01-01T00:00:00Z"},
        {"full_name": "o/b", "stargazers_count": 0, "fork": True, "license": None}]))
    t = repo_list.read(str(path)).to_pylist()
    assert [r["repo_name"] for r in t] == ["o/a", "o/b"]
    assert t[0]["license"] == "mit" and t[0]["language"] == "Go" and t[0]["commits"] is None
    assert t[1]["license"] is None and t[1]["is_fork"] is True


@pytest.mark.slow
def test_selections_on_the_bigquery_emulator(seeded_bigquery, engine, repo_tables, tmp_path):
    # the emulator holds the same files/contents/licenses (site_tables: the same DISTS); the
    # repos table is loaded beside them, as a user loads a SEART export into BigQuery
    from google.cloud import bigquery

    from tests.cloud import PROJECT, PUBLIC, bq_client, make_bucket
    from tests.conftest import run_cli
    from tests.test_bigquery import rows

    client = bq_client(seeded_bigquery)
    buf = io.BytesIO((repo_tables / "repos.parquet").read_bytes())
    fields = [bigquery.SchemaField(c.name, c.type) for c in schema.REPOS]
    client.load_table_from_file(buf, f"{PUBLIC}.repos", job_config=bigquery.LoadJobConfig(
        source_format="PARQUET", schema=fields, write_disposition="WRITE_TRUNCATE")
    ).result(timeout=120)
    multilang = extracted(engine, repo_tables, "github_multilang.sql", tmp_path / "m",
                          licensed=False)
    for query, params, want in [
            ("github_gptcc.sql", [], gptcc_python(repo_tables, GPTCC_EXTS)),
            ("github_polycoder.sql", ["--param", "per_language=2"],
             polycoder_python(repo_tables, 2)),
            # the typed BOOL parameter on BigQuery: the same rows as DuckDB's
            ("github_multilang.sql", ["--param", "licensed=false"], multilang)]:
        bucket = make_bucket(f"sel-{query[7:-4]}")
        r = run_cli("extract", "--engine", "bigquery", "--workers", "1", "--query",
                    str(QUERIES / query), *params, "--project", PROJECT, "--export",
                    f"gs://{bucket}/export", "--out", f"gs://{bucket}/out",
                    env=seeded_bigquery, timeout=300)
        assert r.returncode == 0, r.stderr
        got = rows(f"gs://{bucket}/out")
        assert {(a, b) for a, b in zip(got.column("repo_name").to_pylist(),
                                       got.column("path").to_pylist(), strict=True)} == want


@pytest.mark.slow
def test_repos_table_made_on_bigquery_from_the_public_tables(seeded_bigquery, repo_tables):
    # BigQuery's own columns: sample_repos (watch_count) and languages (bytes per language,
    # here counted from the files themselves); queries/bigquery_repos.sql makes the repos
    # table of them, and --repos-table points PolyCoder's selection at it
    from google.cloud import bigquery

    from tests.cloud import PROJECT, PUBLIC, bq_client, make_bucket
    from tests.conftest import run_cli
    from tests.test_bigquery import rows

    files, contents, _, meta = _tables(repo_tables)
    by_lang: dict[str, dict[str, int]] = {}
    for f in files:
        lang = EXT.get(_ext(f["path"]))
        if lang and not contents[f["id"]]["binary"]:
            d = by_lang.setdefault(f["repo_name"], {})
            d[lang] = d.get(lang, 0) + contents[f["id"]]["size"]
    stars = {n: int(m["stargazers"]) for n, m in meta.items()}
    client = bq_client(seeded_bigquery)
    for name, fields, data in [
            ("sample_repos", [bigquery.SchemaField("repo_name", "STRING"),
                              bigquery.SchemaField("watch_count", "INT64")],
             [{"repo_name": n, "watch_count": s} for n, s in stars.items()]),
            ("languages", [bigquery.SchemaField("repo_name", "STRING"), bigquery.SchemaField(
                "language", "RECORD", mode="REPEATED", fields=[
                    bigquery.SchemaField("name", "STRING"),
                    bigquery.SchemaField("bytes", "INT64")])],
             [{"repo_name": n, "language": [{"name": k, "bytes": v} for k, v in d.items()]}
              for n, d in by_lang.items()])]:
        buf = io.BytesIO()  # Parquet, as the other tables are loaded (the emulator's JSON
        pq.write_table(pa.Table.from_pylist(data), buf)  # load refuses nested rows)
        buf.seek(0)
        client.load_table_from_file(buf, f"{PUBLIC}.{name}", job_config=bigquery.LoadJobConfig(
            source_format="PARQUET", schema=fields, write_disposition="WRITE_TRUNCATE")
        ).result(timeout=120)
    client.create_dataset(f"{PROJECT}.mine", exists_ok=True)
    client.query(f"CREATE OR REPLACE TABLE `{PROJECT}.mine.repos` AS\n" +
                 (QUERIES / "bigquery_repos.sql").read_text()).result(timeout=120)
    made = {r["repo_name"]: r for r in client.list_rows(f"{PROJECT}.mine.repos")}
    main = {n: max(d, key=lambda k: (d[k], [-ord(c) for c in k])) for n, d in by_lang.items()}
    assert {n: (r["stars"], r["language"]) for n, r in made.items()} == \
        {n: (s, main.get(n)) for n, s in stars.items()}

    bucket = make_bucket("sel-bq-repos")
    r = run_cli("extract", "--engine", "bigquery", "--workers", "1", "--query",
                str(QUERIES / "github_polycoder.sql"), "--repos-table", f"{PROJECT}.mine.repos",
                "--project", PROJECT, "--export", f"gs://{bucket}/export", "--out",
                f"gs://{bucket}/out", env=seeded_bigquery, timeout=300)
    assert r.returncode == 0, r.stderr
    got = rows(f"gs://{bucket}/out")
    chosen = {n for n, s in stars.items() if s >= 50 and main.get(n)}
    want = {(f["repo_name"], f["path"]) for f in files if f["repo_name"] in chosen
            and EXT.get(_ext(f["path"])) == main[f["repo_name"]]
            and not contents[f["id"]]["binary"] and contents[f["id"]]["size"] <= 1048575}
    assert want and {(a, b) for a, b in zip(got.column("repo_name").to_pylist(),
                                            got.column("path").to_pylist(),
                                            strict=True)} == want
