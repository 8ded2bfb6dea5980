"""Benchmark: the training loader over token shards against tokenizing on the fly (CodeParrot).

On the same real documents (a sample of every text file of PolyCoder's languages in
site-packages) and the same BPE (trained on them, vocabulary 8192), on one core
(sched_setaffinity, torch.set_num_threads(1), RAYON_NUM_THREADS=1, TOKENIZERS_PARALLELISM=false),
one full epoch of the train split per case, batches of 8 x (seq_len + 1) tokens:
  ours      corpus.train.data.TokenShards over `corpus shard --format tokens` output, iterated
            in the main process (num_workers 0)
  baseline  CodeParrot's codeparrot_training.py: datasets.load_dataset("parquet", streaming=True)
            over the Hub layout of the same documents (`corpus push`'s Parquet shards), shuffled
            in a 10,000-document buffer, a ConstantLengthDataset packer tokenizing with
            transformers' PreTrainedTokenizerFast, a DataLoader of batch 8 (capped in seconds)
Each case twice in this process: round 1 cold (first pass over freshly opened files, which are
in the page cache from being written), round 2 warm (ours: the next epoch of the same stream).
Tokens counted = batches handed out x 8 x (seq_len + 1). Target: ours >= 20x the baseline's
tokens/s. Also: the tokenize step of `corpus shard --format tokens` on a 1-worker
engine (MB/s of content per core), and, with --train-log RUN_DIR/log.jsonl, the median training
tokens/s of a run.

    .venv/bin/python bench/loader.py [--work DIR] [--mb 32] [--train-log RUN_DIR/log.jsonl]
                                     [--summary FILE]
"""

from __future__ import annotations

import os

