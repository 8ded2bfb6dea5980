"""The facade every command and test constructs: an Engine is a Runner (corpus/runner.py) on
an executor chosen by name (`executor=`, else env CORPUS_EXECUTOR, else dask).

dask (default): a LocalCluster of one single-threaded worker process per core, on 127.0.0.1,
or with `--scheduler tcp://host:8786` / DASK_SCHEDULER_ADDRESS an existing cluster
(corpus/executors/dask.py). local: in this process, one task after another
(corpus/executors/local.py), for small inputs, tests and pdb; same output bytes.
"""

from __future__ import annotations

import os
from typing import Any

from rich.console import Console

from corpus.executors import Executor, kind
from corpus.executors.local import LocalExecutor
from corpus.log import Log
from corpus.runner import Runner, check_rows, intact_records, remove_scratch
from corpus.stage import Job

__all__ = ["Engine", "check_rows", "intact_records", "remove_scratch"]


class Engine:
    """A runner plus the executor it owns: resume, progress, manifest, row invariant."""

    def __init__(self, scheduler: str | None = None, workers: int | None = None,
                 progress: bool = True, console: Console | None = None,
                 log_format: str = "text", executor: str | None = None):
        self.scheduler = scheduler or os.environ.get("DASK_SCHEDULER_ADDRESS") or None
        self.workers = workers
        self.progress = progress
        self.console = console or Console(stderr=True, soft_wrap=True)
        self.log = Log(log_format, progress, self.console)
        self.kind = kind(executor)
        self.executor: Executor
        if self.kind == "local":
            self.executor = LocalExecutor()
        else:  # the only place that reaches for Dask, and only when asked to
            from corpus.executors.dask import DaskExecutor

            self.executor = DaskExecutor(self.log, self.scheduler, workers)
        self.runner = Runner(self.executor, self.log,
                             self.scheduler if self.kind == "dask" else None)

    @property
    def client(self) -> Any:
        """The Dask client (dask executor only)."""
        return self.executor.client  # type: ignore[attr-defined]

    def close(self) -> None:
        self.executor.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def n_workers(self) -> int:
        return self.executor.n_workers()

    def call(self, fn: Any, *args: Any) -> Any:
        """Run one function on a worker (a global step) and return its result."""
        return self.executor.call(fn, *args)

    def run(self, job: Job, overwrite: bool = False,
            replace_stale: bool = False) -> dict[str, Any]:
        """Compute every partition of `job` not already done, then write its manifest
        (corpus/runner.py)."""
        return self.runner.run(job, overwrite, replace_stale)

