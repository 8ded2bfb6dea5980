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
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import Field

from corpus.errors import ConfigError, InputError
from corpus.io import DatasetDir
from corpus.keys import row_hash

EOT = "<|endoftext|>"
FILE = "tokenizer.json"
REPORT = "corpus_tokenizer.json"
BATCH_ROWS = 1024


@dataclass
class TokenizerOptions:
    vocab_size: Annotated[int, Field(ge=257, le=2**32)] = 32768  # the 256 bytes and EOT at least
    #: train on this many documents (chosen by id hash); all if None
    sample_docs: Annotated[int, Field(ge=1)] | None = None
    #: documents never trained on, for the chars/token figure
    heldout_fraction: Annotated[float, Field(ge=0, lt=1)] = 0.02
    min_frequency: Annotated[int, Field(ge=1)] = 2
    #: recorded for transformers; the shards set the real length
    model_max_length: Annotated[int, Field(ge=1)] = 1024

    def check(self) -> None:
        if not 256 + 1 <= self.vocab_size <= 2**32:
            raise ConfigError(f"--vocab-size must hold the 256 bytes and {EOT}, "
                              f"not {self.vocab_size}")
        if self.sample_docs is not None and self.sample_docs < 1:
            raise ConfigError("--sample-docs must be at least 1")
        if not 0 <= self.heldout_fraction < 1:
            raise ConfigError("the held-back fraction must be in [0, 1)")


def _batches(d: DatasetDir, columns: list[str]) -> Iterator[Any]:
    for key in d.partition_keys():
        with d.fs.open(d.join(d.part_file(key)), "rb") as f:
            yield from pq.ParquetFile(f).iter_batches(BATCH_ROWS, columns=columns)


def _sample_cut(d: DatasetDir, opts: TokenizerOptions, heldout_cut: np.uint64) -> np.uint64:
    """The id-hash below which the `sample_docs` training documents lie (first pass over the
    small columns; documents with size 0 are not counted, as they are not trained on)."""
    if opts.sample_docs is None:
        return np.uint64(2**64 - 1)
    key = d.partition_keys()[0]
    names = d.parquet_metadata(d.part_file(key)).schema.to_arrow_schema().names
    cols = ["id", "repo_name", "path", *(["size"] if "size" in names else [])]
    hashes = []
    for b in _batches(d, cols):
        h = row_hash(b, ["id", "repo_name", "path"], "tok")
        keep = h >= heldout_cut
        if "size" in cols:
            keep &= pc.fill_null(b.column("size"), 0).to_numpy(zero_copy_only=False) > 0
        hashes.append(h[keep])
    every = np.sort(np.concatenate(hashes)) if hashes else np.zeros(0, np.uint64)
    if opts.sample_docs is None or opts.sample_docs >= len(every):
        return np.uint64(2**64 - 1)
    return every[opts.sample_docs - 1]


def split_texts(d: DatasetDir, opts: TokenizerOptions) -> tuple[Iterator[str], list[str]]:
    """(training texts, streamed; held-back texts). The split is by a hash of (id, repo, path)."""
    heldout_cut = np.uint64(int(opts.heldout_fraction * 2.0**64))
    sample_cut = _sample_cut(d, opts, heldout_cut)
    heldout: list[str] = []

    def train() -> Iterator[str]:
        for b in _batches(d, ["id", "repo_name", "path", "content"]):
            h = row_hash(b, ["id", "repo_name", "path"], "tok")
            content = b.column("content").to_pylist()
            for i in np.flatnonzero(h < heldout_cut):
                if content[i]:
                    heldout.append(content[i])
            for i in np.flatnonzero((h >= heldout_cut) & (h <= sample_cut)):
                if content[i]:
                    yield content[i]

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


