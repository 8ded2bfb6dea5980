"""`corpus export RUN_DIR OUT_DIR [--step N]`: a training run's checkpoint as a Hugging Face
model folder that any transformers tool loads offline.

- the weights: DeepSpeed's own consolidation (`get_fp32_state_dict_from_zero_checkpoint`: the
  fp32 master weights gathered from every rank's ZeRO partition), or the module state of a
  ZeRO-0 checkpoint; loaded into the run's transformers class (its `hf_config`, saved at the
  start of training) and written as `model.safetensors`, `config.json`, `generation_config.json`;
- the tokenizer the shards were made with, as a `PreTrainedTokenizerFast` with bos / eos / pad
  = `<|endoftext|>`, and `split_special_tokens` so a literal "<|endoftext|>" in a prompt is
  text, as it was in every training document;
- a model card (README.md, corpus/train/card.py).

The folder is written beside OUT_DIR and renamed into place: a kill leaves the old export or
none, never half of one. `export.json` names the run and checkpoint; the same export again is
reused.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from corpus.errors import InputError, InvariantError
from corpus.tokens.bpe import EOT

RECORD = "export.json"


@dataclass
class ExportOptions:
    step: int | None = None  # the checkpoint of this step (default: the latest)
    license: str = "other"  # the card's license (the model's, which the data does not decide)
    dataset: str | None = None  # the card's dataset name (default: the token shards' folder)


def run_config(run_dir: Path) -> dict[str, Any]:
    f = run_dir / "config.json"
    if not f.is_file():
        raise InputError(f"{run_dir} is not a `corpus train` run (no config.json)")
    conf = json.loads(f.read_text())
    if "hf_config" not in conf:
        raise InputError(f"{run_dir} was trained by an older corpus (its config.json has no "
                         "hf_config): re-train it to export it")
    return conf


def checkpoint_tag(run_dir: Path, step: int | None) -> str:
    """The checkpoint to export: `stepN`, or the one `latest` names."""
    ckpt = run_dir / "checkpoints"
    tags = sorted((p.name for p in ckpt.glob("step*") if p.is_dir()),
                  key=lambda t: int(t[4:]) if t[4:].isdigit() else -1)
    if not tags:
        raise InputError(f"{run_dir} has no checkpoint yet (nothing under {ckpt}): train "
                         "until a save_interval step first")
    if step is not None:
        if f"step{step}" not in tags:
            raise InputError(f"{run_dir} has no checkpoint of step {step} (it has: "
                             f"{', '.join(t[4:] for t in tags)})")
        return f"step{step}"
    latest = ckpt / "latest"
    return latest.read_text().strip() if latest.is_file() else tags[-1]


def consolidated_state(run_dir: Path, tag: str, zero_stage: int) -> dict[str, Any]:
    """The full fp32 state dict of a checkpoint."""
    ckpt = run_dir / "checkpoints"
    if zero_stage >= 1:
        import contextlib
        import io

        from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint

        with contextlib.redirect_stdout(io.StringIO()):  # its progress prints
            return dict(get_fp32_state_dict_from_zero_checkpoint(str(ckpt), tag=tag))
    import torch

    # a ZeRO-0 checkpoint holds the whole module (in fp32 on CPU runs)
    state = torch.load(ckpt / tag / "mp_rank_00_model_states.pt", map_location="cpu",
                       weights_only=False)
    return {k: v.float() for k, v in state["module"].items()}


def load_model(conf: dict[str, Any], state: dict[str, Any]) -> Any:
    """The run's transformers model with the checkpoint's weights; every weight accounted for
    (a missing one may only be an output embedding tied to the input one)."""
    import transformers as tf

    from corpus.train.models import ARCHITECTURES

    hf = dict(conf["hf_config"])
    config = tf.CONFIG_MAPPING[hf["model_type"]].from_dict(hf)
    model = getattr(tf, ARCHITECTURES[config.model_type])(config)
    result = model.load_state_dict(state, strict=False)
    tied = {k for k in result.missing_keys if k.endswith("lm_head.weight")
            or k.endswith("embed_out.weight")} if getattr(config, "tie_word_embeddings",
                                                          False) else set()
    missing = set(result.missing_keys) - tied
    if missing or result.unexpected_keys:
        raise InvariantError(f"the checkpoint does not fit the run's model: missing "
                             f"{sorted(missing)[:5]}, unexpected {result.unexpected_keys[:5]}")
    model.tie_weights()
    return model.eval()


#: the special tokens, also as special_tokens_map.json (transformers 5 no longer writes it;
#: older readers and other tools look for it)
SPECIAL = {"bos_token": EOT, "eos_token": EOT, "pad_token": EOT, "unk_token": EOT}


def tokenizer(tokenizer_file: Path, context: int) -> Any:
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_file=str(tokenizer_file), **SPECIAL, model_max_length=context,
        clean_up_tokenization_spaces=False, split_special_tokens=True)


def export(run_dir: str, out_dir: str, opts: ExportOptions | None = None) -> dict[str, Any]:
    from corpus.lock import writer_lock

    with writer_lock(out_dir):
        return _export(Path(run_dir), Path(out_dir), opts or ExportOptions())


def _export(run: Path, out: Path, opts: ExportOptions) -> dict[str, Any]:
    conf = run_config(run)
    tag = checkpoint_tag(run, opts.step)
    identity = {"run": str(run.resolve()), "tag": tag, "options": opts.__dict__,
                "started": (run / "log.jsonl").stat().st_mtime_ns if (run / "log.jsonl")
                .exists() else None,
                "checkpoint": (run / "checkpoints" / tag).stat().st_mtime_ns}
    done = out / RECORD
    if done.is_file() and json.loads(done.read_text()).get("identity") == identity:
        return {**json.loads(done.read_text()), "reused": True}
    _refuse_foreign(out)
    # the heavy imports only when there is work (a reused export answers at once)
    from transformers import GenerationConfig
    from transformers.utils import logging as hf_logging

    from corpus.train import card
    from corpus.train.models import context_of

    hf_logging.disable_progress_bar()
    if not (run / "tokenizer.json").is_file():
        raise InputError(f"{run} has no tokenizer.json (the shards' tokenizer, copied at the "
                         "start of training)")
    zero = int((conf.get("deepspeed") or {}).get("zero_optimization", {}).get("stage", 0))
    model = load_model(conf, consolidated_state(run, tag, zero))
    eos = int(conf["tokens"]["eos_id"])
    model.generation_config = GenerationConfig(bos_token_id=eos, eos_token_id=eos,
                                               pad_token_id=eos)
    tmp = out.with_name(f".{out.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer(run / "tokenizer.json", context_of(model.config)).save_pretrained(tmp)
    (tmp / "special_tokens_map.json").write_text(json.dumps(SPECIAL, indent=1) + "\n")
    tok_conf = json.loads((tmp / "tokenizer_config.json").read_text())
    # the class name every transformers release knows (5.x writes its new alias)
    tok_conf["tokenizer_class"] = "PreTrainedTokenizerFast"
    (tmp / "tokenizer_config.json").write_text(json.dumps(tok_conf, indent=1) + "\n")
    step = int(tag[4:])
    summary = card.training_summary(run, conf, step)
    record = {"identity": identity, "run": str(run), "out": str(out), "tag": tag, "step": step,
              "architecture": model.config.model_type,
              "params": sum(p.numel() for p in model.parameters()), **summary}
    card.write(tmp / "README.md", conf, record, opts.license,
               opts.dataset or "/".join(Path(str(conf["args"]["data"]).rstrip("/")).parts[-2:]))
    (tmp / RECORD).write_text(json.dumps(record, indent=1) + "\n")
    _replace(tmp, out)
    return record


def _refuse_foreign(out: Path) -> None:
    """An export replaces an earlier export, never a folder of something else."""
    from corpus.lock import LOCK_FILE

    if out.is_dir() and not (out / RECORD).is_file() and any(
            c.name != LOCK_FILE for c in out.iterdir()):
        raise InputError(f"{out} exists and is not a `corpus export` folder (no {RECORD}): "
                         "export into a new or empty folder")


def _replace(tmp: Path, out: Path) -> None:
    """Move the finished folder into place, keeping the lock file of `out`. The record goes
    first out and last in: a kill in between leaves a folder that is not reused."""
    from corpus.lock import LOCK_FILE

    out.mkdir(parents=True, exist_ok=True)
    (out / RECORD).unlink(missing_ok=True)
    for child in out.iterdir():
        if child.name != LOCK_FILE:
            shutil.rmtree(child) if child.is_dir() else child.unlink()
    for child in sorted(tmp.iterdir(), key=lambda c: c.name == RECORD):
        child.rename(out / child.name)
    tmp.rmdir()


def describe(r: dict[str, Any], out_dir: str) -> str:
    line = (f"export: {r['architecture']} of {r['params'] / 1e6:,.1f}M parameters, step "
            f"{r['step']}" + (f", validation loss {r['val_loss']:.3f}" if r.get("val_loss")
                              is not None else "") + f" → {out_dir}")
    return line + ("\n  load it: python -c \"from transformers import pipeline; "
                   f"print(pipeline('text-generation', model='{out_dir}')('def add(a, b):', "
                   "max_new_tokens=20)[0]['generated_text'])\"")
