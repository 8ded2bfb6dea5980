"""How `corpus train` starts: under a launcher, or on its own.

- Under `torchrun`, `deepspeed` (it appends --local_rank), Slurm's srun with the variables set,
  …: RANK / WORLD_SIZE are in the environment, and each process runs the loop.
- `corpus train --nproc-per-node N` on one machine: re-executes itself under torchrun.
- `corpus train` alone: one process, with the rendezvous variables set here (DeepSpeed would
  otherwise look for MPI).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any

import click
from pydantic import Field

from corpus.errors import ConfigError, CorpusError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _argv(args: dict[str, Any]) -> list[str]:
    out = []
    for k, v in args.items():
        if v is None:
            continue
        flag = f"--{k.replace('_', '-')}"
        if isinstance(v, bool):
            out.append(flag if v else f"--no-{k.replace('_', '-')}")
        else:
            out += [flag, str(v)]
    return out


def precheck(args: Any, world_size: int) -> None:
    """What can be refused before any process starts: the recipe, its global batch over this
    many ranks, the --init folder's architecture. One error line instead of one per rank."""
    from corpus.train import batch, config

    _, train_cfg = config.load(args.model)
    global_batch = args.global_batch or train_cfg.global_batch
    if global_batch is not None:
        batch.plan(global_batch, world_size, 1, args.micro_batch or train_cfg.micro_batch)
    if args.init:
        from corpus.train.models import init_config

        init_config(args.init)


def run(args: Any, nproc_per_node: int = 1) -> dict[str, Any] | None:
    """Train in this process, or re-launch under torchrun for several processes."""
    if "RANK" not in os.environ:
        precheck(args, nproc_per_node)
    if nproc_per_node > 1 and "RANK" not in os.environ:
        cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc_per_node}",
               "--master_addr=127.0.0.1", f"--master_port={free_port()}", "-m", "corpus.train",
               *_argv(asdict(args))]
        rc = subprocess.call(cmd)
        if rc:
            raise CorpusError(f"training failed (torchrun exited with {rc}); see the output above")
        return None
    if "RANK" not in os.environ:
        os.environ.update(RANK="0", WORLD_SIZE="1", LOCAL_RANK="0", LOCAL_WORLD_SIZE="1",
                          MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()))
    if int(os.environ.get("LOCAL_WORLD_SIZE", os.environ.get("WORLD_SIZE", 1))) > 1 and \
            "OMP_NUM_THREADS" not in os.environ:
        os.environ["OMP_NUM_THREADS"] = "1"  # the deepspeed launcher leaves it unset: 3× slower
    try:
        import torch

        if "DS_ACCELERATOR" not in os.environ and not torch.cuda.is_available():
            os.environ["DS_ACCELERATOR"] = "cpu"  # what DeepSpeed would pick, without a warning
        import deepspeed  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as e:
        raise ConfigError(f"training needs the train extra (pip install -e '.[train]'): {e}") \
            from e
    if os.environ.get("OMP_NUM_THREADS"):
        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    from corpus.train.loop import train

    try:
        return train(args)
    finally:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def options(f: Any) -> Any:
    """The options of `corpus train` and `python -m corpus.train`."""
    opts = [
        click.option("--data", required=True, metavar="TOKENS",
                     help="Token shard folder (corpus shard --format tokens)."),
        click.option("--model", required=True, metavar="CONFIG.toml",
                     help="Model and recipe: pipelines/train/tiny.toml, codeparrot-small.toml, "
                     "polycoder-160m.toml, …"),
        click.option("--deepspeed", "ds", required=True, metavar="CONFIG.json",
                     help="DeepSpeed config: pipelines/train/zero1.json, zero2.json, zero3.json."),
        click.option("--out", required=True, metavar="RUN_DIR",
                     help="Checkpoints and logs; an existing run resumes from its latest."),
        click.option("--max-steps", type=click.IntRange(1), default=None,
                     help="Stop after this optimizer step (the schedule keeps its length)."),
        click.option("--steps", type=click.IntRange(2), default=None,
                     help="Override the schedule length of the model config."),
        click.option("--init", default=None, metavar="HF_MODEL_DIR",
                     help="Fine-tune this local Hugging Face causal-LM folder (GPT-2, GPT-Neo, "
                     "GPT-NeoX; e.g. a `corpus export` output). The shards must be made with "
                     "its tokenizer."),
        click.option("--global-batch", type=click.IntRange(1), default=None,
                     help="Override the recipe's sequences per optimizer step (the "
                     "accumulation is derived from it)."),
        click.option("--micro-batch", type=click.IntRange(1), default=None,
                     help="Sequences per rank per forward pass (default: the recipe's, or "
                     "train_micro_batch_size_per_gpu)."),
        click.option("--grad-accum", type=click.IntRange(1), default=None,
                     help="Override gradient_accumulation_steps (recipes without a "
                     "global_batch only)."),
        click.option("--num-workers", type=click.IntRange(0), default=0, show_default=True,
                     help="DataLoader workers per rank."),
        click.option("--tokenizer", default=None, metavar="DIR",
                     help="Refuse shards not made with this tokenizer."),
        click.option("--verify/--no-verify", default=True, show_default=True,
                     help="Check every shard's sha256 before training (reads the data once)."),
        click.option("--local_rank", "--local-rank", "local_rank", type=int, default=None,
                     hidden=True),  # appended by the deepspeed launcher
    ]
    for o in reversed(opts):
        f = o(f)
    return f


