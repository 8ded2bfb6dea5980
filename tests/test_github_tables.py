"""`corpus github-tables` against an independent walk of the same files, and against git."""

from __future__ import annotations

import csv
import os
import posixpath
import re
import shutil
import site
import subprocess
from collections import Counter
from email.parser import HeaderParser
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from corpus import schema
from corpus.github.build import GithubTablesJob, GithubTablesOptions
from corpus.io import DatasetDir
from corpus.units import parse_size
from tests.conftest import DISTS, parquet_files


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def independent_listing(names: list[str]) -> dict[tuple[str, str], str]:
    """(repo_name, path) -> absolute file, from the RECORD files themselves."""
    wanted = {canonical(n) for n in names}
    out: dict[tuple[str, str], str] = {}
    for sp in site.getsitepackages():
        for info in sorted(Path(sp).glob("*.dist-info")):
            meta = HeaderParser().parsestr((info / "METADATA").read_text(errors="replace"))
            name = canonical(meta["Name"])
            if name not in wanted:
                continue
            repo = f"pypi/{name}@{meta['Version']}"
            with open(info / "RECORD", newline="") as f:
                for row in csv.reader(f):
                    rel = posixpath.normpath(row[0])
                    full = os.path.join(sp, rel)
                    if not rel.startswith("..") and os.path.lexists(full):
                        out[(repo, rel)] = full
    return out


def git_hash_objects(paths: list[str]) -> list[str]:
    res = subprocess.run(["git", "hash-object", "--stdin-paths"], input="\n".join(paths) + "\n",
                         capture_output=True, text=True, check=True)
    return res.stdout.split()


def read(tables: Path, name: str):
    return pq.read_table(tables / f"{name}.parquet")


def test_columns_are_exactly_githubs(site_tables):
    for name in schema.BUILT_TABLES:  # repos only with --repos (test_repo_selection.py)
        columns = schema.GITHUB_TABLES[name]
        t = read(site_tables, name)
        assert t.column_names == [c.name for c in columns], name
        schema.check(t.schema, columns, name)


def test_every_file_present_once(site_tables):
    files = read(site_tables, "files").to_pylist()
    keys = [(r["repo_name"], r["path"]) for r in files]
    assert len(keys) == len(set(keys)), "a file appears twice"
    expected = independent_listing(DISTS)
    assert len(expected) > 500
    assert set(keys) == set(expected)
    assert {r["repo_name"] for r in files} == {k[0] for k in expected}
    assert len({k[0] for k in expected}) == len(DISTS)


def test_ids_equal_git_hash_object(site_tables):
    expected = independent_listing(DISTS)
    files = read(site_tables, "files").to_pylist()
    paths = [expected[(r["repo_name"], r["path"])] for r in files]
    assert [r["id"] for r in files] == git_hash_objects(paths)


def test_copies_and_contents(site_tables):
    files = read(site_tables, "files").to_pylist()
    contents = read(site_tables, "contents").to_pylist()
    ids = Counter(r["id"] for r in files)
    assert len(contents) == len(ids), "contents must hold each blob once"
    assert {r["id"]: r["copies"] for r in contents} == dict(ids)
    assert max(ids.values()) > 1, "the test corpus has duplicate files (py.typed, vendored)"
    expected = independent_listing(DISTS)
    one_path = {r["id"]: expected[(r["repo_name"], r["path"])] for r in files}
    for r in contents:
        data = Path(one_path[r["id"]]).read_bytes()
        assert r["size"] == len(data)
        try:
            text = None if b"\0" in data else data.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        assert r["binary"] == (text is None)
        assert r["content"] == (text if len(data) <= 1024 * 1024 else None)
    assert any(r["binary"] for r in contents), "pip ships binaries (.exe launchers, .pyc)"


def test_licenses_of_known_packages(site_tables):
    lic = {r["repo_name"].split("@")[0]: r["license"] for r in read(site_tables, "licenses")
           .to_pylist()}
    assert lic["pypi/requests"] == "apache-2.0"
    assert lic["pypi/urllib3"] == "mit"
    assert lic["pypi/idna"] == "bsd-3-clause"
    assert lic["pypi/certifi"] == "mpl-2.0"
    assert lic["pypi/click"] == "bsd-3-clause"
    assert lic["pypi/charset-normalizer"] == "mit"
    assert lic["pypi/pip"] == "mit"


def test_skipped_files_are_accounted_for(site_tables):
    m = DatasetDir(str(site_tables)).manifest()
    assert m["complete"]
    assert m["rows_in"] == m["rows"] + m["removed"]
    assert m["rows"] == read(site_tables, "files").num_rows
    removed = pq.read_table(site_tables / "removed").to_pylist() if m["removed"] else []
    assert len(removed) == m["removed"]
    # console scripts live outside site-packages (../../bin/...): counted, with a reason
    assert all(r["reason"] in ("outside-site-packages", "missing") for r in removed)
    assert m["tables"]["contents"]["rows"] == read(site_tables, "contents").num_rows


# --- directories of repositories, checked against git itself ------------------------------
def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True,
                          env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
                               "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}).stdout


