"""Benchmark: the whole flow on real code, per stage, at 1x, 3x and 10x the documents.

The corpus: GitHub-shaped tables of this environment's installed packages, PolyCoder's query
(12 languages). The scales are more real packages, not copies: packages in a fixed order (a
hash of their name), each scale adding packages until its share of code is reached (a package
may be at most a quarter of its scale, so no single one dominates). One `corpus run` per scale
(extract -> filter -> exact dedup -> MinHash -> licenses -> scrub -> decontaminate ->
tokenizer -> token shards), on the local cluster; per stage, from the manifests
(corpus/report/timings.py): seconds, MB/s per core, share of the total. Peak memory per
worker process is sampled (psutil) during each run.

Side by side on the 1x documents, one core each:
  I/O floor       pyarrow reading the extracted Parquet and writing it again (zstd)
  raw hashing     xxh3-64 of every document (what exact dedup cannot beat)
  raw encoders    tiktoken's encode (the token stage's exact fast path) and `tokenizers`'
                  encode_batch_fast on one thread, with the run's own tokenizer
  datatrove       DocumentTokenizer (datatrove 0.10) on the same documents and tokenizer,
                  the named baseline of the token stage; our stage's rate is its tokenize and
                  pack steps on one worker
  BPE training    `tokenizers`' trainer fed the same sample directly, next to the stage's

    .venv/bin/python bench/pipeline.py [--scales 1,3,10] [--base-mb 16] [--workers 2]
                                       [--summary FILE]
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata as md
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _pipeline_peers as peers
import _summary

ROOT = Path(__file__).resolve().parent.parent
#: PolyCoder's extensions, as queries/github_multilang.sql reads them
CODE = (".py", ".c", ".h", ".cc", ".cpp", ".hpp", ".cs", ".go", ".java", ".js", ".ts", ".php",
        ".rb", ".rs", ".scala")
STAGES = """
[pipeline]
output = "{out}"

[[stages]]
name = "tables"
kind = "github-tables"
site_packages = true
include = {include}

[[stages]]
name = "raw"
kind = "extract"
input = "tables"
query = "{root}/queries/github_multilang.sql"
partition_bytes = "16MiB"

[[stages]]
name = "filtered"
kind = "filter"
input = "raw"
rules = [{{ rule = "size", max = 1000000 }}, {{ rule = "line_max", max = 1000 }},
         {{ rule = "alpha_frac", min = 0.25 }}]

[[stages]]
name = "exact"
kind = "dedup"
input = "filtered"
method = "exact"

[[stages]]
name = "near"
kind = "dedup"
input = "exact"
method = "minhash"
threshold = 0.85

[[stages]]
name = "licensed"
kind = "licenses"
input = "near"

[[stages]]
name = "scrubbed"
kind = "scrub"
input = "licensed"

[[stages]]
name = "clean"
kind = "decontaminate"
input = "scrubbed"
benchmarks = ["humaneval"]

[[stages]]
name = "tokenizer"
kind = "tokenizer"
input = "clean"
vocab_size = 32768

