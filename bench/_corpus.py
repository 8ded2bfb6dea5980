"""Shared by the benchmarks: real documents from this environment's site-packages."""

from __future__ import annotations

import glob
import os
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from corpus.engine import Engine
from corpus.extract.duckdb_job import ExtractJob, ExtractOptions
from corpus.github.build import GithubTablesJob, GithubTablesOptions
from corpus.io import DatasetDir

ROOT = Path(__file__).resolve().parent.parent


def documents(work: Path, query: str = "github_multilang.sql", min_size: int = 0,
              partition_bytes: int = 16 << 20, include: list[str] | None = None,
              ) -> tuple[Path, pa.Table]:
    """Every text file of PolyCoder's languages in site-packages (or the distributions
    `include` names), as a dataset directory and as one table."""
    with Engine(workers=os.cpu_count(), progress=False) as engine:
        engine.run(GithubTablesJob(GithubTablesOptions(site_packages=True,
                                                       include=include or []),
                                   DatasetDir(str(work / "tables"))))
        engine.run(ExtractJob(ExtractOptions(str(ROOT / "queries" / query), str(work / "tables"),
                                             params={"min_size": min_size},
                                             partition_bytes=partition_bytes),
                              DatasetDir(str(work / "docs"))))
    files = sorted(glob.glob(str(work / "docs" / "data" / "part-*.parquet")))
    return work / "docs", pq.read_table(files)


def best_of(n: int, fn: Callable[[], object]) -> float:
    """The fastest of n timed calls (seconds): the least disturbed by a shared machine."""
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)
