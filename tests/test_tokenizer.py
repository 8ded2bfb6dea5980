"""The corpus's BPE: lossless on real code, whitespace runs learned, held-back documents never
trained on, loadable by transformers without a hub."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from corpus.errors import ConfigError
from corpus.io import DatasetDir
from corpus.tokens import bpe
from tests.conftest import run_cli


def _docs(path: Path) -> list[str]:
    t = pq.read_table(sorted(path.glob("data/part-*.parquet")))
    return [c for c in t.column("content").to_pylist() if c]


def test_round_trip_is_lossless_on_real_code(tokenizer_dir, python_docs):
    tok = bpe.for_documents(bpe.load(str(tokenizer_dir)))
    docs = _docs(python_docs)[:400]
    tricky = ["\tif x:\r\n\t\treturn  1\r\n", "   \n\n\n    ", "naïve = 'ſ İ 😀'\n",
              'EOT = "<|endoftext|>"\n']
    for text in docs + tricky:
        ids = tok.encode(text, add_special_tokens=False).ids
        assert tok.decode(ids, skip_special_tokens=False) == text
    eot = tok.token_to_id(bpe.EOT)
    assert eot not in tok.encode(tricky[-1], add_special_tokens=False).ids


def test_learns_indentation_and_reports_heldout(tokenizer_dir, python_docs):
    report = json.loads((tokenizer_dir / bpe.REPORT).read_text())
    assert report["vocab_size"] == 2048
    assert report["trained_docs"] == 600
    assert report["heldout_docs"] > 0
    # real Python at a 2k vocabulary: well above the ~1.5 of a byte-ish split, below 6
    assert 2.5 < report["chars_per_token"] < 6
    assert report["sha256"] == bpe.file_hash(tokenizer_dir / bpe.FILE)
    vocab = bpe.load(str(tokenizer_dir)).get_vocab()
    # byte-level 'Ġ' is a space: runs of 4, 8 spaces are tokens of their own
    assert "ĠĠĠ" in vocab and "ĠĠĠĠĠĠĠ" in vocab


def test_heldout_documents_are_not_trained_on(python_docs):
    opts = bpe.TokenizerOptions(vocab_size=300, sample_docs=50, heldout_fraction=0.2)
    texts, heldout = bpe.split_texts(DatasetDir(str(python_docs)), opts)
    trained = list(texts)
    assert len(trained) == 50
    assert heldout and not set(heldout) & set(trained)
    again, _ = bpe.split_texts(DatasetDir(str(python_docs)), opts)
    assert list(again) == trained  # the same sample on every run


def test_transformers_loads_the_folder(tokenizer_dir):
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    ours = bpe.load(str(tokenizer_dir))
    text = "def f(x):\n        return x  # spaces\n"
    assert hf(text)["input_ids"] == ours.encode(text, add_special_tokens=False).ids
    assert hf.eos_token == bpe.EOT and hf.eos_token_id == ours.token_to_id(bpe.EOT)
    assert hf.decode(hf(text)["input_ids"]) == text


def test_cli_reports_chars_per_token_next_to_another(tokenizer_dir, python_docs, tmp_path):
    r = run_cli("tokenizer", "train", str(python_docs), str(tmp_path / "tok"),
                "--vocab-size", "512", "--sample-docs", "200", "--compare", str(tokenizer_dir))
    assert r.returncode == 0, r.stderr
    report = json.loads((tmp_path / "tok" / bpe.REPORT).read_text())
    assert report["compare"]["chars_per_token"] > report["chars_per_token"]  # 2048 > 512 tokens
    assert f"{report['chars_per_token']:.2f} characters per token" in r.stdout
    assert f"{report['compare']['chars_per_token']:.2f}" in r.stdout
    k = report["keywords"]
    assert f"Python keywords: {k['single_after_space']} of {k['keywords']}" in r.stdout
    assert f"{report['words']['fertility']:.3f} tokens per word" in r.stdout
    assert report["compare"]["words"]["fertility"] < report["words"]["fertility"]  # finer cuts


def test_bad_options_and_inputs(tmp_path, python_docs):
    with pytest.raises(ConfigError, match="vocab-size"):
        bpe.TokenizerOptions(vocab_size=100).check()
    r = run_cli("tokenizer", "train", str(tmp_path / "missing"), str(tmp_path / "out"))
    assert r.returncode == 1 and "error:" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("shard", str(python_docs), str(tmp_path / "t"), "--format", "tokens",
                "--tokenizer", str(tmp_path / "nope"))
    assert r.returncode == 1 and "no tokenizer at" in r.stderr


@pytest.mark.parametrize("sample_docs,sample_bytes", [(None, 200_000), (40, 200_000),
                                                      (10_000, 1), (None, None)])
def test_sample_is_bounded_by_documents_and_bytes(python_docs, sample_docs, sample_bytes):
    """The sample is the documents in id-hash order, up to N of them and until the byte bound
    is reached (that document included): checked against a plain Python walk."""
    from corpus.keys import row_hash

    opts = bpe.TokenizerOptions(vocab_size=300, sample_docs=sample_docs,
                                sample_bytes=sample_bytes)
    texts, _ = bpe.split_texts(DatasetDir(str(python_docs)), opts)
    trained = list(texts)
    t = pq.read_table(sorted(python_docs.glob("data/part-*.parquet")))
    hashes = row_hash(t, ["id", "repo_name", "path"], "tok")
    held_cut = int(bpe.heldout_cut(opts))
    walk = sorted((int(h), c) for h, c in zip(hashes, t.column("content").to_pylist(), strict=True)
                  if c and int(h) >= held_cut)
    expected, seen = [], 0
    for _, c in walk:
        if (sample_docs is not None and len(expected) == sample_docs) or \
                (sample_bytes is not None and seen >= sample_bytes):
            break
        expected.append(c)
        seen += len(c.encode())
    assert sorted(trained) == sorted(expected)
    assert 0 < len(trained) < len(walk) or (sample_docs is None and sample_bytes is None)
    with pytest.raises(ConfigError, match="sample-bytes"):
        bpe.TokenizerOptions(sample_bytes=0).check()


def test_keyword_coverage_and_word_cuts_equal_independent_counts(tokenizer_dir, python_docs):
    import keyword
    import re

    from corpus.tokens import checks

    tok = bpe.load(str(tokenizer_dir))
    report = json.loads((tokenizer_dir / bpe.REPORT).read_text())
    # the book's check: is the keyword (after a space, byte-level 'Ġ') in the vocabulary?
    vocab = tok.get_vocab()
    in_vocab = [k for k in keyword.kwlist if "Ġ" + k in vocab]
    assert report["keywords"]["single_after_space"] == len(in_vocab) > 10
    assert report["keywords"]["split_after_space"] == [k for k in keyword.kwlist
                                                        if k not in in_vocab]
    # fertility, per character: the distinct tokens covering each word's characters
    docs = [*_docs(python_docs)[:60], "naïve_ſ = 1  # ü\n", "", "((()))", "x"]
    got = checks.word_stats(tok, docs)
    per_word = []
    for text, enc in zip(docs, bpe.for_documents(tok).encode_batch(
            docs, add_special_tokens=False), strict=True):
        owner: dict[int, set[int]] = {}
        for t, (s, e) in enumerate(enc.offsets):
            for c in range(s, e):
                owner.setdefault(c, set()).add(t)
        for m in re.finditer(r"\w+", text):
            per_word.append(len(set().union(*(owner[c] for c in range(m.start(), m.end())))))
    assert got["words"] == len(per_word)
    assert got["fertility"] == round(sum(per_word) / len(per_word), 4)
    assert got["continued_words"] == round(sum(n > 1 for n in per_word) / len(per_word), 4)
    assert report["words"]["fertility"] >= 1 and 0 < report["words"]["continued_words"] < 1
    assert checks.word_stats(tok, ["", "(("]) is None