@pytest.fixture(scope="module")
def repos(tmp_path_factory) -> Path:
    """Two git repositories made of real code (idna's and click's sources), with the edge
    cases a checkout has: a symlink, an executable, a binary, a big file, a bad encoding."""
    import click
    import idna

    src = tmp_path_factory.mktemp("src")
    for name, mod in (("idna", idna), ("click", click)):
        repo = src / name
        shutil.copytree(Path(mod.__file__).parent, repo / name,
                        ignore=shutil.ignore_patterns("__pycache__"))
        git(repo, "init", "-q", "-b", "main")
    # idna keeps its real license; click's repository has none (it must be left out)
    lic = next(p for p in Path(idna.__file__).parent.parent.glob("idna-*.dist-info/licenses/*"))
    shutil.copy(lic, src / "idna" / "LICENSE.md")
    r = src / "idna"
    os.symlink("idna/core.py", r / "core_link.py")
    (r / "run.sh").write_text("#!/bin/sh\necho hi\n")
    os.chmod(r / "run.sh", 0o755)
    (r / "blob.bin").write_bytes(bytes(range(256)) * 4)
    (r / "latin1.txt").write_bytes("caf\xe9\n".encode("latin-1"))
    (r / "big.txt").write_text("x = 1\n" * 200_000)  # 1.2 MB of text: size kept, no content
    for repo in (src / "idna", src / "click"):
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", "init")
    return src


def test_directory_repos_match_git(repos, tmp_path, engine):
    out = tmp_path / "tables"
    engine.run(GithubTablesJob(GithubTablesOptions(sources=[str(repos)]), DatasetDir(str(out))))
    files = read(out, "files").to_pylist()
    owner = repos.name
    for repo in ("idna", "click"):
        staged = {}
        for line in git(repos / repo, "ls-files", "-s").splitlines():
            meta, path = line.split("\t")
            mode, sha, _ = meta.split()
            staged[path] = (int(mode, 8), sha)
        ours = {r["path"]: (r["mode"], r["id"]) for r in files
                if r["repo_name"] == f"{owner}/{repo}"}
        assert ours == staged, f"{repo}: files differ from git ls-files -s"
        assert {r["ref"] for r in files if r["repo_name"] == f"{owner}/{repo}"} == \
            {"refs/heads/main"}
    assert not any("/.git/" in f"/{r['path']}" for r in files)
    link = next(r for r in files if r["path"] == "core_link.py")
    assert link["symlink_target"] == "idna/core.py" and link["mode"] == 0o120000
    contents = {r["id"]: r for r in read(out, "contents").to_pylist()}
    by_path = {r["path"]: contents[r["id"]] for r in files if r["repo_name"].endswith("/idna")}
    assert by_path["blob.bin"]["binary"] and by_path["blob.bin"]["content"] is None
    assert by_path["latin1.txt"]["binary"] and by_path["latin1.txt"]["content"] is None
    big = by_path["big.txt"]
    assert big["size"] == 1_200_000 and big["content"] is None and not big["binary"]
    assert by_path["idna/core.py"]["content"] == (repos / "idna/idna/core.py").read_text()
    lic = {r["repo_name"]: r["license"] for r in read(out, "licenses").to_pylist()}
    assert lic == {f"{owner}/idna": "bsd-3-clause"}
    assert DatasetDir(str(out)).manifest()["unlicensed_repos"] == [f"{owner}/click"]


def test_include_exclude_and_rebuild_identical(repos, tmp_path, engine):
    a, b = tmp_path / "a", tmp_path / "b"
    engine.run(GithubTablesJob(GithubTablesOptions(sources=[str(repos)], exclude=["click"]),
                               DatasetDir(str(a))))
    engine.run(GithubTablesJob(GithubTablesOptions(sources=[str(repos)], include=["idn*"]),
                               DatasetDir(str(b))))
    assert {r["repo_name"] for r in read(a, "files").to_pylist()} == {f"{repos.name}/idna"}
    assert parquet_files(a) == parquet_files(b)


def test_site_packages_dir_like_pip_target(site_tables, tmp_path, engine):
    """A folder made like `pip install --target`: the same repository as from site-packages."""
    import idna

    sp = Path(idna.__file__).parent.parent
    target = tmp_path / "target"
    shutil.copytree(sp / "idna", target / "idna")
    info = next(sp.glob("idna-*.dist-info"))
    shutil.copytree(info, target / info.name)
    out = tmp_path / "tables"
    engine.run(GithubTablesJob(GithubTablesOptions(site_packages_dirs=[str(target)]),
                               DatasetDir(str(out))))
    ours = {(r["repo_name"], r["path"], r["id"]) for r in read(out, "files").to_pylist()}
    ref = {(r["repo_name"], r["path"], r["id"]) for r in read(site_tables, "files").to_pylist()
           if r["repo_name"].startswith("pypi/idna@")}
    assert ours == ref and ours


def test_contents_merged_one_id_range_at_a_time(site_tables, tmp_path):
    # the merge sorts each id range on its own (a whole environment's contents did not fit
    # one DuckDB sort); with 16 ranges, and blobs held by two chunks, it is still every
    # distinct blob once, in id order, with its copies
    from corpus import duck
    from corpus.github import build

    contents = read(site_tables, "contents")
    n = contents.num_rows
    for i, rows in enumerate([range(0, 2 * n // 3), range(n // 3, n)]):  # overlapping chunks
        pq.write_table(contents.take(list(rows)).drop_columns(["copies"]).sort_by("id"),
                       tmp_path / f"b{i}.parquet", row_group_size=64)
    con = duck.connect()
    ranges = build.id_ranges(16 * parse_size(build.MERGE_MEMORY))
    assert len(ranges) == 64 and ranges[0] == ("0000", "0400") and ranges[-1][1] is None
    batches = list(build._contents(
        con, duck.parquet_scan(con, [str(site_tables / "files.parquet")]),
        duck.parquet_scan(con, [str(tmp_path / f"b{i}.parquet") for i in range(2)]), ranges))
    merged = pa.Table.from_batches(batches)
    assert merged.column("id").to_pylist() == contents.column("id").to_pylist()
    assert merged.column("copies").to_pylist() == contents.column("copies").to_pylist()
    assert merged.column("content").equals(contents.column("content"))

