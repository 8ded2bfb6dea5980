"""Perplexity of a causal LM over documents, per group (language, extension): PolyCoder's table.

The definition (docs/eval.md, and what tests/test_eval_perplexity.py checks against a plain
transformers loop):
- a document is `<|endoftext|>` + its tokens (the separator it follows in the token shards);
- it is cut into windows of the model's context C, a new window every `stride` S tokens
  (S = C by default: windows do not overlap) until one reaches the document's end;
- a window scores its tokens from the tokens before them in that window: the first window
  every token but its first, each later one only the tokens no earlier window scored (with
  S = C: all of a window's tokens but its first; with S < C: Hugging Face's "strided
  perplexity", every token once, with at least C - S tokens of context after the first window);
- a group's loss is the mean negative log-likelihood (nats) over every scored token of its
  documents, its perplexity exp(loss): inf when a token has probability 0 (or exp overflows),
  reported as such, never an error.

Pure numpy for the windows and the sums; torch only in `score`, one padded batch of windows at
a time (right padding and an attention mask, so each window's logits are its own).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from corpus.errors import ConfigError, InputError

if TYPE_CHECKING:
    from corpus.splits import SplitRule


def windows(length: int, context: int, stride: int) -> np.ndarray:
    """The windows of one document of `length` tokens: int64 rows (begin, end, first); tokens
    begin..end-1 go in, tokens first..end-1 are scored. Windows that score nothing are left
    out (the last, 1-token window of a non-overlapping cut)."""
    if not 1 <= stride <= context:
        raise ConfigError(f"--stride must be in [1, {context}] (the context), not {stride}")
    if length < 2:
        return np.zeros((0, 3), np.int64)
    n = 1 if length <= context else -(-(length - context) // stride) + 1
    begin = np.arange(n, dtype=np.int64) * stride
    end = np.minimum(begin + context, length)
    prev_end = np.concatenate([[0], end[:-1]])
    first = np.maximum(prev_end, begin + 1)
    w = np.stack([begin, end, first], axis=1)
    return w[w[:, 2] < w[:, 1]]


@dataclass
class Plan:
    """Every window of every document, in the order they are scored (longest first, then by
    their unscored prefix, document and position: batches of similar windows pad little; the
    same documents in the same order give the same batches, whatever the input)."""
    doc: np.ndarray  # int64: the document of each window
    begin: np.ndarray
    end: np.ndarray
    first: np.ndarray

    @property
    def scored(self) -> int:
        return int((self.end - self.first).sum())


def plan(lengths: Sequence[int], context: int, stride: int) -> Plan:
    parts = [windows(n, context, stride) for n in lengths]
    doc = np.concatenate([np.full(len(w), i, np.int64) for i, w in enumerate(parts)] or
                         [np.zeros(0, np.int64)])
    w = np.concatenate(parts) if parts else np.zeros((0, 3), np.int64)
    # longest first; within a length, by the unscored prefix (later windows of a stride
    # together: their batches need the output layer only on their scored tail)
    order = np.lexsort((w[:, 0], doc, w[:, 0] - w[:, 2], w[:, 0] - w[:, 1])) if len(w) else doc
    return Plan(doc[order], w[order, 0], w[order, 1], w[order, 2])


def perplexity(loss: float) -> float:
    """exp(loss), inf where it overflows (and for an infinite loss)."""
    try:
        return math.exp(loss)
    except OverflowError:
        return math.inf


def aggregate(groups: np.ndarray, nll: np.ndarray, tokens: np.ndarray) -> list[dict[str, Any]]:
    """One row per group (by name): documents, scored tokens, loss, perplexity. `nll`,
    `tokens`: per document sums."""
    rows = []
    for g in sorted(set(groups.tolist())):
        sel = groups == g
        rows.append(summary_row(str(g), int(sel.sum()), float(nll[sel].sum()),
                                int(tokens[sel].sum())))
    return rows


def summary_row(name: str, documents: int, nll: float, tokens: int) -> dict[str, Any]:
    loss = nll / tokens if tokens else math.nan
    return {"group": name, "documents": documents, "tokens": tokens, "loss": loss,
            "perplexity": perplexity(loss) if not math.isnan(loss) else math.nan}


# --- the model --------------------------------------------------------------------------------
def choose_device(device: str, dtype: str) -> tuple[str, str]:
    """`auto`: CUDA when torch sees a GPU, else the CPU; float32 on the CPU, bfloat16 on a GPU
    (log-softmax is always computed in float32)."""
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("--device cuda: torch sees no GPU here")
    if dtype == "auto":
        dtype = "bfloat16" if device.startswith("cuda") else "float32"
    return device, dtype


def check_model_folder(folder: str) -> None:
    from pathlib import Path

    if not (Path(folder) / "config.json").is_file():
        raise InputError(f"{folder} is not a Hugging Face model folder (no config.json)")


def load_model(folder: str, device: str, dtype: str) -> Any:
    """A local Hugging Face causal-LM folder, in eval mode on `device`."""
    import torch
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    check_model_folder(folder)
    hf_logging.disable_progress_bar()
    try:
        model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError, KeyError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise InputError(f"cannot load the model in {folder}: {first}") from None
    return model.to(device=device, dtype=getattr(torch, dtype)).eval()


def context_of(model: Any, context: int | None) -> int:
    """The model's context (`n_positions` / `max_position_embeddings`), or a shorter one."""
    from corpus.train.models import context_of as of_config

    full = of_config(model.config)
    if context is not None and not 2 <= context <= full:
        raise ConfigError(f"--context must be in [2, {full}] (the model's), not {context}")
    return context or full


