"""Which sequence comes at each position of the training stream: pure index arithmetic, no data.

The stream of a split is global and the same for every world size: position g is in epoch
g // N (N sequences in the split), and each epoch is a permutation of all N sequences made from
(seed, epoch) alone:
- the order of the shard files is shuffled;
- the shards' rows, concatenated in that order, are cut into windows of `buffer` positions and
  each window is permuted (a bounded shuffle buffer: O(buffer) memory, random access by window).

A consumer (rank r of W, micro-batches of b) takes positions start + (j·b + t)·W + r for its
j-th batch, t < b. So ranks never overlap, leave no gap, and a saved `position` (the global
position after the last consumed batch, equal on every rank) resumes exactly, at the same world
size or another one.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class StreamOrder:
    sizes: tuple[int, ...]  # sequences per shard, in manifest order
    seed: int = 0
    buffer: int = 4096  # shuffle window, in sequences
    shuffle: bool = True

    @property
    def total(self) -> int:
        return int(sum(self.sizes))

    def shard_order(self, epoch: int) -> np.ndarray:
        n = len(self.sizes)
        if not self.shuffle:
            return np.arange(n)
        return np.random.default_rng([self.seed, epoch, 0]).permutation(n)

    def locate(self, positions: np.ndarray, cache: OrderedDict | None = None,
               ) -> tuple[np.ndarray, np.ndarray]:
        """(shard index, row) of each global position."""
        positions = np.asarray(positions, np.int64)
        n = self.total
        epoch, pos = np.divmod(positions, n)
        shard = np.empty(len(positions), np.int64)
        row = np.empty(len(positions), np.int64)
        cache = cache if cache is not None else OrderedDict()
        for e in np.unique(epoch):
            sel = epoch == e
            order, bounds = self._epoch(int(e), cache)
            p = pos[sel]
            if self.shuffle:
                w = p // self.buffer
                q = p.copy()
                for win in np.unique(w):
                    m = w == win
                    lo = int(win) * self.buffer
                    q[m] = lo + self._window(int(e), int(win), min(self.buffer, n - lo),
                                             cache)[p[m] - lo]
                p = q
            k = np.searchsorted(bounds, p, side="right") - 1
            shard[sel] = order[k]
            row[sel] = p - bounds[k]
        return shard, row

    def _epoch(self, epoch: int, cache: OrderedDict) -> tuple[np.ndarray, np.ndarray]:
        key = ("epoch", epoch)
        if key not in cache:
            order = self.shard_order(epoch)
            sizes = np.asarray(self.sizes, np.int64)[order]
            cache[key] = (order, np.concatenate([[0], np.cumsum(sizes)]))
            _trim(cache)
        return cache[key]

    def _window(self, epoch: int, win: int, size: int, cache: OrderedDict) -> np.ndarray:
        key = ("window", epoch, win)
        if key not in cache:
            cache[key] = np.random.default_rng([self.seed, epoch, 1, win]).permutation(size)
            _trim(cache)
        cache.move_to_end(key)
        return cache[key]


def _trim(cache: OrderedDict, keep: int = 8) -> None:
    while len(cache) > keep:
        cache.popitem(last=False)


def batch_positions(start: int, batch: int, batch_size: int, rank: int, world: int) -> np.ndarray:
    """Global positions of a rank's `batch`-th micro-batch after `start`."""
    t = np.arange(batch_size, dtype=np.int64)
    return start + (batch * batch_size + t) * world + rank
