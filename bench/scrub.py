"""Benchmark: `corpus scrub` on real code with planted secrets, side by side with two peers on
the same files, one core each (the process is pinned to one CPU): detect-secrets' own ad-hoc
API (`scan_line` on every line, default plugins; the named baseline) and Kingfisher (the
compiled Rust / Vectorscan scanner of `kingfisher-secret-scanner`, its built-in rules).

Real files: the Python and multi-language files of the installed packages (>= 2,000). Half of
them get one planted secret (bench/_planted.py: kinds in turn, real formats, seeded, never real
credentials) in one of its contexts in turn: an assignment, a dict, a call, a comment, a
docstring, a URL's password, or a config file of its own (.env, YAML, JSON); the other half
stay clean. Setup (imports, rules, compiled databases: once per worker process) is timed on its
own; the rate is the median of --repeats passes after a warm-up. Per method: recall per kind
and per context (the planted value is gone from the output), clean files altered (by anything
but an email or IP address), MB/s; for corpus also the Python files that parsed before and do
not after.

    .venv/bin/python bench/scrub.py [--files 3000] [--baseline-files 400] [--summary FILE]
"""

from __future__ import annotations

import argparse
import ast
import functools
import os
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _summary
from _planted import CONTEXTS, GENERATORS, plant_in

ROOT = Path(__file__).resolve().parent.parent
PII = {"EMAIL", "IP_ADDRESS"}
BATCH = 2000  # documents per call of the stage's map: a partition's worth


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


