"""The DeepSpeed training loop: a GPT-2 / GPT-Neo / GPT-NeoX from an explicit config (or a
local Hugging Face folder to fine-tune), streamed `TokenShards`,
ZeRO from the DeepSpeed JSON, checkpoints that resume exactly.

Runs under any launcher that sets RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR / MASTER_PORT
(`torchrun`, `deepspeed`, Slurm wrappers, or corpus/train/launch.py for one process). On a
machine without GPUs: DeepSpeed's CPU accelerator, gloo, fp32. On GPUs: NCCL and the
bf16 / fp16 settings of the JSON.

Exact resume: the checkpoint holds model, optimizer, LR scheduler (DeepSpeed's) and the loader's
global position (client state). Dropout is reseeded from (seed, step, micro-batch, rank) before
every forward pass, so a resumed run draws the same masks as an uninterrupted one.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from corpus.errors import ConfigError
from corpus.train import batch as batches
from corpus.train import config as cfgs

CHECKPOINTS = "checkpoints"
LOG = "log.jsonl"
TOKENIZER = "tokenizer.json"  # the shards' tokenizer, copied: `corpus export` writes it out


@dataclass
class TrainArgs:
    data: str  # token shard folder (corpus shard --format tokens)
    model: str  # pipelines/train/*.toml
    deepspeed: str  # pipelines/train/zero*.json
    out: str  # run directory: checkpoints/, log.jsonl, config.json
    max_steps: int | None = None  # stop after this optimizer step (default: the schedule's end)
    steps: int | None = None  # override the schedule length of the model config
    micro_batch: int | None = None  # override train_micro_batch_size_per_gpu
    grad_accum: int | None = None  # override gradient_accumulation_steps
    num_workers: int = 0  # DataLoader workers per rank
    tokenizer: str | None = None  # check the shards were made with this tokenizer
    verify: bool = True  # check every shard's sha256 before training (one read of the data)
    init: str | None = None  # a local Hugging Face causal-LM folder to fine-tune
    global_batch: int | None = None  # override the recipe's sequences per optimizer step


def _quiet_deepspeed() -> None:
    """Skip the ops that would JIT-compile (~100 s each, see docs/training.md) and DeepSpeed's
    per-step chatter."""
    import logging

    import deepspeed
    import deepspeed.ops

    deepspeed.ops.__compatible_ops__["deepspeed_shm_comm"] = False
    logging.getLogger("DeepSpeed").setLevel(logging.WARNING)
    deepspeed.utils.logger.setLevel(logging.WARNING)


def ds_config(path: str, args: TrainArgs, on_gpu: bool) -> dict[str, Any]:
    conf = cfgs.check_deepspeed(path)  # an object, batch sizes ints, no optimizer/scheduler
    conf.pop("train_batch_size", None)  # derived from micro-batch × accumulation × world
    if args.micro_batch:
        conf["train_micro_batch_size_per_gpu"] = args.micro_batch
    if args.grad_accum:
        conf["gradient_accumulation_steps"] = args.grad_accum
    conf.setdefault("train_micro_batch_size_per_gpu", 8)
    conf.setdefault("gradient_accumulation_steps", 1)
    if not on_gpu:  # fp32 on CPU: bf16 at ZeRO 0 drifts there and is not faster
        for k in ("bf16", "fp16"):
            conf.pop(k, None)
    return conf


def _seed_for(seed: int, step: int, micro: int, rank: int) -> int:
    import numpy as np

    return int(np.random.SeedSequence([seed, step, micro, rank]).generate_state(1)[0])


class Logger:
    def __init__(self, out: Path, rank: int):
        self.path = out / LOG
        self.rank = rank

    def __call__(self, event: str, **fields: Any) -> None:
        if self.rank != 0:
            return
        rec = {"event": event, "time": round(time.time(), 3), **fields}
        with self.path.open("a") as f:
            f.write(json.dumps(rec) + "\n")
        shown = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                         for k, v in fields.items())
        print(f"[{event}] {shown}", flush=True)


@dataclass
class Session:
    """A run set up as `corpus train` holds it: the DeepSpeed engine over the built (or loaded)
    model, the training stream, the batch plan. Tests and `corpus export` checks use it too."""
    engine: Any
    sched: Any
    data: Any
    plan: batches.BatchPlan
    train_cfg: cfgs.TrainConfig
    conf: dict[str, Any]
    rank: int
    world: int
    out: Path
    log: Logger
    n_params: int
    source: str


def batch_plan(args: TrainArgs, train_cfg: cfgs.TrainConfig, conf: dict[str, Any], world: int,
               seq_len: int) -> batches.BatchPlan:
    """The recipe's global batch over this world size, or the JSON's / flags' fixed sizes."""
    global_batch = args.global_batch or train_cfg.global_batch
    if global_batch is None:
        return batches.fixed(conf["train_micro_batch_size_per_gpu"],
                             conf["gradient_accumulation_steps"], world, seq_len)
    if args.grad_accum:
        raise ConfigError(f"--grad-accum cannot be set with a global batch ({global_batch} "
                          "sequences): the accumulation is derived from it; set --micro-batch "
                          "or --global-batch")
    return batches.plan(global_batch, world, seq_len, args.micro_batch or train_cfg.micro_batch)


