"""`corpus tokenizer train IN OUT`: a byte-level BPE trained on the corpus itself.

GPT-2's byte alphabet and split rule (whitespace runs are pre-tokens of their own, so the BPE
learns indentation tokens; nothing is normalized, so decode(encode(x)) == x for any text) and one
special token, the end-of-text separator put between documents in token shards.

Saved as OUT/tokenizer.json (the `tokenizers` file) plus what `transformers` needs to load OUT
with `AutoTokenizer.from_pretrained(OUT)` / `PreTrainedTokenizerFast`, without importing it here.
A held-back sample of documents (by a hash of their id) is never trained on; characters per token
are reported on it.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import Field

from corpus.config_check import Size
from corpus.errors import ConfigError, InputError
from corpus.io import DatasetDir, url_to_fs
from corpus.keys import row_hash

EOT = "<|endoftext|>"
FILE = "tokenizer.json"
REPORT = "corpus_tokenizer.json"
BATCH_ROWS = 1024
#: documents the BPE trains on unless told otherwise (chosen by id hash): the merges of a
#: code BPE settle within some 10^4 files, and training time grows with the sample, not the
#: corpus (docs/training.md)
SAMPLE_DOCS = 20_000
#: and at most this many bytes of content (whichever bound comes first): training time grows with
#: the bytes; on 127 MB of real code a 32 MiB sample costs 0.8 % in chars/token (docs/training.md)
SAMPLE_BYTES = 32 * 2**20


@dataclass
class TokenizerOptions:
    vocab_size: Annotated[int, Field(ge=257, le=2**32, description="Tokens, the 256 bytes "
                                     "and <|endoftext|> among them.")] = 32768
    sample_docs: Annotated[int, Field(ge=1, description="Train on N documents (chosen by a "
                                      "hash of their id): a bounded sample, as CodeParrot's "
                                      "and the book's tokenizers were.")] | None = SAMPLE_DOCS
    sample_bytes: Annotated[Size, Field(description="...and at most this much content (e.g. "
                                        "32MiB, 1GB): the sample stops at whichever bound "
                                        "comes first.")] \
        | None = SAMPLE_BYTES
    heldout_fraction: Annotated[float, Field(ge=0, lt=1, description="Fraction of documents "
                                             "held back for the chars/token figure.")] = 0.02
    min_frequency: Annotated[int, Field(ge=1, description="Occurrences a pair needs to be "
                                        "merged.")] = 2
    model_max_length: Annotated[int, Field(ge=1, description="Recorded for transformers; the "
                                           "token shards set the real length.")] = 1024

    def check(self) -> None:
        if not 256 + 1 <= self.vocab_size <= 2**32:
            raise ConfigError(f"--vocab-size must hold the 256 bytes and {EOT}, "
                              f"not {self.vocab_size}")
        if self.sample_docs is not None and self.sample_docs < 1:
            raise ConfigError("--sample-docs must be at least 1")
        if self.sample_bytes is not None and self.sample_bytes < 1:
            raise ConfigError("--sample-bytes must be at least 1 byte")
        if not 0 <= self.heldout_fraction < 1:
            raise ConfigError("the held-back fraction must be in [0, 1)")


def _batches(d: DatasetDir, columns: list[str], keys: list[str] | None = None,
             ) -> Iterator[Any]:
    for key in d.partition_keys() if keys is None else keys:
        with d.fs.open(d.join(d.part_file(key)), "rb") as f:
            yield from pq.ParquetFile(f).iter_batches(BATCH_ROWS, columns=columns)


def heldout_cut(opts: TokenizerOptions) -> np.uint64:
    """Documents whose id hash is below this are held back (never trained on)."""
    return np.uint64(int(opts.heldout_fraction * 2.0**64))


def trainable(batch: Any, cut: np.uint64) -> tuple[np.ndarray, np.ndarray]:
    """(id hashes, content bytes) of a batch's documents that may be sampled for training:
    not held back, and not empty."""
    h = row_hash(batch, ["id", "repo_name", "path"], "tok")
    n = pc.fill_null(pc.binary_length(batch.column("content")), 0).to_numpy(
        zero_copy_only=False).astype(np.int64)
    keep = (h >= cut) & (n > 0)
    return h[keep], n[keep]


def sample_cut(hashes: np.ndarray, sizes: np.ndarray, sample_docs: int | None,
               sample_bytes: int | None) -> np.uint64:
    """The id hash below which (inclusive) the training sample lies: the documents in hash
    order up to `sample_docs` of them, and until `sample_bytes` of content is reached (the
    document that reaches it is in)."""
    order = np.argsort(hashes, kind="stable")
    n = len(hashes) if sample_docs is None else min(sample_docs, len(hashes))
    if sample_bytes is not None and n:
        before = np.cumsum(sizes[order][:n]) - sizes[order][:n]  # bytes before each document
        n = int(np.searchsorted(before, sample_bytes, side="left"))
    if n >= len(hashes):
        return np.uint64(2**64 - 1)
    return hashes[order[n - 1]] if n else np.uint64(0)


def _sample_cut(d: DatasetDir, opts: TokenizerOptions, cut: np.uint64) -> np.uint64:
    """sample_cut over the whole input, in this process (the stage does it per partition)."""
    found = [trainable(b, cut) for b in _batches(d, ["id", "repo_name", "path", "content"])]
    hashes = np.concatenate([h for h, _ in found]) if found else np.zeros(0, np.uint64)
    sizes = np.concatenate([n for _, n in found]) if found else np.zeros(0, np.int64)
    return sample_cut(hashes, sizes, opts.sample_docs, opts.sample_bytes)


def split_texts(d: DatasetDir, opts: TokenizerOptions, cut: np.uint64 | None = None,
                ) -> tuple[Iterator[str], list[str]]:
    """(training texts, streamed; held-back texts, filled as the first is read). The split is
    by a hash of (id, repo, path); `cut`: the sample's (computed here when None)."""
    held_cut = heldout_cut(opts)
    cut = _sample_cut(d, opts, held_cut) if cut is None else cut
    heldout: list[str] = []

    def train() -> Iterator[str]:
        for b in _batches(d, ["id", "repo_name", "path", "content"]):
            h = row_hash(b, ["id", "repo_name", "path"], "tok")
            content = b.column("content")  # only the rows wanted become Python strings
            heldout.extend(c for c in content.take(np.flatnonzero(h < held_cut)).to_pylist()
                           if c)
            yield from (c for c in content.take(
                np.flatnonzero((h >= held_cut) & (h <= cut))).to_pylist() if c)

    return train(), heldout


