"""Benchmark: `corpus extract --engine duckdb` against the floor of reading the same tables.

Builds GitHub-shaped tables from this environment's site-packages (or takes --tables), then in
one run, side by side on the same files:
  floor     pyarrow.parquet.read_table of files, contents and licenses (every column)
  duckdb    one DuckDB COPY of the whole query result to a single Parquet file (no partitions,
            no resume, no cluster): what the partitioning and the engine cost on top of DuckDB
  corpus    corpus extract (plan + partitioned run on a warm local cluster), 1 and 2 workers
and prints rows/s, MB/s of content, and each time as a ratio to the floor.

    .venv/bin/python bench/extract.py [--tables DIR] [--query queries/github_python.sql]
                                      [--summary FILE]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _summary
from _corpus import best_of

from corpus import duck
from corpus.engine import Engine
from corpus.extract.duckdb_job import ExtractJob, ExtractOptions
from corpus.github.build import GithubTablesJob, GithubTablesOptions
from corpus.io import DatasetDir

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tables", help="existing TABLES folder (default: build from site-packages)")
    ap.add_argument("--query", default=str(ROOT / "queries" / "github_python.sql"))
    ap.add_argument("--partition-size", default=16 * 1024 * 1024, type=int)
    ap.add_argument("--repeat", default=3, type=int)
    _summary.add_option(ap)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="corpus-bench-"))
    try:
        with Engine(workers=2, progress=False) as engine:
            tables = args.tables
            if tables is None:
                tables = str(work / "tables")
                t0 = time.perf_counter()
                m = engine.run(GithubTablesJob(GithubTablesOptions(site_packages=True),
                                               DatasetDir(tables)))
                print(f"github-tables: {m['rows']:,} files, {m['repos']} repos in "
                      f"{time.perf_counter() - t0:.1f} s (2 workers)")
            names = ["files", "contents", "licenses"]
            floor = best_of(args.repeat, lambda: [pq.read_table(f"{tables}/{n}.parquet")
                                                  for n in names])

            opts = ExtractOptions(args.query, tables, partition_bytes=args.partition_size)
            plan = ExtractJob(opts, DatasetDir(str(work / "x"))).plan()
            mb = plan.content_bytes / 1e6

            def plain_duckdb() -> None:
                job = ExtractJob(opts, DatasetDir(str(work / "unused")))
                con = job.connect(threads=2)
                con.execute(f"COPY ({plan.sql}) TO {duck.literal(str(work / 'one.parquet'))} "
                            "(FORMAT parquet, COMPRESSION zstd)")
                con.close()

            t_duck = best_of(args.repeat, plain_duckdb)
            results = []
            for workers in (1, 2):
                with Engine(workers=workers, progress=False) as e:
                    e.n_workers()  # start the cluster outside the timing

                    def corpus_extract(e=e) -> None:
                        out = work / "out"
                        shutil.rmtree(out, ignore_errors=True)
                        e.run(ExtractJob(opts, DatasetDir(str(out))))

                    results.append((workers, best_of(args.repeat, corpus_extract)))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"\nquery {os.path.relpath(args.query, ROOT)}: {plan.rows:,} rows, {mb:.1f} MB of "
          f"content, {plan.partitions} partitions of {args.partition_size / 2**20:.0f} MiB; "
          f"best of {args.repeat}, {os.cpu_count()} cores")
    print(f"{'run':<34}{'seconds':>9}{'rows/s':>11}{'MB/s':>8}{'x floor':>9}")
    rows = [("floor: pyarrow read of the 3 tables", floor),
            ("DuckDB COPY, one file, 2 threads", t_duck)]
    rows += [(f"corpus extract, {w} worker{'s' if w > 1 else ''}", t) for w, t in results]
    for label, t in rows:
        print(f"{label:<34}{t:>9.3f}{plan.rows / t:>11,.0f}{mb / t:>8.1f}{t / floor:>9.2f}")
    t_corpus = dict(results)[2]
    _summary.write(args.summary, [
        _summary.row("extract", "corpus extract, 2 workers, MB/s of content", mb / t_corpus,
                     mb / floor, "pyarrow read of the 3 tables (floor)", "MB/s"),
        _summary.row("extract", "corpus extract, 2 workers, MB/s of content", mb / t_corpus,
                     mb / t_duck, "one DuckDB COPY, 2 threads", "MB/s")])


if __name__ == "__main__":
    main()
