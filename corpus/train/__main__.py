"""`python -m corpus.train …`: the per-process entrypoint that launchers start
(`torchrun -m corpus.train`, `deepspeed --module corpus.train`)."""

from __future__ import annotations

import sys
from typing import Any

import click
from rich.console import Console
from rich.markup import escape

from corpus.errors import CorpusError
from corpus.train import launch


@click.command()
@launch.options
def main(**kw: Any) -> None:
    """Train a GPT-2 on token shards with DeepSpeed (one process of a launch)."""
    launch.run(launch.args_from(kw))


if __name__ == "__main__":
    try:
        main.main(standalone_mode=False)
    except CorpusError as e:
        Console(stderr=True).print(f"[bold red]error:[/] {escape(str(e))}", highlight=False)
        sys.exit(1)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