def score(model: Any, inputs: list[np.ndarray], firsts: list[int], device: str) -> np.ndarray:
    """The summed negative log-likelihood (float64) of each window's scored tokens: window i
    is `inputs[i]`, scoring its tokens from position `firsts[i]` on."""
    import torch

    width = max(len(x) for x in inputs)
    ids = np.zeros((len(inputs), width), np.int64)
    mask = np.zeros((len(inputs), width), np.int64)
    labels = np.full((len(inputs), width), -100, np.int64)
    for i, (x, f) in enumerate(zip(inputs, firsts, strict=True)):
        ids[i, :len(x)], mask[i, :len(x)] = x, 1
        labels[i, f:len(x)] = x[f:]
    # only the logits of positions that predict a scored token (position p predicts token
    # p + 1): with a stride < context, the output layer runs on about stride positions, not all
    start = min(firsts) - 1 if _keeps_logits(model) else 0
    extra = {"logits_to_keep": width - start} if start > 0 else {}
    with torch.inference_mode():
        t_ids = torch.from_numpy(ids).to(device)
        logits = model(input_ids=t_ids, attention_mask=torch.from_numpy(mask).to(device),
                       **extra).logits[:, :-1]
        target = torch.from_numpy(labels[:, start + 1:]).to(device)
        scored = target >= 0
        # -log softmax at the target: log-sum-exp minus the target's logit, in place over the
        # logits (a third of torch.logsumexp's time on a CPU, no [batch, width, vocab] copy);
        # a -inf target logit gives inf (probability 0), as it should
        logits = logits.float()
        picked = logits.gather(2, target.clamp(min=0)[..., None])[..., 0]
        top = logits.amax(dim=-1, keepdim=True)
        nll = logits.sub_(top).exp_().sum(dim=-1).log_() + top[..., 0] - picked
        nll = torch.where(scored, nll, torch.zeros_like(nll))
        return nll.double().sum(dim=1).cpu().numpy()


def _keeps_logits(model: Any) -> bool:
    """Whether the model's forward takes `logits_to_keep` (transformers' causal LMs do)."""
    import inspect

    return "logits_to_keep" in inspect.signature(model.forward).parameters


@dataclass
class Scores:
    """Per document: the summed negative log-likelihood and the number of scored tokens."""
    nll: np.ndarray
    tokens: np.ndarray
    windows: int


