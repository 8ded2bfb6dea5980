"""Benchmark: training tokens/s of `corpus train` against CodeParrot's loop (the seeds' way).

The tiny GPT-2 of pipelines/train/tiny.toml (2 layers, 128 wide, 4 heads, context 256) on 2 CPU
ranks, OMP_NUM_THREADS=1 per rank, on the same real documents (the Python files of a few
installed distributions, extracted with CodeParrot's query, `queries/github_python.sql`), the
same BPE (vocabulary 8192) and the same batch: the recipe's global batch (tiny.toml: 8
sequences of 256 tokens per optimizer step; --global-batch to change it), split by `corpus
train` into micro-batch × accumulation × 2 ranks, which the CodeParrot side then runs as
train_batch_size × gradient_accumulation_steps × 2 processes. In one run:
  corpus      the CLI: `corpus tokenizer train`, `corpus shard --format tokens --seq-len 256`
              (tokenized once, before training; its time is printed, not counted), then
              `corpus train --model pipelines/train/tiny.toml --deepspeed
              pipelines/train/zero2.json --nproc-per-node 2 --max-steps N` (torchrun, DeepSpeed
              ZeRO-2 on gloo, memory-mapped token shards); tokens/s from its log.jsonl
  codeparrot  bench/_codeparrot_loop.py, a minimal re-implementation of CodeParrot's
              codeparrot_training.py (see its docstring for what is kept and dropped):
              accelerate's DDP on gloo, a streaming `datasets` Parquet dataset shuffled in a
              10,000-document buffer, `ConstantLengthDataset` tokenizing on the fly (batches
              dispatched from rank 0), AdamW with weight-decay groups, cosine with warmup,
              `model(batch, labels=batch, use_cache=False).loss`; the same tokenizer folder,
              the same GPT2Config as the corpus run (read from its config.json), the documents
              of the token shards' train split (validation: its validation split), evaluation
              and saving at the recipe's intervals.
              Launched with `accelerate launch --multi_gpu --num_processes 2` and
              ACCELERATE_USE_CPU=true: accelerate's `--cpu` starts one process unless it is
              given an MPI host file (no mpirun here), while `--multi_gpu` runs its
              torch.distributed launcher and the Accelerator, told to use the CPU, takes
              MULTI_CPU with gloo.
Per side: tokens/s of each optimizer step (rank 0's clock; evaluation and checkpoint time are
in no step, on both sides), the median over the steps after --warmup (the headline), their
mean (tokens / time over the same steps), the mean over every step from the first (where
CodeParrot's side fills its shuffle buffer and tokenizes its first ~1M characters), and the
wall time of the launch command (imports, rendezvous, checks, evaluations and checkpoints
included). ConstantLengthDataset tokenizes ~0.94 M characters at a time (about 115 steps of
8 sequences here): the default 120 steps see one refill after the first. Ratio = corpus /
codeparrot. The sides run one after the other, corpus first; load average is recorded around
each.

    .venv/bin/python bench/train.py [--steps 120] [--warmup 5] [--quick] [--work DIR]
                                    [--global-batch N] [--micro-batch N]
                                    [--deepspeed pipelines/train/zero1.json] [--summary FILE]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _summary
from _train_measure import figures, run, sh

from corpus.train.launch import free_port

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
MODEL = ROOT / "pipelines" / "train" / "tiny.toml"
ZERO = ROOT / "pipelines" / "train" / "zero2.json"
LOOP = Path(__file__).resolve().parent / "_codeparrot_loop.py"
SEQ_LEN = 256
VOCAB = 8192
NPROC = 2
#: real Python code: a few pure-Python distributions of this environment (~12 MB of .py)
PACKAGES = ("accelerate", "datasets", "huggingface*", "fsspec", "requests", "urllib3",
            "click", "jinja2")
VERSIONS = ("torch", "deepspeed", "transformers", "accelerate", "datasets", "tokenizers")


def prepare(work: Path) -> dict[str, Any]:
    """Documents, tokenizer and token shards through the CLI (each up to date on a rerun)."""
    corpus = str(BIN / "corpus")
    logs = work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    t = {}
    inc = [a for p in PACKAGES for a in ("--include", p)]
    t["tables"] = sh([corpus, "github-tables", "--site-packages", *inc, "--out",
                      str(work / "tables"), "--workers", "2", "--quiet"], logs / "tables.log")
    t["extract"] = sh([corpus, "extract", "--engine", "duckdb", "--tables", str(work / "tables"),
                       "--query", str(ROOT / "queries" / "github_python.sql"), "--out",
                       str(work / "docs"), "--quiet"], logs / "extract.log")
    t["tokenizer"] = sh([corpus, "tokenizer", "train", str(work / "docs"), str(work / "tok"),
                         "--vocab-size", str(VOCAB), "--sample-docs", "3000"],
                        logs / "tokenizer.log")
    t["shard"] = sh([corpus, "shard", str(work / "docs"), str(work / "tokens"), "--format",
                     "tokens", "--tokenizer", str(work / "tok"), "--seq-len", str(SEQ_LEN),
                     "--workers", "2", "--quiet"], logs / "shard.log")
    docs = pq.read_table(sorted((work / "docs").glob("data/part-*.parquet")),
                         columns=["id", "repo_name", "path", "content"])
    manifest = json.loads((work / "tokens" / "manifest.json").read_text())
    written = [r for r in manifest.get("runs", []) if r.get("computed")]
    return {"times": t, "documents": docs.num_rows,
            "shard_run": written[0] if written else None,
            "content_mb": sum(len(c.as_py() or "") for c in docs.column("content")) / 1e6,
            "tokens": manifest["tokens"]}


def split_files(work: Path) -> dict[str, list[str]]:
    """CodeParrot's codeparrot-clean-train / -valid: the documents of the token shards' train
    and validation splits (by id, repo, path, from their .docs.parquet), as Parquet files."""
    docs = pq.read_table(sorted((work / "docs").glob("data/part-*.parquet")),
                         columns=["id", "repo_name", "path", "content"])
    out: dict[str, list[str]] = {}
    for split in ("train", "validation"):
        index = sorted((work / "tokens").glob(f"{split}-*.docs.parquet"))
        if not index:
            out[split] = []
            continue
        keys = pq.read_table(index, columns=["id", "repo_name", "path"])
        keys = keys.append_column("_in", pa.array([True] * keys.num_rows))
        table = docs.join(keys, ["id", "repo_name", "path"], join_type="inner")
        table = table.drop_columns(["_in"])
        folder = work / "codeparrot" / split
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        half = -(-table.num_rows // 2)  # two files, as a Hub dataset of several shards
        out[split] = []
        for i in range(2):
            part = table.slice(i * half, half)
            if part.num_rows:
                path = folder / f"data-{i:05d}.parquet"
                pq.write_table(part, path)
                out[split].append(str(path))
    return out


def corpus_side(work: Path, tag: str, steps: int, global_batch: int | None,
                micro: int | None, zero: Path) -> dict[str, Any]:
    out = work / f"run-corpus-{tag}"
    shutil.rmtree(out, ignore_errors=True)  # an existing run would resume
    cmd = [str(BIN / "corpus"), "train", "--data", str(work / "tokens"), "--model", str(MODEL),
           "--deepspeed", str(zero), "--out", str(out), "--nproc-per-node", str(NPROC),
           "--max-steps", str(steps), "--tokenizer", str(work / "tok")]
    if global_batch:
        cmd += ["--global-batch", str(global_batch)]
    if micro:
        cmd += ["--micro-batch", str(micro)]
    res = run(cmd, work / "logs" / f"corpus-train-{tag}.log", {"OMP_NUM_THREADS": "1"})
    conf = json.loads((out / "config.json").read_text())
    events = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines() if x.strip()]
    start = next(e for e in events if e["event"] == "start")  # the batch it derived
    return {**res, "config": conf, "log": out / "log.jsonl", "start": start}


def codeparrot_side(work: Path, tag: str, steps: int, micro: int, accum: int,
                    conf: dict[str, Any], recipe: dict[str, Any],
                    files: dict[str, list[str]]) -> dict[str, Any]:
    from transformers import GPT2Config

    model_dir = work / "codeparrot" / "model"
    shutil.rmtree(model_dir, ignore_errors=True)
    m = conf["model"]
    GPT2Config(vocab_size=conf["vocab_size"], n_positions=m["n_positions"], n_embd=m["n_embd"],
               n_layer=m["n_layer"], n_head=m["n_head"], resid_pdrop=m["dropout"],
               embd_pdrop=m["dropout"], attn_pdrop=m["dropout"],
               bos_token_id=int(conf["tokens"]["eos_id"]),
               eos_token_id=int(conf["tokens"]["eos_id"])).save_pretrained(model_dir)
    for f in (work / "tok").glob("*.json"):  # initialize_model.py saves the tokenizer beside
        shutil.copy(f, model_dir / f.name)
    save = work / f"run-codeparrot-{tag}"
    shutil.rmtree(save, ignore_errors=True)
    save.mkdir(parents=True)
    log = save / "steps.jsonl"
    train = recipe["train"]
    cmd = [str(BIN / "accelerate"), "launch", "--multi_gpu", "--num_processes", str(NPROC),
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "--main_process_port", str(free_port()), str(LOOP),
           "--model-dir", str(model_dir), "--train-files", *files["train"],
           "--save-dir", str(save), "--log", str(log),
           "--train-batch-size", str(micro), "--valid-batch-size", str(micro),
           "--gradient-accumulation-steps", str(accum), "--seq-length", str(SEQ_LEN),
           "--learning-rate", str(train["lr"]), "--weight-decay", str(train["weight_decay"]),
           "--num-warmup-steps", str(train["warmup_steps"]),
           "--max-train-steps", str(train["steps"]), "--stop-after", str(steps),
           "--seed", str(train["seed"]), "--max-eval-steps", str(train["eval_batches"]),
           "--eval-interval", str(train["eval_interval"]),
           "--save-interval", str(train["save_interval"])]
    if files["validation"]:
        cmd += ["--valid-files", *files["validation"]]
    res = run(cmd, work / "logs" / f"codeparrot-train-{tag}.log",
              {"OMP_NUM_THREADS": "1", "ACCELERATE_USE_CPU": "true", "HF_HUB_OFFLINE": "1",
               "HF_DATASETS_OFFLINE": "1"})
    tokens_per_step = micro * accum * NPROC * SEQ_LEN
    lines = [json.loads(x) for x in log.read_text().splitlines() if x.strip()]
    for e in lines:  # the same fields as corpus train's log
        if e["event"] == "train":
            e["tokens"] = e["step"] * tokens_per_step
    log.write_text("".join(json.dumps(e) + "\n" for e in lines))
    start = next(e for e in lines if e["event"] == "start")
    return {**res, "log": log, "start": start}


def versions() -> str:
    out = [f"Python {platform.python_version()}"]
    for name in VERSIONS:
        try:
            out.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            out.append(f"{name} (not installed)")
    return ", ".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=120,
                    help="optimizer steps per side and round (3–4 minutes in all on 2 "
                         "quiet cores)")
    ap.add_argument("--warmup", type=int, default=5, help="first steps left out of the figures")
    ap.add_argument("--quick", action="store_true", help="15 steps, a warmup of 3")
    ap.add_argument("--rounds", type=int, default=1,
                    help="runs per side, in the order corpus, codeparrot, codeparrot, corpus, "
                         "… (so that a load that rises or falls weighs on both)")
    ap.add_argument("--global-batch", type=int, default=None,
                    help="sequences per optimizer step (default: the recipe's)")
    ap.add_argument("--micro-batch", type=int, default=None,
                    help="sequences per rank and forward pass (default: the recipe's)")
    ap.add_argument("--deepspeed", default=str(ZERO),
                    help="the corpus side's DeepSpeed JSON (default: pipelines/train/zero2.json)")
    ap.add_argument("--work", help="keep documents, shards and runs here (default: temporary)")
    _summary.add_option(ap)
    args = ap.parse_args()
    if args.quick:
        args.steps, args.warmup = 15, 3
    recipe = tomllib.loads(MODEL.read_text())
    if args.steps <= args.warmup:
        sys.exit(f"error: --steps {args.steps} must exceed --warmup {args.warmup}")
    if args.steps > recipe["train"]["steps"]:
        sys.exit(f"error: --steps {args.steps} is past the recipe's schedule "
                 f"({recipe['train']['steps']} steps, {MODEL.name})")
    if args.rounds < 1:
        sys.exit("error: --rounds must be at least 1")
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="corpus-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    ours: list[dict[str, Any]] = []
    theirs: list[dict[str, Any]] = []
    try:
        t0 = time.perf_counter()
        prep = prepare(work)
        files = split_files(work)
        tok = prep["tokens"]
        print(f"documents: {prep['documents']:,} Python files of {', '.join(PACKAGES)} "
              f"({prep['content_mb']:.1f} MB); token shards: "
              f"{tok['splits']['train']['tokens']:,} train tokens "
              f"({len(files['train'])} + {len(files['validation'])} Parquet files for "
              f"CodeParrot's side)")
        print("prepare (s, this run; a step whose output was complete says up to date): "
              + ", ".join(f"{k} {v:.1f}" for k, v in prep["times"].items()))
        if prep["shard_run"]:  # the run that wrote the shards, from their manifest
            r = prep["shard_run"]
            print(f"corpus shard --format tokens, when written: {r['seconds']:.1f} s on "
                  f"{r['workers']} workers (tokenize step {r['tokenize']['seconds']:.1f} s, "
                  f"{prep['content_mb'] / r['tokenize']['seconds']:.2f} MB/s of content): "
                  f"paid once, before training, not in the corpus side's figures")
        zero = Path(args.deepspeed)
        micro = accum = 0
        for i in range(args.rounds):
            order = ("corpus", "codeparrot") if i % 2 == 0 else ("codeparrot", "corpus")
            for side in order:
                if side == "corpus":
                    ours.append(corpus_side(work, str(i), args.steps, args.global_batch,
                                            args.micro_batch, zero))
                    micro, accum = ours[0]["start"]["micro_batch"], ours[0]["start"]["grad_accum"]
                else:
                    theirs.append(codeparrot_side(work, str(i), args.steps, micro, accum,
                                                  ours[0]["config"], recipe, files))
                last = (ours if side == "corpus" else theirs)[-1]
                print(f"round {i + 1} {side}: {last['wall']:.1f} s, load average "
                      f"{last['load0']:.2f} -> {last['load1']:.2f}", flush=True)
        a = figures(ours, args.warmup)
        b = figures(theirs, args.warmup)
        total = time.perf_counter() - t0
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    per_step = micro * accum * NPROC * SEQ_LEN
    if per_step != a["tokens_per_step"]:
        sys.exit(f"error: corpus train logged {a['tokens_per_step']} tokens per step, "
                 f"the CodeParrot side ran {per_step}")
    conf, cp = ours[0]["config"], theirs[0]["start"]
    print(f"\nmodel: {MODEL.name}, {conf['params']:,} parameters (CodeParrot side "
          f"{cp['params']:,}), vocabulary {conf['vocab_size']}; batch {micro} × {accum} "
          f"accumulation × {NPROC} ranks × {SEQ_LEN} tokens = {per_step:,} tokens per step; "
          f"{args.steps} steps × {args.rounds} round(s) per side, figures over steps "
          f"{args.warmup + 1}–{args.steps}")
    print(f"CodeParrot side: {cp['world_size']} processes, {cp['distributed_type']}, "
          f"backend {cp['backend']}")
    print(f"machine: {os.cpu_count()} cores, {versions()}")
    trained = args.steps * per_step
    for name, runs, fig in ((f"corpus train (DeepSpeed {zero.stem}, torchrun)", ours, a),
                            ("CodeParrot loop (accelerate DDP)", theirs, b)):
        walls = ", ".join(f"{r['wall']:.1f}" for r in runs)
        cpu = sum(r["cpu"] for r in runs) / len(runs)
        loads = ", ".join(f"{r['load0']:.2f}->{r['load1']:.2f}" for r in runs)
        print(f"{name}:\n  median {fig['median']:,.0f} tokens/s (rounds: "
              + ", ".join(f"{x:,.0f}" for x in fig["rounds"])
              + f"), mean {fig['mean']:,.0f}, min {fig['min']:,.0f}, max {fig['max']:,.0f}; "
              f"from the first step: mean {fig['mean_all']:,.0f} (first step "
              + ", ".join(f"{x:,.0f}" for x in fig["first"]) + ")\n"
              "  steady steps: " + ", ".join(f"{x:,.0f}" for x in fig["per_cpu_s"] if x)
              + f" tokens per CPU-second (both ranks' CPU); wall {walls} s; whole launch: CPU "
              f"{cpu:.1f} s per run ({trained / cpu:,.0f} tokens per CPU-second, start-up "
              f"included); loss "
              + ", ".join(f"{x:.3f} -> {y:.3f}" for x, y in fig["loss"])
              + f"; load average {loads}")
    wall_a = sum(r["wall"] for r in ours) / len(ours)
    wall_b = sum(r["wall"] for r in theirs) / len(theirs)
    cpu_a = sum(r["cpu"] for r in ours) / len(ours)
    cpu_b = sum(r["cpu"] for r in theirs) / len(theirs)
    pa_ = [x for x in a["per_cpu_s"] if x]
    pb_ = [x for x in b["per_cpu_s"] if x]
    steady = (statistics.mean(pa_) / statistics.mean(pb_)) if pa_ and pb_ else float("nan")
    print(f"ratio corpus / codeparrot: median {a['median'] / b['median']:.2f}x, mean "
          f"{a['mean'] / b['mean']:.2f}x, mean from the first step "
          f"{a['mean_all'] / b['mean_all']:.2f}x, tokens per CPU-second of the steady steps "
          f"{steady:.2f}x; wall {wall_b / wall_a:.2f}x and CPU "
          f"{cpu_b / cpu_a:.2f}x (codeparrot / corpus); {total:.0f} s in all")
    print("load average at the end (1, 5, 15 min): "
          + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    rows = [
        _summary.row("train", f"tiny GPT-2, 2 CPU ranks, median tokens/s ({args.steps} steps)",
                     a["median"], b["median"], "CodeParrot codeparrot_training.py loop "
                     "(accelerate, ConstantLengthDataset)", "tokens/s"),
        _summary.row("train", "tiny GPT-2, 2 CPU ranks, wall time of the launch (s)",
                     wall_a, wall_b, "the same", "s", ratio=wall_b / wall_a),
    ]
    _summary.write(args.summary, rows)


if __name__ == "__main__":
    main()
