"""The token shards' exact fast encoder (corpus/tokens/encoder.py): tiktoken's ids equal those
of `tokenizers` on every document of real code of several languages and on the edge texts,
the shards are byte-identical to those `tokenizers` makes, and a tokenizer that cannot be
converted exactly takes the `tokenizers` path and says why."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from corpus.io import DatasetDir
from corpus.tokens import bpe, encoder
from corpus.tokens.shards import TokenShardJob, TokenShardOptions, describe

#: what breaks encoders: non-ASCII identifiers, CRLF, emoji and joiners, the separator's text,
#: tabs and runs of spaces, combining marks, a 5 MB line of code, a 1 MB word without a break
EDGE_TEXTS = [
    "def größe(π, данные):\r\n\treturn π * данные  # 长度\r\n",
    "x = '👩\u200d💻🚀' + \"\u0301é\u00a0\u2028\"\n",
    'SEP = "<|endoftext|>"\n<|endoftext|><|endoftext|>\n',
    "    \n\t\t  \n" + " " * 100 + "x\n\n\n",
    "let s = `${a}`;\u3000// ｆｕｌｌ\u200b\n",
    "y = [1, 2, 3]; " * 350_000,
    "QmFzZTY0" * 131_072,
    "",
]


def _reference(tok_json: str, texts: list[str]) -> list[list[int]]:
    from tokenizers import Tokenizer

    tok = bpe.for_documents(Tokenizer.from_str(tok_json))
    return [e.ids for e in tok.encode_batch_fast(texts, add_special_tokens=False)]


def _split(values: np.ndarray, lengths: np.ndarray) -> list[list[int]]:
    return [a.tolist() for a in np.split(values, np.cumsum(lengths)[:-1])]


@pytest.fixture(scope="module")
def code_tokenizer(multilang) -> str:
    """A BPE of 4,096 tokens trained on a quarter of the multi-language files (the rest and
    every Python file of the suite's corpus are unseen)."""
    texts = [c for i, (_, c) in enumerate(multilang) if i % 4 == 0]
    tok, _ = bpe.fit(iter(texts), bpe.TokenizerOptions(vocab_size=4096))
    return tok.to_str()


def test_fast_ids_equal_tokenizers_on_real_code(multilang, python_docs, tokenizer_dir,
                                                code_tokenizer):
    """Each tokenizer on the files it was not trained on, and on the edge texts."""
    py = pq.read_table(sorted(python_docs.glob("data/part-*.parquet")), columns=["content"])
    cases = [(code_tokenizer, [c for _, c in multilang]),
             (bpe.tokenizer_text(str(tokenizer_dir)),
              [c for c in py.column("content").to_pylist() if c])]
    for tok_json, real in cases:
        texts = real + EDGE_TEXTS
        assert len(real) > 500
        fast = encoder.build(tok_json, np.uint32)
        assert (fast.name, fast.fallback_reason) == ("tiktoken", None)
        got = _split(*fast.encode(texts))
        want = _reference(tok_json, texts)
        bad = [i for i, (a, b) in enumerate(zip(got, want, strict=True)) if a != b]
        assert not bad, f"{len(bad)} documents differ, the first: {texts[bad[0]][:200]!r}"
        eot = json.loads(tok_json)["model"]["vocab"][bpe.EOT]
        assert eot not in got[len(real) + 2]  # the separator's text stayed text


def _with(tok_json: str, **changes: object) -> str:
    spec = json.loads(tok_json)
    spec.update(changes)
    return json.dumps(spec)


def _unmade(spec: dict) -> str:
    """Merges in order, each making a new token, yet "abc" (made by a + bc) is not what the
    merges make of its bytes: "a b" comes first, so they give ab + c."""
    eot = spec["added_tokens"][0]["content"]
    alphabet = sorted(t for t, i in spec["model"]["vocab"].items() if len(t) == 1)
    vocab = {eot: 0, **{c: i + 1 for i, c in enumerate(alphabet)}}
    vocab.update({"ab": len(vocab), "bc": len(vocab) + 1, "abc": len(vocab) + 2})
    model = {**spec["model"], "vocab": vocab, "merges": ["a b", "b c", "a bc"]}
    added = [{**spec["added_tokens"][0], "id": 0}]
    return json.dumps({**spec, "model": model, "added_tokens": added})


def test_tokenizers_that_cannot_be_converted_take_the_fallback(code_tokenizer):
    spec = json.loads(code_tokenizer)
    merges = spec["model"]["merges"]
    swapped = {**spec["model"], "merges": [merges[1], merges[0], *merges[2:]]}
    cases = {
        "normalizer": _with(code_tokenizer, normalizer={"type": "NFC"}),
        "pre-tokenizer": _with(code_tokenizer, pre_tokenizer={"type": "Whitespace"}),
        "added tokens": _with(code_tokenizer, added_tokens=[*spec["added_tokens"], {
            "id": 4096, "content": "<pad>", "single_word": False, "lstrip": False,
            "rstrip": False, "normalized": False, "special": False}]),
        "merge order": _with(code_tokenizer, model=swapped),
        "dropout": _with(code_tokenizer, model={**spec["model"], "dropout": 0.1}),
        "a token its merges do not make": _unmade(spec),
    }
    texts = [EDGE_TEXTS[0], EDGE_TEXTS[2], "import os\nprint(os.sep)\n"]
    for what, tok_json in cases.items():
        e = encoder.build(tok_json)
        assert e.name == "tokenizers" and e.fallback_reason, what
        if what.startswith("a token"):
            assert e.fallback_reason.startswith("the merges split token"), e.fallback_reason
        if what != "dropout":  # dropout is random: no reference to compare with
            assert _split(*e.encode(texts)) == _reference(tok_json, texts), what


def _table(texts: list[str]) -> pa.Table:
    r = random.Random(5)
    return pa.table({"id": [f"{r.getrandbits(160):040x}" for _ in texts],
                     "repo_name": [f"r/{i % 7}" for i in range(len(texts))],
                     "path": [f"f{i}.py" for i in range(len(texts))],
                     "content": pa.array(texts, pa.large_string())})


def test_shards_are_byte_identical_to_the_tokenizers_path(engine, multilang, tmp_path):
    texts = [c for _, c in multilang[:600]] + EDGE_TEXTS[:5]
    src = tmp_path / "src"
    src.mkdir()
    t = _table(texts)
    for k, half in enumerate((t.slice(0, 300), t.slice(300))):
        pq.write_table(half, src / f"part-{k:05d}.parquet")
    tok_dir = tmp_path / "tok"
    tok_dir.mkdir()
    tok, _ = bpe.fit(iter(texts[::3]), bpe.TokenizerOptions(vocab_size=1024))
    (tok_dir / bpe.FILE).write_text(tok.to_str())
    manifests = {}
    for choice in ("auto", "tokenizers"):
        opts = TokenShardOptions(str(tok_dir), seq_len=128, shard_bytes=1 << 18,
                                 valid_fraction=0.1, seed=1, encoder=choice)
        manifests[choice] = engine.run(TokenShardJob(opts, DatasetDir(str(src)),
                                                     DatasetDir(str(tmp_path / choice))))
    fast, slow = manifests["auto"], manifests["tokenizers"]
    assert (fast["tokens"]["encoder"], slow["tokens"]["encoder"]) == ("tiktoken", "tokenizers")
    assert len(fast["partitions"]) > 2
    assert [p["sha256"] for p in fast["partitions"]] == [p["sha256"] for p in slow["partitions"]]
    for p in fast["partitions"]:
        assert (tmp_path / "auto" / p["file"]).read_bytes() == \
            (tmp_path / "tokenizers" / p["file"]).read_bytes()
    assert "encoded with tiktoken" in describe(fast)
    said = describe(slow)
    assert said.count("encoded with tokenizers") == 1 and "--encoder tokenizers" in said


def test_the_stage_says_once_why_it_fell_back(engine, tmp_path):
    texts = ["def f(x):\n    return x + 1\n"] * 40
    src = tmp_path / "src"
    src.mkdir()
    pq.write_table(_table(texts), src / "part-00000.parquet")
    tok, _ = bpe.fit(iter(texts), bpe.TokenizerOptions(vocab_size=300))
    path = Path(tmp_path / "tok.json")
    path.write_text(_with(tok.to_str(), normalizer={"type": "NFKC"}))
    m = engine.run(TokenShardJob(TokenShardOptions(str(path), seq_len=16, valid_fraction=0),
                                 DatasetDir(str(src)), DatasetDir(str(tmp_path / "o"))))
    assert m["tokens"]["encoder"] == "tokenizers"
    assert m["tokens"]["encoder_fallback"] == "the tokenizer has a normalizer"
    assert describe(m).count("the tokenizer has a normalizer") == 1


def test_both_encoders_use_the_calling_thread_only(tmp_path):
    """A stage's worker encodes on its own thread: no pool of one thread per core in each."""
    path = tmp_path / "tok.json"
    tok, _ = bpe.fit(iter(EDGE_TEXTS[:5] * 20), bpe.TokenizerOptions(vocab_size=300))
    path.write_text(tok.to_str())
    code = ("import os, sys, numpy\n"
            "from corpus.tokens import encoder\n"
            "e = encoder.build(open(sys.argv[1]).read(), fast=sys.argv[2] == 'fast')\n"
            "n = len(os.listdir('/proc/self/task'))\n"
            "e.encode(['def f(x):\\n    return x + 1\\n' * 40] * 3000)\n"
            "print(e.name, n, len(os.listdir('/proc/self/task')))\n")
    for how, name in (("fast", "tiktoken"), ("slow", "tokenizers")):
        r = subprocess.run([sys.executable, "-c", code, str(path), how], capture_output=True,
                           text=True, env={**os.environ, "TOKENIZERS_PARALLELISM": "true"},
                           timeout=120)
        assert r.returncode == 0, r.stderr
        got, before, after = r.stdout.split()
        assert got == name and after == before, r.stdout
