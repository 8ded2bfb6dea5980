"""`corpus eval perplexity`, `corpus eval humaneval` and `corpus eval compare`: a model folder's
numbers, and several side by side. Thin, like cli.py: the work is in corpus/eval/."""

from __future__ import annotations

from corpus.cli import cli


@cli.group("eval")
def eval_group() -> None:
    """Evaluate a Hugging Face causal-LM folder (a `corpus export` output or any other)."""


# importing them registers the commands
from corpus.eval import compare_cli, humaneval_cli, perplexity_cli  # noqa: E402,F401
