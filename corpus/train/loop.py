"""The DeepSpeed training loop: a GPT-2 from an explicit config, streamed `TokenShards`,
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
from corpus.train import config as cfgs

CHECKPOINTS = "checkpoints"
LOG = "log.jsonl"


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


def train(args: TrainArgs) -> dict[str, Any]:
    import deepspeed
    import torch
    import torch.nn.functional as F
    from deepspeed.accelerator import get_accelerator
    from transformers import GPT2Config, GPT2LMHeadModel

    from corpus.train import optim
    from corpus.train.data import TokenShards

    _quiet_deepspeed()
    model_cfg, train_cfg = cfgs.load(args.model)
    if args.steps:
        train_cfg.steps = args.steps
        train_cfg.warmup_steps = min(train_cfg.warmup_steps, max(1, args.steps // 10))
    accel = get_accelerator()
    on_gpu = accel.device_name() != "cpu"
    conf = ds_config(args.deepspeed, args, on_gpu)
    micro, gas = conf["train_micro_batch_size_per_gpu"], conf["gradient_accumulation_steps"]
    # every input is checked before the processes meet (rank and world from the environment)
    data = TokenShards(args.data, "train", batch_size=micro, seed=train_cfg.seed,
                       tokenizer=args.tokenizer, verify=args.verify)
    seq_len = data.seq_len
    meta = data.data.meta
    if seq_len > model_cfg.n_positions:
        raise ConfigError(f"the shards hold sequences of {seq_len} tokens, the model's context "
                          f"(n_positions) is {model_cfg.n_positions}")
    vocab = model_cfg.vocab_size or -(-int(meta["vocab_size"]) // 64) * 64
    if vocab < int(meta["vocab_size"]):
        raise ConfigError(f"vocab_size {vocab} is smaller than the tokenizer's "
                          f"{meta['vocab_size']}")
    deepspeed.init_distributed(dist_backend=accel.communication_backend_name())
    rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
    if (rank, world) != (data.rank, data.world_size):
        raise ConfigError(f"RANK/WORLD_SIZE say {data.rank}/{data.world_size}, the process "
                          f"group says {rank}/{world}")
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if on_gpu:
        accel.set_device(local_rank)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = Logger(out, rank)
    torch.manual_seed(train_cfg.seed)  # the same initial weights on every rank
    model = GPT2LMHeadModel(GPT2Config(
        vocab_size=vocab, n_positions=model_cfg.n_positions, n_embd=model_cfg.n_embd,
        n_layer=model_cfg.n_layer, n_head=model_cfg.n_head, resid_pdrop=model_cfg.dropout,
        embd_pdrop=model_cfg.dropout, attn_pdrop=model_cfg.dropout,
        bos_token_id=int(meta["eos_id"]), eos_token_id=int(meta["eos_id"])))
    n_params = sum(p.numel() for p in model.parameters())
    opt, sched = optim.build(model, train_cfg)
    engine, _, _, _ = deepspeed.initialize(model=model, optimizer=opt, lr_scheduler=sched,
                                           config=conf)
    max_steps = min(args.max_steps or train_cfg.steps, train_cfg.steps)
    if rank == 0:
        (out / "config.json").write_text(json.dumps({
            "args": asdict(args), "model": asdict(model_cfg), "train": asdict(train_cfg),
            "deepspeed": conf, "world_size": world, "vocab_size": vocab, "params": n_params,
            "tokens": meta}, indent=1) + "\n")

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
        log("start", params=n_params, world_size=world, micro_batch=micro, grad_accum=gas,
            seq_len=seq_len, device=accel.device_name(), zero=engine.zero_optimization_stage())

    device = engine.device
    tokens_per_step = micro * gas * world * seq_len
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
        if step % train_cfg.log_interval == 0 or step == max_steps:
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
