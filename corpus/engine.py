"""Runs stages on Dask. With corpus/cluster.py (starting or reaching a cluster), the only
module that imports Dask.

Default: a LocalCluster of one single-threaded worker process per core, on 127.0.0.1.
`--scheduler tcp://host:8786` or DASK_SCHEDULER_ADDRESS: an existing cluster (dask-jobqueue,
dask-kubernetes, Coiled, a hand-started `dask scheduler`); its workers need `corpus` installed
and must see the input and output paths (a shared filesystem or an fsspec URL such as gs://).
"""

from __future__ import annotations

import importlib.util
import os
import posixpath
import time
import uuid
from collections.abc import Iterator
from typing import Any

from rich.console import Console

from corpus import dataset_card
from corpus import manifest as mf
from corpus.cluster import local_cluster, probe_scheduler
from corpus.errors import ConfigError, CorpusError, InputError, InvariantError
from corpus.io import DatasetDir, check_layout, is_legacy
from corpus.lock import writer_lock
from corpus.log import Log
from corpus.stage import WORK_DIR, PartitionedJob, execute, execute_global, marker_dir, now

MANIFEST_EVERY_S = 2.0
#: How long a scheduler may take to answer the handshake (also Client's connect timeout).
CONNECT_TIMEOUT_S = float(os.environ.get("CORPUS_CONNECT_TIMEOUT_S", "10"))
#: How long the work may wait with no worker at all before it fails.
NO_WORKERS_S = float(os.environ.get("CORPUS_NO_WORKERS_TIMEOUT_S", "120"))
POLL_S = 2.0


