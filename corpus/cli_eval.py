"""`corpus eval perplexity`, `corpus eval humaneval` and `corpus eval compare`: a model folder's
numbers, and several side by side. Thin, like cli.py: the commands are in corpus/eval/*_cli.py
(on the `eval` group of corpus/cli_base.py), the work in corpus/eval/."""

from __future__ import annotations

from corpus.cli_base import eval_group
from corpus.eval import compare_cli, humaneval_cli, perplexity_cli

__all__ = ["compare_cli", "eval_group", "humaneval_cli", "perplexity_cli"]
