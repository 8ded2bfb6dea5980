"""Benchmark: `corpus scrub` on real code with planted secrets, against detect-secrets' own
ad-hoc API (`scan_line` on every line) as the named baseline, side by side on the same files.

Real files: the Python and multi-language files of the installed packages (>= 2,000). Half of
them get one planted secret each (bench/_planted.py: 19 kinds, real formats, seeded, never real
credentials), on a line of its own at a random place, written as code, a comment, a string or a
config line; the other half stay clean. Measured per method: recall per kind (the planted value
is gone from the output), placeholders on clean files (each one a false positive unless it is a
real email / IP address, which real code has in author headers), clean files altered, MB/s.

    .venv/bin/python bench/scrub.py [--files 2400] [--baseline-files 400] [--summary FILE]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _summary
from _planted import GENERATORS, plant

from corpus.scrub.redact import ScrubOptions, redact

ROOT = Path(__file__).resolve().parent.parent
PII = {"EMAIL", "IP_ADDRESS"}


def real_files(n: int) -> list[tuple[str, str]]:
    """(path, content) of real files: GitHub-shaped tables of this environment's packages,
    extracted with both shipped queries."""
    from corpus.engine import Engine
    from corpus.extract.duckdb_job import ExtractJob, ExtractOptions
    from corpus.github.build import GithubTablesJob, GithubTablesOptions
    from corpus.io import DatasetDir

    seen, out = set(), []
    with tempfile.TemporaryDirectory(prefix="bench-scrub-") as tmp:  # ~260 MB of tables
        work = Path(tmp)
        with Engine(workers=2, progress=False) as e:
            e.run(GithubTablesJob(GithubTablesOptions(site_packages=True), DatasetDir(str(
                work / "tables"))))
            for q in ("github_python.sql", "github_multilang.sql"):
                e.run(ExtractJob(ExtractOptions(str(ROOT / "queries" / q),
                                                str(work / "tables")),
                                 DatasetDir(str(work / q))))
        for q in ("github_python.sql", "github_multilang.sql"):
            t = pq.read_table(sorted((work / q).glob("data/part-*.parquet")),
                              columns=["path", "content"])
            for p, c in zip(t.column("path").to_pylist(), t.column("content").to_pylist(),
                            strict=True):
                if c and p not in seen and len(c) < 200_000:
                    seen.add(p)
                    out.append((p, c))
    random.Random(0).shuffle(out)
    return out[:n]


def corpus_scrub(path: str, text: str) -> tuple[str, Counter[str]]:
    return redact(text, path, ScrubOptions())


def detect_secrets_lines(path: str, text: str) -> tuple[str, Counter[str]]:
    """The baseline: detect-secrets' documented ad-hoc scan, every line, default plugins; each
    reported value is replaced where it occurs in its line."""
    from detect_secrets.core.scan import scan_line
    from detect_secrets.settings import default_settings

    counts: Counter[str] = Counter()
    out = []
    with default_settings():
        for line in text.split("\n"):
            for s in scan_line(line):
                if s.secret_value and s.secret_value in line:
                    line = line.replace(s.secret_value, "<SECRET>")
                    counts[s.type] += 1
            out.append(line)
    return "\n".join(out), counts


STYLES = ["code", "comment", "config"]


def planted_corpus(files: list[tuple[str, str]], seed: int = 1):
    r = random.Random(seed)
    kinds = list(GENERATORS)
    docs = []
    for i, (p, c) in enumerate(files):
        if i % 2:
            docs.append((p, c, None, None))
            continue
        kind = kinds[(i // 2) % len(kinds)]
        text, value = plant(c, kind, r, r.choice(STYLES))
        docs.append((p, text, kind, value))
    return docs


def measure(name: str, fn, docs) -> dict:
    hits, total = Counter(), Counter()
    clean_altered = clean_fp = 0
    nbytes = 0
    t0 = time.perf_counter()
    for path, text, kind, value in docs:
        nbytes += len(text.encode())
        out, counts = fn(path, text)
        if kind is None:
            other = {k: v for k, v in counts.items() if k not in PII}
            clean_fp += sum(other.values())
            clean_altered += bool(other)
        else:
            total[kind] += 1
            hits[kind] += value not in out
    seconds = time.perf_counter() - t0
    n_clean = sum(1 for d in docs if d[2] is None)
    return {"name": name, "hits": hits, "total": total, "seconds": seconds, "mb": nbytes / 1e6,
            "clean_altered": clean_altered, "clean_fp": clean_fp, "n_clean": n_clean}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--files", type=int, default=2400)
    ap.add_argument("--baseline-files", type=int, default=400,
                    help="the baseline is ~100x slower: measured on the first N files")
    _summary.add_option(ap)
    args = ap.parse_args()
    files = real_files(args.files)
    docs = planted_corpus(files)
    print(f"{len(docs):,} real files ({sum(len(d[1]) for d in docs) / 1e6:.1f} MB), "
          f"{sum(d[2] is not None for d in docs):,} with a planted secret, "
          f"{len(GENERATORS)} kinds")
    results = [measure("corpus scrub", corpus_scrub, docs),
               measure("detect-secrets scan_line", detect_secrets_lines,
                       docs[:args.baseline_files])]
    print(f"\n{'kind':<22}" + "".join(f"{r['name']:>28}" for r in results))
    for kind in GENERATORS:
        print(f"{kind:<22}" + "".join(
            f"{r['hits'][kind]:>22}/{r['total'][kind]:<5}" for r in results))
    print()
    for r in results:
        recall = r["recall"] = sum(r["hits"].values()) / max(1, sum(r["total"].values()))
        print(f"{r['name']:<26} recall {recall:.4f}  clean files altered "
              f"{r['clean_altered']}/{r['n_clean']} ({r['clean_altered'] / r['n_clean']:.2%}, "
              f"{r['clean_fp']} placeholders, emails/IPs excluded)  "
              f"{r['mb'] / r['seconds']:.2f} MB/s ({r['mb']:.1f} MB in {r['seconds']:.1f} s)")
    a, b = results
    print(f"\nspeed ratio corpus / detect-secrets: "
          f"{(a['mb'] / a['seconds']) / (b['mb'] / b['seconds']):.1f}x")
    name = f"detect-secrets scan_line (first {len(docs[:args.baseline_files]):,} files)"
    _summary.write(args.summary, [
        _summary.row("scrub", f"corpus scrub, recall of planted secrets "
                     f"({sum(a['total'].values()):,}; baseline {sum(b['total'].values()):,})",
                     a["recall"], b["recall"], name, "recall", ">= 0.95 (tests)"),
        _summary.row("scrub", "corpus scrub, MB/s (1 core)", a["mb"] / a["seconds"],
                     b["mb"] / b["seconds"], name, "MB/s")])


if __name__ == "__main__":
    main()
