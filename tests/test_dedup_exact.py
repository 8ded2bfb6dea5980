"""Exact deduplication against a plain Python set over the same hashes, for any partitioning."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import xxhash

from corpus.dedup.exact import ExactDedupJob, ExactOptions, content_hashes, hex_of
from corpus.errors import ConfigError
from corpus.extract.duckdb_job import ExtractJob, ExtractOptions
from corpus.io import DatasetDir
from tests.conftest import QUERIES, parquet_files, run_cli

WS = re.compile(r"[ \t\n\r\x0b\x0c]")


@pytest.fixture(scope="module")
def extracted(engine, site_tables, tmp_path_factory) -> dict[int, Path]:
    """The test corpus' files of PolyCoder's languages, any size (empty __init__.py files and
    pip's vendored copies are duplicates), extracted into 1, 2 and 4 partitions."""
    root = tmp_path_factory.mktemp("dedup")
    opts = ExtractOptions(str(QUERIES / "github_multilang.sql"), str(site_tables),
                          params={"min_size": 0})
    total = ExtractJob(opts, DatasetDir(str(root / "probe"))).plan().content_bytes
    out = {}
    for n in (1, 2, 4):
        opts.partition_bytes = math.ceil(total / n)
        job = ExtractJob(opts, DatasetDir(str(root / f"p{n}")))
        engine.run(job)
        assert job.plan().partitions == n
        out[n] = root / f"p{n}"
    return out


def rows(path: Path) -> list[dict]:
    return pq.read_table(sorted(path.glob("data/part-*.parquet"))).to_pylist()


def python_set_dedup(docs: list[dict], key=lambda d: d["content"], order=None) -> set:
    """The reference: visit documents in keeper order, keep the first of each hash."""
    order = order or (lambda d: (d["id"], d["repo_name"], d["path"]))
    seen, removed = set(), set()
    for d in sorted(docs, key=order):
        h = xxhash.xxh3_128_digest(key(d).encode())
        if h in seen:
            removed.add((d["repo_name"], d["path"]))
        seen.add(h)
    return removed


def dedup(engine, src: Path, out: Path, **options) -> dict:
    return engine.run(ExactDedupJob(ExactOptions(**options), DatasetDir(str(src)),
                                    DatasetDir(str(out))))


def removed_of(out: Path) -> dict[tuple[str, str], str]:
    if not (out / "removed").exists():
        return {}
    return {(r["repo_name"], r["path"]): r["reason"]
            for r in pq.read_table(out / "removed").to_pylist()}


def test_removes_what_a_python_set_removes_for_1_2_4_partitions(engine, extracted, tmp_path):
    docs = rows(extracted[1])
    expected = python_set_dedup(docs)
    assert len(expected) >= 10, "the test corpus has duplicates"
    results = []
    for n, src in extracted.items():
        out = tmp_path / f"d{n}"
        m = dedup(engine, src, out)
        removed = removed_of(out)
        assert set(removed) == expected, f"{n} partitions"
        assert m["rows"] + m["removed"] == len(docs) and m["removed"] == len(expected)
        assert m["runs"][-1]["plan"]["duplicates"] == len(expected)
        results.append(removed)
    assert results[0] == results[1] == results[2], "same keepers whatever the partitioning"


def test_reasons_name_the_keeper_and_hash_column(engine, extracted, tmp_path):
    out = tmp_path / "d"
    dedup(engine, extracted[2], out)
    kept = {(r["repo_name"], r["path"]): r for r in rows(out)}
    by_key = {(r["repo_name"], r["path"]): r for r in rows(extracted[2])}
    for (repo, path), reason in removed_of(out).items():
        m = re.fullmatch(r"duplicate-of (\w+) \((.+?):(.+)\)", reason)
        assert m, reason
        keeper = kept[(m[2], m[3])]
        assert keeper["content"] == by_key[(repo, path)]["content"]
        assert keeper["id"] == m[1]
    for r in kept.values():
        assert r["hash"] == xxhash.xxh3_128_hexdigest(r["content"].encode())


def test_ignore_whitespace(engine, extracted, tmp_path):
    out = tmp_path / "ws"
    dedup(engine, extracted[4], out, ignore_whitespace=True)
    docs = rows(extracted[1])
    expected = python_set_dedup(docs, key=lambda d: WS.sub("", d["content"]))
    assert set(removed_of(out)) == expected
    assert len(expected) >= len(python_set_dedup(docs))


def test_variables_as_gpt_code_clippy_for_1_and_4_partitions(engine, extracted, tmp_path):
    # GPT-Code-Clippy's deduplication_streaming.py: a set of " ".join(re.split(r"\W+", text))
    docs = rows(extracted[1])
    expected = python_set_dedup(docs, key=lambda d: " ".join(re.split(r"\W+", d["content"])))
    assert len(expected) > len(python_set_dedup(docs, key=lambda d: WS.sub("", d["content"]))), \
        "variables also merge files differing only in punctuation"
    for n in (1, 4):
        out = tmp_path / f"vars{n}"
        m = dedup(engine, extracted[n], out, variables=True)
        assert set(removed_of(out)) == expected, f"{n} partitions"
        assert m["rows"] + m["removed"] == len(docs)


def test_variables_and_whitespace_are_one_choice(extracted, tmp_path):
    with pytest.raises(ConfigError, match="choose one of --ignore-whitespace and --variables"):
        ExactDedupJob(ExactOptions(ignore_whitespace=True, variables=True),
                      DatasetDir(str(extracted[1])), DatasetDir(str(tmp_path / "x")))


def test_ranking_prefers_the_largest(engine, extracted, tmp_path):
    out = tmp_path / "ranked"
    dedup(engine, extracted[2], out, ignore_whitespace=True, ranking=["size desc"])
    docs = rows(extracted[1])
    expected = python_set_dedup(docs, key=lambda d: WS.sub("", d["content"]),
                                order=lambda d: (-d["size"], d["id"], d["repo_name"], d["path"]))
    assert set(removed_of(out)) == expected


def test_hashing_primitives():
    arr = pa.array(["a b", None, "", "ab"], pa.large_string())
    plain = content_hashes(arr, False).to_pylist()
    assert plain[0] == xxhash.xxh3_128_digest(b"a b") and plain[1] is None
    assert content_hashes(arr, True)[0] == content_hashes(arr, True)[3]
    hexes = hex_of(content_hashes(arr, False)).to_pylist()
    assert hexes[2] == xxhash.xxh3_128_hexdigest(b"") and hexes[1] is None


def test_null_content_is_kept_and_never_merged(engine, tmp_path):
    src = DatasetDir(str(tmp_path / "src"))
    t = pa.table({"id": ["a", "b", "c", "d"], "repo_name": ["r"] * 4, "path": list("wxyz"),
                  "content": pa.array([None, None, "same", "same"], pa.large_string())})
    src.write_parquet("part-00000.parquet", t, t.schema)
    out = tmp_path / "out"
    dedup(engine, tmp_path / "src", out)
    assert [r["path"] for r in rows(out)] == ["w", "x", "y"]
    assert removed_of(out) == {("r", "z"): "duplicate-of c (r:y)"}


def test_dedup_cli_and_identical_reruns(extracted, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for out, workers in ((a, "1"), (b, "2")):
        res = run_cli("dedup", str(extracted[4]), str(out), "--exact", "--workers", workers,
                      "--quiet")
        assert res.returncode == 0, res.stderr
        assert "duplicate-of" in res.stdout
    assert parquet_files(a) == parquet_files(b)
    assert not (a / "_work").exists()
    res = run_cli("dedup", str(extracted[4]), str(tmp_path / "c"))
    assert res.returncode == 2 and "--exact" in res.stderr
