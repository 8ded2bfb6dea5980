"""Benchmark: `corpus dedup --minhash` against datasketch and rensa, on real near-duplicates.

Corpus: 4 releases each of django, sympy, sqlalchemy, numpy, pandas, scipy, matplotlib
(every file in PolyCoder's languages; `--scale` uses ~100 releases, >= 100,000 files).
Ground truth at the threshold: exact Jaccard of 5-gram shingle sets for every candidate pair
of a 40-band x 6-row LSH (a pair at J = 0.85 is missed with probability < 1e-8).
Each method runs alone in a subprocess on one core, same documents and parameters (5-grams,
256 permutations, threshold 0.85), timed from when its input is ready; RSS is sampled over its
whole process tree: the peak, and how much of it the work added over the ready state (peers:
documents loaded; corpus: cluster started, nothing loaded):
  datasketch   MinHash (shingle strings built in Python) + MinHashLSH, components, keep first
  rensa        RMinHash.from_token_sets + RMinHashLSH.query_all, components, keep first
  corpus       the stage on a 1-worker local cluster (Parquet in and out included), without
               and with --verify
  (--scale)    datasketch-stream: datasketch fed partition by partition, texts not kept, so
               that its peak is its index
Scores are keeper-agnostic (tests/near_truth.py). Targets: corpus --verify >= 3x rensa's MB/s,
peak memory under a quarter of datasketch's.

    .venv/bin/python bench/minhash.py [--scale] [--threshold 0.85] [--summary FILE]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _summary
from _releases import MAIN, SCALE, fetch

from corpus import text as tx
from corpus.dedup import minhash as mh
from corpus.dedup.components import components
from corpus.dedup.near import MinHashDedupJob, MinHashOptions
from corpus.dedup.sets import jaccard
from corpus.dedup.shingles import shingles
from corpus.engine import Engine
from corpus.extract.duckdb_job import ExtractJob, ExtractOptions
from corpus.github.build import GithubTablesJob, GithubTablesOptions
from corpus.io import DatasetDir
from tests.near_truth import score

ROOT = Path(__file__).resolve().parent.parent
TOKEN = re.compile(r"[A-Za-z0-9_]+")
NGRAM, PERM = 5, 256


def load(docs: Path) -> pa.Table:
    return pq.read_table(sorted(docs.glob("data/part-*.parquet")),
                         columns=["id", "repo_name", "path", "content"])


def build(work: Path, specs: list[str]) -> Path:
    """The documents as a dataset directory, built once and kept under .cache/."""
    if (work / "docs" / "data").is_dir():  # built, in this layout, by an earlier run
        return work / "docs"
    dirs = fetch(specs)
    with Engine(workers=os.cpu_count(), progress=False) as e:
        e.run(GithubTablesJob(GithubTablesOptions(site_packages_dirs=[str(d) for d in dirs]),
                              DatasetDir(str(work / "tables"))))
        e.run(ExtractJob(ExtractOptions(str(ROOT / "queries" / "github_multilang.sql"),
                                        str(work / "tables"), params={"min_size": 0},
                                        partition_bytes=32 << 20),
                         DatasetDir(str(work / "docs"))))
    return work / "docs"


def truth(table: pa.Table, threshold: float) -> set[tuple[int, int]]:
    """Exact pairs: candidates from a 40x6 banding of our signatures, verified exactly."""
    content = table.column("content").combine_chunks()
    sets, sigs = [], []
    for a in range(0, table.num_rows, 2000):
        sh = shingles(tx.text_of(content.slice(a, 2000)), NGRAM)
        sets += [np.unique(sh.of(i)) for i in range(len(sh.counts))]
        sigs.append(mh.signatures(sh, 240, 7))
    sig = np.concatenate(sigs)
    has = np.array([len(s) > 0 for s in sets])
    pairs = set()
    for band in range(40):
        h = mh.band_hashes(sig[:, band * 6:(band + 1) * 6], 1, 6)[:, 0]
        order = np.lexsort((np.arange(len(h)), h))
        hs = h[order]
        starts = np.flatnonzero(np.r_[True, hs[1:] != hs[:-1]])
        for s, e in zip(starts, np.r_[starts[1:], len(hs)], strict=True):
            members = [int(i) for i in order[s:e] if has[i]]
            pairs.update((x, y) for k, x in enumerate(members) for y in members[k + 1:])
    return {(i, j) for i, j in pairs if jaccard(sets[i], sets[j]) >= threshold}


def union(n: int, edges: list[tuple[int, int]]) -> set[int]:
    """Removed = every document but the first of its component."""
    if not edges:
        return set()
    u, v = (np.array(x, dtype=np.int64) for x in zip(*edges, strict=True))
    labels = components(n, lambda: iter([(u, v)]))
    return set(np.flatnonzero(labels != np.arange(n)).tolist())


def python_shingles(text: str) -> list[str]:
    toks = TOKEN.findall(text)
    if len(toks) < NGRAM:
        return [" ".join(toks)] if toks else []
    return [" ".join(toks[i:i + NGRAM]) for i in range(len(toks) - NGRAM + 1)]


def run_datasketch(table: pa.Table, threshold: float) -> set[int]:
    from datasketch import MinHash, MinHashLSH

    lsh, sigs, edges = MinHashLSH(threshold=threshold, num_perm=PERM), [], []
    for i, text in enumerate(table.column("content").to_pylist()):
        sh = python_shingles(text)
        m = MinHash(num_perm=PERM, seed=42)
        m.update_batch([s.encode() for s in sh])
        sigs.append(m if sh else None)
        if sh:
            lsh.insert(i, m)
    for i, m in enumerate(sigs):
        if m is not None:
            edges += [(i, j) for j in lsh.query(m) if j != i]
    return union(len(sigs), edges)


def run_datasketch_stream(docs: Path, threshold: float) -> set[int]:
    """datasketch reading the documents partition by partition: only its MinHash objects and
    LSH index stay in memory (the fair measure of its index, at scale)."""
    from datasketch import MinHash, MinHashLSH

    lsh, sigs, edges, i = MinHashLSH(threshold=threshold, num_perm=PERM), [], [], 0
    for part in sorted(docs.glob("data/part-*.parquet")):
        for text in pq.read_table(part, columns=["content"]).column("content").to_pylist():
            sh = python_shingles(text)
            m = MinHash(num_perm=PERM, seed=42)
            m.update_batch([s.encode() for s in sh])
            sigs.append(m if sh else None)
            if sh:
                lsh.insert(i, m)
            i += 1
    for i, m in enumerate(sigs):
        if m is not None:
            edges += [(i, j) for j in lsh.query(m) if j != i]
    return union(len(sigs), edges)


def rensa_bands(threshold: float) -> int:
    """rensa needs bands dividing num_perm: the best such banding by datasketch's criterion."""
    def error(bands: int) -> float:
        b, r = float(bands), float(PERM // bands)
        fp = mh._integral(lambda s: 1 - (1 - s ** r) ** b, 0.0, threshold)[0]
        fn = mh._integral(lambda s: (1 - s ** r) ** b, threshold, 1.0)[0]
        return 0.5 * fp + 0.5 * fn

    return min((b for b in range(1, PERM + 1) if PERM % b == 0), key=error)


def run_rensa(table: pa.Table, threshold: float) -> set[int]:
    from rensa import RMinHash, RMinHashLSH

    token_sets = [python_shingles(t) for t in table.column("content").to_pylist()]
    mhs = RMinHash.from_token_sets(token_sets, PERM, 42)
    lsh = RMinHashLSH(threshold, PERM, rensa_bands(threshold))
    keep = [i for i, s in enumerate(token_sets) if s]
    for i in keep:
        lsh.insert(i, mhs[i])
    found = lsh.query_all([mhs[i] for i in keep])
    edges = [(i, j) for i, js in zip(keep, found, strict=True) for j in js if j != i]
    return union(len(token_sets), edges)


def run_corpus(docs: Path, threshold: float, verify: bool, ready) -> tuple[float, set[int]]:
    out = Path(tempfile.mkdtemp(prefix="corpus-mh-"))
    try:
        with Engine(workers=1, progress=False) as e:
            e.call(_warm_kernels)  # imports and compiled code loaded, as in a warm worker
            ready()
            t0 = time.perf_counter()
            e.run(MinHashDedupJob(MinHashOptions(threshold=threshold, verify=verify),
                                  DatasetDir(str(docs)), DatasetDir(str(out / "o"))))
            seconds = time.perf_counter() - t0
        names = pq.read_table(sorted(docs.glob("data/part-*.parquet")),
                              columns=["repo_name", "path"])
        keys = {(r, p): i for i, (r, p) in enumerate(zip(
            *[names.column(c).to_pylist() for c in ("repo_name", "path")], strict=True))}
        removed = pq.read_table(out / "o" / "removed") if (out / "o" / "removed").exists() \
            else pa.table({"repo_name": [], "path": []})
        return seconds, {keys[(r, p)] for r, p in zip(removed.column("repo_name").to_pylist(),
                                                     removed.column("path").to_pylist(),
                                                     strict=True)}
    finally:
        shutil.rmtree(out, ignore_errors=True)


def _warm_kernels() -> None:
    """Load every compiled kernel (numba's code is the same fixed cost whatever the data)."""
    from corpus.dedup import kernels
    from corpus.dedup.shingles import shingles as sh

    s = sh(tx.text_of(pa.array(["warm up the compiled kernels " * 9], pa.large_string())),
           NGRAM)
    mh.signatures(s, PERM, 42)
    values, offsets = kernels.sorted_sets(s.hashes, s.starts, s.counts)
    zero = np.zeros(1, np.int64)
    kernels.jaccards(values, offsets, zero, values, offsets, zero)


def child(method: str, docs: Path, threshold: float, result: Path) -> None:
    """One method, timed from when its input is ready: peers from the documents in memory,
    corpus from a started 1-worker cluster reading its Parquet input partition by partition
    (it never holds all documents). Writes `<result>.ready` at that moment."""
    def ready() -> None:
        Path(f"{result}.ready").touch()

    if method == "datasketch-stream":
        ready()
        t0 = time.perf_counter()
        removed = run_datasketch_stream(docs, threshold)
        seconds = time.perf_counter() - t0
    elif method in ("datasketch", "rensa"):
        table = load(docs)
        ready()
        t0 = time.perf_counter()
        removed = (run_datasketch if method == "datasketch" else run_rensa)(table, threshold)
        seconds = time.perf_counter() - t0
    else:
        seconds, removed = run_corpus(docs, threshold, method.endswith("verify"), ready)
    result.write_text(json.dumps({"seconds": seconds, "removed": sorted(removed)}))


def measure(method: str, docs: Path, threshold: float) -> dict:
    import psutil

    result = Path(tempfile.mktemp(suffix=".json"))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CORPUS_DUCKDB_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, __file__, "--child", method, "--docs", str(docs),
                             "--threshold", str(threshold), "--result", str(result)], env=env)
    peak, idle, p = 0, None, psutil.Process(proc.pid)
    ready = Path(f"{result}.ready")
    while proc.poll() is None:
        try:
            tree = [p, *p.children(recursive=True)]
            rss = sum(q.memory_info().rss for q in tree if q.is_running())
            if idle is None and ready.exists():
                idle, peak = rss, rss  # the peak counts from here: the method's own work
            peak = max(peak, rss)
        except psutil.Error:
            pass
        time.sleep(0.05)
    if proc.returncode:
        sys.exit(f"{method} failed")
    out = json.loads(result.read_text())
    result.unlink()
    ready.unlink(missing_ok=True)
    return {"seconds": out["seconds"], "removed": set(out["removed"]), "peak": peak,
            "idle": idle or 0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scale", action="store_true", help="~100 releases, >= 100,000 files")
    ap.add_argument("--threshold", type=float, default=0.85)
    ap.add_argument("--methods", default=None,
                    help="default: datasketch,rensa,corpus,corpus-verify (--scale: corpus's)")
    ap.add_argument("--child"), ap.add_argument("--docs"), ap.add_argument("--result")
    _summary.add_option(ap)
    args = ap.parse_args()
    if args.child:
        child(args.child, Path(args.docs), args.threshold, Path(args.result))
        return
    work = ROOT / ".cache" / "bench-corpus" / ("scale" if args.scale else "main")
    docs = build(work, SCALE if args.scale else MAIN)
    table = load(docs)
    mb = sum(pa.compute.binary_length(table.column("content")).to_numpy(
        zero_copy_only=False)) / 1e6
    n = table.num_rows
    t0 = time.perf_counter()
    pairs = None if args.scale else truth(table, args.threshold)
    del table
    print(f"{n:,} documents, {mb:.1f} MB; " + (
        f"{len(pairs):,} true pairs at J >= {args.threshold} (ground truth in "
        f"{time.perf_counter() - t0:.0f} s)" if pairs is not None else
        "no ground truth at this scale (quality is measured on the main corpus)"))
    print(f"{'method':<16}{'seconds':>9}{'docs/s':>9}{'MB/s':>8}{'peak RSS':>10}"
          f"{'of which work':>15}{'precision':>11}{'recall':>8}{'F1':>7}")
    methods = args.methods or ("corpus,corpus-verify,datasketch-stream" if args.scale
                               else "datasketch,rensa,corpus,corpus-verify")
    if args.methods is None and importlib.util.find_spec("rensa") is None:
        methods = methods.replace(",rensa", "")
        print("rensa is not installed (pip install -e '.[bench]'): left out")
    results = {}
    for method in methods.split(","):
        r = results[method] = measure(method, docs, args.threshold)
        r["score"] = score(n, pairs, r["removed"]) if pairs is not None else None
        quality = ("".join(f"{x:>{w}.4f}" for x, w in zip(r["score"], (11, 8, 7), strict=True))
                   if r["score"] is not None else f"{'-':>11}{'-':>8}{'-':>7}")
        print(f"{method:<16}{r['seconds']:>9.1f}{n / r['seconds']:>9.0f}"
              f"{mb / r['seconds']:>8.1f}{r['peak'] / 2**20:>8.0f}MB"
              f"{(r['peak'] - r['idle']) / 2**20:>13.0f}MB"
              f"{quality}  removed {len(r['removed']):,}", flush=True)
    _summary.write(args.summary, summary(results, mb, args.threshold))


def summary(results: dict[str, dict], mb: float, threshold: float) -> list[dict]:
    """Headline rows: corpus (with --verify if it ran) against rensa's and datasketch's MB/s,
    and against datasketch's F1 (or, at --scale, its work memory)."""
    ours_name = next((m for m in ("corpus-verify", "corpus") if m in results), None)
    if ours_name is None:
        return []
    ours = results[ours_name]
    flag = "--minhash" + (" --verify" if ours_name == "corpus-verify" else "")
    names = {"rensa": "rensa (RMinHash + RMinHashLSH)",
             "datasketch": "datasketch (MinHash + MinHashLSH)",
             "datasketch-stream": "datasketch, streamed (MinHash + MinHashLSH)"}
    rows = []
    for peer, target in (("rensa", ">= 3x" if ours_name == "corpus-verify" else ""),
                         ("datasketch", ""), ("datasketch-stream", "")):
        if peer in results:
            rows.append(_summary.row("minhash", f"corpus {flag}, MB/s (1 core)",
                                     mb / ours["seconds"], mb / results[peer]["seconds"],
                                     names[peer], "MB/s", target))
    for peer in ("datasketch", "datasketch-stream"):
        if peer not in results:
            continue
        if ours["score"] is not None and results[peer]["score"] is not None:
            rows.append(_summary.row("minhash", f"corpus {flag}, F1 at J >= {threshold}",
                                     ours["score"][2], results[peer]["score"][2], names[peer],
                                     "F1"))
        else:
            work = (ours["peak"] - ours["idle"]) / 2**20
            peer_work = (results[peer]["peak"] - results[peer]["idle"]) / 2**20
            rows.append(_summary.row("minhash", f"corpus {flag}, work memory (peak RSS added)",
                                     work, peer_work, names[peer], "MB", "<= 0.25x"))
    return rows[:3]


if __name__ == "__main__":
    main()
