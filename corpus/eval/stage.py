"""A pipeline's `eval` stage: the numbers of the model a run trained, so a pipeline ends with
them and `corpus report` shows them. Its input is a model folder (an `export` stage); it writes
`eval.json` (perplexity per group, pass@k, a few completions with their outcomes) and, for
HumanEval, the resumable samples and results under `humaneval/`.

Reused when the model, the evaluated data and the options are the same (eval.json records
their identity); a kill mid-way resumes HumanEval with its missing samples only.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field

from corpus.errors import ConfigError

RECORD = "eval.json"
#: what a record holds; a record of another version is recomputed, not reused (2: perplexity
#: records the digests of its documents and tokenizer, which `corpus eval compare` checks)
VERSION = 2


@dataclass
class EvalOptions:
    #: perplexity over this dataset directory or token shard folder (a stage name resolves to
    #: its output); None: no perplexity
    data: str | None = None
    split: str = "test"  # train, validation, test or all
    by: str = "language"  # language, extension or none
    splits: str | None = None  # a preset of corpus/splits.py (datasets only)
    valid_fraction: Annotated[float, Field(ge=0, lt=1)] | None = None
    test_fraction: Annotated[float, Field(ge=0, lt=1)] | None = None
    max_docs: Annotated[int, Field(ge=1)] | None = None  # per group
    stride: Annotated[int, Field(ge=1)] | None = None
    humaneval: bool = False
    #: the first N problems of the file (HumanEval's 164 by default): a quick look
    problems: Annotated[int, Field(ge=1)] | None = None
    problem_file: str | None = None
    n: Annotated[int, Field(ge=1)] = 200
    k: list[Annotated[int, Field(ge=1)]] = field(default_factory=list)
    temperature: Annotated[float, Field(ge=0)] = 0.2
    top_p: Annotated[float, Field(gt=0, le=1)] = 0.95
    max_new_tokens: Annotated[int, Field(ge=1)] = 300
    batch: Annotated[int, Field(ge=1)] = 32
    seed: int = 0
    timeout: Annotated[float, Field(gt=0)] = 3.0


def _identity(model: str, opts: EvalOptions) -> dict[str, Any]:
    from corpus.eval.humaneval import model_identity
    from corpus.io import DatasetDir

    data = None
    if opts.data:
        m = DatasetDir(opts.data).manifest() or {}
        data = m.get("fingerprint") or m.get("content_hash")
    return {"version": VERSION, "model": model_identity(model), "data": data,
            "options": asdict(opts)}


def _problem_file(opts: EvalOptions, out: Path) -> str | None:
    """The problems to run: the file asked for, or its first `problems` rows written beside."""
    from corpus.eval import problems

    if opts.problems is None:
        return opts.problem_file
    return problems.first(opts.problem_file, opts.problems, out)


def run(model: str, out_dir: str, opts: EvalOptions) -> dict[str, Any]:
    from corpus.lock import writer_lock

    if not opts.data and not opts.humaneval:
        raise ConfigError("an eval stage needs `data` (perplexity) or `humaneval = true`")
    with writer_lock(out_dir):
        return _run(model, Path(out_dir), opts)


def _run(model: str, out: Path, opts: EvalOptions) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    identity = _identity(model, opts)
    record = out / RECORD
    if record.exists() and json.loads(record.read_text()).get("identity") == identity:
        return {**json.loads(record.read_text()), "stage": "eval", "reused": True}
    record.unlink(missing_ok=True)
    result: dict[str, Any] = {"stage": "eval", "identity": identity, "model": model}
    if opts.data:
        from corpus.eval.perplexity import PerplexityOptions
        from corpus.eval.perplexity import run as perplexity
        from corpus.splits import rule_of

        rule = None if (opts.splits, opts.valid_fraction, opts.test_fraction) == \
            (None, None, None) else rule_of(opts.splits, opts.valid_fraction, opts.test_fraction)
        ppl = perplexity(PerplexityOptions(model, opts.data, opts.split, opts.by, opts.stride,
                                           max_docs=opts.max_docs, rule=rule))
        result["perplexity"] = {**ppl, "rows": ppl["groups"]}
    if opts.humaneval:
        from corpus.eval.humaneval import HumanEvalOptions, evaluate

        he = evaluate(str(out / "humaneval"), model=model,
                      problem_file=_problem_file(opts, out),
                      opts=HumanEvalOptions(n=opts.n, ks=tuple(opts.k) or None,
                                            temperature=opts.temperature, top_p=opts.top_p,
                                            max_new_tokens=opts.max_new_tokens,
                                            batch=opts.batch, seed=opts.seed,
                                            timeout=opts.timeout, progress=False))
        result["humaneval"] = {**{k: v for k, v in he.items() if k != "per_task"},
                               "pass_at_k": {f"pass@{k}": he[f"pass@{k}"] for k in he["k"]},
                               "temperature": opts.temperature, "top_p": opts.top_p,
                               "examples": examples(out / "humaneval")}
    record.write_text(json.dumps(result, indent=1, default=str) + "\n")
    return result


def examples(folder: Path, count: int = 4) -> list[dict[str, Any]]:
    """A few completions with their outcomes, passed ones first."""
    from corpus.eval.humaneval import read_jsonl

    results = {(r["task_id"], r["index"]): r for r in read_jsonl(folder / "results.jsonl")}
    rows = [{**s, "passed": results[k]["passed"], "outcome": results[k]["outcome"]}
            for s in read_jsonl(folder / "samples.jsonl")
            if (k := (s["task_id"], s["index"])) in results]
    rows.sort(key=lambda r: (not r["passed"], r["task_id"], r["index"]))
    return rows[:count]


def describe(r: dict[str, Any]) -> str:
    parts = []
    if "perplexity" in r:
        a = r["perplexity"]["all"]
        ppl = a["perplexity"]
        shown = f"{ppl:.4g}" if isinstance(ppl, int | float) else str(ppl)  # "inf" as JSON has it
        parts.append(f"perplexity {shown} over {a['tokens']:,} tokens of "
                     f"{len(r['perplexity']['rows'])} group(s)")
    if "humaneval" in r:
        he = r["humaneval"]
        parts.append(", ".join(f"{k} {v:.3f}" for k, v in he["pass_at_k"].items())
                     + f" on {he['problems']} HumanEval problems (n = {he['n']})")
    return "eval: " + "; ".join(parts)
