"""Token shards: they decode back to the input documents in the recorded order, the manifest
tells the truth about every file, the result does not depend on the partitioning, and damaged
shards or a foreign tokenizer are refused by name."""

from __future__ import annotations

import itertools
import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from corpus.errors import InputError
from corpus.io import DatasetDir
from corpus.keys import validation_mask
from corpus.tokens import bpe
from corpus.tokens import format as fmt
from corpus.tokens.dataset import open_tokens
from corpus.tokens.shards import TokenShardJob, TokenShardOptions
from corpus.tokens.tokenizer_job import train
from tests.conftest import run_cli


def _input(path: Path) -> pa.Table:
    return pq.read_table(sorted(path.glob("data/part-*.parquet")))


def _stream(root: Path, split: str) -> np.ndarray:
    d = open_tokens(str(root), split)
    return np.concatenate([d.reader(i).rows(np.arange(s)).ravel()
                           for i, s in enumerate(d.sizes)])


def _index(root: Path, split: str) -> pa.Table:
    m = json.loads((root / "manifest.json").read_text())
    return pa.concat_tables([pq.read_table(root / f"{k}.docs.parquet")
                             for k in m["tokens"]["splits"][split]["shards"]])


def test_shards_decode_to_the_documents_in_recorded_order(token_shards, python_docs,
                                                          tokenizer_dir):
    tok = bpe.load(str(tokenizer_dir))
    m = json.loads((token_shards / "manifest.json").read_text())
    eos = m["tokens"]["eos_id"]
    docs = _input(python_docs)
    content = {(r, p): c for r, p, c in zip(docs.column("repo_name").to_pylist(),
                                            docs.column("path").to_pylist(),
                                            docs.column("content").to_pylist(), strict=True)}
    seen = []
    for split in ("train", "validation"):
        stream = _stream(token_shards, split)
        total = m["tokens"]["splits"][split]["tokens"]
        assert (stream[total:] == eos).all()  # only the last row is padded
        pieces = np.split(stream[:total], np.flatnonzero(stream[:total] == eos) + 1)
        index = _index(token_shards, split)
        assert len(pieces) == index.num_rows + 1 and len(pieces[-1]) == 0
        for piece, r, p, n in zip(pieces, index.column("repo_name").to_pylist(),
                                  index.column("path").to_pylist(),
                                  index.column("n_tokens").to_pylist(), strict=False):
            assert piece[-1] == eos and len(piece) == n + 1
            assert tok.decode(piece[:-1].tolist(), skip_special_tokens=False) == content[(r, p)]
            seen.append((r, p))
    assert Counter(seen) == Counter(k for k, c in content.items() if c)


def test_manifest_describes_every_file(token_shards):
    m = json.loads((token_shards / "manifest.json").read_text())
    t = m["tokens"]
    assert (t["seq_len"], t["row_len"], t["dtype"]) == (64, 65, "uint16")
    assert t["tokenizer_sha256"] == bpe.file_hash(token_shards / "tokenizer.json")
    assert len(t["splits"]["train"]["shards"]) >= 4  # several shards: what the loader splits
    for p in m["partitions"]:
        data = (token_shards / p["file"]).read_bytes()
        assert fmt.sha256_of(DatasetDir(str(token_shards)).fs, str(token_shards / p["file"])) \
            == p["sha256"] and len(data) == p["bytes"]
        reader = fmt.ShardReader(DatasetDir(str(token_shards)).fs, fmt.ShardSpec(
            str(token_shards / p["file"]), p["file"], p["sequences"], p["sha256"], "uint16", 65))
        assert len(reader) == p["sequences"]
        assert p["sequences"] * 65 == p["tokens"] + p["padding"]
    assert m["rows_in"] == m["rows"] + m["removed"]


def test_split_by_id_and_order_shuffled(token_shards, python_docs):
    docs = _input(python_docs)
    valid = validation_mask(docs, 0.05)
    want = set(zip(docs.filter(pa.array(valid)).column("path").to_pylist(),
                   docs.filter(pa.array(valid)).column("repo_name").to_pylist(), strict=True))
    index = _index(token_shards, "validation")
    assert set(zip(index.column("path").to_pylist(), index.column("repo_name").to_pylist(),
                   strict=True)) == want
    repos = _index(token_shards, "train").column("repo_name").to_pylist()
    switches = sum(a != b for a, b in itertools.pairwise(repos))
    assert switches > len(set(repos)) * 10  # interleaved, not sorted by repository