def planted_corpus(files: list[tuple[str, str]], seed: int = 1) -> list[tuple]:
    """(path, text, kind, context, value) per document; kind None for a clean one."""
    r = random.Random(seed)
    kinds, contexts = list(GENERATORS), list(CONTEXTS)
    docs = []
    for i, (p, c) in enumerate(files):
        if i % 2:
            docs.append((p, c, None, None, None))
            continue
        j = i // 2
        kind, context = kinds[j % len(kinds)], contexts[(j // len(kinds)) % len(contexts)]
        text, path, value = plant_in(c, p, kind, context, r)
        docs.append((path, text, kind, context, value))
    return docs


def corpus_stage(docs: list[tuple]) -> list[tuple[str, Counter[str]]]:
    """The scrub stage's own map over Arrow batches (its one compiled pass per batch)."""
    import json

    from corpus.scrub.redact import ScrubOptions
    from corpus.scrub.stage import scrub_table

    opts = ScrubOptions()
    out = []
    for a in range(0, len(docs), BATCH):
        part = docs[a:a + BATCH]
        table = pa.table({"path": [d[0] for d in part],
                          "content": pa.array([d[1] for d in part], pa.large_string())})
        kept, _ = scrub_table(table, opts)
        out += [(t, Counter(json.loads(s))) for t, s in zip(
            kept.column("content").to_pylist(), kept.column("secrets").to_pylist(),
            strict=True)]
    return out


def detect_secrets_lines(docs: list[tuple]) -> list[tuple[str, Counter[str]]]:
    """The baseline: detect-secrets' documented ad-hoc scan, every line, default plugins; each
    reported value is replaced where it occurs in its line."""
    from detect_secrets.core.scan import scan_line
    from detect_secrets.settings import default_settings

    results = []
    with default_settings():
        for _, text, *_ in docs:
            counts: Counter[str] = Counter()
            out = []
            for line in text.split("\n"):
                for s in scan_line(line):
                    if s.secret_value and s.secret_value in line:
                        line = line.replace(s.secret_value, "<SECRET>")
                        counts[s.type] += 1
                out.append(line)
            results.append(("\n".join(out), counts))
    return results


@functools.cache
def _kingfisher_scanner():
    import kingfisher_sdk

    return kingfisher_sdk.Scanner(kingfisher_sdk.Rules(confidence="low"), base64=False)


def _corpus_setup() -> None:
    from corpus.scrub import engine, stage  # noqa: F401  (the imports a worker pays once)

    engine.index()  # built, or read from its cache


def kingfisher(docs: list[tuple]) -> list[tuple[str, Counter[str]]]:
    """Kingfisher's scanner, built-in rules at low confidence (its widest), one document at a
    time; each finding's secret is replaced in the text."""
    scanner = _kingfisher_scanner()
    results = []
    for _, text, *_ in docs:
        counts: Counter[str] = Counter()
        for f in scanner.scan(text.encode()):
            if f.visible and f.secret and f.secret in text:
                text = text.replace(f.secret, "<SECRET>")
                counts[f.rule_id] += 1
        results.append((text, counts))
    return results


def measure(name: str, fn, docs: list[tuple], setup=None, repeats: int = 1) -> dict:
    """Setup (imports, rules, compiled databases: once per worker process) timed on its own;
    then a warm-up on the first 50 documents and the median of `repeats` timed passes."""
    t0 = time.perf_counter()
    if setup is not None:
        setup()
    setup_s = time.perf_counter() - t0
    fn(docs[:50])
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        outputs = fn(docs)
        times.append(time.perf_counter() - t0)
    seconds = statistics.median(times)
    hits, total, by_context, ctx_total = Counter(), Counter(), Counter(), Counter()
    clean_altered = clean_fp = broken = 0
    for (path, text, kind, context, value), (out, counts) in zip(docs, outputs, strict=True):
        if kind is None:
            other = {k: v for k, v in counts.items() if k not in PII}
            clean_fp += sum(other.values())
            clean_altered += bool(other)
        else:
            check = value.split("\n")[1] if kind == "private_key" else value
            total[kind] += 1
            ctx_total[context] += 1
            hits[kind] += check not in out
            by_context[context] += check not in out
        if path.endswith(".py") and out != text and name == "corpus scrub":
            broken += _parses(text) and not _parses(out)
    return {"name": name, "setup": setup_s, "hits": hits, "total": total, "by_context": by_context,
            "ctx_total": ctx_total, "seconds": seconds,
            "mb": sum(len(d[1].encode()) for d in docs) / 1e6, "broken": broken,
            "clean_altered": clean_altered, "clean_fp": clean_fp,
            "n_clean": sum(1 for d in docs if d[2] is None)}


def _parses(text: str) -> bool:
    try:
        ast.parse(text)
    except (SyntaxError, ValueError):
        return False
    return True


def report(results: list[dict]) -> None:
    print(f"\n{'kind':<22}" + "".join(f"{r['name'][:20]:>22}" for r in results))
    for kind in GENERATORS:
        print(f"{kind:<22}" + "".join(
            f"{r['hits'][kind]:>16}/{r['total'][kind]:<5}" for r in results))
    print(f"\n{'context':<22}" + "".join(f"{r['name'][:20]:>22}" for r in results))
    for c in CONTEXTS:
        print(f"{c:<22}" + "".join(
            f"{r['by_context'][c]:>16}/{r['ctx_total'][c]:<5}" for r in results))
    print()
    for r in results:
        r["recall"] = sum(r["hits"].values()) / max(1, sum(r["total"].values()))
        r["min_kind"] = min((r["hits"][k] / r["total"][k], k) for k in r["total"])
        r["rate"] = r["mb"] / r["seconds"]
        print(f"{r['name']:<26} recall {r['recall']:.4f} (lowest kind {r['min_kind'][1]} "
              f"{r['min_kind'][0]:.2f})  clean files altered {r['clean_altered']}/"
              f"{r['n_clean']} ({r['clean_altered'] / max(1, r['n_clean']):.2%}, "
              f"{r['clean_fp']} placeholders, emails/IPs excluded)  {r['rate']:.2f} MB/s "
              f"({r['mb']:.1f} MB in {r['seconds']:.2f} s; setup {r['setup']:.1f} s)")
    print(f"corpus scrub: Python files broken by the output: {results[0]['broken']}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--files", type=int, default=3000)
    ap.add_argument("--baseline-files", type=int, default=400,
                    help="detect-secrets is ~100x slower: measured on the first N files")
    ap.add_argument("--repeats", type=int, default=3,
                    help="timed passes of corpus and Kingfisher (the median is reported)")
    _summary.add_option(ap)
    args = ap.parse_args()
    files = real_files(args.files)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core for every method
    docs = planted_corpus(files)
    print(f"{len(docs):,} real files ({sum(len(d[1]) for d in docs) / 1e6:.1f} MB), "
          f"{sum(d[2] is not None for d in docs):,} with a planted secret, "
          f"{len(GENERATORS)} kinds x {len(CONTEXTS)} contexts; one core")
    results = [measure("corpus scrub", corpus_stage, docs, _corpus_setup, args.repeats),
               measure("kingfisher 1.5.0", kingfisher, docs, _kingfisher_scanner,
                       args.repeats),
               measure(f"detect-secrets (first {args.baseline_files})", detect_secrets_lines,
                       docs[:args.baseline_files])]
    report(results)
    ours, kf, ds = results
    print(f"\nspeed: corpus / kingfisher {ours['rate'] / kf['rate']:.2f}x, corpus / "
          f"detect-secrets {ours['rate'] / ds['rate']:.1f}x")
    _summary.write(args.summary, [
        _summary.row("scrub", f"corpus scrub, recall of planted secrets "
                     f"({sum(ours['total'].values()):,})", ours["recall"], kf["recall"],
                     "kingfisher 1.5.0 (same files)", "recall", ">= 0.99 per kind"),
        _summary.row("scrub", "corpus scrub, clean files altered", ours["clean_altered"] /
                     ours["n_clean"], kf["clean_altered"] / kf["n_clean"],
                     "kingfisher 1.5.0 (same files)", "share", "<= 0.5 %",
                     ratio=None),
        _summary.row("scrub", "corpus scrub, MB/s (1 core, whole stage)", ours["rate"],
                     kf["rate"], "kingfisher 1.5.0 (same files)", "MB/s", ">= 50"),
        _summary.row("scrub", "corpus scrub, MB/s vs detect-secrets", ours["rate"],
                     ds["rate"], f"detect-secrets scan_line (first {args.baseline_files})",
                     "MB/s")])


if __name__ == "__main__":
    main()
