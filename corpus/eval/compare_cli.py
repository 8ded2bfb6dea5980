"""`corpus eval compare A B …`: evaluated models side by side, the first as the baseline (an
ablation's last step, docs/eval.md). Thin: the work is in compare.py."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from corpus.cli_base import eval_group, out

if TYPE_CHECKING:
    from corpus.eval.compare import Comparison


@eval_group.command("compare")
@click.argument("evaluations", nargs=-1, required=True, metavar="EVAL EVAL [EVAL …]")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def compare(evaluations: tuple[str, ...], as_json: bool) -> None:
    """Perplexity per language and pass@k of several evaluations, side by side.

    Each EVAL is an eval stage's folder (its eval.json), a `corpus eval perplexity --json`
    output file, or a `corpus eval humaneval` --out folder. The first is the baseline: a ratio
    below 1 is a lower (better) perplexity. Perplexities measured on different documents are
    refused."""
    from corpus.eval import compare as cmp

    c = cmp.compare([cmp.load(e) for e in evaluations])
    if as_json:
        click.echo(json.dumps(cmp.as_json(c), indent=1))
        return
    render(c)


def _fmt(v: float | None, spec: str) -> str:
    return "—" if v is None else format(v, spec)


def render(c: Comparison) -> None:
    from rich.table import Table

    from corpus.eval.compare import ratios, shown_groups

    names = [f"[{i}] {n}" for i, n in enumerate(c.names)]
    for i, n in enumerate(names):
        out.print(n + ("  (baseline)" if i == 0 else ""), highlight=False)
    if c.perplexity:
        t = Table("group", "tokens", *(f"ppl [{i}]" for i in range(len(names))),
                  *(f"[{i}]/[0]" for i in range(1, len(names))), box=None, padding=(0, 2))
        groups = shown_groups(c)
        for g in groups:
            vs = c.perplexity[g]
            t.add_row(g, f"{c.tokens[g]:,}", *(_fmt(v, ",.3f") for v in vs),
                      *(_fmt(r, ".3f") for r in ratios(vs)[1:]),
                      end_section=len(groups) > 1 and groups[-1] == "all" and g == groups[-2])
        out.print(t)
    if c.pass_at_k:
        t = Table("HumanEval", *(f"[{i}]" for i in range(len(names))), box=None,
                  padding=(0, 2))
        for k, vs in c.pass_at_k.items():
            t.add_row(k, *(_fmt(v, ".4f") for v in vs))
        out.print(t)
    for note in c.notes:
        out.print(f"note: {note}", highlight=False)
