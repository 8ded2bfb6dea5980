"""Exact shingle sets for verification: blocks of sorted sets read from the work folder, and
the Jaccard of two sets."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from corpus.io import DatasetDir
from corpus.stage import WORK_DIR

MEMBERS = posixpath.join(WORK_DIR, "members.parquet")  # candidates: (part, pos, group)


@dataclass
class SetBlock:
    """Shingle sets of some documents: set i is values[offsets[i]:offsets[i+1]], document i
    identified by (part, pos); `index` finds them through the sorted keys part << 32 | pos."""
    sorted_keys: np.ndarray
    rows: np.ndarray  # rows[k]: the set of the k-th sorted key
    values: np.ndarray
    offsets: np.ndarray

    @classmethod
    def read(cls, out: DatasetDir, rels: list[str], capacity: int = 0) -> SetBlock:
        return cls.gather((out.read_parquet(r) for r in rels), capacity)

    @classmethod
    def read_members(cls, out: DatasetDir, keys: list[str], capacity: int = 0) -> SetBlock:
        """Every candidate's set, read in place from the partitions' set files."""
        members = out.read_parquet(MEMBERS, columns=["part", "pos"])
        part, pos = members.column("part").to_numpy(), members.column("pos").to_numpy()

        def tables():
            for p in np.unique(part).tolist():
                sets = out.read_parquet(posixpath.join(WORK_DIR, "sets", f"{keys[p]}.parquet"))
                t = sets.take(pa.array(pos[part == p]))
                yield pa.table({"part": pa.array(np.full(t.num_rows, p, np.int32)),
                                "pos": t.column("pos"), "shingles": t.column("shingles")})

        return cls.gather(tables(), capacity)

    @classmethod
    def gather(cls, tables, capacity: int = 0) -> SetBlock:
        """Concatenate tables of (part, pos, shingles), holding one table at a time beside
        the values array: `capacity` values (a known upper bound: then it is never copied),
        doubled if it fills."""
        keys, lens, values, used = [], [], np.empty(max(capacity, 1 << 10), np.uint64), 0
        for t in tables:
            keys.append((t.column("part").to_numpy().astype(np.int64) << 32)
                        | t.column("pos").to_numpy())
            for chunk in t.column("shingles").chunks:
                offs = chunk.offsets.to_numpy().astype(np.int64)
                v = chunk.values.to_numpy()[offs[0]:offs[-1]]
                if used + len(v) > len(values):
                    values = np.resize(values, max(2 * len(values), used + len(v)))
                values[used:used + len(v)] = v
                used += len(v)
                lens.append(np.diff(offs))
            del t
        key = np.concatenate(keys) if keys else np.zeros(0, np.int64)
        offsets = np.zeros(len(key) + 1, dtype=np.int64)
        if lens:
            np.cumsum(np.concatenate(lens), out=offsets[1:])
        order = np.argsort(key)
        return cls(key[order], order, values[:used], offsets)

    def index(self, part: np.ndarray, pos: np.ndarray) -> np.ndarray:
        return self.rows[np.searchsorted(self.sorted_keys,
                                         (part.astype(np.int64) << 32) | pos)]


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Jaccard of two sorted arrays of distinct values."""
    if not len(a) and not len(b):
        return 0.0
    if len(a) > len(b):
        a, b = b, a
    idx = np.searchsorted(b, a)
    inter = int((b[np.minimum(idx, len(b) - 1)] == a).sum()) if len(b) else 0
    return inter / (len(a) + len(b) - inter)
