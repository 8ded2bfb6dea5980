"""bench/pipeline.py's side-by-side figures on one run's documents, one core each: the I/O
floor, raw hashing, the raw encoders, our token stage alone, datatrove's DocumentTokenizer and
the BPE trainer of `tokenizers` fed the stage's sample directly."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq


def _one_core() -> None:
    os.environ["RAYON_NUM_THREADS"] = "1"  # before `tokenizers` starts its pool here
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)


def _timed(fn: Any) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def side_by_side(out: Path) -> dict[str, Any]:
    """The figures, on the `clean` stage's documents of the run under `out`."""
    _one_core()
    parts = sorted((out / "clean" / "data").glob("part-*.parquet"))
    texts = [c for c in pq.read_table(parts, columns=["content"]).column("content").to_pylist()
             if c]
    mb = sum(len(t.encode("utf-8", "surrogatepass")) for t in texts) / 1e6
    tok_json = (out / "tokenizer" / "tokenizer.json").read_text()
    r: dict[str, Any] = {"mb": mb, "docs": len(texts)}
    with tempfile.TemporaryDirectory(prefix="bench-peers-") as tmp:
        work = Path(tmp)

        def io_floor() -> None:
            for i, p in enumerate(parts):
                t = pq.read_table(p, use_threads=False)
                pq.write_table(t, work / f"io-{i}.parquet", compression="zstd")

        r["io"] = mb / _timed(io_floor)
        import xxhash

        r["hash"] = mb / _timed(lambda: [xxhash.xxh3_64_intdigest(t.encode("utf-8",
                                                                         "surrogatepass"))
                                         for t in texts])
        from corpus.tokens import bpe, encoder

        fast = encoder.build(tok_json)
        slow = encoder.build(tok_json, fast=False)
        r["tiktoken"] = mb / _timed(lambda: fast.encode(texts))
        r["tokenizers"] = mb / _timed(lambda: slow.encode(texts))
        r["ours_tokens"] = mb / _ours_tokens(out, work)
        r["datatrove"] = mb / _datatrove(parts, out / "tokenizer" / "tokenizer.json", work)
        report = json.loads((out / "tokenizer" / bpe.REPORT).read_text())
        manifest = json.loads((out / "tokenizer" / "manifest.json").read_text())
        r["stage_train_s"] = manifest["tokenizer"]["seconds"]["train"]
        r["direct_train_s"] = _direct_training(out, report)
    return r


def _ours_tokens(out: Path, work: Path) -> float:
    """Seconds of the token-shard stage alone (tokenize, plan, pack) on one warm worker (a
    first run into another folder imports what the stage needs there, as a pipeline's
    earlier stages would have)."""
    from corpus.engine import Engine
    from corpus.io import DatasetDir
    from corpus.tokens.shards import TokenShardJob, TokenShardOptions

    with Engine(workers=1, progress=False) as e:
        for name in ("warm-up", "ours"):
            job = TokenShardJob(TokenShardOptions(str(out / "tokenizer"), seq_len=1024),
                                DatasetDir(str(out / "clean")), DatasetDir(str(work / name)))
            seconds = _timed(lambda job=job: e.run(job))
        return seconds


def _datatrove(parts: list[Path], tokenizer: Path, work: Path) -> float:
    """Seconds of datatrove's DocumentTokenizer over the same Parquet files, one task."""
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.readers import ParquetReader
    from datatrove.pipeline.tokens import DocumentTokenizer

    src = work / "dt-in"
    src.mkdir()
    for p in parts:
        shutil.copy(p, src / p.name)
    pipeline = [ParquetReader(str(src), text_key="content", id_key="id", read_metadata=False),
                DocumentTokenizer(str(work / "dt-out"), tokenizer_name_or_path=str(tokenizer),
                                  eos_token="<|endoftext|>", shuffle_documents=False)]
    ex = LocalPipelineExecutor(pipeline, tasks=1, workers=1, logging_dir=str(work / "dt-log"))
    return _timed(ex.run)


def _direct_training(out: Path, report: dict[str, Any]) -> float | None:
    """Seconds of `tokenizers`' own trainer fed the stage's sample (the same documents, in
    memory) with the same options."""
    from corpus.io import DatasetDir
    from corpus.tokens import bpe

    opts = bpe.TokenizerOptions(**report["options"])
    texts, _ = bpe.split_texts(DatasetDir(str(out / "clean")), opts)
    sample = list(texts)
    tok, trainer = bpe.build(opts.vocab_size, opts.min_frequency)
    return _timed(lambda: tok.train_from_iterator(sample, trainer=trainer))


def report(r: dict[str, Any]) -> None:
    print(f"\nside by side on the 1x documents ({r['docs']:,} documents, {r['mb']:.1f} MB), one "
          "core each, MB/s:")
    rows = [("I/O floor (pyarrow read + write, zstd)", r["io"]),
            ("raw hashing (xxh3-64)", r["hash"]),
            ("raw encoder: tiktoken (our exact path)", r["tiktoken"]),
            ("raw encoder: tokenizers encode_batch_fast", r["tokenizers"]),
            ("corpus token-shard stage (tokenize, plan, pack)", r["ours_tokens"]),
            ("datatrove DocumentTokenizer (baseline)", r["datatrove"])]
    for name, rate in rows:
        print(f"  {name:<52}{rate:>8.2f}")
    print(f"  corpus token stage / datatrove: {r['ours_tokens'] / r['datatrove']:.2f}x; "
          f"tiktoken / tokenizers: {r['tiktoken'] / r['tokenizers']:.2f}x")
    if r.get("stage_train_s") is not None and r.get("direct_train_s"):
        print(f"  BPE training: the stage {r['stage_train_s']:.1f} s, tokenizers' trainer fed "
              f"the same sample {r['direct_train_s']:.1f} s")
