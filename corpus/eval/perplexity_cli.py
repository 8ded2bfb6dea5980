"""`corpus eval perplexity MODEL --data DIR`: PolyCoder's table (language, documents, tokens,
loss, perplexity) for a model folder. Thin: the work is in corpus/eval/perplexity.py and
documents.py."""

from __future__ import annotations

import json
from typing import Any

import click

from corpus.cli_base import console, eval_group, out
from corpus.eval import documents
from corpus.splits import cli_options as split_options


@eval_group.command("perplexity")
@click.argument("model", metavar="MODEL")
@click.option("--data", required=True, metavar="DIR",
              help="A dataset directory of documents (content, language, …), or token shards "
              "made with the model's tokenizer.")
@click.option("--split", type=click.Choice(["test", "validation", "train", "all"]),
              default="test", show_default=True,
              help="Which documents: a split of corpus/splits.py's rule (the one `corpus "
              "shard` uses), or all.")
@click.option("--by", type=click.Choice(list(documents.GROUPINGS)), default="language",
              show_default=True, help="One row per language, per path extension, or one row.")
@click.option("--stride", type=click.IntRange(1), default=None, metavar="N",
              help="A new window every N tokens [default: the context: no overlap].")
@click.option("--context", type=click.IntRange(2), default=None, metavar="N",
              help="Window length [default: the model's context].")
@click.option("--batch", type=click.IntRange(1), default=8, show_default=True,
              help="Windows per forward pass.")
@click.option("--max-docs", type=click.IntRange(1), default=None, metavar="N",
              help="At most N documents per group (the first by a hash of id, repo, path).")
@click.option("--device", default="auto", show_default=True,
              help="auto (CUDA when torch sees a GPU), cpu, cuda or cuda:N.")
@click.option("--dtype", type=click.Choice(["auto", "float32", "bfloat16", "float16"]),
              default="auto", show_default=True,
              help="Weights and activations: auto is float32 on the CPU, bfloat16 on a GPU.")
@split_options
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def perplexity(model: str, data: str, split: str, by: str, stride: int | None,
               context: int | None, batch: int, max_docs: int | None, device: str,
               dtype: str, splits: str | None, valid_fraction: float | None,
               test_fraction: float | None, valid_from: str | None, as_json: bool,
               quiet: bool) -> None:
    """Perplexity per language of a Hugging Face causal-LM folder on held-out documents.

    Each document is <|endoftext|> + its tokens, cut into windows of the context (a new one
    every --stride tokens); every token a window scores counts once; a group's loss is the
    mean negative log-likelihood (nats per token), its perplexity exp(loss). docs/eval.md."""
    from corpus.eval.perplexity import PerplexityOptions, run
    from corpus.splits import rule_of

    asked = (splits, valid_fraction, test_fraction, valid_from)
    rule = rule_of(*asked) if any(a is not None for a in asked) else None
    opts = PerplexityOptions(model, data, split, by, stride, context, batch, max_docs,
                             device, dtype, rule)
    if quiet:
        result = run(opts)
    else:
        with _Bar() as bar:
            result = run(opts, bar.update)
    if as_json:
        click.echo(json.dumps(result, indent=1))
    else:
        render(result)


class _Bar:
    """Scored tokens of total, tokens/s and the time left, on stderr (rich, as the other
    commands' bars)."""

    def __enter__(self) -> _Bar:
        from corpus.log import bar

        self.progress = bar(console, "perplexity", "tokens ")
        self.task: Any = None
        self.progress.start()
        return self

    def update(self, done: int, total: int) -> None:
        if self.task is None:
            self.task = self.progress.add_task("perplexity", total=total, rate="")
        elapsed = self.progress.tasks[0].elapsed or 0.0
        rate = f"{done / elapsed:,.0f}/s" if elapsed > 0 else ""
        self.progress.update(self.task, completed=done, rate=rate)

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()


def _num(v: Any, fmt: str) -> str:
    return v if isinstance(v, str) else format(v, fmt)


def render(r: dict[str, Any]) -> None:
    """The table, then how it was computed."""
    from rich.table import Table

    name = {"language": "language", "extension": "extension", "none": ""}[r["by"]]
    t = Table(name, "documents", "tokens", "loss", "perplexity", box=None, padding=(0, 2))
    rows = r["groups"] + ([r["all"]] if len(r["groups"]) > 1 else [])
    for i, g in enumerate(rows):
        t.add_row(g["group"], f"{g['documents']:,}", f"{g['tokens']:,}",
                  _num(g["loss"], ".4f"), _num(g["perplexity"], ",.3f"),
                  end_section=i == len(r["groups"]) - 1 and len(rows) > len(r["groups"]))
    out.print(f"[bold]{r['model']}[/] on {r['data']} ({r['split']} split, from its "
              f"{r['source']})", highlight=False)
    out.print(t)
    out.print(f"{r['architecture']}, context {r['context']}, stride {r['stride']}: "
              f"{r['windows']:,} windows, {r['all']['tokens']:,} tokens scored in "
              f"{r['seconds']:.1f} s ({r['tokens_per_s']:,.0f} tokens/s, {r['device']}, "
              f"{r['dtype']}); loss in nats per scored token", highlight=False)
    if any(g["perplexity"] == "inf" for g in rows):
        out.print("inf: a scored token has probability 0 under the model (a logit of -inf), "
                  "or exp(loss) overflows a float: that group's perplexity is infinite",
                  highlight=False)
    if any(g["loss"] == "nan" for g in rows):
        out.print("nan: the model's logits hold NaN (an overflow in its dtype? try --dtype "
                  "float32)", highlight=False)
