"""The stage runner: fingerprints, resume, manifests, the rows-in = kept + removed invariant,
progress. It knows nothing of Dask: its tasks run on an Executor (corpus/executors/), Dask's
or the in-process one, with byte-identical output.

A job's `steps()` (corpus/steps.py) run before its partitions: a MapStep on every partition,
resumable like the partitions; a GlobalStep once, its small JSON result kept in
`_work/<step>/result.json` under the stage's fingerprint, so that a resume reuses it instead of
computing it again (the run record's `global_steps` says which).
"""

from __future__ import annotations

import posixpath
import time
import uuid
from typing import Any

from corpus import dataset_card
from corpus import manifest as mf
from corpus.errors import ConfigError, InvariantError
from corpus.executors import Executor
from corpus.io import DatasetDir, check_layout, is_legacy
from corpus.lock import writer_lock
from corpus.log import Log
from corpus.stage import WORK_DIR, Job, execute, execute_global, marker_dir, now
from corpus.steps import GlobalStep, MapStep, Step

MANIFEST_EVERY_S = 2.0


def result_file(step: str) -> str:
    """Where a global step's result is kept until the stage completes."""
    return posixpath.join(WORK_DIR, step, "result.json")


class Runner:
    """Runs partitioned jobs on one executor; one writer per output (corpus/lock.py)."""

    def __init__(self, executor: Executor, log: Log, scheduler: str | None = None):
        self.executor, self.log, self.scheduler = executor, log, scheduler

    def run(self, job: Job, overwrite: bool = False,
            replace_stale: bool = False) -> dict[str, Any]:
        """Compute every partition of `job` not already done, then write its manifest.

        overwrite: start from scratch. replace_stale: replace an output made from another
        config or input (a pipeline owns its stage folders); otherwise that is an error."""
        self.executor.start()
        with writer_lock(job.output.url) as lock:
            return self._run(job, lock, overwrite, replace_stale)

    def _run(self, job: Job, lock: Any, overwrite: bool,
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
        planned = job.partitions({})
        keys = planned or []
        run_id = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
        t0 = time.perf_counter()
        for key, rec in reusable.items():  # intact partitions of a damaged output: markers again
            out.write_json(posixpath.join(marker_dir("partition"), f"{key}.json"), rec)
        done = self._finished(out, keys, fp, marker_dir("partition"))
        run: dict[str, Any] = {
            "id": run_id, "started": now(), "finished": None, "seconds": None,
            "computed": [], "reused": sorted(done), "executor": self.executor.name,
            "scheduler": self.scheduler or "local", "workers": self.executor.n_workers()}
        runs = [*(existing or {}).get("runs", []), run]
        out.write_manifest(self._manifest(job, fp, keys, done, runs, complete=False))

        steps: list[Step] = job.steps()
        if steps and (planned is None or len(done) < len(keys)):
            results = self._steps(job, steps, keys, run_id, fp, run)
            if planned is None:
                keys = job.partitions(results) or []
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
        extra: dict[str, Any] = {}
        if type(job).finish is not Job.finish:  # no round trip to a worker for the default
            extra = self.executor.call(execute_global, job, "finish", records) or {}
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

    def _steps(self, job: Job, steps: list[Step], keys: list[str], run_id: str,
               fp: str, run: dict[str, Any]) -> dict[str, Any]:
        """The job's steps in order. A global step is reused when its result is kept under
        this fingerprint and no step before it had to compute anything in this run."""
        out = job.output
        results: dict[str, Any] = {}
        fresh = False  # did an earlier step compute something in this run?
        run["global_steps"] = {}
        for step in steps:
            t_step = time.perf_counter()
            if isinstance(step, MapStep):
                step_keys = job.step_partitions() if step.keys == "input" else keys
                finished = self._finished(out, step_keys, fp, marker_dir(step.name))
                info: dict[str, Any] = {"computed": len(step_keys) - len(finished)}
                fresh = fresh or info["computed"] > 0
                self._phase(job, step_keys, finished, run_id, fp, step.name, lambda: None,
                            self._used(job, step, results))
            elif isinstance(step, GlobalStep):
                used = self._used(job, step, results)
                kept = None if fresh else out.read_json(result_file(step.name))
                if kept is not None and kept.get("fingerprint") == fp and "result" in kept:
                    info = kept["result"]
                    run["global_steps"][step.name] = "reused"
                    self.log.event("step-reused", f"[dim]{job.stage}: {step.name} reused "
                                   "from an earlier run", stage=job.stage, step=step.name)
                else:
                    args = () if used is None else (used,)
                    info = self.executor.call(execute_global, job, step.name, *args) or {}
                    out.write_json(result_file(step.name),
                                   {"fingerprint": fp, "step": step.name, "result": info})
                    run["global_steps"][step.name] = "computed"
                    fresh = True
                results[step.name] = info
            else:
                raise TypeError(f"{job.stage}: not a step: {step!r}")
            run[step.name] = {"seconds": round(time.perf_counter() - t_step, 3), **info}
        return results

    @staticmethod
    def _used(job: Job, step: Step, results: dict[str, Any],
              ) -> dict[str, Any] | None:
        """The earlier results a step names in `uses` (None: it uses none)."""
        if not step.uses:
            return None
        missing = [u for u in step.uses if u not in results]
        if missing:
            raise ConfigError(f"{job.stage}: step {step.name} uses {', '.join(missing)}, "
                              "which no earlier global step produced")
        return {u: results[u] for u in step.uses}

    def _finished(self, out: DatasetDir, keys: list[str], fp: str, marker_dir: str,
                  ) -> dict[str, dict[str, Any]]:
        wanted = set(keys)
        return {k: r for k, r in out.done_records(marker_dir).items()
                if k in wanted and r.get("fingerprint") == fp}

    def _phase(self, job: Job, keys: list[str], done: dict[str, dict[str, Any]],
               run_id: str, fp: str, phase: str, checkpoint: Any,
               results: dict[str, Any] | None = None) -> list[str]:
        """Run `phase` for every key not in `done` (updated in place); return the keys run."""
        todo = [k for k in keys if k not in done]
        label = f"{job.stage} → {job.output.url}" + (f" ({phase})" if phase != "partition"
                                                       else "")
        items = [(job, k, run_id, fp, phase, results) for k in todo]
        names = [f"{job.stage}-{phase}-{k}-{run_id}" for k in todo]
        with self.log.bar(label, len(keys), len(done), stage=job.stage, phase=phase,
                          output=job.output.url) as bar:
            for rec in self.executor.map(execute, items, job.stage, names, checkpoint):
                done[rec["key"]] = rec
                bar.advance(rec.get("rows_in", rec.get("rows", 0)) or 0)
                checkpoint()
        return todo

    def _prepare(self, job: Job, fp: str, overwrite: bool,
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

    def _manifest(self, job: Job, fp: str, keys: list[str],
                  done: dict[str, dict[str, Any]], runs: list[dict[str, Any]],
                  complete: bool) -> dict[str, Any]:
        records = [done[k] for k in keys if k in done]
        return {
            "format": mf.FORMAT,
            "stage": job.stage,
            "config": job.config,
            "fingerprint": fp,
            "input": mf.relative_url(job.input_url, job.output.url),
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
