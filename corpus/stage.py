"""The stage contract: what the runner runs, and the helpers every stage uses to write output.

A stage is a *partitioned job*: a list of partition keys, and a pure function that computes one
partition on a worker and writes it atomically; optionally `steps()` (corpus/steps.py) before
them, `setup()` once per worker process and `finish()` after them (the `Job` base declares
them all, with their defaults). The runner (corpus/runner.py) has the keys run on an
executor, skips finished ones, records them and checks rows in = kept + removed. Stages never
import Dask.
"""

from __future__ import annotations

import posixpath
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from corpus import schema
from corpus.failure import on_worker
from corpus.io import DatasetDir
from corpus.malloc import release_free_memory
from corpus.steps import Step


class Job:
    """The stage contract the runner runs, declared here with its defaults (the runner looks
    nothing up by name but the step methods its `steps()` names).

    A subclass sets `stage` (its kind), `config` (JSON-able options, part of the output's
    fingerprint), `output`, `input_hash` and `input_url`, and implements `partitions` and
    `run_partition`; the rest is optional."""

    stage: str = "job"
    config: dict[str, Any]
    output: DatasetDir
    input_hash: str | None = None
    input_url: str | None = None  # recorded in the manifest, relative to the output

    def partitions(self, results: Mapping[str, Any]) -> list[str] | None:
        """Keys of all partitions, in output order. Cheap; runs on the client. `results`: the
        global steps' results so far ({} before the steps run); None when the steps decide
        the keys and have not run yet (token shards: by their plan)."""
        raise NotImplementedError

    def expected_rows_in(self) -> int | None:
        """Total rows the stage must account for (kept + removed), if known up front."""
        return None

    def run_partition(self, key: str) -> dict[str, Any]:
        """Compute and atomically write one partition; return its record (see write_documents)."""
        raise NotImplementedError

    def steps(self) -> list[Step]:
        """The MapSteps and GlobalSteps run before the partitions (corpus/steps.py)."""
        return []

    def step_partitions(self) -> list[str]:
        """The keys an "input" MapStep runs over: by default the output's partitions."""
        return self.partitions({}) or []

    def setup(self) -> None:
        """Process-wide state (mallopt, a tokenizer or matcher cached by its module), once per
        worker process before its partitions (setup_once)."""

    def finish(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        """Once, on a worker, after every partition: keys merged into the manifest."""
        return {}


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


#: Scratch space of multi-step stages; removed when the stage completes.
WORK_DIR = "_work"


def marker_dir(phase: str) -> str:
    """Where a phase leaves its per-partition markers."""
    return "_done" if phase == "partition" else f"{WORK_DIR}/{phase}/_done"


#: (stage, fingerprint) of the stages whose setup() this worker process has run
_READY: set[tuple[str, str]] = set()


def setup_once(job: Job, fp: str) -> None:
    """A stage's optional `setup()`, once per worker process before its partitions:
    process-wide state (mallopt, a tokenizer or matcher cached by its module) kept out of
    the pure per-partition functions."""
    if (job.stage, fp) in _READY:
        return
    job.setup()
    _READY.add((job.stage, fp))


def execute(job: Job, key: str, run_id: str, fp: str,
            phase: str = "partition", results: dict[str, Any] | None = None,
            ) -> dict[str, Any]:
    """Run one partition (or one step of it) on a worker and leave its marker: the data
    first, then the record, so a marker always means the data is complete. `results`: the
    earlier global steps' results the step uses."""
    t0 = time.perf_counter()
    work = job.run_partition if phase == "partition" else getattr(job, phase)
    try:
        setup_once(job, fp)
        rec = work(key) if results is None else work(key, results)
    except Exception as e:  # one line naming stage and partition; the traceback as text
        raise on_worker(job.stage, key, phase, e, job.output.url) from None
    finally:
        release_free_memory()
    rec.update(key=key, run=run_id, fingerprint=fp, finished=now(),
               seconds=round(time.perf_counter() - t0, 4))
    job.output.write_json(posixpath.join(marker_dir(phase), f"{key}.json"), rec)
    return rec


def execute_global(job: Job, name: str, *args: Any) -> Any:
    """Run one global step of a job on a worker; a failure is one line naming it."""
    try:
        return getattr(job, name)(*args)
    except Exception as e:
        raise on_worker(job.stage, "-", name, e, job.output.url) from None
    finally:
        release_free_memory()


class DocumentStats:
    """Counts kept while documents stream past: rows, content bytes, languages, licenses."""

    def __init__(self) -> None:
        self.rows = 0
        self.content_bytes = 0
        self.languages: Counter[str] = Counter()
        self.licenses: Counter[str] = Counter()

    def add(self, batch: pa.RecordBatch | pa.Table) -> None:
        self.rows += batch.num_rows
        names = batch.schema.names
        if "content" in names:
            self.content_bytes += int(pc.sum(pc.binary_length(batch.column("content"))).as_py()
                                      or 0)
        for field, counter in (("language", self.languages), ("license", self.licenses)):
            if field in names:
                vc = pc.value_counts(pc.fill_null(batch.column(field), "(none)"))
                for item in vc.to_pylist():
                    counter[item["values"]] += item["counts"]

    def watch(self, batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for b in batches:
            self.add(b)
            yield b


def reason_counts(removed: pa.Table) -> dict[str, dict[str, int]]:
    """Per rule: rows and bytes removed."""
    out: dict[str, dict[str, int]] = {}
    if removed.num_rows == 0:
        return out
    sizes = removed.column("size").to_pylist()
    for reason, size in zip(removed.column("reason").to_pylist(), sizes, strict=True):
        c = out.setdefault(schema.reason_key(reason), {"rows": 0, "bytes": 0})
        c["rows"] += 1
        c["bytes"] += size or 0
    return out


def write_documents(
    out: DatasetDir,
    key: str,
    kept: pa.Table | Iterable[pa.RecordBatch],
    arrow: pa.Schema,
    removed: pa.Table | Callable[[], pa.Table] | None = None,
    rows_in: int | None = None,
) -> dict[str, Any]:
    """Write a partition's kept documents and removed rows; return the partition record.

    `rows_in` is what the stage read; when the stage is a source (extraction) it is None and
    the written rows are the input. `removed` may be a function, called once the kept rows are
    written (a source that streams learns what it removes as it goes)."""
    stats = DocumentStats()
    batches = kept.to_batches() if isinstance(kept, pa.Table) else kept
    nbytes = out.write_parquet(out.part_file(key), stats.watch(batches), arrow)
    files = [out.part_file(key)]
    if callable(removed):
        removed = removed()
    removed = removed if removed is not None else schema.empty(schema.REMOVED)
    if removed.num_rows:
        removed = schema.conform(removed, schema.REMOVED)
        out.write_parquet(out.removed_file(key), removed, removed.schema)
        files.append(out.removed_file(key))
    return {
        "rows_in": stats.rows + removed.num_rows if rows_in is None else rows_in,
        "rows": stats.rows,
        "removed": removed.num_rows,
        "bytes": nbytes,
        "content_bytes": stats.content_bytes,
        "reasons": reason_counts(removed),
        "languages": dict(stats.languages),
        "licenses": dict(stats.licenses),
        "files": files,
    }


def removed_rows(table: pa.Table, stage: str, reasons: list[str]) -> pa.Table:
    """The removed/ rows for these documents (same order as `reasons`)."""
    def col(name: str, t: pa.DataType) -> pa.Array:
        if name in table.column_names:
            return table.column(name).cast(t)
        return pa.nulls(table.num_rows, t)

    size = table.column("size").cast(pa.int64()) if "size" in table.column_names else \
        pc.binary_length(table.column("content")).cast(pa.int64())
    return pa.table({
        "id": col("id", pa.large_string()), "repo_name": col("repo_name", pa.large_string()),
        "path": col("path", pa.large_string()), "size": size,
        "stage": pa.array([stage] * table.num_rows, pa.large_string()),
        "reason": pa.array(reasons, pa.large_string()),
    })


class MapJob(Job):
    """A stage that turns each input partition into one output partition: `map(table)`
    returns (kept, removed). Subclasses set `stage`, `requires` and implement `map`."""

    stage = "map"
    requires: tuple[schema.Column, ...] = ()

    def __init__(self, input: DatasetDir, output: DatasetDir, config: dict[str, Any]):
        self.input, self.output, self.config = input, output, config
        self.input_url = input.url
        self.keys = input.partition_keys()
        self.input_hash = input.content_hash(self.keys)
        self.rows_in = self.check_input()

    def check_input(self) -> int:
        """Every partition has the required columns (footers only); returns the row count."""
        rows = 0
        for key in self.keys:
            meta = self.input.parquet_metadata(self.input.part_file(key))
            schema.check(meta.schema.to_arrow_schema(), self.requires,
                         f"input {self.input.url} partition {key}")
            rows += meta.num_rows
        return rows

    def partitions(self, results: Mapping[str, Any] | None = None) -> list[str]:
        return self.keys

    def expected_rows_in(self) -> int:
        return self.rows_in

    def run_partition(self, key: str) -> dict[str, Any]:
        table = self.input.read_parquet(self.input.part_file(key))
        kept, removed = self.map(table)
        return write_documents(self.output, key, kept, kept.schema, removed,
                               rows_in=table.num_rows)

    def map(self, table: pa.Table) -> tuple[pa.Table, pa.Table]:
        raise NotImplementedError