def save(tok: Any, out: Path, opts: TokenizerOptions, report: dict[str, Any]) -> dict[str, Any]:
    """tokenizer.json, the transformers files, and our report (with the file's sha256)."""
    out.mkdir(parents=True, exist_ok=True)
    tok.save(str(out / FILE))
    special = {"bos_token": EOT, "eos_token": EOT, "unk_token": EOT}
    (out / "special_tokens_map.json").write_text(json.dumps(special, indent=1) + "\n")
    (out / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": opts.model_max_length,
        "clean_up_tokenization_spaces": False, "add_prefix_space": False, **special,
    }, indent=1) + "\n")
    report = {**report, "sha256": file_hash(out / FILE), "vocab_size": tok.get_vocab_size(),
              "eot_id": tok.token_to_id(EOT), "options": asdict(opts)}
    (out / REPORT).write_text(json.dumps(report, indent=1) + "\n")
    return report


def train(input_url: str, out_dir: str, opts: TokenizerOptions,
          compare: str | None = None) -> dict[str, Any]:
    """Train on the documents of a dataset directory; return the report. The report is
    written last and names the tokenizer's sha256: a kill halfway is never reused."""
    from corpus.lock import writer_lock

    with writer_lock(out_dir):
        return _train(input_url, out_dir, opts, compare)


def _train(input_url: str, out_dir: str, opts: TokenizerOptions,
           compare: str | None) -> dict[str, Any]:
    opts.check()
    d = DatasetDir(input_url)
    texts, heldout = split_texts(d, opts)
    tok, trainer = build(opts.vocab_size, opts.min_frequency)
    counted = {"docs": 0, "chars": 0}

    def counting() -> Iterator[str]:
        for t in texts:
            counted["docs"] += 1
            counted["chars"] += len(t)
            yield t

    tok.train_from_iterator(counting(), trainer=trainer)
    if counted["docs"] == 0:
        raise InputError(f"{input_url} holds no documents with content to train on")
    report: dict[str, Any] = {
        "input": input_url, "input_hash": d.content_hash(d.partition_keys()),
        "trained_docs": counted["docs"], "trained_chars": counted["chars"],
        "heldout_docs": len(heldout), "chars_per_token": chars_per_token(tok, heldout)}
    if compare:
        report["compare"] = {"tokenizer": compare,
                             "chars_per_token": chars_per_token(load(compare), heldout)}
    return save(tok, Path(out_dir), opts, report)


def tokenizer_file(path: str) -> Path:
    """tokenizer.json inside a folder, or the file itself."""
    p = Path(path)
    f = p / FILE if p.is_dir() else p
    if not f.is_file():
        raise InputError(f"no tokenizer at {path} (expected a folder with {FILE} or the file)")
    return f


def load(path: str) -> Any:
    from tokenizers import Tokenizer

    f = tokenizer_file(path)
    try:
        return Tokenizer.from_file(str(f))
    except Exception as e:  # tokenizers raises plain Exception subclasses
        raise InputError(f"cannot load tokenizer {f}: {e}") from e


def summary(report: dict[str, Any], out_dir: str) -> str:
    cpt = report.get("chars_per_token")
    line = (f"tokenizer: {report['vocab_size']:,} tokens, trained on {report['trained_docs']:,} "
            f"documents ({report['trained_chars']:,} characters)" + (f" → {out_dir}" if out_dir
                                                                        else ""))
    if cpt is not None:
        line += f"\n  {cpt:.2f} characters per token on {report['heldout_docs']:,} held-back " \
                "documents"
    if "compare" in report and report["compare"]["chars_per_token"] is not None:
        line += f"; {report['compare']['tokenizer']}: {report['compare']['chars_per_token']:.2f}"
    return line


def reusable(out_dir: str, input_hash: str, opts: TokenizerOptions) -> dict[str, Any] | None:
    """The report of a tokenizer already trained on this input with these options."""
    p = Path(out_dir) / REPORT
    if not p.exists() or not (Path(out_dir) / FILE).exists():
        return None
    report = json.loads(p.read_text())
    same = report.get("input_hash") == input_hash and report.get("options") == asdict(opts)
    return report if same and file_hash(Path(out_dir) / FILE) == report.get("sha256") else None
