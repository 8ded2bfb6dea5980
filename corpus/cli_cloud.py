"""The cloud commands' wiring: BigQuery extraction (called by `corpus extract --engine
bigquery`) and `corpus push`. Thin, like cli.py: the work is in corpus/extract and
corpus/publish."""

from __future__ import annotations

from typing import Any

import click
from rich.markup import escape

from corpus.cli_base import _print_stats, cli, console, out
from corpus.splits import cli_options as split_options


def extract_bigquery(query: str, params: dict[str, str], out_dir: str | None,
                      project: str | None, export_url: str | None, export_format: str,
                      max_bytes: int, dataset: str, location: str, deadline: float,
                      dry_run: bool, overwrite: bool, engine: Any,
                      repos_table: str | None = None) -> None:
    """Dry run and gate, query into a table, export to GCS, read the export with gcsfs."""
    from corpus.extract.bigquery import BigQueryExtract, BigQueryOptions
    from corpus.extract.export_job import ExportReadJob, ReadApiJob
    from corpus.io import DatasetDir

    opts = BigQueryOptions(query=query, export=export_url, project=project, params=params,
                           export_format=export_format, max_bytes_billed=max_bytes,
                           dataset=dataset, location=location, deadline_s=deadline,
                           repos_table=repos_table)
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
@click.option("--repo-id", required=True, metavar="ORG/NAME", help="Hub repository.")
@click.option("--type", "repo_type", type=click.Choice(["dataset", "model"]), default="dataset",
              show_default=True, help="dataset: a dataset directory or a `corpus shard "
              "--format parquet` output; model: a Hugging Face model folder.")
@click.option("--private", is_flag=True, help="Create the repository private.")
@split_options
@click.option("--split-valid", type=click.FloatRange(0, 1, max_open=True), default=None,
              metavar="F", help="Deprecated: the same as --valid-fraction.")
@click.option("--shard-size", default=None, metavar="SIZE",
              help="Content bytes per Parquet shard [default: 500MB].")
@click.option("--staging", default=None, metavar="FOLDER",
              help="Keep the Hub layout here; a re-run reuses it. Default: a temp folder.")
@click.option("--message", default=None, help="Commit message.")
@click.option("--deadline", type=click.FloatRange(1), default=60.0, show_default=True,
              metavar="SECONDS", help="Timeout of each connection, read and write.")
def push(directory: str, repo_id: str, repo_type: str, private: bool, splits: str | None,
         valid_fraction: float | None, test_fraction: float | None, valid_from: str | None,
         split_valid: float | None, shard_size: str | None, staging: str | None,
         message: str | None, deadline: float) -> None:
    """Upload a dataset directory to the Hugging Face Hub: Parquet shards under data/ (split
    by the rule of `corpus shard`) and a dataset card with its licenses, languages and every
    stage's statistics; a `corpus shard --format parquet` output as it is; with --type model,
    a model folder. The token comes from HF_TOKEN or `hf auth login`."""
    from corpus.errors import ConfigError
    from corpus.publish.push import PushOptions
    from corpus.publish.push import push as do_push
    from corpus.splits import rule_of
    from corpus.units import parse_size

    say = lambda m: console.print(escape(m), highlight=False)  # noqa: E731
    if split_valid is not None:
        if valid_fraction is not None:
            raise ConfigError("--split-valid is the deprecated name of --valid-fraction: "
                              "give only --valid-fraction")
        say("--split-valid is deprecated: use --valid-fraction (the split is by a hash of "
            "the document id now, the rule of `corpus shard`)")
        valid_fraction = split_valid
    asked = [splits, valid_fraction, test_fraction, valid_from, shard_size, staging]
    if repo_type == "model" and any(v is not None for v in asked):
        raise ConfigError("--splits, --valid-fraction, --test-fraction, --valid-from, "
                          "--shard-size and --staging are for --type dataset only")
    rule = None
    if any(v is not None for v in (splits, valid_fraction, test_fraction, valid_from)):
        rule = rule_of(splits, valid_fraction, test_fraction, valid_from)
    opts = PushOptions(repo_id, private, rule, parse_size(shard_size) if shard_size else None,
                       staging, message, deadline, repo_type)
    result = do_push(directory, opts, say=say)
    for split, v in result.get("splits", {}).items():
        out.print(f"{split}: {v['rows']:,} rows in {v['shards']} shards")
    out.print(result["url"])