# before anything imports tokenizers: one thread for encoding and training alike
os.environ["RAYON_NUM_THREADS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

import argparse
import datetime
import itertools
import json
import math
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import torch
from torch.utils.data import DataLoader, IterableDataset

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _summary
from _corpus import documents

from corpus.engine import Engine
from corpus.io import DatasetDir
from corpus.keys import row_hash
from corpus.publish.layout import LayoutOptions, build
from corpus.splits import SplitRule
from corpus.tokens import bpe
from corpus.tokens.shards import TokenShardJob, TokenShardOptions
from corpus.tokens.tokenizer_job import train as train_tokenizer
from corpus.train.data import TokenShards

SEQ_LEN = 1024
BATCH = 8
VOCAB = 8192
SHUFFLE_BUFFER = 10_000  # codeparrot's arguments.py default


class ConstantLengthDataset(IterableDataset):
    """CodeParrot's packer: fill a buffer with texts up to a character budget, tokenize it,
    join the documents with the separator and cut sequences of `seq_length` tokens (what is
    left of a buffer after the last whole sequence is dropped)."""

    def __init__(self, tokenizer: Any, dataset: Any, seq_length: int,
                 num_of_sequences: int = 1024, chars_per_token: float = 3.6):
        self.tokenizer = tokenizer
        self.concat_token_id = tokenizer.bos_token_id
        self.dataset = dataset
        self.seq_length = seq_length
        self.max_buffer_size = seq_length * chars_per_token * num_of_sequences

    def __iter__(self) -> Iterator[torch.Tensor]:
        iterator = iter(self.dataset)
        more = True
        while more:
            buffer: list[str] = []
            size = 0
            while size < self.max_buffer_size:
                try:
                    buffer.append(next(iterator)["content"])
                except StopIteration:
                    more = False
                    break
                size += len(buffer[-1])
            if not buffer:
                return
            ids: list[int] = []
            for doc in self.tokenizer(buffer, truncation=False)["input_ids"]:
                ids.extend([*doc, self.concat_token_id])
            for i in range(0, len(ids) - self.seq_length + 1, self.seq_length):
                yield torch.tensor(ids[i:i + self.seq_length])


def sample(src: Path, out: Path, mb: float, parts: int = 4) -> int:
    """A sample of about `mb` MB of content (documents chosen by a hash of their id), as a
    dataset directory of `parts` partitions: small enough for the baseline's full epoch."""
    files = sorted(src.glob("data/part-*.parquet"))
    table = pq.read_table(files)
    order = np.argsort(row_hash(table, ["id", "repo_name", "path"], "bench-loader"))
    size = pc.binary_length(table.column("content")).to_numpy(zero_copy_only=False)
    keep = order[np.cumsum(size[order]) <= mb * 1e6]
    table = table.take(np.sort(keep))
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    step = math.ceil(table.num_rows / parts)
    for i in range(parts):
        pq.write_table(table.slice(i * step, step), out / f"part-{i:05d}.parquet",
                       compression="zstd")
    return table.num_rows


def pin_one_core() -> str:
    torch.set_num_threads(1)
    if hasattr(os, "sched_setaffinity"):
        cpu = max(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        return f"cpu {cpu}"
    return "no sched_setaffinity here: not pinned"


def prepare(work: Path, mb: float) -> dict[str, Any]:
    """Documents -> sample -> tokenizer -> token shards (timed) and the Hub's Parquet layout."""
    docs, table = documents(work)
    n_all = table.num_rows
    del table
    where = pin_one_core()
    rows = sample(docs, work / "sample", mb)
    url = str(work / "sample")
    tok_dir = work / "tokenizer"
    opts = bpe.TokenizerOptions(vocab_size=VOCAB, sample_docs=3000)
    with Engine(workers=1, progress=False) as engine:
        train_tokenizer(url, str(tok_dir), opts, engine=engine)  # up to date when done before
        job = TokenShardJob(TokenShardOptions(tokenizer=str(tok_dir), seq_len=SEQ_LEN,
                                              valid_fraction=0.01),
                            DatasetDir(url), DatasetDir(str(work / "tokens")))
        manifest = engine.run(job, replace_stale=True)
    layout = build(url, str(work / "parquet"), LayoutOptions(SplitRule(0.01)))
    content = sum(int(pc.sum(pc.binary_length(pq.read_table(p, columns=["content"])
                                              .column("content"))).as_py() or 0)
                  for p in sorted((work / "sample").glob("part-*.parquet")))
    return {"pinned": where, "documents": n_all, "rows": rows,
            "manifest": manifest, "content_bytes": content,
            "parquet": [str(work / "parquet" / f) for f in layout.splits["train"]["files"]],
            "parquet_rows": layout.splits["train"]["rows"], "tokenizer": tok_dir}


def ours(ds: TokenShards) -> tuple[int, float]:
    """One epoch's worth of batches off the infinite stream: (tokens, seconds)."""
    n = math.ceil(ds.sequences / BATCH)
    rows = 0
    t0 = time.perf_counter()
    for batch in itertools.islice(iter(ds), n):
        rows += batch.shape[0]
    return rows * (ds.seq_len + 1), time.perf_counter() - t0


def baseline(files: list[str], tokenizer_dir: Path, cap_s: float) -> tuple[int, float, bool]:
    """CodeParrot's loader over the Parquet shards: (tokens, seconds, stopped at the cap)."""
    import transformers
    from datasets import load_dataset
    from transformers import PreTrainedTokenizerFast

    transformers.logging.set_verbosity_error()  # "sequence longer than model_max_length"
    tok = PreTrainedTokenizerFast(tokenizer_file=str(tokenizer_dir / bpe.FILE),
                                  bos_token=bpe.EOT, eos_token=bpe.EOT)
    stream = load_dataset("parquet", data_files=files, split="train", streaming=True)
    stream = stream.shuffle(buffer_size=SHUFFLE_BUFFER, seed=0)
    loader = DataLoader(ConstantLengthDataset(tok, stream, SEQ_LEN + 1), batch_size=BATCH)
    rows = 0
    capped = False
    t0 = time.perf_counter()
    for batch in loader:
        rows += batch.shape[0]
        if time.perf_counter() - t0 > cap_s:
            capped = True
            break
    return rows * (SEQ_LEN + 1), time.perf_counter() - t0, capped


def train_log(path: Path) -> str:
    """The median tokens/s of a training run's logged steps (the first ones included)."""
    if not path.exists():
        return f"no training log at {path}: skipped"
    steps, start = [], {}
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if rec.get("event") == "start":
            start = rec
        if rec.get("event") == "train" and rec.get("tokens_per_s") is not None:
            steps.append(rec)
    if not steps:
        return f"{path}: no train events"
    tps = statistics.median(float(r["tokens_per_s"]) for r in steps)
    shape = ", ".join(f"{k} {start[k]:,}" for k in ("params", "micro_batch", "seq_len",
                                                    "world_size") if k in start)
    return (f"CPU training, tiny model ({path}{'; ' + shape if shape else ''}): median "
            f"{tps:,.0f} tokens/s over {len(steps)} logged steps; loss {steps[0].get('loss')} at "
            f"step {steps[0].get('step')} -> {steps[-1].get('loss')} at step "
            f"{steps[-1].get('step')}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", help="keep the data here (default: a temporary folder)")
    ap.add_argument("--mb", type=float, default=32, help="MB of content to sample")
    ap.add_argument("--baseline-seconds", type=float, default=60,
                    help="stop the baseline's epoch after this long (checked per batch)")
    ap.add_argument("--train-log", help="RUN_DIR/log.jsonl of a training run")
    _summary.add_option(ap)
    args = ap.parse_args()
    started = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="corpus-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    os.environ["HF_HOME"] = str(work / "hf")
    os.environ["HF_DATASETS_CACHE"] = str(work / "hf" / "datasets")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        p = prepare(work, args.mb)
        t0 = time.perf_counter()
        ds = TokenShards(str(work / "tokens"), batch_size=BATCH, seed=0)
        open_s = time.perf_counter() - t0
        rounds = [(ours(ds), baseline(p["parquet"], p["tokenizer"], args.baseline_seconds))
                  for _ in range(2)]
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)

    m = p["manifest"]
    train = m["tokens"]["splits"]["train"]
    mbs = p["content_bytes"] / 1e6
    print(f"{p['rows']:,} documents ({mbs:.1f} MB of content) sampled from "
          f"{p['documents']:,}; one core ({p['pinned']}); batch {BATCH} x {SEQ_LEN + 1} tokens")
    print(f"train split: ours {ds.sequences:,} sequences ({train['tokens']:,} tokens of "
          f"{train['documents']:,} non-empty documents + EOS, {ds.sequences * (SEQ_LEN + 1):,} "
          f"with the last row's padding); baseline {p['parquet_rows']:,} documents in "
          f"{len(p['parquet'])} Parquet file(s); TokenShards opened (sha256 checked) in "
          f"{open_s:.2f} s")
    print(f"{'round':<7}{'case':<48}{'tokens':>13}{'seconds':>9}{'tokens/s':>13}{'x base':>9}")
    capped = False
    headline = []
    for r, ((a_tok, a_s), (b_tok, b_s, cap)) in enumerate(rounds, 1):
        capped |= cap
        base = b_tok / b_s
        label = "cold" if r == 1 else "warm"
        headline.append(_summary.row(
            "loader", f"TokenShards tokens/s, 1 core, epoch {r} ({label})", a_tok / a_s, base,
            "HF datasets streaming + on-the-fly tokenization (CodeParrot)"
            + (f", capped at {args.baseline_seconds:.0f} s" if cap else ""), "tokens/s",
            ">= 20x"))
        for case, tok, s in (("ours: TokenShards, main process", a_tok, a_s),
                             ("baseline: datasets streaming + tokenize + pack"
                              + (" *" if cap else ""), b_tok, b_s)):
            print(f"{r} {label:<5}{case:<48}{tok:>13,}{s:>9.2f}{tok / s:>13,.0f}"
                  f"{tok / s / base:>9.1f}")
    print("baseline tokenizer: transformers.PreTrainedTokenizerFast(tokenizer_file=...), "
          "the same tokenizer.json; tokens counted = rows handed out x (seq_len + 1); "
          "target: ours >= 20x")
    if capped:
        print(f"* stopped after {args.baseline_seconds:.0f} s, before the end of the epoch: "
              "its rate is over the rows it handed out until then (made a buffer of "
              "~3.7 M characters at a time, after filling the shuffle buffer)")

    run = m["runs"][-1]
    tok_s = run["tokenize"]["seconds"]
    earlier = datetime.datetime.fromisoformat(run["started"]) < started
    print(f"corpus shard --format tokens, 1-worker engine: tokenize step {tok_s:.1f} s for "
          f"{mbs:.1f} MB of content = {mbs / tok_s:.2f} MB/s per core "
          f"({run['plan']['tokens'] / tok_s / 1e6:.2f} M tokens/s); whole stage "
          f"{run['seconds']:.1f} s"
          + (f" (shards reused from --work: the run of {run['started']})" if earlier else ""))
    if args.train_log:
        print(train_log(Path(args.train_log)))
    headline.append(_summary.row(
        "loader", "corpus shard --format tokens: tokenize step, MB/s per core"
        + (" (reused shards)" if earlier else ""), mbs / tok_s, None, "none (no peer measured)",
        "MB/s"))
    _summary.write(args.summary, headline)


if __name__ == "__main__":
    main()
