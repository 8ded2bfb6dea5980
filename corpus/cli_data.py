"""`corpus stats` (what any output holds), `corpus migrate` (old-layout outputs to the
current one) and `corpus import` (an existing corpus as a dataset). Thin, like cli.py: the work
is in corpus/stats_records.py, corpus/migrate.py and corpus/imports/."""

from __future__ import annotations

from typing import Any

import click

from corpus.cli_base import _print_stats, cli, engine_options, out


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


def _pairs(items: tuple[str, ...], flag: str) -> list[tuple[str, str]]:
    pairs = []
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise click.UsageError(f"{flag} {item!r}: expected NAME=VALUE")
        pairs.append((name.strip(), value))
    return pairs


@cli.command("import")
@click.argument("source", metavar="SRC")
@click.argument("out_dir", metavar="OUT")
@click.option("--column", "columns", multiple=True, metavar="COLUMN=FIELD",
              help="Where a document column comes from, e.g. content=text or "
              "repo_name=meta.repo (dotted: inside objects). Repeatable.")
@click.option("--where", "wheres", multiple=True, metavar="FIELD=VALUE",
              help="Keep only records with this value, e.g. meta.pile_set_name=Github; "
              "repeat a FIELD to allow several values. Others are removed as not-selected.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output.")
@engine_options
def import_(source: str, out_dir: str, columns: tuple[str, ...], wheres: tuple[str, ...],
            overwrite: bool, engine: Any) -> None:
    """Import an existing corpus (JSON lines, .json.gz, .jsonl.zst, Parquet, a datasets
    folder) as a dataset directory: ids are git blob sha1s, language from the extension,
    every record kept or removed with a reason."""
    from corpus.imports.job import ImportJob, ImportOptions
    from corpus.io import DatasetDir

    where: dict[str, list[str]] = {}
    for name, value in _pairs(wheres, "--where"):
        where.setdefault(name, []).append(value)
    opts = ImportOptions(source, dict(_pairs(columns, "--column")), where)
    engine.run(ImportJob(opts, DatasetDir(out_dir)), overwrite=overwrite)
    _print_stats(out_dir)