class Engine:
    """A Dask client plus the stage runner: resume, progress, manifest, row invariant."""

    def __init__(self, scheduler: str | None = None, workers: int | None = None,
                 progress: bool = True, console: Console | None = None,
                 log_format: str = "text"):
        self.scheduler = scheduler or os.environ.get("DASK_SCHEDULER_ADDRESS") or None
        self.workers = workers
        self.progress = progress
        self.console = console or Console(stderr=True, soft_wrap=True)
        self.log = Log(log_format, progress, self.console)
        self._client: Any = None
        self._cluster: Any = None

    # --- cluster lifecycle ----------------------------------------------------------------
    @property
    def client(self) -> Any:
        if self._client is None:
            self._start()
        return self._client

    def _start(self) -> None:
        from distributed import Client

        if self.scheduler:
            probe_scheduler(self.scheduler, CONNECT_TIMEOUT_S)
            try:
                self._client = Client(self.scheduler, timeout=f"{CONNECT_TIMEOUT_S}s")
            except (OSError, TimeoutError) as e:
                raise InputError(f"cannot reach Dask scheduler {self.scheduler}: {e}") from e
            where = f"scheduler {self.scheduler}"
            dashboard = None
        else:
            n = self.workers or os.cpu_count() or 1
            dashboard = "127.0.0.1:8787" if importlib.util.find_spec("bokeh") else None
            self._cluster = local_cluster(n, dashboard)
            self._client = Client(self._cluster)
            where = f"local cluster, {n} worker process{'es' if n > 1 else ''}"
        link = self._client.dashboard_link if self._cluster is None or dashboard else None
        self.log.event("cluster", f"[dim]dask: {where}" + (f"; dashboard {link}" if link else ""),
                       scheduler=self.scheduler or "local", dashboard=link)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
        if self._cluster is not None:
            self._cluster.close()
        self._client = self._cluster = None

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def n_workers(self) -> int:
        return len(self.client.scheduler_info(n_workers=-1)["workers"])

    # --- running work ---------------------------------------------------------------------
    def call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run one function on a worker (a global step) and return its result."""
        fut = self.client.submit(fn, *args, pure=False, **kwargs)
        for done in self._completed([fut], "global step"):
            return self._result(done, [fut], "global step")
        raise AssertionError("unreachable")

    def run(self, job: PartitionedJob, overwrite: bool = False,
            replace_stale: bool = False) -> dict[str, Any]:
        """Compute every partition of `job` not already done, then write its manifest.

        A job may first run `steps()`: ("map", name) runs `job.<name>(key)` on every partition
        (resumable, like the partitions), ("global", name) runs `job.<name>()` once on a
        worker and keeps its small result in `job.results[name]` for the steps after it
        (exact dedup: summarize, then plan; near dedup: more).

        overwrite: start from scratch. replace_stale: replace an output made from another
        config or input (a pipeline owns its stage folders); otherwise that is an error."""
        if self.scheduler:  # an unreachable scheduler fails before the output is touched
            _ = self.client
        with writer_lock(job.output.url) as lock:
            return self._run(job, lock, overwrite, replace_stale)

    def _run(self, job: PartitionedJob, lock: Any, overwrite: bool,
             replace_stale: bool) -> dict[str, Any]:
        out = job.output
        fp = mf.fingerprint(job.stage, job.config, job.input_hash)
        existing = self._prepare(job, fp, overwrite, replace_stale)
        reusable: dict[str, dict[str, Any]] = {}
        if existing is not None and existing.get("complete"):
            bad = out.problems(existing)
            if not bad:
                remove_scratch(out)
                self.log.event("up-to-date", f"[dim]{job.stage}: {out.url} is up to date, "
                               "nothing to do", stage=job.stage, output=out.url)
                return existing
            self.log.event("damaged", f"[yellow]{job.stage}: {out.url} is damaged "
                           f"({len(bad)} listed file{'s' * (len(bad) != 1)} missing or changed: "
                           f"{', '.join(bad[:3])}); recomputing what they held",
                           stage=job.stage, output=out.url, problems=len(bad))
            out.invalidate()
            reusable = intact_records(out, existing)
            existing = {**existing, "runs": existing.get("runs", [])}
        out.remove_temp_files()
        # None: the partitions are decided by the job's steps (token shards: by its plan)
        planned = job.partitions()
        keys = planned or []
        run_id = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
        t0 = time.perf_counter()
        for key, rec in reusable.items():  # intact partitions of a damaged output: markers again
            out.write_json(posixpath.join(marker_dir("partition"), f"{key}.json"), rec)
        done = self._finished(out, keys, fp, marker_dir("partition"))
        run = {"id": run_id, "started": now(), "finished": None, "seconds": None,
               "computed": [], "reused": sorted(done), "scheduler": self.scheduler or "local",
               "workers": self.n_workers()}
        runs = [*(existing or {}).get("runs", []), run]
        out.write_manifest(self._manifest(job, fp, keys, done, runs, complete=False))

        if planned is None or len(done) < len(keys):
            for kind, name in getattr(job, "steps", list)():
                t_step = time.perf_counter()
                if kind == "map":  # over the input's partitions when they differ
                    step_keys = getattr(job, "step_partitions", lambda: keys)()
                    finished = self._finished(out, step_keys, fp, marker_dir(name))
                    info: dict[str, Any] = {"computed": len(step_keys) - len(finished)}
                    self._phase(job, step_keys, finished, run_id, fp, name, lambda: None)
                else:
                    job.results[name] = info = self.call(execute_global, job, name) or {}
                run[name] = {"seconds": round(time.perf_counter() - t_step, 3), **info}
            if planned is None:
                keys = job.partitions()
                done = self._finished(out, keys, fp, marker_dir("partition"))
                run["reused"] = sorted(done)

        last_write = [time.monotonic()]

        def checkpoint() -> None:
            lock.check()
            if time.monotonic() - last_write[0] > MANIFEST_EVERY_S:
                out.write_manifest(self._manifest(job, fp, keys, done, runs, False))
                last_write[0] = time.monotonic()

        computed = self._phase(job, keys, done, run_id, fp, "partition", checkpoint)
        run["computed"] = sorted(computed)
        records = [done[k] for k in keys]
        check_rows(job.stage, out.url, records, job.expected_rows_in())
        extra = {}
        finish = getattr(job, "finish", None)
        if finish is not None:
            extra = self.call(execute_global, job, "finish", records) or {}
        run.update(finished=now(), seconds=round(time.perf_counter() - t0, 3))
        manifest = self._manifest(job, fp, keys, done, runs, complete=True)
        manifest.update(extra)
        if "card" not in extra:  # a job that writes its own card (Hub shards) says so
            dataset_card.write(out, manifest)
        manifest["files"] = out.files()  # what "complete" promises: these files, these sizes
        lock.check()
        out.write_manifest(manifest)
        remove_scratch(out)
        self.log.record("stage-done", stage=job.stage, output=out.url,
                        rows_in=manifest["rows_in"], rows=manifest["rows"],
                        removed=manifest["removed"], seconds=run["seconds"],
                        computed=len(computed), reused=len(run["reused"]))
        return manifest

    def _finished(self, out: Any, keys: list[str], fp: str, marker_dir: str,
                  ) -> dict[str, dict[str, Any]]:
        wanted = set(keys)
        return {k: r for k, r in out.done_records(marker_dir).items()
                if k in wanted and r.get("fingerprint") == fp}

    def _phase(self, job: PartitionedJob, keys: list[str], done: dict[str, dict[str, Any]],
               run_id: str, fp: str, phase: str, checkpoint: Any) -> list[str]:
        """Run `phase` for every key not in `done` (updated in place); return the keys run."""
        todo = [k for k in keys if k not in done]
        futures = [
            self.client.submit(execute, job, k, run_id, fp, phase, pure=False,
                               key=f"{job.stage}-{phase}-{k}-{run_id}")
            for k in todo
        ]
        label = f"{job.stage} → {job.output.url}" + (f" ({phase})" if phase != "partition"
                                                       else "")
        with self.log.bar(label, len(keys), len(done), stage=job.stage, phase=phase,
                          output=job.output.url) as bar:
            for fut in self._completed(futures, job.stage, checkpoint):
                rec = self._result(fut, futures, job.stage)
                done[rec["key"]] = rec
                bar.advance(rec.get("rows_in", rec.get("rows", 0)) or 0)
                checkpoint()
        return todo

    def _completed(self, futures: list[Any], label: str,
                   tick: Any = None) -> Iterator[Any]:
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

    # --- helpers --------------------------------------------------------------------------
    def _prepare(self, job: PartitionedJob, fp: str, overwrite: bool,
                 replace_stale: bool) -> dict[str, Any] | None:
        """Decide whether the output directory can be reused, resumed or must be refused."""
        out = job.output
        existing = out.manifest()
        if is_legacy(existing) and not overwrite:  # resuming would mix two layouts
            check_layout(out.url, existing)
        if existing is not None and existing.get("cleared"):  # a replace that was cut short
            out.clear()
            return None
        if existing is not None and existing.get("fingerprint") == fp and not overwrite:
            return existing
        if existing is None and out.is_empty():
            return None
        if existing is not None and replace_stale and not overwrite:
            self.log.event("recompute", f"[yellow]{job.stage}: config or input changed, "
                           f"recomputing {out.url}", stage=job.stage, output=out.url)
        elif not overwrite:
            if existing is None:
                raise ConfigError(
                    f"{out.url} exists, is not empty and holds no manifest.json: refusing to "
                    "write into it (choose another output, or pass --overwrite to replace it)")
            raise ConfigError(
                f"{out.url} holds output of another '{existing.get('stage')}' run (different "
                "config, input or version); pass --overwrite to replace it")
        out.clear()  # the manifest first: a kill from here on leaves it incomplete
        return None

    def _manifest(self, job: PartitionedJob, fp: str, keys: list[str],
                  done: dict[str, dict[str, Any]], runs: list[dict[str, Any]],
                  complete: bool) -> dict[str, Any]:
        records = [done[k] for k in keys if k in done]
        return {
            "format": mf.FORMAT,
            "stage": job.stage,
            "config": job.config,
            "fingerprint": fp,
            "input": mf.relative_url(getattr(job, "input_url", None), job.output.url),
            "input_hash": job.input_hash,
            "code_version": mf.code_version(),
            "complete": complete,
            "partitions_total": len(keys),
            **mf.totals(records),
            "timings": {
                "partition_seconds": round(sum(r.get("seconds", 0) for r in records), 3),
                "run_seconds": round(sum(r.get("seconds") or 0 for r in runs), 3),
            },
            "runs": runs,
            "partitions": records,
        }

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


def check_rows(stage: str, url: str, records: list[dict[str, Any]],
               expected_in: int | None) -> None:
    """The accounting invariant: every input row is either kept or removed with a reason."""
    for r in records:
        if r["rows_in"] != r["rows"] + r["removed"]:
            raise InvariantError(
                f"{stage} lost rows in {url} partition {r['key']}: {r['rows_in']} in, "
                f"{r['rows']} kept + {r['removed']} removed")
    total_in = sum(r["rows_in"] for r in records)
    if expected_in is not None and total_in != expected_in:
        raise InvariantError(
            f"{stage} accounted for {total_in} rows in {url}, but its input has {expected_in}")


def remove_scratch(out: DatasetDir) -> None:
    """Resume markers and scratch space of a finished output (left by a kill right after its
    manifest was written, at worst)."""
    for d in ("_done", WORK_DIR):
        if out.exists(d):
            out.fs.rm(out.join(d), recursive=True)


def intact_records(out: DatasetDir, manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Partition records of a finished manifest whose files are all there with their sizes."""
    have, sizes = out.files(), manifest.get("files") or {}
    return {r["key"]: r for r in manifest.get("partitions", [])
            if r.get("files") and all(f in have and have[f] == sizes.get(f, have[f])
                                      for f in r["files"])}