def setup(args: TrainArgs) -> Session:
    import deepspeed
    import torch
    from deepspeed.accelerator import get_accelerator

    from corpus.io import DatasetDir
    from corpus.train import models, optim, prepare
    from corpus.train.data import TokenShards

    _quiet_deepspeed()
    model_cfg, train_cfg = cfgs.load(args.model)
    if args.steps:
        train_cfg.steps = args.steps
        train_cfg.warmup_steps = min(train_cfg.warmup_steps, max(1, args.steps // 10))
    accel = get_accelerator()
    on_gpu = accel.device_name() != "cpu"
    conf = ds_config(args.deepspeed, args, on_gpu)
    # every input is checked before the processes meet (rank and world from the environment)
    data = TokenShards(args.data, "train", batch_size=1, seed=train_cfg.seed,
                       tokenizer=args.tokenizer, verify=args.verify)
    plan = batch_plan(args, train_cfg, conf, data.world_size, data.seq_len)
    data.batch_size = plan.micro_batch
    conf["train_micro_batch_size_per_gpu"] = plan.micro_batch
    conf["gradient_accumulation_steps"] = plan.grad_accum
    meta = data.data.meta
    shards = DatasetDir(args.data)
    tokenizer_json = shards.fs.cat_file(shards.join(meta.get("tokenizer", TOKENIZER))).decode()
    torch.manual_seed(train_cfg.seed)  # the same initial weights on every rank
    model, source = prepare.build_model(model_cfg, meta, args.init, args.data, tokenizer_json)
    if data.seq_len > models.context_of(model.config):
        raise ConfigError(f"the shards hold sequences of {data.seq_len} tokens, the model's "
                          f"context (n_positions) is {models.context_of(model.config)}")
    if train_cfg.gradient_checkpointing:
        models.enable_checkpointing(model)
    deepspeed.init_distributed(dist_backend=accel.communication_backend_name())
    rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
    if (rank, world) != (data.rank, data.world_size):
        raise ConfigError(f"RANK/WORLD_SIZE say {data.rank}/{data.world_size}, the process "
                          f"group says {rank}/{world}")
    if on_gpu:
        accel.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    n_params = sum(p.numel() for p in model.parameters())
    opt, sched = optim.build(model, train_cfg)
    engine, _, _, _ = deepspeed.initialize(model=model, optimizer=opt, lr_scheduler=sched,
                                           config=conf)
    if rank == 0:
        (out / TOKENIZER).write_text(tokenizer_json, encoding="utf-8")
        (out / "config.json").write_text(json.dumps({
            "args": asdict(args), "model": asdict(model_cfg), "train": asdict(train_cfg),
            "deepspeed": conf, "world_size": world, "vocab_size": model.config.vocab_size,
            "params": n_params, "tokens": meta, "source": source,
            "batch": {**asdict(plan), "sequences": plan.sequences, "tokens": plan.tokens},
            "hf_config": model.config.to_dict()}, indent=1) + "\n")
    return Session(engine, sched, data, plan, train_cfg, conf, rank, world, out,
                   Logger(out, rank), n_params, source)


def train(args: TrainArgs) -> dict[str, Any]:
    import torch
    import torch.nn.functional as F

    s = setup(args)
    engine, sched, data, plan, train_cfg, log = s.engine, s.sched, s.data, s.plan, s.train_cfg, \
        s.log
    rank, world, out = s.rank, s.world, s.out
    micro, gas = plan.micro_batch, plan.grad_accum
    max_steps = min(args.max_steps or train_cfg.steps, train_cfg.steps)
    step = 0
    ckpt = out / CHECKPOINTS
    if (ckpt / "latest").exists():
        path, client = engine.load_checkpoint(str(ckpt))
        if path is None:
            raise ConfigError(f"cannot load the latest checkpoint in {ckpt}")
        data.load_state_dict(client["loader"])
        step = int(client["step"])
        log("resume", step=step, checkpoint=str(Path(path).name),
            position=client["loader"]["position"])
    else:
        log("start", params=s.n_params, world_size=world, micro_batch=micro, grad_accum=gas,
            global_batch=plan.sequences, tokens_per_step=plan.tokens, seq_len=plan.seq_len,
            device=str(engine.device.type), zero=engine.zero_optimization_stage(),
            model=s.source)
    if rank == 0:
        print(f"{plan.describe()}; model: {s.source}", flush=True)

    device = engine.device
    tokens_per_step = plan.tokens
    it = iter(data.loader(num_workers=args.num_workers))
    result: dict[str, Any] = {"first_loss": None, "last_loss": None, "val": None}
    t_last, steps_since = time.perf_counter(), 0
    while step < max_steps:
        engine.train()
        total = torch.zeros((), device=device)
        for m in range(gas):
            batch = next(it).to(device)
            torch.manual_seed(_seed_for(train_cfg.seed, step, m, rank))
            logits = engine(input_ids=batch[:, :-1]).logits
            loss = F.cross_entropy(logits.float().reshape(-1, logits.size(-1)),
                                   batch[:, 1:].reshape(-1))
            engine.backward(loss)
            engine.step()
            total += loss.detach()
        step += 1
        steps_since += 1
        torch.distributed.all_reduce(total)
        mean = float(total) / (gas * world)
        result["first_loss"] = result["first_loss"] if result["first_loss"] is not None \
            else mean
        result["last_loss"] = mean
        if step % train_cfg.log_interval == 0 or step == max_steps or step == 1:
            now = time.perf_counter()
            log("train", step=step, loss=round(mean, 6), lr=sched.get_last_lr()[0],
                tokens_per_s=round(tokens_per_step * steps_since / (now - t_last), 1),
                tokens=step * tokens_per_step)
            t_last, steps_since = now, 0
        if step % train_cfg.eval_interval == 0 or step == max_steps:
            result["val"] = evaluate(engine, args, train_cfg, micro, rank, world)
            if result["val"] is not None:
                log("eval", step=step, **result["val"])
            t_last = time.perf_counter()
        if step % train_cfg.save_interval == 0 or step == max_steps:
            engine.save_checkpoint(str(ckpt), tag=f"step{step}",
                                   client_state={"loader": data.state_dict(), "step": step})
            log("save", step=step, tag=f"step{step}")
            t_last = time.perf_counter()
    result["step"] = step
    return result


def evaluate(engine: Any, args: TrainArgs, cfg: cfgs.TrainConfig, micro: int, rank: int,
             world: int) -> dict[str, float] | None:
    """Mean validation loss over the first eval_batches × micro × world sequences."""
    import torch
    import torch.nn.functional as F

    from corpus.errors import InputError
    from corpus.train.data import TokenShards

    try:
        val = TokenShards(args.data, "validation", batch_size=micro, shuffle=False,
                          infinite=False, verify=False)
    except InputError:
        return None
    engine.eval()
    loss_sum = torch.zeros((), dtype=torch.float64, device=engine.device)
    count = torch.zeros((), dtype=torch.float64, device=engine.device)
    with torch.no_grad():
        for i, batch in enumerate(val):
            if i >= cfg.eval_batches:
                break
            batch = batch.to(engine.device)
            logits = engine(input_ids=batch[:, :-1]).logits
            loss = F.cross_entropy(logits.float().reshape(-1, logits.size(-1)),
                                   batch[:, 1:].reshape(-1), reduction="sum")
            loss_sum += loss.double()
            count += batch[:, 1:].numel()
    torch.distributed.all_reduce(loss_sum)
    torch.distributed.all_reduce(count)
    engine.train()
    if float(count) == 0:
        return None
    mean = float(loss_sum / count)
    return {"val_loss": round(mean, 6), "perplexity": round(math.exp(min(mean, 50.0)), 3)}
