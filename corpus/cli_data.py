"""`corpus stats` (what any output holds) and `corpus migrate` (old-layout outputs to the
current one). Thin, like cli.py: the work is in corpus/stats_records.py and corpus/migrate.py."""

from __future__ import annotations

import click

from corpus.cli_base import cli, out


@cli.command()
@click.argument("directory", metavar="PATH")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def stats(directory: str, as_json: bool) -> None:
    """What an output holds: a dataset directory's rows, bytes, languages, licenses and removal
    reasons; token or Parquet shards; a tokenizer, train run, model or eval folder; a run root
    (one line per stage)."""
    from corpus import stats_records as sr

    s = sr.collect(directory)
    if as_json:
        out.print_json(sr.as_json(s))
    else:
        sr.render(s, out)


@cli.command()
@click.argument("folders", nargs=-1, required=True, metavar="DIR...")
def migrate(folders: tuple[str, ...]) -> None:
    """Convert outputs of the old layout (documents at the top of the folder) to the current
    one (documents under data/, a dataset card), in place. A run root converts every stage
    folder in it; a folder already converted is left as it is."""
    from corpus.migrate import migrate as convert

    for folder in folders:
        for url, what in convert(folder):
            out.print(f"{url}: {what}", highlight=False)