def args_from(kw: dict[str, Any]) -> Any:
    from corpus.train.loop import TrainArgs

    local_rank = kw.pop("local_rank", None)
    if local_rank is not None:
        os.environ.setdefault("LOCAL_RANK", str(local_rank))
    kw["deepspeed"] = kw.pop("ds")
    return TrainArgs(**kw)


@dataclass
class TrainStage:
    """A pipeline's `train` stage: the input is the token shard stage."""
    model: str  # the model TOML (pipelines/train/*.toml)
    deepspeed: str  # the DeepSpeed JSON
    max_steps: Annotated[int, Field(ge=1)] | None = None
    steps: Annotated[int, Field(ge=2)] | None = None
    micro_batch: Annotated[int, Field(ge=1)] | None = None
    grad_accum: Annotated[int, Field(ge=1)] | None = None
    global_batch: Annotated[int, Field(ge=1)] | None = None
    init: str | None = None  # a local Hugging Face folder to fine-tune
    nproc_per_node: Annotated[int, Field(ge=1)] = 1


STAGE_RECORD = "stage.json"


def run_stage(opts: TrainStage, data: str, out: str, overwrite: bool = False) -> dict[str, Any]:
    """Train in a child process (its own threads and distributed state) and summarize the log.
    Like every pipeline stage: a run made from other token shards or other options (or any,
    with overwrite) is replaced, not resumed."""
    from corpus.lock import writer_lock

    with writer_lock(out):
        return _run_stage(opts, data, out, overwrite)


def _run_stage(opts: TrainStage, data: str, out: str, overwrite: bool) -> dict[str, Any]:
    import shutil

    from corpus import manifest as mf
    from corpus.io import DatasetDir
    from corpus.lock import LOCK_FILE

    shards = DatasetDir(data).manifest() or {}
    identity = mf.digest({"data": shards.get("fingerprint"), "options": asdict(opts)})
    record = Path(out) / STAGE_RECORD
    if Path(out).exists() and (overwrite or not record.exists()
                               or json.loads(record.read_text()).get("identity") != identity):
        if record.exists():
            record.unlink()  # first: a kill while clearing leaves a run that is not reused
        for child in Path(out).iterdir():
            if child.name != LOCK_FILE:
                shutil.rmtree(child) if child.is_dir() else child.unlink()
    Path(out).mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps({"identity": identity, "data": data, **asdict(opts)}) + "\n")
    from corpus.train.loop import TrainArgs

    precheck(TrainArgs(data, opts.model, opts.deepspeed, out, micro_batch=opts.micro_batch,
                       global_batch=opts.global_batch, init=opts.init), opts.nproc_per_node)
    kw = {"data": data, "model": opts.model, "deepspeed": opts.deepspeed, "out": out,
          "max_steps": opts.max_steps, "steps": opts.steps, "micro_batch": opts.micro_batch,
          "grad_accum": opts.grad_accum, "global_batch": opts.global_batch, "init": opts.init}
    cmd = [sys.executable, "-m", "corpus.train", *_argv(kw)]
    if opts.nproc_per_node > 1:
        cmd[1:3] = ["-m", "torch.distributed.run", f"--nproc_per_node={opts.nproc_per_node}",
                    "--master_addr=127.0.0.1", f"--master_port={free_port()}", "-m",
                    "corpus.train"]
    rc = subprocess.call(cmd)
    if rc:
        raise CorpusError(f"the train stage failed (exit {rc}); see the output above")
    return summarize(Path(out))


def summarize(run_dir: Path) -> dict[str, Any]:
    """First and last training loss, the last validation, from RUN_DIR/log.jsonl."""
    from corpus.train.loop import LOG

    events = [json.loads(line) for line in (run_dir / LOG).read_text().splitlines() if line]
    train = [e for e in events if e["event"] == "train"]
    evals = [e for e in events if e["event"] == "eval"]
    return {"stage": "train", "steps": train[-1]["step"] if train else 0,
            "first_loss": train[0]["loss"] if train else None,
            "last_loss": train[-1]["loss"] if train else None,
            "val_loss": evals[-1]["val_loss"] if evals else None,
            "perplexity": evals[-1]["perplexity"] if evals else None,
            "tokens_per_s": sorted(e["tokens_per_s"] for e in train)[len(train) // 2]
            if train else None}


def describe(s: dict[str, Any]) -> str:
    if not s["steps"]:
        return "train: no steps logged"
    line = f"train: loss {s['first_loss']:.3f} → {s['last_loss']:.3f} after {s['steps']} steps"
    if s["val_loss"] is not None:
        line += f"; validation loss {s['val_loss']:.3f} (perplexity {s['perplexity']:.1f})"
    return line + f"; {s['tokens_per_s']:,.0f} tokens/s"
