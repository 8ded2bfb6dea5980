"""`corpus tokenizer train IN OUT` on the engine, so it resumes, is fingerprinted and has a
manifest like every stage, and IN and OUT may be gs:// (any fsspec URL).

Two steps (the BPE itself is corpus/tokens/bpe.py):
1. scan (per input partition, in parallel): the id hashes and content bytes of the documents
   that may be sampled for training (not held back, not empty), kept as
   `_work/scan/<part>.parquet`;
2. train (once, after every partition): the sample's cut from those alone, then the BPE
   trained on the sampled texts streamed from the input, and OUT's files written: tokenizer.json,
   what transformers needs to load OUT, and the report (corpus_tokenizer.json).

The same input and options give the same tokenizer.json bytes, whatever the partitioning or
the number of workers. A finished OUT is up to date (the manifest lists its files).
"""

from __future__ import annotations

import hashlib
import json
import posixpath
from dataclasses import asdict
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from corpus import schema
from corpus.engine import Engine
from corpus.errors import InputError
from corpus.io import MANIFEST, DatasetDir
from corpus.stage import WORK_DIR, MapJob
from corpus.tokens import bpe, checks

STAGE = "tokenizer"
FORMAT = "corpus-tokenizer/1"
SCAN_DIR = f"{WORK_DIR}/scan"


def scan_partition(d: DatasetDir, key: str, held_cut: np.uint64) -> tuple[int, pa.Table]:
    """(rows, the id hashes and content bytes of the partition's documents that may be trained
    on)."""
    rows, found = 0, [(np.zeros(0, np.uint64), np.zeros(0, np.int64))]
    with d.fs.open(d.join(d.part_file(key)), "rb") as f:
        for b in pq.ParquetFile(f).iter_batches(
                bpe.BATCH_ROWS, columns=["id", "repo_name", "path", "content"]):
            rows += b.num_rows
            found.append(bpe.trainable(b, held_cut))
    return rows, pa.table({"hash": pa.array(np.concatenate([h for h, _ in found]), pa.uint64()),
                           "bytes": pa.array(np.concatenate([n for _, n in found]))})


def train_folder(d: DatasetDir, keys: list[str], opts: bpe.TokenizerOptions,
                 cut: np.uint64, compare: str | None = None,
                 ) -> tuple[dict[str, bytes], dict[str, float]]:
    """The tokenizer folder's files (name -> bytes, in writing order) for the documents of `d`
    sampled below `cut`, and the seconds it trained and read (kept out of the files: the same
    input gives the same bytes)."""
    texts, heldout = bpe.split_texts(d, opts, cut)
    tok, counted = bpe.fit(texts, opts)
    seconds = {"train": counted.pop("train_seconds"), "read": counted.pop("read_seconds")}
    if counted["trained_docs"] == 0:
        raise InputError(f"{d.url} holds no documents with content to train on")
    report: dict[str, Any] = {
        "input": d.url, "input_hash": d.content_hash(keys), **counted,
        "heldout_docs": len(heldout), "chars_per_token": bpe.chars_per_token(tok, heldout),
        "keywords": checks.keyword_coverage(tok), "words": checks.word_stats(tok, heldout)}
    if compare:
        other = bpe.load(compare)
        report["compare"] = {"tokenizer": compare,
                             "chars_per_token": bpe.chars_per_token(other, heldout),
                             "keywords": checks.keyword_coverage(other),
                             "words": checks.word_stats(other, heldout)}
    return bpe.folder_files(tok, opts, report), seconds


class TokenizerJob(MapJob):
    """Partitions: the input's (each scanned); `finish`: the training."""

    stage = STAGE
    requires = tuple(schema.Column(c, schema.STRING) for c in ("id", "repo_name", "path",
                                                                "content"))

    def __init__(self, opts: bpe.TokenizerOptions, input: DatasetDir, output: DatasetDir,
                 compare: str | None = None):
        opts.check()
        self.opts, self.compare = opts, compare
        compared = hashlib.sha256(bpe.tokenizer_text(compare).encode()).hexdigest() \
            if compare else None
        super().__init__(input, output, {"format": FORMAT, **asdict(opts),
                                         "compare": compare, "compare_sha256": compared})
        if self.rows_in == 0:  # said here, before any work, rather than by a worker
            raise InputError(f"{input.url} holds no documents to train on (0 rows)")
        self.held_cut = bpe.heldout_cut(opts)

    def run_partition(self, key: str) -> dict[str, Any]:
        rows, t = scan_partition(self.input, key, self.held_cut)
        rel = posixpath.join(SCAN_DIR, f"{key}.parquet")
        self.output.write_parquet(rel, t, t.schema, compression="none")
        return {"rows_in": rows, "rows": rows, "removed": 0, "bytes": 0,
                "trainable": t.num_rows, "files": [rel]}

    def finish(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        """Train on the sample and write the folder; its report goes in the manifest too."""
        scans = [self.output.read_parquet(posixpath.join(SCAN_DIR, f"{k}.parquet"))
                 for k in self.keys]
        scan = pa.concat_tables(scans) if scans else pa.table(
            {"hash": pa.array([], pa.uint64()), "bytes": pa.array([], pa.int64())})
        cut = bpe.sample_cut(scan.column("hash").to_numpy(), scan.column("bytes").to_numpy(),
                             self.opts.sample_docs, self.opts.sample_bytes)
        files, seconds = train_folder(self.input, self.keys, self.opts, cut, self.compare)
        for name, data in files.items():
            self.output._atomic(name, lambda f, data=data: f.write(data))
        return {"tokenizer": {**json.loads(files[bpe.REPORT]), "seconds": seconds}}


def train(input_url: str, out_url: str, opts: bpe.TokenizerOptions,
          compare: str | None = None, engine: Engine | None = None, overwrite: bool = False,
          replace_stale: bool = False) -> dict[str, Any]:
    """Train on the documents of a dataset directory; return the stage's manifest (the
    report is its `tokenizer`). Without `engine`, a local one of one worker (the BPE trains
    in one process anyway)."""
    job = TokenizerJob(opts, DatasetDir(input_url), DatasetDir(out_url), compare)
    out = job.output
    if replace_stale and not out.exists(MANIFEST) and out.exists(bpe.REPORT):
        out.clear()  # a folder an earlier corpus version trained without the engine: ours
    if engine is None:
        with Engine(workers=1, progress=False) as local:
            return local.run(job, overwrite, replace_stale)
    return engine.run(job, overwrite, replace_stale)


# --- the stage's declaration (corpus/registry.py) ---------------------------------------------
KIND = "tokenizer"
OPTIONS = bpe.TokenizerOptions
READS = ("content",)
WRITES: tuple[str, ...] = ()


def run_stage(engine: Engine, opts: bpe.TokenizerOptions, input: DatasetDir, out: DatasetDir,
              where: str, overwrite: bool = False, replace_stale: bool = False,
              ) -> dict[str, Any]:
    return train(input.url, out.url, opts, engine=engine, overwrite=overwrite,
                 replace_stale=replace_stale)
