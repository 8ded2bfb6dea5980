"""`corpus eval humaneval`: pass@k of a model folder (or of a samples file) on HumanEval. Thin,
like cli.py: the work is in humaneval.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from corpus.cli_base import console, eval_group, out

#: Named decoding settings. Codex (Chen et al. 2021, "Evaluating Large Language Models Trained
#: on Code"): nucleus sampling with top-p 0.95, T = 0.2 the best temperature it found for
#: pass@1 and T = 0.8 for pass@100, 200 samples per problem. CodeParrot's
#: scripts/human_eval.py defaults: T = 0.2, top-p 0.95, 256 new tokens, 200 samples, batches
#: of 10, seed 1, reporting pass@1, 10 and 100.
PRESETS: dict[str, dict[str, Any]] = {
    "pass@1": {"temperature": 0.2, "top_p": 0.95, "n": 200, "k": "1"},
    "pass@100": {"temperature": 0.8, "top_p": 0.95, "n": 200, "k": "100"},
    "codeparrot": {"temperature": 0.2, "top_p": 0.95, "n": 200, "k": "1,10,100",
                   "max_new_tokens": 256, "batch": 10, "seed": 1},
}
DEFAULTS: dict[str, Any] = {"temperature": 0.2, "top_p": 0.95, "n": 200, "k": None,
                            "max_new_tokens": 300, "batch": 32, "seed": 0}


@eval_group.command("humaneval")
@click.argument("model", required=False, metavar="[MODEL]")
@click.option("--samples", metavar="FILE.jsonl", default=None,
              help="Score these completions (human-eval's format: task_id, completion per "
              "line) instead of sampling a MODEL.")
@click.option("--problems", "problem_file", metavar="FILE.jsonl", default=None,
              help="HumanEval-format problems (task_id, prompt, entry_point, test; .gz too). "
              "Default: the 164 of the human-eval package.")
@click.option("--first", "first", type=click.IntRange(1), default=None, metavar="N",
              help="Only the first N problems: a quick look (pass@k over a subset is not "
              "HumanEval's figure).")
@click.option("--out", "out_dir", metavar="DIR", default=None,
              help="Where samples.jsonl, results.jsonl and summary.json go; a run killed "
              "resumes from it. Default: out/eval/humaneval/<MODEL or samples file name>.")
@click.option("--preset", type=click.Choice(list(PRESETS)), default=None,
              help="Named settings: pass@1 (T 0.2) and pass@100 (T 0.8), Codex's; codeparrot "
              "(CodeParrot's human_eval.py). Options given as well win.")
@click.option("--n", type=click.IntRange(1), default=None, help="Samples per problem [200].")
@click.option("--k", "k", default=None, metavar="K,K",
              help="The ks of pass@k [those of 1,10,100 that n allows].")
@click.option("--temperature", type=click.FloatRange(0), default=None,
              help="Sampling temperature, 0 for greedy [0.2].")
@click.option("--top-p", type=click.FloatRange(0, 1, min_open=True), default=None,
              help="Nucleus sampling [0.95].")
@click.option("--max-new-tokens", type=click.IntRange(1), default=None,
              help="Tokens per completion at most [300].")
@click.option("--batch", type=click.IntRange(1), default=None,
              help="Sequences per generate call [32].")
@click.option("--seed", type=int, default=None,
              help="Seed; sample i of a task is seeded by (seed, task, i) [0].")
@click.option("--timeout", type=click.FloatRange(0, min_open=True), default=3.0,
              show_default=True, help="Seconds each completion's tests may run.")
@click.option("--workers", type=click.IntRange(1), default=None,
              help="Completions executed at once (default: one per core).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def humaneval(model: str | None, samples: str | None, problem_file: str | None,
              first: int | None, out_dir: str | None, preset: str | None, as_json: bool,
              quiet: bool, timeout: float, workers: int | None, **given: Any) -> None:
    """Sample completions of HumanEval's prompts from MODEL (a local Hugging Face folder), run
    each against its problem's tests in a sandbox (own process, timeout, memory limit, private
    /tmp, no network: docs/eval.md) and report pass@k (Chen et al.'s unbiased estimator)."""
    from corpus.eval.humaneval import HumanEvalOptions, evaluate
    from corpus.eval.passk import parse_ks

    s = {**DEFAULTS, **PRESETS.get(preset or "", {}),
         **{k: v for k, v in given.items() if v is not None}}
    opts = HumanEvalOptions(
        n=s["n"], ks=parse_ks(s["k"]) if s["k"] else None, temperature=s["temperature"],
        top_p=s["top_p"], max_new_tokens=s["max_new_tokens"], batch=s["batch"],
        seed=s["seed"], timeout=timeout, workers=workers, progress=not quiet and not as_json)
    name = Path(model or samples or "samples").name.removesuffix(".jsonl")
    target = out_dir or str(Path("out") / "eval" / "humaneval" / name)
    if first is not None:
        from corpus.eval import problems

        problem_file = problems.first(problem_file, first, Path(target))
    summary = evaluate(target, model, samples, problem_file, opts, console)
    if as_json:
        out.print_json(json.dumps(summary))
        return
    print_summary(summary, target)


def print_summary(summary: dict[str, Any], target: str) -> None:
    from rich.table import Table

    p = summary["problems"]
    table = Table(title=f"HumanEval: {p} problem{'s' * (p != 1)}, n = {summary['n']}")
    table.add_column("k", justify="right")
    table.add_column("pass@k", justify="right")
    for k in summary["k"]:
        table.add_row(str(k), f"{summary[f'pass@{k}']:.4f}")
    out.print(table)
    counts = ", ".join(f"{v} {k}" for k, v in sorted(summary["outcomes"].items()))
    out.print(f"{summary['samples']} samples: {counts}", highlight=False)
    if summary["prompts_truncated"]:
        out.print(f"{len(summary['prompts_truncated'])} prompts lost their start to fit the "
                  "model's context", highlight=False)
    out.print(f"summary: {Path(target) / 'summary.json'}", highlight=False)
