"""CodeParrot's training loop, re-implemented minimally for bench/train.py (the seeds' way).

After Hugging Face transformers' examples/research_projects/codeparrot/scripts/
codeparrot_training.py (and its arguments.py defaults), as it stood up to transformers ~4.40.

Kept:
- `ConstantLengthDataset` over a `datasets` streaming Parquet dataset, shuffled in a
  `shuffle_buffer` of documents: a buffer of texts up to seq_length × chars_per_token ×
  num_of_sequences characters is tokenized *on the fly* (a fast tokenizer from the folder,
  `AutoTokenizer`, nothing fetched by name), the documents joined by the tokenizer's bos token
  and cut into sequences of seq_length tokens (the rest of the buffer is dropped); infinite
  over epochs for training, one pass for validation;
- accelerate: `Accelerator()`, `prepare(model, optimizer, train_dataloader, eval_dataloader)`:
  DDP over gloo on CPU (accelerate's MULTI_CPU), and, the dataset being an IterableDataset,
  accelerate's default of batches dispatched from the main process (rank 0 reads and tokenizes
  for every rank);
- AdamW over two weight-decay groups (`no_decay = ["bias", "LayerNorm.weight"]`, names
  matched as CodeParrot did), `get_scheduler` (cosine with warmup), gradient accumulation
  counted in micro-batches with `loss / gradient_accumulation_steps` (`no_sync` only on
  MULTI_GPU, as in the original), `accelerator.clip_grad_norm_(…, 1.0)`, and
  `model(batch, labels=batch, use_cache=False).loss`;
- `evaluate` (mean gathered loss over max_eval_steps batches, perplexity) and
  `accelerator.save_state`, and its TFLOPs formula.

Dropped or changed: wandb/tensorboard trackers (rank 0 writes one JSON line per optimizer step
to --log instead), the Hub repository clone and pushes, resume from a checkpoint; the model is
`AutoModelForCausalLM.from_config` of the folder's config.json after `set_seed` (the original
loads the random weights that initialize_model.py saved: the same thing, one file less);
transformers' own `AdamW` (gone from transformers 5) is torch's; evaluation every
--eval-interval and saving every --save-interval optimizer steps (the original does both every
save_checkpoint_steps micro-batches), and the step timer restarts after them, so a step's time
is its data, forward, backward and optimizer step only (the original charged them to the next
step); an empty last buffer ends the iteration (transformers 5's tokenizer raises on an empty
batch, where older ones returned nothing).

    ACCELERATE_USE_CPU=true OMP_NUM_THREADS=1 accelerate launch --multi_gpu --num_processes 2 \
        bench/_codeparrot_loop.py --model-dir M --train-files F… --log steps.jsonl …
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, IterableDataset

logger = logging.getLogger("codeparrot")


class ConstantLengthDataset(IterableDataset):
    """Constant-length chunks of tokens from a stream of text files (CodeParrot's class)."""

    def __init__(self, tokenizer: Any, dataset: Any, infinite: bool = False,
                 seq_length: int = 1024, num_of_sequences: int = 1024,
                 chars_per_token: float = 3.6):
        self.tokenizer = tokenizer
        self.concat_token_id = tokenizer.bos_token_id
        self.dataset = dataset
        self.seq_length = seq_length
        self.epoch = 0
        self.infinite = infinite
        self.current_size = 0
        self.max_buffer_size = seq_length * chars_per_token * num_of_sequences
        self.content_field = "content"

    def __iter__(self):  # type: ignore[no-untyped-def]
        iterator = iter(self.dataset)
        more_examples = True
        while more_examples:
            buffer, buffer_len = [], 0
            while True:
                if buffer_len >= self.max_buffer_size:
                    break
                try:
                    buffer.append(next(iterator)[self.content_field])
                    buffer_len += len(buffer[-1])
                except StopIteration:
                    if self.infinite:
                        iterator = iter(self.dataset)
                        self.epoch += 1
                        logger.info(f"Dataset epoch: {self.epoch}")
                    else:
                        more_examples = False
                        break
            if not buffer:  # transformers 5 raises on an empty batch; older ones gave []
                break
            tokenized_inputs = self.tokenizer(buffer, truncation=False)["input_ids"]
            all_token_ids: list[int] = []
            for tokenized_input in tokenized_inputs:
                all_token_ids.extend([*tokenized_input, self.concat_token_id])
            for i in range(0, len(all_token_ids), self.seq_length):
                input_ids = all_token_ids[i: i + self.seq_length]
                if len(input_ids) == self.seq_length:
                    self.current_size += 1
                    yield torch.tensor(input_ids)


def get_grouped_params(model: torch.nn.Module, weight_decay: float,
                       no_decay: tuple[str, ...] = ("bias", "LayerNorm.weight")) -> list[dict]:
    params_with_wd, params_without_wd = [], []
    for n, p in model.named_parameters():
        if any(nd in n for nd in no_decay):
            params_without_wd.append(p)
        else:
            params_with_wd.append(p)
    return [{"params": params_with_wd, "weight_decay": weight_decay},
            {"params": params_without_wd, "weight_decay": 0.0}]


def parse() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model-dir", required=True,
                    help="config.json (and the tokenizer unless --tokenizer)")
    ap.add_argument("--tokenizer", default=None, help="tokenizer folder (default: --model-dir)")
    ap.add_argument("--train-files", nargs="+", required=True, help="Parquet files, `content`")
    ap.add_argument("--valid-files", nargs="*", default=[])
    ap.add_argument("--save-dir", required=True)
    ap.add_argument("--log", required=True, help="JSON lines of the optimizer steps (rank 0)")
    # arguments.py's names; defaults are CodeParrot's except where the bench passes the recipe's
    ap.add_argument("--train-batch-size", type=int, default=8)
    ap.add_argument("--valid-batch-size", type=int, default=8)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--shuffle-buffer", type=int, default=10_000)
    ap.add_argument("--learning-rate", type=float, default=2e-4)
    ap.add_argument("--lr-scheduler-type", default="cosine")
    ap.add_argument("--num-warmup-steps", type=int, default=750)
    ap.add_argument("--gradient-accumulation-steps", type=int, default=16)
    ap.add_argument("--max-train-steps", type=int, default=50_000,
                    help="the schedule's length")
    ap.add_argument("--stop-after", type=int, default=None,
                    help="stop after this optimizer step (the schedule keeps its length)")
    ap.add_argument("--max-eval-steps", type=int, default=-1)
    ap.add_argument("--seq-length", type=int, default=1024)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--eval-interval", type=int, default=1024)
    ap.add_argument("--save-interval", type=int, default=1024)
    return ap.parse_args()