def evaluate(model: Any, docs: Sequence[np.ndarray], context: int, stride: int, batch: int,
             device: str, progress: Callable[[int], None] | None = None) -> Scores:
    """Score every document (token arrays that already begin with the separator)."""
    vocab = model.get_input_embeddings().num_embeddings
    top = max((int(d.max()) for d in docs if len(d)), default=0)
    if top >= vocab:
        raise InputError(f"token id {top} is beyond the model's {vocab:,} embeddings: the "
                         "data was tokenized with another tokenizer")
    p = plan([len(d) for d in docs], context, stride)
    nll = np.zeros(len(docs), np.float64)
    tokens = np.zeros(len(docs), np.int64)
    np.add.at(tokens, p.doc, p.end - p.first)
    for s in range(0, len(p.doc), batch):
        sl = slice(s, s + batch)
        inputs = [docs[d][b:e].astype(np.int64) for d, b, e in
                  zip(p.doc[sl], p.begin[sl], p.end[sl], strict=True)]
        sums = score(model, inputs, (p.first[sl] - p.begin[sl]).tolist(), device)
        np.add.at(nll, p.doc[sl], sums)
        if progress is not None:
            progress(int((p.end[sl] - p.first[sl]).sum()))
    return Scores(nll, tokens, len(p.doc))


# --- the whole evaluation ----------------------------------------------------------------------
@dataclass
class PerplexityOptions:
    """What `corpus eval perplexity` (and a pipeline's eval stage) asks."""
    model: str  # a Hugging Face causal-LM folder
    data: str  # a dataset directory of documents, or a token shard folder
    split: str = "test"  # train, validation, test or all
    by: str = "language"  # language, extension or none
    stride: int | None = None  # default: the context (windows do not overlap)
    context: int | None = None  # default: the model's
    batch: int = 8  # windows per forward pass
    max_docs: int | None = None  # per group, the first in the canonical order
    device: str = "auto"
    dtype: str = "auto"
    rule: SplitRule | None = None  # for a dataset directory; None: the default rule


def run(opts: PerplexityOptions, progress: Callable[[int, int], None] | None = None,
        ) -> dict[str, Any]:
    """Load, select, score and aggregate; `progress(done, total)` in scored tokens. The result
    is what `--json` prints (non-finite numbers as the strings "inf" / "nan")."""
    import time

    from corpus.eval import documents
    from corpus.train.prepare import tokenizer_identity

    if opts.batch < 1:
        raise ConfigError(f"--batch must be at least 1, not {opts.batch}")
    if opts.max_docs is not None and opts.max_docs < 1:
        raise ConfigError(f"--max-docs must be at least 1, not {opts.max_docs}")
    check_model_folder(opts.model)
    tok = documents.model_tokenizer(opts.model)
    docs = documents.open_documents(opts.data, tok, opts.split, opts.by, opts.rule,
                                    opts.max_docs)
    device, dtype = choose_device(opts.device, opts.dtype)
    model = load_model(opts.model, device, dtype)
    context = context_of(model, opts.context)
    stride = opts.stride or context
    total = plan([len(d) for d in docs.tokens], context, stride).scored
    done = 0

    def advance(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(done, total)

    advance(0)
    t0 = time.perf_counter()
    s = evaluate(model, docs.tokens, context, stride, opts.batch, device, advance)
    seconds = time.perf_counter() - t0
    groups = docs.groups
    rows = aggregate(groups, s.nll, s.tokens)
    return {
        "model": opts.model, "data": opts.data, "source": docs.source, "split": opts.split,
        "by": opts.by, "architecture": model.config.model_type, "context": context,
        "stride": stride, "device": device, "dtype": dtype, "windows": s.windows,
        "seconds": round(seconds, 3), "tokens_per_s": round(total / max(seconds, 1e-9), 1),
        "groups": [jsonable(r) for r in rows],
        # what `corpus eval compare` checks: the same documents, encoded the same way
        "documents_sha256": documents.digest(docs.table),
        "tokenizer_sha256": tokenizer_identity(tok.json),
        "all": jsonable(summary_row("all", len(groups), float(s.nll.sum()),
                                    int(s.tokens.sum()))),
    }


def jsonable(row: dict[str, Any]) -> dict[str, Any]:
    """inf and nan as strings: JSON has no such numbers."""
    return {k: (str(v) if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in row.items()}
