"""A dataset directory as the Hub lays out datasets: `data/<split>-00000-of-000NN.parquet`,
staged in a local folder for `corpus push`.

The shards are those of `corpus shard --format parquet` (corpus/publish/shard_job.py: the same
split rule, cuts and files), made here in this process, one step after the other, so a push
needs no cluster. The input is read partition by partition and row group by row group: nothing
is held whole. A folder that already holds the layout of the same input with the same options
(`_layout.json`) is reused as is.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from corpus.errors import InvariantError
from corpus.io import DatasetDir
from corpus.publish.shard_job import DATA_DIR, STATE, HubShardJob
from corpus.publish.split import LayoutOptions
from corpus.stage import WORK_DIR

__all__ = ["STATE", "Layout", "LayoutOptions", "build"]


@dataclass
class Layout:
    """What was written: per split, its shard files (relative to the folder), rows, bytes."""
    folder: str
    splits: dict[str, dict[str, Any]] = field(default_factory=dict)
    rows_in: int = 0
    reused: bool = False


def build(url: str, folder: str, opts: LayoutOptions) -> Layout:
    """Write the Hub layout of dataset `url` into the local `folder` (reused when a previous
    run wrote the same input with the same options). A split that gets no document is absent,
    as in `corpus shard`; a --valid-from list of which no repository is present is an error."""
    job = HubShardJob(DatasetDir(url), DatasetDir(folder), opts)
    root = Path(folder)
    done = job.output.read_json(STATE)
    if done is not None and done.get("identity") == job.fingerprint and all(
            (root / f).exists() for s in done["splits"].values() for f in s["files"]):
        return Layout(folder, done["splits"], done["rows_in"], reused=True)
    for d in (DATA_DIR, WORK_DIR):
        shutil.rmtree(root / d, ignore_errors=True)
    (root / STATE).unlink(missing_ok=True)
    for key in job.step_partitions():
        job.scan(key)
    keys = job.partitions({"plan": job.plan()}) or []
    records = [job.run_partition(k) for k in keys]
    written = sum(r["rows"] for r in records)
    if written != job.expected_rows_in():
        raise InvariantError(f"push layout wrote {written} rows of {job.expected_rows_in()}")
    splits = job.write_state(records)
    shutil.rmtree(root / WORK_DIR, ignore_errors=True)
    return Layout(folder, splits, written)
