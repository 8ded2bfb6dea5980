"""Which split a document goes to, for Parquet shards and `corpus push`: one rule, decided per
document from its own columns, so the same documents land in validation on every run, whatever
the partitioning, the batch sizes or the number of workers.

- `split_by="id"` (`corpus shard --format parquet`): a hash of the document id, the rule token
  shards use (corpus/keys.py), so both outputs hold out the same documents;
- `split_by="path"` (`corpus push --split-valid`): a hash of (repo_name, path), file-level like
  CodeParrot's own validation split;
- `valid_from` (`corpus push --valid-from FILE`): every file of the listed repositories, so
  near-identical files of one repository never straddle the splits.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from corpus.dedup.xxh3 import hash_spans
from corpus.errors import ConfigError, InputError
from corpus.keys import validation_mask


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
        if self.split_by not in ("path", "id"):
            raise ConfigError(f"split_by must be 'path' or 'id', not {self.split_by!r}")

    def split_names(self) -> list[str]:
        """The splits asked for: train, and validation when some rule can select documents."""
        return ["train"] + (["validation"] if self.valid_from or self.split_valid else [])

    def columns(self) -> list[str]:
        """The columns the rule reads."""
        if self.valid_from:
            return ["repo_name"]
        if self.split_valid and self.split_by == "id":
            return ["id"]
        return ["repo_name", "path"] if self.split_valid else []


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
    if len(keys) == 0:
        return np.zeros(0, np.uint64)
    offsets = np.frombuffer(keys.buffers()[1], np.int64)[keys.offset:keys.offset + len(keys) + 1]
    data = np.frombuffer(keys.buffers()[2] or b"\0", np.uint8)
    return hash_spans(data, offsets[:-1], np.diff(offsets))


def is_valid(batch: pa.RecordBatch | pa.Table, opts: LayoutOptions,
             repos: set[str] | None) -> np.ndarray:
    """Which rows of the batch go to the validation split."""
    if repos is not None:
        return pc.is_in(batch.column("repo_name"), pa.array(sorted(repos))).to_numpy(
            zero_copy_only=False).astype(bool)
    if opts.split_valid is not None and opts.split_by == "id":
        return validation_mask(batch, opts.split_valid)
    if opts.split_valid is not None:
        return key_hash(batch) < np.uint64(int(opts.split_valid * 2.0**64))
    return np.zeros(batch.num_rows, bool)