def test_independent_of_partitioning_and_seeded(engine, python_docs, tokenizer_dir,
                                                token_shards, tmp_path):
    one = tmp_path / "one"
    one.mkdir()
    t = _input(python_docs)
    pq.write_table(t, one / "part-00000.parquet")
    opts = TokenShardOptions(str(tokenizer_dir), seq_len=64, shard_bytes=1 << 20,
                             valid_fraction=0.05, seed=3)
    engine.run(TokenShardJob(opts, DatasetDir(str(one)), DatasetDir(str(tmp_path / "a"))))
    a = json.loads((tmp_path / "a" / "manifest.json").read_text())
    b = json.loads((token_shards / "manifest.json").read_text())
    assert [p["sha256"] for p in a["partitions"]] == [p["sha256"] for p in b["partitions"]]
    opts.seed = 4
    engine.run(TokenShardJob(opts, DatasetDir(str(one)), DatasetDir(str(tmp_path / "c"))))
    c = _index(tmp_path / "c", "train").column("path").to_pylist()
    assert c != _index(token_shards, "train").column("path").to_pylist()
    assert sorted(c) == sorted(_index(token_shards, "train").column("path").to_pylist())


def test_edge_documents(engine, tokenizer_dir, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    texts = [None, "", 'SEP = "<|endoftext|>"\n', "x = 1\n" * 50, "é\r\n\tü\n"]
    pq.write_table(pa.table({
        "id": [f"{i:040x}" for i in range(len(texts))], "repo_name": ["r/x"] * len(texts),
        "path": [f"f{i}.py" for i in range(len(texts))],
        "content": pa.array(texts, pa.large_string())}), src / "part-00000.parquet")
    opts = TokenShardOptions(str(tokenizer_dir), seq_len=16, valid_fraction=0)
    m = engine.run(TokenShardJob(opts, DatasetDir(str(src)), DatasetDir(str(tmp_path / "o"))))
    assert (m["rows_in"], m["rows"], m["removed"]) == (5, 3, 2)
    assert set(m["reasons"]) == {"null-content", "empty-content"}
    tok = bpe.load(str(tokenizer_dir))
    stream = _stream(tmp_path / "o", "train")[:m["tokens"]["splits"]["train"]["tokens"]]
    eos = m["tokens"]["eos_id"]
    pieces = [p[:-1] for p in np.split(stream, np.flatnonzero(stream == eos) + 1)[:-1]]
    decoded = {tok.decode(p.tolist(), skip_special_tokens=False) for p in pieces}
    assert decoded == set(texts[2:])  # the literal separator text stayed inside its document


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_damaged_shards_and_foreign_tokenizer_are_refused(engine, token_shards, tmp_path,
                                                          python_docs):
    m = json.loads((token_shards / "manifest.json").read_text())
    first = m["tokens"]["splits"]["train"]["shards"][0] + ".arrow"

    bad = _copy(token_shards, tmp_path / "flipped")
    data = bytearray((bad / first).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (bad / first).write_bytes(bytes(data))
    with pytest.raises(InputError, match=f"{first} does not match its manifest checksum"):
        open_tokens(str(bad))

    wide = _copy(token_shards, tmp_path / "wide")
    rows = open_tokens(str(token_shards)).reader(0).rows(np.arange(m["partitions"][0]
                                                                   ["sequences"]))
    (wide / first).write_bytes(fmt.encode_shard(rows, "uint32", {}))
    wm = json.loads((wide / "manifest.json").read_text())  # size and checksum made to agree:
    wm["partitions"][0].update(bytes=(wide / first).stat().st_size,  # only the dtype is wrong
                               sha256=fmt.sha256_of(DatasetDir(str(wide)).fs, str(wide / first)))
    (wide / "manifest.json").write_text(json.dumps(wm))
    with pytest.raises(InputError, match=f"{first} holds fixed_size_list<item: uint32>"):
        open_tokens(str(wide)).reader(0)

    other = tmp_path / "other-tok"
    train(str(python_docs), str(other), bpe.TokenizerOptions(vocab_size=300, sample_docs=20),
          engine=engine)
    with pytest.raises(InputError, match="is not the one"):
        open_tokens(str(token_shards), tokenizer=str(other))

    r = run_cli("train", "--data", str(bad), "--model", "pipelines/train/tiny.toml",
                "--deepspeed", "pipelines/train/zero2.json", "--out", str(tmp_path / "run"))
    assert r.returncode == 1 and first in r.stderr and "Traceback" not in r.stderr


def test_parquet_shards_share_the_validation_documents(python_docs, token_shards, tmp_path):
    r = run_cli("shard", str(python_docs), str(tmp_path / "pq"), "--format", "parquet",
                "--valid-fraction", "0.05")
    assert r.returncode == 0, r.stderr
    valid = pq.read_table(sorted((tmp_path / "pq" / "data").glob("validation-*.parquet")))
    index = _index(token_shards, "validation")
    assert sorted(valid.column("path").to_pylist()) == sorted(index.column("path").to_pylist())
    train = pq.read_table(sorted((tmp_path / "pq" / "data").glob("train-*.parquet")))
    assert train.num_rows + valid.num_rows == _input(python_docs).num_rows
