"""The Dask executor: a LocalCluster (default: one single-threaded worker process per core, on
127.0.0.1) or an existing cluster's scheduler address (dask-jobqueue, dask-kubernetes, Coiled,
a hand-started `dask scheduler`). Its workers need `corpus` installed and must see the input
and output paths (a shared filesystem or an fsspec URL such as gs://). With corpus/cluster.py,
the only module that imports Dask."""

from __future__ import annotations

import importlib.util
import os
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from corpus.cluster import local_cluster, probe_scheduler
from corpus.errors import CorpusError, InputError
from corpus.log import Log

#: How long a scheduler may take to answer the handshake (also Client's connect timeout).
CONNECT_TIMEOUT_S = float(os.environ.get("CORPUS_CONNECT_TIMEOUT_S", "10"))
#: How long the work may wait with no worker at all before it fails.
NO_WORKERS_S = float(os.environ.get("CORPUS_NO_WORKERS_TIMEOUT_S", "120"))
POLL_S = 2.0


class DaskExecutor:
    name = "dask"

    def __init__(self, log: Log, scheduler: str | None = None, workers: int | None = None):
        self.log, self.scheduler, self.workers = log, scheduler, workers
        self._client: Any = None
        self._cluster: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            self._connect()
        return self._client

    def start(self) -> None:
        if self.scheduler:  # an unreachable scheduler fails before the output is touched
            _ = self.client

    def _connect(self) -> None:
        from distributed import Client

        if self.scheduler:
            probe_scheduler(self.scheduler, CONNECT_TIMEOUT_S)
            try:
                self._client = Client(self.scheduler, timeout=f"{CONNECT_TIMEOUT_S}s")
            except (OSError, TimeoutError) as e:
                raise InputError(f"cannot reach Dask scheduler {self.scheduler}: {e}") from e
            dashboard = None
        else:
            n = self.workers or os.cpu_count() or 1
            dashboard = "127.0.0.1:8787" if importlib.util.find_spec("bokeh") else None
            self._cluster = local_cluster(n, dashboard)
            self._client = Client(self._cluster)
        link = self._client.dashboard_link if self._cluster is None or dashboard else None
        self.log.event("cluster", f"[dim]dask: {self.describe()}"
                       + (f"; dashboard {link}" if link else ""),
                       scheduler=self.scheduler or "local", dashboard=link)

    def describe(self) -> str:
        if self.scheduler:
            return f"scheduler {self.scheduler}"
        n = self.workers or os.cpu_count() or 1
        return f"local cluster, {n} worker process{'es' if n > 1 else ''}"

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
        if self._cluster is not None:
            self._cluster.close()
        self._client = self._cluster = None

    def n_workers(self) -> int:
        return len(self.client.scheduler_info(n_workers=-1)["workers"])

    def map(self, fn: Callable[..., Any], items: Sequence[tuple[Any, ...]], label: str,
            names: Sequence[str] | None = None, tick: Callable[[], None] | None = None,
            ) -> Iterator[Any]:
        futures = [self.client.submit(fn, *item, pure=False,
                                      **({"key": names[i]} if names else {}))
                   for i, item in enumerate(items)]
        for fut in self._completed(futures, label, tick):
            yield self._result(fut, futures, label)

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        fut = self.client.submit(fn, *args, pure=False)
        for done in self._completed([fut], "global step"):
            return self._result(done, [fut], "global step")
        raise AssertionError("unreachable")

    def _completed(self, futures: list[Any], label: str,
                   tick: Callable[[], None] | None = None) -> Iterator[Any]:
        """Futures as they finish; every few seconds without one, `tick()` (the lock's lease)
        and a look at the workers: none for NO_WORKERS_S is an error, not an endless wait."""
        from distributed import wait

        pending = set(futures)
        alone_since: float | None = None
        while pending:
            try:
                finished, pending = wait(list(pending), timeout=POLL_S,
                                         return_when="FIRST_COMPLETED")
            except TimeoutError:  # nothing finished within POLL_S
                finished = set()
            yield from (f for f in futures if f in finished)
            if finished:
                alone_since = None
                continue
            if tick is not None:
                tick()
            if self.n_workers():
                alone_since = None
            elif alone_since is None:
                alone_since = time.monotonic()
            elif time.monotonic() - alone_since > NO_WORKERS_S:
                self.client.cancel(list(pending))
                raise CorpusError(
                    f"{label}: no Dask worker has been connected to "
                    f"{self.scheduler or 'the local cluster'} for {NO_WORKERS_S:.0f} s "
                    "(start workers, or check that they can reach the scheduler)")

    def _result(self, fut: Any, futures: list[Any], label: str) -> Any:
        from distributed.scheduler import KilledWorker

        try:
            return fut.result()
        except KilledWorker as e:
            self.client.cancel(futures)
            raise CorpusError(
                f"{label}: task {fut.key} killed its worker repeatedly (out of memory?): {e}"
            ) from e
        except BaseException:
            self.client.cancel(futures)
            raise
