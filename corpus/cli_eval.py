"""`corpus eval perplexity` and `corpus eval humaneval`: a model folder's numbers. Thin, like
cli.py: the work is in corpus/eval/."""

from __future__ import annotations

from corpus.cli import cli


@cli.group("eval")
def eval_group() -> None:
    """Evaluate a Hugging Face causal-LM folder (a `corpus export` output or any other)."""


from corpus.eval import humaneval_cli, perplexity_cli  # noqa: E402,F401  (register commands)
