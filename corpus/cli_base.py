"""What every command shares: the `corpus` group, the consoles, the engine options, and
`main`, where every way a command can end but success becomes one `error:` line. The commands
themselves are in corpus/cli.py (the stage commands) and the corpus/cli_*.py modules."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

import click
from rich.console import Console
from rich.markup import escape

from corpus import __version__
from corpus.cli_options import table_of

console = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)


def engine_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """--scheduler / --workers / --executor / --quiet, shared by every command that computes."""
    @click.option("--scheduler", envvar="DASK_SCHEDULER_ADDRESS", default=None,
                  metavar="ADDRESS", help="Dask scheduler (tcp://host:8786) of an existing "
                  "cluster. Default: a local cluster. Env: DASK_SCHEDULER_ADDRESS.")
    @click.option("--workers", type=click.IntRange(min=1), default=None,
                  help="Worker processes of the local cluster (default: one per core).")
    @click.option("--executor", type=click.Choice(["dask", "local"]), envvar="CORPUS_EXECUTOR",
                  default=None, help="dask (default): a cluster; local: in this process, one "
                  "task after another (small inputs, pdb). Env: CORPUS_EXECUTOR.")
    @click.option("--quiet", is_flag=True, help="No progress bars.")
    @click.option("--log-format", type=click.Choice(["text", "json"]), default="text",
                  show_default=True, help="json: one JSON object per line on stderr (progress "
                  "with documents/s and ETA, stage results), no bars; for batch jobs.")
    @functools.wraps(f)
    def wrapper(*args: Any, scheduler: str | None, workers: int | None, executor: str | None,
                quiet: bool, log_format: str, **kwargs: Any) -> Any:
        from corpus.engine import Engine

        with Engine(scheduler=scheduler, workers=workers, progress=not quiet,
                    log_format=log_format, executor=executor) as engine:
            return f(*args, engine=engine, **kwargs)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="corpus")
def cli() -> None:
    """Turn public source code into a training-ready corpus for code language models."""


def _options(kind: str, cls: type, given: dict[str, Any], where: str,
             split: tuple[str, ...] = (), **extra: Any) -> Any:
    """A stage's Options from its command-line values: the table a config would hold, checked
    by the same code (corpus/stage_options.py)."""
    from corpus import stage_options

    return stage_options.parse(kind, {**extra, **table_of(cls, given, split)}, where)


def _print_stats(url: str) -> None:
    from corpus import stats as st

    st.render(st.collect(url), out)


def main(argv: list[str] | None = None) -> None:
    """Every way a command can end but success is one `error:` line and a non-zero status
    (130 for Ctrl-C, 143 for SIGTERM); tracebacks go to a log file the line names."""
    import logging

    from corpus.failure import Terminated, one_line, raise_on_signals

    # gcsfs logs a traceback per failed retry; the command reports the failure in one line
    logging.getLogger("gcsfs").setLevel(logging.CRITICAL)
    import corpus.cli  # noqa: F401  (registers every command)

    raise_on_signals()
    try:
        cli.main(args=argv, prog_name="corpus", standalone_mode=False)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except click.Abort:
        _fail(*one_line(KeyboardInterrupt()))
    except (Exception, KeyboardInterrupt, Terminated) as e:
        _fail(*one_line(e))


def _fail(message: str, status: int) -> None:
    console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    sys.exit(status)


@cli.group("eval")
def eval_group() -> None:
    """Evaluate a Hugging Face causal-LM folder (a `corpus export` output or any other)."""
