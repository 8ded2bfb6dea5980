"""MinHash near-dedup on a real near-duplicate corpus (three releases of five packages),
against exact Jaccard ground truth and against datasketch."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import xxhash
from datasketch import MinHash, MinHashLSH
from datasketch.lsh import _optimal_param

from corpus import text as tx
from corpus.dedup import minhash as mh
from corpus.dedup.components import components
from corpus.dedup.near import MinHashDedupJob, MinHashOptions
from corpus.dedup.sets import jaccard
from corpus.dedup.shingles import TOKEN, reference, shingles
from corpus.engine import Engine
from corpus.extract.duckdb_job import ExtractJob, ExtractOptions
from corpus.io import DatasetDir
from tests.conftest import QUERIES, run_cli
from tests.near_truth import score, true_pairs


@pytest.fixture(scope="module")
def extracted(engine, near_dup_tables, tmp_path_factory) -> dict[int, Path]:
    """Every file of the releases in PolyCoder's languages, any size, in 1, 2, 4 partitions."""
    root = tmp_path_factory.mktemp("mh")
    opts = ExtractOptions(str(QUERIES / "github_multilang.sql"), str(near_dup_tables),
                          params={"min_size": 0})
    total = ExtractJob(opts, DatasetDir(str(root / "probe"))).plan().content_bytes
    out = {}
    for n in (1, 2, 4):
        opts.partition_bytes = math.ceil(total / n)
        engine.run(ExtractJob(opts, DatasetDir(str(root / f"p{n}"))))
        out[n] = root / f"p{n}"
    return out


def table_of(path: Path) -> pa.Table:
    return pq.read_table(sorted(path.glob("data/part-*.parquet")))


def keys_of(t: pa.Table) -> list[tuple[str, str]]:
    return list(zip(t.column("repo_name").to_pylist(), t.column("path").to_pylist(),
                    strict=True))


def dedup(engine, src: Path, out: Path, **options) -> dict:
    return engine.run(MinHashDedupJob(MinHashOptions(**options), DatasetDir(str(src)),
                                      DatasetDir(str(out))))


def removed_keys(out: Path) -> dict[tuple[str, str], str]:
    if not (out / "removed").exists():
        return {}
    return {(r["repo_name"], r["path"]): r["reason"]
            for r in pq.read_table(out / "removed").to_pylist()}


def shingle_bytes(text: str, n: int) -> list[bytes]:
    """The byte strings whose xxh3_64 our shingle hashes are (for datasketch)."""
    th = [xxhash.xxh3_64_intdigest(t).to_bytes(8, "little")
          for t in TOKEN.findall(text.encode())]
    if not th:
        return []
    if len(th) < n:
        return [b"".join(th)]
    return [b"".join(th[j:j + n]) for j in range(len(th) - n + 1)]


def h32(b: bytes) -> int:
    return xxhash.xxh3_64_intdigest(b) & 0xFFFFFFFF


def test_signatures_equal_datasketch(extracted):
    docs = table_of(extracted[1]).column("content").to_pylist()[:150]
    docs += ["", "!!! ???", "one", "two words", "a b c d e", "a b c d e f"]
    for n in (1, 5):
        sh = shingles(tx.text_of(pa.array(docs, pa.large_string())), n)
        sig = mh.signatures(sh, 256, 42)
        for i, d in enumerate(docs):
            assert set(sh.of(i).tolist()) == reference(d, n)
            m = MinHash(num_perm=256, seed=42, hashfunc=h32)
            m.update_batch(shingle_bytes(d, n))
            assert np.array_equal(m.hashvalues, sig[i]), (n, d[:40])


def test_lsh_parameters_equal_datasketch():
    for t in (0.5, 0.7, 0.8, 0.85, 0.9):
        for k in (128, 256):
            assert mh.optimal_param(t, k) == _optimal_param(t, k, 0.5, 0.5)
    b, r = mh.verify_param(0.85, 256)
    assert 1 - (1 - 0.85 ** r) ** b >= 0.999 and b * r <= 256


@pytest.mark.parametrize("threshold", [0.85, 0.7])
def test_verified_quality_against_exact_jaccard(engine, extracted, tmp_path, threshold):
    t = table_of(extracted[1])
    docs, keys = t.column("content").to_pylist(), keys_of(t)
    truth = true_pairs(docs, threshold, 5)
    assert len(truth) > 100, "the releases share many near-identical files"
    out = tmp_path / "v"
    m = dedup(engine, extracted[2], out, threshold=threshold, verify=True)
    index = {k: i for i, k in enumerate(keys)}
    removed = {index[k] for k in removed_keys(out)}
    precision, recall, _ = score(len(docs), truth, removed)
    assert precision >= 0.99 and recall >= 0.97, (precision, recall)
    plan = m["runs"][-1]["resolve"]
    assert plan["accepted_pairs"] <= plan["verified_pairs"]
    assert m["rows"] + m["removed"] == len(docs)


def datasketch_removal(docs: list[str], threshold: float, n: int = 5) -> set[int]:
    """datasketch MinHash + MinHashLSH, components over query results, keep the first."""
    lsh = MinHashLSH(threshold=threshold, num_perm=256)
    sigs = []
    for i, d in enumerate(docs):
        m = MinHash(num_perm=256, seed=42, hashfunc=h32)
        m.update_batch(shingle_bytes(d, n))
        sigs.append(m)
        if shingle_bytes(d, n):
            lsh.insert(i, m)
    parent = list(range(len(docs)))

    def root(x: int) -> int:
        while parent[x] != x:
            x = parent[x]
        return x

    for i, d in enumerate(docs):
        if shingle_bytes(d, n):
            for j in lsh.query(sigs[i]):
                a, b = root(i), root(j)
                if a != b:
                    parent[max(a, b)] = min(a, b)
    return {i for i in range(len(docs)) if root(i) != i}


