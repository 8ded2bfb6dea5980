"""The cloud commands' wiring: BigQuery extraction (called by `corpus extract --engine
bigquery`) and `corpus push`. Thin, like cli.py: the work is in corpus/extract and
corpus/publish."""

from __future__ import annotations

from typing import Any

import click
from rich.markup import escape

from corpus.cli import _print_stats, cli, console, out


def extract_bigquery(query: str, params: dict[str, str], out_dir: str | None,
                      project: str | None, export_url: str | None, export_format: str,
                      max_bytes: int, dataset: str, location: str, deadline: float,
                      dry_run: bool, overwrite: bool, engine: Any) -> None:
    """Dry run and gate, query into a table, export to GCS, read the export with gcsfs."""
    from corpus.extract.bigquery import BigQueryExtract, BigQueryOptions
    from corpus.extract.export_job import ExportReadJob, ReadApiJob
    from corpus.io import DatasetDir

    opts = BigQueryOptions(query=query, export=export_url, project=project, params=params,
                           export_format=export_format, max_bytes_billed=max_bytes,
                           dataset=dataset, location=location, deadline_s=deadline)
    bq = BigQueryExtract(opts, say=lambda m: console.print(escape(m), highlight=False))
    if dry_run:
        bq.gate(bq.dry_run())
        return
    assert out_dir is not None
    if export_url:
        export = bq.run()
        job: Any = ExportReadJob(export, DatasetDir(out_dir), query)
    else:  # no bucket: the result table through the Storage Read API, a stream per partition
        table, rows = bq.table_only()
        job = ReadApiJob(table, rows, bq.fingerprint, DatasetDir(out_dir), query,
                         streams=2 * engine.n_workers())
    engine.run(job, overwrite=overwrite)
    _print_stats(out_dir)


@cli.command()
@click.argument("directory", metavar="DIR")
@click.option("--repo-id", required=True, metavar="ORG/NAME", help="Hub dataset repository.")
@click.option("--private", is_flag=True, help="Create the repository private.")
@click.option("--split-valid", type=float, default=None, metavar="FRACTION",
              help="Documents for a validation split, chosen by a hash of repo_name and path "
              "(the same ones on every run).")
@click.option("--valid-from", default=None, metavar="FILE",
              help="Repositories (repo_name, one per line) whose files form the validation "
              "split.")
@click.option("--shard-size", default="500MB", show_default=True, metavar="SIZE",
              help="Content bytes per Parquet shard.")
@click.option("--staging", default=None, metavar="FOLDER",
              help="Keep the Hub layout here; a re-run reuses it. Default: a temp folder.")
@click.option("--message", default=None, help="Commit message.")
@click.option("--deadline", type=click.FloatRange(1), default=60.0, show_default=True,
              metavar="SECONDS", help="Timeout of each connection, read and write.")
def push(directory: str, repo_id: str, private: bool, split_valid: float | None,
         valid_from: str | None, shard_size: str, staging: str | None,
         message: str | None, deadline: float) -> None:
    """Upload a dataset directory to the Hugging Face Hub: Parquet shards under data/ and a
    dataset card with its licenses, languages and every stage's statistics. The token comes
    from HF_TOKEN or `hf auth login`."""
    from corpus.publish.layout import LayoutOptions
    from corpus.publish.push import PushOptions
    from corpus.publish.push import push as do_push
    from corpus.units import parse_size

    if split_valid is not None and valid_from is not None:
        raise click.UsageError("choose one of --split-valid and --valid-from")
    opts = PushOptions(repo_id, private, LayoutOptions(split_valid, valid_from,
                                                       parse_size(shard_size)),
                       staging, message, deadline)
    result = do_push(directory, opts, say=lambda m: console.print(escape(m), highlight=False))
    for split, v in result["splits"].items():
        out.print(f"{split}: {v['rows']:,} rows in {v['shards']} shards")
    out.print(result["url"])
