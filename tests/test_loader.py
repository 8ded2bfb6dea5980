"""TokenShards over real token shards: every sequence exactly once per epoch across ranks and
loader workers, seeded order, and exact resume (also at another world size)."""

from __future__ import annotations

from collections import Counter
from itertools import islice

import numpy as np
import pytest
import torch

from corpus.errors import InputError
from corpus.tokens.dataset import open_tokens
from corpus.tokens.order import StreamOrder
from corpus.train.data import TokenShards
from tests.cloud import gcs_fs, make_bucket


def _all_rows(path) -> Counter[bytes]:
    d = open_tokens(str(path))
    return Counter(r.astype(np.int64).tobytes() for i, s in enumerate(d.sizes)
                   for r in d.reader(i).rows(np.arange(s)))


def _rows(batches) -> list[bytes]:
    return [r.numpy().tobytes() for b in batches for r in b]


def test_window_order_is_a_permutation_per_epoch():
    o = StreamOrder((5, 17, 3, 40), seed=2, buffer=7)
    for epoch in (0, 1):
        shard, row = o.locate(np.arange(epoch * 65, (epoch + 1) * 65))
        assert sorted(zip(shard.tolist(), row.tolist(), strict=True)) == \
            [(s, r) for s, n in enumerate(o.sizes) for r in range(n)]
    first, second = (o.locate(np.arange(e * 65, (e + 1) * 65))[0] for e in (0, 1))
    assert not np.array_equal(first, second)  # each epoch reshuffles


def test_two_ranks_two_workers_cover_the_epoch_once(token_shards):
    want = _all_rows(token_shards)
    seen: list[bytes] = []
    for rank in (0, 1):
        ds = TokenShards(str(token_shards), batch_size=29, seed=7, rank=rank, world_size=2,
                         infinite=False)
        batches = list(ds.loader(num_workers=2))
        assert all(b.dtype == torch.int64 and b.shape[1] == 65 for b in batches)
        seen += _rows(batches)
    assert len(seen) == sum(want.values())
    assert Counter(seen) == want


def test_workers_do_not_change_the_rank_stream(token_shards):
    def first(n_workers: int) -> list[bytes]:
        ds = TokenShards(str(token_shards), batch_size=4, seed=7, rank=1, world_size=2)
        return _rows(islice(ds.loader(num_workers=n_workers), 9))

    assert first(0) == first(2) == first(3)


def test_order_depends_on_the_seed_only(token_shards):
    def order(seed: int) -> list[bytes]:
        ds = TokenShards(str(token_shards), batch_size=8, seed=seed, rank=0, world_size=1)
        return _rows(islice(iter(ds), 20))

    assert order(1) == order(1)
    assert order(1) != order(2)
    assert sorted(order(1)) != order(1)  # shuffled, not file order


@pytest.mark.parametrize("workers", [0, 2])
def test_resume_after_k_batches_gives_the_rest(token_shards, workers):
    def make() -> TokenShards:
        return TokenShards(str(token_shards), batch_size=24, seed=11, rank=1, world_size=2)

    epoch_batches = -(-make().sequences // 48)
    total = epoch_batches + 4  # past the end of the first epoch into the second
    straight = _rows(islice(make().loader(num_workers=workers), total))
    for k in (1, 7, epoch_batches - 1):
        ds = make()
        head = _rows(islice(ds.loader(num_workers=workers), k))
        state = ds.state_dict()
        resumed = make()
        resumed.load_state_dict(state)
        tail = _rows(islice(resumed.loader(num_workers=workers), total - k))
        assert head + tail == straight


def test_resume_at_another_world_size_continues_the_global_stream(token_shards):
    """Two ranks consume 6 batches each, then one rank finishes the epoch: every sequence of
    the epoch exactly once."""
    want = _all_rows(token_shards)
    before: list[bytes] = []
    states = []
    for rank in (0, 1):
        ds = TokenShards(str(token_shards), batch_size=4, seed=5, rank=rank, world_size=2,
                         infinite=False)
        before += _rows(islice(iter(ds), 6))
        states.append(ds.state_dict())
    assert states[0]["position"] == states[1]["position"] == 6 * 4 * 2
    one = TokenShards(str(token_shards), batch_size=5, seed=5, rank=0, world_size=1,
                      infinite=False)
    one.load_state_dict(states[0])
    after = _rows(iter(one))
    assert Counter(before + after) == want


def test_state_of_another_stream_is_refused(token_shards):
    a = TokenShards(str(token_shards), batch_size=4, seed=5)
    b = TokenShards(str(token_shards), batch_size=4, seed=6)
    with pytest.raises(InputError, match="seed"):
        b.load_state_dict(a.state_dict())
    with pytest.raises(InputError, match="no 'test' split"):
        TokenShards(str(token_shards), split="test")


def test_streams_from_gcs_like_from_disk(token_shards, gcs):
    """gs:// through fsspec (the GCS emulator behind gcsfs): the same batches as the memory
    map of the local files."""
    fs = gcs_fs()
    bucket = make_bucket("corpus-tokens")
    fs.put(str(token_shards), f"{bucket}/tokens", recursive=True)

    def batches(url: str) -> list[bytes]:
        return _rows(islice(iter(TokenShards(url, batch_size=4, seed=3)), 12))

    assert batches(f"gs://{bucket}/tokens") == batches(str(token_shards))
