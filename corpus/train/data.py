"""`TokenShards`: the training stream over token shards, split across ranks and loader workers,
shuffled by (seed, epoch) in a bounded window, and resumable exactly (corpus/tokens/order.py
says which sequence comes where).

    ds = TokenShards("out/tokens", batch_size=8, seed=1)
    loader = ds.loader(num_workers=2)          # counts what it hands out, for state_dict()
    for step, batch in zip(range(steps), loader):   # batch: int64 [8, seq_len + 1]
        ...
    state = ds.state_dict()                    # save with the checkpoint
    ds.load_state_dict(state)                  # later: the next batch is the one that followed

The dataset yields whole micro-batches (use DataLoader(ds, batch_size=None)). Worker w of
`num_workers` makes the rank's batches w, w + num_workers, …, which DataLoader hands out
round-robin from worker 0: the rank sees the same batches in the same order for any number of
workers. A resumed iterator starts at the saved global position; on another world size or batch
size the global stream continues where it stopped (every sequence still exactly once per epoch),
only split differently across the new ranks.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from corpus.errors import InputError
from corpus.tokens.dataset import open_tokens
from corpus.tokens.order import StreamOrder, batch_positions


def dist_rank_world() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


class TokenShards(IterableDataset):
    def __init__(self, path: str, split: str = "train", *, batch_size: int = 8, seed: int = 0,
                 buffer: int = 4096, shuffle: bool = True, infinite: bool = True,
                 rank: int | None = None, world_size: int | None = None,
                 tokenizer: str | None = None, verify: bool = True):
        self.data = open_tokens(path, split, tokenizer=tokenizer, verify=verify)
        if sum(self.data.sizes) == 0:
            raise InputError(f"{path}: the {split} split holds no sequences")
        r, w = dist_rank_world()
        self.rank = r if rank is None else rank
        self.world_size = w if world_size is None else world_size
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f"rank {self.rank} outside world size {self.world_size}")
        self.batch_size = batch_size
        self.order = StreamOrder(self.data.sizes, seed, buffer, shuffle)
        self.infinite = infinite
        self.position = 0  # global position where the next iterator starts
        self.consumed = 0  # batches handed out since then (kept by the main process)

    @property
    def seq_len(self) -> int:
        return self.data.seq_len

    @property
    def sequences(self) -> int:
        return self.order.total

    # --- resume ---------------------------------------------------------------------------
    def _start(self) -> int:
        return self.position + self.consumed * self.batch_size * self.world_size

    def state_dict(self) -> dict[str, Any]:
        return {"position": self._start(), "seed": self.order.seed,
                "buffer": self.order.buffer, "split": self.data.split,
                "dataset": self.data.fingerprint, "world_size": self.world_size,
                "batch_size": self.batch_size}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for k in ("seed", "buffer", "split", "dataset"):
            mine = {"seed": self.order.seed, "buffer": self.order.buffer,
                    "split": self.data.split, "dataset": self.data.fingerprint}[k]
            if state.get(k) != mine:
                raise InputError(f"loader state was saved with {k}={state.get(k)!r}, this "
                                 f"loader has {mine!r}: it cannot resume that stream")
        self.position, self.consumed = int(state["position"]), 0

    # --- iteration ------------------------------------------------------------------------
    def __iter__(self) -> Iterator[torch.Tensor]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        start = self._start()
        if info is None:  # the main process: count what is handed out
            self.position, self.consumed = start, 0
        cache: OrderedDict = OrderedDict()
        end = self.order.total if not self.infinite else None
        j = worker
        while True:
            pos = batch_positions(start, j, self.batch_size, self.rank, self.world_size)
            if end is not None:
                pos = pos[pos < end]
                if not len(pos):
                    return
            batch = self._gather(pos, cache)
            if info is None:
                self.consumed += 1
            yield batch
            j += workers

    def _gather(self, positions: np.ndarray, cache: OrderedDict) -> torch.Tensor:
        shard, row = self.order.locate(positions, cache)
        out = np.empty((len(positions), self.data.seq_len + 1), np.int64)
        for s in np.unique(shard):
            sel = shard == s
            out[sel] = self.data.reader(int(s)).rows(row[sel])
        return torch.from_numpy(out)

    def loader(self, num_workers: int = 0, **kwargs: Any) -> CountingLoader:
        """A DataLoader over this dataset that tells it which batches were consumed."""
        return CountingLoader(self, num_workers, **kwargs)


class CountingLoader:
    def __init__(self, ds: TokenShards, num_workers: int, **kwargs: Any):
        self.ds = ds
        self.num_workers = num_workers
        self.kwargs = kwargs

    def __iter__(self) -> Iterator[torch.Tensor]:
        ds = self.ds
        ds.position, ds.consumed = ds._start(), 0
        if self.num_workers == 0:
            yield from ds
            return
        dl = DataLoader(ds, batch_size=None, num_workers=self.num_workers, **self.kwargs)
        for batch in dl:
            ds.consumed += 1
            yield batch