def main() -> None:
    import datasets
    import transformers
    from accelerate import Accelerator, DistributedType
    from datasets import load_dataset
    from transformers import (
        AutoConfig,
        AutoModelForCausalLM,
        AutoTokenizer,
        get_scheduler,
        set_seed,
    )

    args = parse()
    accelerator = Accelerator()
    logging.basicConfig(format="%(asctime)s - %(levelname)s - %(name)s - %(message)s",
                        datefmt="%m/%d/%Y %H:%M:%S", level=logging.WARNING)
    if accelerator.is_main_process:
        logger.setLevel(logging.INFO)
    else:
        logger.setLevel(logging.ERROR)
    datasets.utils.logging.set_verbosity_error()
    transformers.utils.logging.set_verbosity_error()  # "sequence longer than model_max_length"
    logger.info(f"{accelerator.state}".replace("\n", "; "))
    samples_per_step = accelerator.state.num_processes * args.train_batch_size
    set_seed(args.seed)

    config = AutoConfig.from_pretrained(args.model_dir)
    model = AutoModelForCausalLM.from_config(config)
    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer or args.model_dir)

    train_data = load_dataset("parquet", data_files=args.train_files, split="train",
                              streaming=True)
    train_data = train_data.shuffle(buffer_size=args.shuffle_buffer, seed=args.seed)
    train_dataset = ConstantLengthDataset(tokenizer, train_data, infinite=True,
                                          seq_length=args.seq_length)
    train_dataloader = DataLoader(train_dataset, batch_size=args.train_batch_size)
    eval_dataloader = None
    if args.valid_files:
        valid_data = load_dataset("parquet", data_files=args.valid_files, split="train",
                                  streaming=True)
        valid_dataset = ConstantLengthDataset(tokenizer, valid_data, infinite=False,
                                              seq_length=args.seq_length)
        eval_dataloader = DataLoader(valid_dataset, batch_size=args.valid_batch_size)

    optimizer = torch.optim.AdamW(get_grouped_params(model, args.weight_decay),
                                  lr=args.learning_rate)
    lr_scheduler = get_scheduler(name=args.lr_scheduler_type, optimizer=optimizer,
                                 num_warmup_steps=args.num_warmup_steps,
                                 num_training_steps=args.max_train_steps)
    accelerator.register_for_checkpointing(lr_scheduler)
    if eval_dataloader is None:
        model, optimizer, train_dataloader = accelerator.prepare(model, optimizer,
                                                                 train_dataloader)
    else:
        model, optimizer, train_dataloader, eval_dataloader = accelerator.prepare(
            model, optimizer, train_dataloader, eval_dataloader)

    def compute_tflops(elapsed_time: float) -> float:
        # Equation 3 of Narayanan et al. 2021 (arXiv 2104.04473), as codeparrot_training.py
        cfg = accelerator.unwrap_model(model).config
        batch_size = (args.train_batch_size * accelerator.state.num_processes
                      * args.gradient_accumulation_steps)
        factor = 24 * 3 * batch_size * args.seq_length * cfg.n_layer * (cfg.n_embd ** 2)
        flops = factor * (1.0 + args.seq_length / (6.0 * cfg.n_embd)
                          + tokenizer.vocab_size / (16.0 * cfg.n_layer * cfg.n_embd))
        return flops / (elapsed_time * accelerator.state.num_processes * 1e12)

    def evaluate() -> tuple[float, float]:
        model.eval()
        losses = []
        for step, batch in enumerate(eval_dataloader):
            with torch.no_grad():
                outputs = model(batch, labels=batch)
            loss = outputs.loss.repeat(args.valid_batch_size)
            losses.append(accelerator.gather(loss))
            if args.max_eval_steps > 0 and step >= args.max_eval_steps:
                break
        mean = torch.cat(losses).mean() if losses else torch.tensor(float("nan"))
        perplexity = math.exp(min(float(mean), 50.0))
        model.train()
        return float(mean), perplexity

    log = open(args.log, "a") if accelerator.is_main_process else None  # noqa: SIM115
    stop = min(args.stop_after or args.max_train_steps, args.max_train_steps)
    tokens_per_step = samples_per_step * args.gradient_accumulation_steps * args.seq_length
    if log:
        log.write(json.dumps({"event": "start", "world_size": accelerator.num_processes,
                              "distributed_type": str(accelerator.distributed_type),
                              "backend": accelerator.state.backend,
                              "params": sum(p.numel() for p in model.parameters())}) + "\n")
    model.train()
    completed_steps = 0
    t_start = time.perf_counter()
    total = 0.0
    for step, batch in enumerate(train_dataloader, start=1):
        loss = model(batch, labels=batch, use_cache=False).loss
        total += loss.item()
        loss = loss / args.gradient_accumulation_steps
        if step % args.gradient_accumulation_steps != 0:
            if accelerator.distributed_type == DistributedType.MULTI_GPU:
                with model.no_sync():
                    accelerator.backward(loss)
            else:
                accelerator.backward(loss)
            continue
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        lr_scheduler.step()
        optimizer.zero_grad()
        completed_steps += 1
        elapsed_time = time.perf_counter() - t_start
        rec = {"event": "train", "step": completed_steps, "samples": step * samples_per_step,
               "loss": round(total / args.gradient_accumulation_steps, 6),
               "lr": optimizer.param_groups[0]["lr"], "time_per_iteration": elapsed_time,
               "tokens_per_s": round(tokens_per_step / elapsed_time, 1),
               "tflops": compute_tflops(elapsed_time), "time": time.time()}
        total = 0.0
        if log:
            log.write(json.dumps(rec) + "\n")
            log.flush()
            logger.info(f"Step {completed_steps}: loss {rec['loss']:.4f} "
                        f"{rec['tokens_per_s']:,.0f} tokens/s")
        last = completed_steps >= stop
        if eval_dataloader is not None and (completed_steps % args.eval_interval == 0 or last):
            eval_loss, perplexity = evaluate()
            logger.info(f"Step {completed_steps}: loss/eval {eval_loss:.4f} "
                        f"perplexity {perplexity:.2f}")
        if completed_steps % args.save_interval == 0 or last:
            accelerator.wait_for_everyone()
            accelerator.save_state(os.path.join(args.save_dir, f"step_{completed_steps}"))
        if last:
            break
        t_start = time.perf_counter()
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        accelerator.unwrap_model(model).save_pretrained(Path(args.save_dir) / "final",
                                                        save_function=accelerator.save)
    if log:
        log.close()
    accelerator.end_training()


if __name__ == "__main__":
    main()