@pytest.mark.parametrize("threshold", [0.85, 0.7])
def test_unverified_f1_no_worse_than_datasketch(engine, extracted, tmp_path, threshold):
    t = table_of(extracted[1])
    docs, keys = t.column("content").to_pylist(), keys_of(t)
    truth = true_pairs(docs, threshold, 5)
    out = tmp_path / "u"
    dedup(engine, extracted[1], out, threshold=threshold)
    index = {k: i for i, k in enumerate(keys)}
    ours = score(len(docs), truth, {index[k] for k in removed_keys(out)})
    theirs = score(len(docs), truth, datasketch_removal(docs, threshold))
    assert ours[2] >= theirs[2] - 1e-9, (ours, theirs)


def test_same_result_for_any_partitioning_and_workers(engine, extracted, tmp_path):
    results = []
    with Engine(workers=1, progress=False) as one:
        for n, src in extracted.items():
            for e in (engine, one):
                out = tmp_path / f"{n}-{id(e)}"
                dedup(e, src, out, threshold=0.8, verify=True)
                kept = table_of(out)
                clusters = dict(zip(keys_of(kept), kept.column("cluster_id").to_pylist(),
                                    strict=True))
                results.append((removed_keys(out), clusters))
    assert all(r == results[0] for r in results[1:])
    assert len(results[0][0]) > 50


def test_short_and_empty_documents(engine, tmp_path):
    docs = ["alpha beta", "alpha beta", "alpha gamma", "!!!", "???", "", None,
            "x y z w v u t s r q"]
    src = DatasetDir(str(tmp_path / "src"))
    t = pa.table({"id": [f"{i:040x}" for i in range(len(docs))], "repo_name": ["r"] * len(docs),
                  "path": [f"f{i}" for i in range(len(docs))],
                  "content": pa.array(docs, pa.large_string())})
    src.write_parquet("part-00000.parquet", t, t.schema)
    out = tmp_path / "out"
    dedup(engine, tmp_path / "src", out, verify=True)
    # the same short token sequence is a duplicate; another short one is not; documents
    # without tokens (or content) are never anyone's duplicate
    assert set(removed_keys(out)) == {("r", "f1")}
    assert len(table_of(out)) == len(docs) - 1


def test_cluster_ids_reasons_stats_and_cli(extracted, tmp_path):
    out = tmp_path / "cli"
    res = run_cli("dedup", str(extracted[2]), str(out), "--minhash", "--threshold", "0.8",
                  "--verify", "--verify-memory", "64KiB", "--workers", "2", "--quiet")
    assert res.returncode == 0, res.stderr
    kept = table_of(out)
    by_id = {r["id"]: r for r in kept.to_pylist()}
    reasons = removed_keys(out)
    assert reasons
    for reason in reasons.values():
        m = re.fullmatch(r"near-duplicate-of (\w+) \((.+?):(.+)\) J~([01]\.\d{3})", reason)
        assert m and m[1] in by_id and by_id[m[1]]["cluster_id"] == m[1], reason
        assert float(m[4]) >= 0.5
    clusters = kept.column("cluster_id").to_pylist()
    assert len(set(clusters)) < len(clusters) + len(reasons)
    manifest = json.loads((out / "manifest.json").read_text())
    plan = manifest["runs"][-1]["resolve"]
    assert plan["removed"] == manifest["removed"] == len(reasons)
    assert manifest["runs"][-1]["candidates"]["verify_groups"] > 1  # --verify-memory read
    assert "near-duplicate-of" in res.stdout
    bad = run_cli("dedup", str(extracted[2]), str(tmp_path / "bad"), "--minhash", "--verify",
                  "--verify-memory", "lots", "--quiet")
    assert bad.returncode != 0 and "cannot read size 'lots'" in bad.stderr


def test_components_and_jaccard_helpers():
    edges = [(np.array([5, 1, 7]), np.array([3, 2, 6]))]
    labels = components(8, lambda: iter(edges))
    assert labels.tolist() == [0, 1, 1, 3, 4, 3, 6, 6]
    assert jaccard(np.array([1, 2, 3], np.uint64), np.array([2, 3, 4], np.uint64)) == 0.5
    assert jaccard(np.array([], np.uint64), np.array([], np.uint64)) == 0.0


def test_verification_in_groups_gives_the_same_result(engine, extracted, tmp_path):
    """A memory budget smaller than the candidates' sets splits verification into groups
    (gathered from the partitions first); the result must not change."""
    whole, grouped = tmp_path / "whole", tmp_path / "grouped"
    dedup(engine, extracted[4], whole, threshold=0.85, verify=True)
    m = dedup(engine, extracted[4], grouped, threshold=0.85, verify=True,
              verify_memory=256 << 10)
    assert m["runs"][-1]["candidates"]["verify_groups"] > 3
    assert removed_keys(grouped) == removed_keys(whole)
    assert table_of(grouped).column("cluster_id").to_pylist() == \
        table_of(whole).column("cluster_id").to_pylist()