[[stages]]
name = "tokens"
kind = "shard"
input = "clean"
format = "tokens"
tokenizer = "tokenizer"
seq_len = 1024
"""


def code_bytes() -> dict[str, int]:
    """Bytes of PolyCoder-language files per installed distribution (from its RECORD)."""
    out = {}
    for d in md.distributions():
        name = d.metadata["Name"]
        out[name] = sum(int(f.size or 0) for f in d.files or [] if str(f).endswith(CODE))
    return {k: v for k, v in out.items() if v}


def scale_packages(scales: list[int], base: float) -> list[list[str]]:
    """The packages of each scale, each scale a superset of the one before."""
    sizes = code_bytes()
    order = sorted(sizes, key=lambda n: hashlib.sha256(n.lower().encode()).hexdigest())
    chosen: list[str] = []
    total, out = 0, []
    for s in sorted(scales):
        target = s * base
        for name in order:
            if total >= target:
                break
            if name not in chosen and sizes[name] <= target / 4:
                chosen.append(name)
                total += sizes[name]
        out.append(sorted(chosen, key=str.lower))
    return out


class PeakMemory:
    """The peak resident memory of each process under `pid`, sampled every 0.2 s."""

    def __init__(self, pid: int):
        import psutil

        self.root = psutil.Process(pid)
        self.peak: dict[int, tuple[str, int]] = {}
        #: (time, the largest worker's resident memory then): mapped to stages afterwards
        self.timeline: list[tuple[float, int]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)
        self.thread.start()

    def _poll(self) -> None:
        import psutil

        while not self.stop.wait(0.2):
            try:
                procs = [self.root, *self.root.children(recursive=True)]
            except psutil.NoSuchProcess:
                return
            largest = 0
            for p in procs:
                try:
                    rss, cmd = p.memory_info().rss, " ".join(p.cmdline()[:4])
                except psutil.Error:
                    continue
                if rss > self.peak.get(p.pid, ("", 0))[1]:
                    self.peak[p.pid] = (cmd, rss)
                if "spawn_main" in cmd:
                    largest = max(largest, rss)
            self.timeline.append((time.time(), largest))

    def result(self) -> dict[str, float]:
        self.stop.set()
        self.thread.join()
        workers = [rss for pid, (cmd, rss) in self.peak.items()
                   if pid != self.root.pid and "spawn_main" in cmd]
        return {"main_mb": self.peak.get(self.root.pid, ("", 0))[1] / 2**20,
                "worker_mb": max(workers, default=0) / 2**20, "processes": len(workers)}


def stage_peak(timeline: list[tuple[float, int]], manifest: dict) -> float | None:
    """The largest worker's peak resident memory (MiB) while the stage's last run ran (its
    manifest's start and finish, to the second)."""
    from datetime import datetime

    run = (manifest.get("runs") or [{}])[-1]
    if not run.get("started") or not run.get("finished"):
        return None
    a = datetime.fromisoformat(run["started"]).timestamp() - 0.5
    b = datetime.fromisoformat(run["finished"]).timestamp() + 1.0
    seen = [rss for t, rss in timeline if a <= t <= b]
    return max(seen) / 2**20 if seen else None


def run_scale(include: list[str], work: Path, workers: int) -> dict:
    cfg = work / "pipeline.toml"
    cfg.write_text(STAGES.format(out=work / "out", include=json.dumps(include), root=ROOT))
    t0 = time.perf_counter()
    proc = subprocess.Popen([str(Path(sys.executable).parent / "corpus"), "run", str(cfg),
                             "--workers", str(workers), "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    mem = PeakMemory(proc.pid)
    out, err = proc.communicate()
    seconds = time.perf_counter() - t0
    peak = mem.result()
    if proc.returncode:
        raise SystemExit(f"corpus run failed:\n{err[-3000:]}")
    from corpus.report.collect import stages_of
    from corpus.report.timings import timings

    stages = stages_of(str(work / "out"))
    rows = timings(stages)
    for row, stage in zip(rows, [s for s in stages if s.manifest], strict=True):
        row["worker_mb"] = stage_peak(mem.timeline, stage.manifest)
    raw = json.loads((work / "out" / "raw" / "manifest.json").read_text())
    tables = sum(t["seconds"] or 0 for t in rows if t["kind"] == "github-tables")
    return {"seconds": seconds, "from_extract": seconds - tables, "rows": rows, "peak": peak,
            "packages": len(include),
            "content_mb": raw["content_bytes"] / 1e6, "documents": raw["rows"],
            "stdout": out}


def print_scale(scale: int, r: dict, workers: int) -> None:
    print(f"\n{scale}x: {r['packages']} packages, {r['documents']:,} documents, "
          f"{r['content_mb']:.1f} MB of code; corpus run {r['seconds']:.1f} s wall, "
          f"{r['content_mb'] / r['seconds'] / workers:.2f} MB/s per core end to end; peak "
          f"memory per worker {r['peak']['worker_mb']:.0f} MiB, main process "
          f"{r['peak']['main_mb']:.0f} MiB")
    print(f"  extraction to token shards (the run less the tables build, the stand-in for "
          f"BigQuery's tables): {r['from_extract']:.1f} s, "
          f"{r['content_mb'] / r['from_extract'] / workers:.2f} MB/s per core")
    print(f"  {'stage':<11}{'kind':<15}{'seconds':>9}{'read MB':>10}{'MB/s/core':>11}"
          f"{'share':>8}{'worker MiB':>12}")
    for t in r["rows"]:
        rate = "" if t["mb_s_core"] is None else f"{t['mb_s_core']:.2f}"
        mem = "" if t.get("worker_mb") is None else f"{t['worker_mb']:.0f}"
        print(f"  {t['name']:<11}{t['kind']:<15}{t['seconds'] or 0:>9.2f}"
              f"{t['bytes_read'] / 1e6:>10.1f}{rate:>11}{(t['share'] or 0):>8.0%}{mem:>12}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scales", default="1,3,10")
    ap.add_argument("--base-mb", type=float, default=16.0,
                    help="MB of code (by the packages' RECORD) at 1x")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--work", help="keep the runs here (default: a temporary folder)")
    _summary.add_option(ap)
    args = ap.parse_args()
    scales = [int(s) for s in args.scales.split(",")]
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
        base = Path(args.work or tmp)
        for scale, include in zip(sorted(scales), scale_packages(scales, args.base_mb * 1e6),
                                  strict=True):
            work = base / f"x{scale}"
            work.mkdir(parents=True, exist_ok=True)
            results[scale] = run_scale(include, work, args.workers)
            print_scale(scale, results[scale], args.workers)
        first = base / f"x{min(scales)}" / "out"
        side = peers.side_by_side(first)
    top = results[max(scales)]
    print("\nscaling: " + "; ".join(
        f"{s}x {r['content_mb']:.0f} MB in {r['seconds']:.0f} s "
        f"({r['seconds'] / r['content_mb']:.2f} s/MB), worker peak {r['peak']['worker_mb']:.0f} "
        f"MiB" for s, r in results.items()))
    peers.report(side)
    tokens = next(t for t in top["rows"] if t["name"] == "tokens")
    total_rate = top["content_mb"] / top["from_extract"] / args.workers
    _summary.write(args.summary, [
        _summary.row("pipeline", "token-shard stage, MB/s per core (tokenize + pack)",
                     side["ours_tokens"], side["datatrove"], "datatrove DocumentTokenizer",
                     "MB/s", ">= 10, >= 4x"),
        _summary.row("pipeline", f"whole pipeline at {max(scales)}x, MB/s per core (extract "
                     "to token shards)",
                     total_rate, None, "", "MB/s", ">= 5"),
        _summary.row("pipeline", f"token-shard stage in the run at {max(scales)}x, MB/s per core",
                     tokens["mb_s_core"] or 0, None, "", "MB/s")])


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