def build(vocab_size: int, min_frequency: int = 2) -> tuple[Any, Any]:
    """An untrained byte-level BPE tokenizer and its trainer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=[EOT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=sys.stderr.isatty())  # its own bars, for people at a terminal
    return tok, trainer


def for_documents(tok: Any) -> Any:
    """The tokenizer as documents are encoded: a literal "<|endoftext|>" in a file's text is
    text (several tokens), never the separator, so a document cannot forge a boundary."""
    tok.encode_special_tokens = True
    return tok


def chars_per_token(tok: Any, texts: list[str]) -> float | None:
    if not texts:
        return None
    tok = for_documents(tok)
    tokens = sum(len(e.ids) for e in tok.encode_batch(texts, add_special_tokens=False))
    return sum(map(len, texts)) / max(tokens, 1)


def file_hash(path: str | os.PathLike[str]) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def fit(texts: Iterator[str], opts: TokenizerOptions) -> tuple[Any, dict[str, Any]]:
    """Train the BPE on these texts; returns it and what it was trained on, with the seconds
    spent reading the texts and training on them (the stage's manifest keeps both)."""
    tok, trainer = build(opts.vocab_size, opts.min_frequency)
    counted: dict[str, Any] = {"trained_docs": 0, "trained_chars": 0, "read_seconds": 0.0}

    def counting() -> Iterator[str]:
        it = iter(texts)
        while True:
            t0 = time.perf_counter()
            t = next(it, None)
            counted["read_seconds"] += time.perf_counter() - t0
            if t is None:
                return
            counted["trained_docs"] += 1
            counted["trained_chars"] += len(t)
            yield t

    t0 = time.perf_counter()
    tok.train_from_iterator(counting(), trainer=trainer)
    counted["train_seconds"] = round(time.perf_counter() - t0 - counted["read_seconds"], 3)
    counted["read_seconds"] = round(counted["read_seconds"], 3)
    return tok, counted


def folder_files(tok: Any, opts: TokenizerOptions, report: dict[str, Any],
                 ) -> dict[str, bytes]:
    """The folder's files, in writing order: tokenizer.json, the transformers files, and our
    report (with the tokenizer's sha256) last, so a kill halfway never looks finished."""
    data = tok.to_str(pretty=True).encode()
    special = {"bos_token": EOT, "eos_token": EOT, "unk_token": EOT}
    config = {"tokenizer_class": "PreTrainedTokenizerFast",
              "model_max_length": opts.model_max_length,
              "clean_up_tokenization_spaces": False, "add_prefix_space": False, **special}
    report = {**report, "sha256": hashlib.sha256(data).hexdigest(),
              "vocab_size": tok.get_vocab_size(), "eot_id": tok.token_to_id(EOT),
              "options": asdict(opts)}
    return {FILE: data, "special_tokens_map.json": _json(special),
            "tokenizer_config.json": _json(config), REPORT: _json(report)}


def _json(obj: Any) -> bytes:
    return (json.dumps(obj, indent=1) + "\n").encode()


def tokenizer_url(path: str) -> str:
    """tokenizer.json inside a folder, or the file itself (a local path or an fsspec URL)."""
    fs, p = url_to_fs(str(path))
    f = posixpath.join(p, FILE) if fs.isdir(p) else p
    if not fs.isfile(f):
        raise InputError(f"no tokenizer at {path} (expected a folder with {FILE} or the file)")
    return posixpath.join(str(path).rstrip("/"), FILE) if f != p else str(path)


def tokenizer_file(path: str) -> Path:
    """tokenizer.json inside a local folder, or the file itself."""
    return Path(tokenizer_url(path))


def tokenizer_text(path: str) -> str:
    """The tokenizer.json of a folder or file, local or remote."""
    fs, p = url_to_fs(tokenizer_url(path))
    return bytes(fs.cat_file(p)).decode("utf-8")


def load(path: str) -> Any:
    from tokenizers import Tokenizer

    text = tokenizer_text(path)
    try:
        return Tokenizer.from_str(text)
    except Exception as e:  # tokenizers raises plain Exception subclasses
        raise InputError(f"cannot load tokenizer {tokenizer_url(path)}: {e}") from e


def summary(report: dict[str, Any], out_dir: str) -> str:
    cpt = report.get("chars_per_token")
    line = (f"tokenizer: {report['vocab_size']:,} tokens, trained on {report['trained_docs']:,} "
            f"documents ({report['trained_chars']:,} characters)" + (f" → {out_dir}" if out_dir
                                                                        else ""))
    if report.get("seconds"):  # the manifest's record (not the report file: no times there)
        line += f" in {report['seconds']['train']:.1f} s (+ {report['seconds']['read']:.1f} s " \
                "reading)"
    if cpt is not None:
        line += f"\n  {cpt:.2f} characters per token on {report['heldout_docs']:,} held-back " \
                "documents"
    if "compare" in report and report["compare"]["chars_per_token"] is not None:
        line += f"; {report['compare']['tokenizer']}: {report['compare']['chars_per_token']:.2f}"
    for who, r in [("", report), *([(f"{report['compare']['tokenizer']}: ", report["compare"])]
                                   if "compare" in report else [])]:
        if r.get("keywords"):
            k = r["keywords"]
            split = k["split_after_space"]
            line += (f"\n  {who}Python keywords: {k['single_after_space']} of {k['keywords']} are "
                     "one token after a space" + (f" (split: {', '.join(split)})" if split else ""))
        if r.get("words"):
            w = r["words"]
            line += (f"\n  {who}{w['fertility']:.3f} tokens per word (fertility), "
                     f"{w['continued_words']:.1%} of {w['words']:,} held-back words cut in two or "
                     "more")
    return line
