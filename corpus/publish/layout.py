"""A dataset directory as the Hub lays out datasets: `data/<split>-00000-of-000NN.parquet`.

Streams the input partition by partition, batch by batch, into shards of about `shard_bytes`
of content per split, so nothing is held whole. The split is decided per document from a hash
of (repo_name, path) (`--split-valid FRACTION`: the same documents on every run, whatever the
partitioning) or by repository (`--valid-from FILE`: repositories listed there go to
validation, so near-identical files of one repository never straddle the splits).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from corpus import manifest as mf
from corpus.dedup.xxh3 import hash_spans
from corpus.errors import ConfigError, InputError, InvariantError
from corpus.io import DatasetDir
from corpus.keys import validation_mask

STATE = "_layout.json"
BATCH_ROWS = 4096


@dataclass
class LayoutOptions:
    split_valid: float | None = None  # fraction of documents for validation
    valid_from: str | None = None  # file of repo_name values, one per line
    shard_bytes: int = 500 * 1024 * 1024  # content bytes per shard (target)
    split_by: str = "path"  # --split-valid by a hash of (repo_name, path), or of "id"

    def check(self) -> None:
        if self.split_valid is not None and self.valid_from is not None:
            raise ConfigError("choose one of --split-valid and --valid-from")
        if self.split_valid is not None and not 0 < self.split_valid < 1:
            raise ConfigError(f"--split-valid must be between 0 and 1, not {self.split_valid}")
        if self.shard_bytes <= 0:
            raise ConfigError("--shard-size must be positive")


@dataclass
class Layout:
    """What was written: per split, its shard files (relative to the folder), rows, bytes."""
    folder: str
    splits: dict[str, dict[str, Any]] = field(default_factory=dict)
    rows_in: int = 0
    reused: bool = False


def valid_repos(path: str) -> set[str]:
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as e:
        raise InputError(f"cannot read --valid-from {path}: {e.strerror or e}") from e
    repos = {line.strip() for line in lines if line.strip() and not line.startswith("#")}
    if not repos:
        raise InputError(f"--valid-from {path} lists no repositories")
    return repos


def key_hash(table: pa.Table | pa.RecordBatch) -> np.ndarray:
    """xxh3_64 of 'repo_name NUL path' per row, vectorized over the Arrow buffers."""
    keys = pc.binary_join_element_wise(
        table.column("repo_name").cast(pa.large_string()),
        table.column("path").cast(pa.large_string()), pa.scalar("\0", pa.large_string()))
    keys = keys.combine_chunks() if isinstance(keys, pa.ChunkedArray) else keys
    keys = pc.fill_null(keys, "")
    offsets = np.frombuffer(keys.buffers()[1], np.int64)[keys.offset:keys.offset + len(keys) + 1]
    data = np.frombuffer(keys.buffers()[2] or b"\0", np.uint8)
    return hash_spans(data, offsets[:-1], np.diff(offsets))


def is_valid(batch: pa.RecordBatch, opts: LayoutOptions, repos: set[str] | None) -> np.ndarray:
    """Which rows of the batch go to the validation split."""
    if repos is not None:
        return pc.is_in(batch.column("repo_name"), pa.array(sorted(repos))).to_numpy(
            zero_copy_only=False).astype(bool)
    if opts.split_valid is not None and opts.split_by == "id":
        return validation_mask(batch, opts.split_valid)
    if opts.split_valid is not None:
        return key_hash(batch) < np.uint64(int(opts.split_valid * 2.0**64))
    return np.zeros(batch.num_rows, bool)


class ShardWriter:
    """Rolls to a new shard file when the current one holds `shard_bytes` of content."""

    def __init__(self, folder: Path, split: str, schema: pa.Schema, shard_bytes: int):
        self.folder, self.split, self.schema, self.limit = folder, split, schema, shard_bytes
        self.files: list[str] = []
        self.rows = self.bytes = self._in_shard = 0
        self._writer: pq.ParquetWriter | None = None

    def write(self, table: pa.Table) -> None:
        if not table.num_rows:
            return
        if self._writer is None or self._in_shard >= self.limit:
            self._roll()
        assert self._writer is not None
        self._writer.write_table(table, row_group_size=BATCH_ROWS)
        n = int(pc.sum(pc.binary_length(table.column("content"))).as_py() or 0)
        self.rows += table.num_rows
        self.bytes += n
        self._in_shard += n

    def _roll(self) -> None:
        self.close()
        name = f"data/{self.split}-{len(self.files):05d}.tmp.parquet"
        self.files.append(name)
        self._writer = pq.ParquetWriter(self.folder / name, self.schema, compression="zstd")
        self._in_shard = 0

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def finish(self) -> list[str]:
        """Final names `<split>-00000-of-000NN.parquet` (the Hub's convention)."""
        self.close()
        final = []
        for i, name in enumerate(self.files):
            target = f"data/{self.split}-{i:05d}-of-{len(self.files):05d}.parquet"
            os.replace(self.folder / name, self.folder / target)
            final.append(target)
        self.files = final
        return final


def batches(d: DatasetDir) -> Iterator[pa.RecordBatch]:
    for key in d.partition_keys():
        with d.fs.open(d.join(d.part_file(key)), "rb") as f:
            yield from pq.ParquetFile(f).iter_batches(BATCH_ROWS)


def build_is_current(url: str, folder: Path, opts: LayoutOptions) -> bool:
    """Whether `folder` holds the layout of `url` with these options."""
    state = folder / STATE
    return state.exists() and json.loads(state.read_text()).get("identity") == \
        _identity(url, DatasetDir(url).manifest(), opts)


def _identity(url: str, manifest: dict[str, Any] | None, opts: LayoutOptions) -> str:
    return mf.digest({"input": mf.dataset_hash(manifest) if manifest else url,
                          "split_valid": opts.split_valid, "shard_bytes": opts.shard_bytes,
                          "split_by": opts.split_by,
                          "valid_from": sorted(valid_repos(opts.valid_from))
                          if opts.valid_from else None})


def build(url: str, folder: str, opts: LayoutOptions) -> Layout:
    """Write the Hub layout of dataset `url` into the local `folder` (reused when a previous
    run wrote the same input with the same options)."""
    opts.check()
    d = DatasetDir(url)
    manifest = d.manifest()
    if manifest is None and d.is_empty():
        raise InputError(f"no such dataset directory: {url}")
    identity = _identity(url, manifest, opts)
    root = Path(folder)
    state = root / STATE
    if state.exists():
        done = json.loads(state.read_text())
        if done.get("identity") == identity and all((root / f).exists() for s in
                                                    done["splits"].values() for f in s["files"]):
            return Layout(folder, done["splits"], done["rows_in"], reused=True)
    shutil.rmtree(root / "data", ignore_errors=True)
    (root / "data").mkdir(parents=True, exist_ok=True)
    repos = valid_repos(opts.valid_from) if opts.valid_from else None
    writers: dict[str, ShardWriter] = {}
    rows_in = 0
    for batch in batches(d):
        rows_in += batch.num_rows
        if not writers:
            names = ["train"] + (["validation"] if repos is not None or opts.split_valid
                                 else [])
            writers = {s: ShardWriter(root, s, batch.schema, opts.shard_bytes) for s in names}
        valid = is_valid(batch, opts, repos)
        table = pa.Table.from_batches([batch])
        writers["train"].write(table.filter(pa.array(~valid)))
        if "validation" in writers:
            writers["validation"].write(table.filter(pa.array(valid)))
    if not writers:
        raise InputError(f"{url} holds no documents: nothing to push")
    splits = {}
    for name, w in writers.items():
        files = w.finish()
        if files:
            splits[name] = {"files": files, "rows": w.rows, "content_bytes": w.bytes}
    if "validation" in writers and "validation" not in splits:
        raise ConfigError("the validation split came out empty: raise --split-valid, or list "
                          "repositories that are in the dataset with --valid-from")
    written = sum(s["rows"] for s in splits.values())
    if written != rows_in:
        raise InvariantError(f"push layout wrote {written} rows of {rows_in}")
    expected = (manifest or {}).get("rows")
    if expected is not None and expected != rows_in:
        raise InvariantError(f"{url}: the manifest lists {expected} rows, the files hold "
                             f"{rows_in}")
    state.write_text(json.dumps({"identity": identity, "splits": splits, "rows_in": rows_in}))
    return Layout(folder, splits, rows_in)
