"""The model card of an export (README.md): YAML that the Hub and `huggingface_hub` read
(library_name, license, datasets, pipeline_tag, the training recipe, the final validation loss
and perplexity as model-index results), then a page saying what was trained and how to load it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def training_summary(run: Path, conf: dict[str, Any], step: int) -> dict[str, Any]:
    """From the run's log: the last training loss and validation at or before `step`."""
    log = run / "log.jsonl"
    events = [json.loads(line) for line in log.read_text().splitlines() if line] \
        if log.exists() else []
    train = [e for e in events if e["event"] == "train" and e["step"] <= step]
    evals = [e for e in events if e["event"] == "eval" and e["step"] <= step]
    return {"train_loss": train[-1]["loss"] if train else None,
            "val_loss": evals[-1]["val_loss"] if evals else None,
            "perplexity": evals[-1]["perplexity"] if evals else None,
            "tokens_seen": step * int((conf.get("batch") or {}).get("tokens", 0))}


def recipe(conf: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
    """The training recipe as the card's YAML states it."""
    t, b = conf["train"], conf.get("batch") or {}
    return {
        "config": Path(conf["args"]["model"]).name, "architecture": record["architecture"],
        "init": conf["args"].get("init") and Path(conf["args"]["init"]).name,
        "params": record["params"], "steps": record["step"], "schedule_steps": t["steps"],
        "global_batch_sequences": b.get("sequences"), "sequence_length": b.get("seq_len"),
        "tokens_per_step": b.get("tokens"), "tokens_seen": record["tokens_seen"],
        "learning_rate": t["lr"], "warmup_steps": t["warmup_steps"],
        "lr_schedule": f"linear warmup, cosine to {t['min_lr_ratio']:g} × lr",
        "optimizer": f"AdamW (betas {t['betas'][0]}, {t['betas'][1]})",
        "weight_decay": t["weight_decay"], "world_size": conf.get("world_size"),
        "zero_stage": (conf.get("deepspeed") or {}).get("zero_optimization", {}).get("stage", 0),
        "gradient_checkpointing": t.get("gradient_checkpointing", False)}


def write(path: Path, conf: dict[str, Any], record: dict[str, Any], license: str,
          dataset: str) -> None:
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    name = path.parent.name.lstrip(".").removesuffix(".partial") or "model"
    results = []
    for metric, value in (("loss", record.get("val_loss")),
                          ("perplexity", record.get("perplexity"))):
        if value is not None:
            results.append(EvalResult(
                task_type="text-generation", dataset_type=dataset, dataset_name=dataset,
                dataset_split="validation", metric_type=metric, metric_value=value,
                metric_name=f"validation {metric}"))
    data = ModelCardData(
        library_name="transformers", license=license, datasets=[dataset],
        pipeline_tag="text-generation", tags=["code", "corpus", record["architecture"]],
        model_name=name, eval_results=results or None, training=recipe(conf, record))
    r = recipe(conf, record)
    val = (f"validation loss **{record['val_loss']:.4f}** (perplexity "
           f"{record['perplexity']:.2f})" if record.get("val_loss") is not None
           else "no validation split")
    body = f"""
# {name}

A {r['architecture']} causal language model of {record['params']:,} parameters, trained with
`corpus train` on the token shards of `{dataset}`
({'fine-tuned from ' + r['init'] if r['init'] else 'from scratch'}), recipe `{r['config']}`:
{r['steps']:,} optimizer steps of {r['tokens_per_step'] or 0:,} tokens
({r['global_batch_sequences']} sequences × {r['sequence_length']}), {r['tokens_seen']:,} tokens
in all; {val} at step {record['step']:,}.

```python
from transformers import AutoModelForCausalLM, AutoTokenizer, pipeline

model = AutoModelForCausalLM.from_pretrained("{name}")
tokenizer = AutoTokenizer.from_pretrained("{name}")
print(pipeline("text-generation", model=model, tokenizer=tokenizer)("def add(a, b):")[0])
```

Documents were joined by `<|endoftext|>` (bos = eos = pad); a literal `<|endoftext|>` inside a
document was text, and the tokenizer keeps it so (`split_special_tokens`).
"""
    card = ModelCard(f"---\n{data.to_yaml()}\n---\n{body}")
    path.write_text(str(card), encoding="utf-8")
