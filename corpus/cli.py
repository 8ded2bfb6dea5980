"""The `corpus` command line: thin wrappers over the library, the stage commands here and the
others in the corpus/cli_*.py modules it imports (which register them on the group of
corpus/cli_base.py). Errors a user can fix are printed as one line and exit 1, never as a
traceback."""

from __future__ import annotations

from typing import Any

import click

from corpus import (  # register their commands
    cli_cloud,
    cli_data,
    cli_eval,
    cli_model,
    cli_run,
    cli_train,
)
from corpus.cli_base import _options, _print_stats, cli, console, engine_options, main, out
from corpus.cli_options import only_for, options_from, table_of
from corpus.contamination.stage import DecontamOptions
from corpus.dedup.exact import ExactOptions
from corpus.dedup.near import MinHashOptions
from corpus.extract.duckdb_job import ExtractOptions
from corpus.github.build import GithubTablesOptions
from corpus.licenses.policy import LicenseOptions
from corpus.scrub.redact import ScrubOptions


@cli.command("github-tables")
@click.argument("sources", nargs=-1, metavar="[SRC]...")
@click.option("--out", "out_dir", required=True, metavar="TABLES",
              help="Folder for files.parquet, contents.parquet, licenses.parquet (and, with "
              "--repos, repos.parquet).")
@options_from(GithubTablesOptions, exclude=("sources",),
              rename={"site_packages_dirs": "site-packages-dir"},
              metavars={"site_packages_dirs": "DIR", "include": "PATTERN",
                        "exclude": "PATTERN"})
@click.option("--overwrite", is_flag=True, help="Replace an existing output.")
@engine_options
def github_tables(sources: tuple[str, ...], out_dir: str, overwrite: bool, engine: Any,
                  **given: Any) -> None:
    """Build GitHub-shaped tables (bigquery-public-data.github_repos) from local code.

    Each SRC is a folder whose child folders are repositories (or a repository itself if it
    has a .git). The license comes from LICENSE/COPYING files, or for distributions from
    their metadata."""
    from corpus.github.build import GithubTablesJob
    from corpus.io import DatasetDir

    opts = _options("github-tables", GithubTablesOptions, given, "corpus github-tables",
                    sources=list(sources))
    engine.run(GithubTablesJob(opts, DatasetDir(out_dir)), overwrite=overwrite)
    _print_stats(out_dir)


@cli.command()
@click.option("--engine", "engine_name", type=click.Choice(["duckdb", "bigquery"]),
              default="duckdb", show_default=True,
              help="Where the SQL runs: duckdb locally over --tables, or BigQuery.")
@click.option("--tables", default=None, metavar="TABLES",
              help="duckdb: folder of files/contents/licenses tables (corpus github-tables).")
@click.option("--query", required=True, metavar="FILE", help="BigQuery SQL template.")
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE",
              help="Query parameter; arrays as a,b,c or JSON. Repeatable.")
@click.option("--out", "out_dir", metavar="DIR", help="Output dataset directory (or gs://…).")
@options_from(ExtractOptions, only=("partition_bytes",), rename={"partition_bytes":
                                                                  "partition-size"})
@click.option("--project", default=None, envvar="GOOGLE_CLOUD_PROJECT", metavar="PROJECT",
              help="bigquery: billing project. Env: GOOGLE_CLOUD_PROJECT.")
@click.option("--export", "export_url", default=None, metavar="gs://BUCKET/PREFIX",
              help="bigquery: where the result is exported (re-runs reuse a finished export). "
              "Without it, the result table is read with the Storage Read API.")
@click.option("--export-format", type=click.Choice(["parquet", "json"]), default="parquet",
              show_default=True, help="bigquery: Parquet, or gzip JSON lines.")
@click.option("--max-bytes-billed", default="1TiB", show_default=True, metavar="SIZE",
              help="bigquery: refuse (and have BigQuery refuse) queries scanning more.")
@click.option("--dataset", "bq_dataset", default="corpus_extract", show_default=True,
              help="bigquery: dataset of the billing project for the result table.")
@click.option("--location", default="US", show_default=True,
              help="bigquery: location of the jobs and the result dataset.")
@click.option("--deadline", type=click.FloatRange(1), default=60.0, show_default=True,
              metavar="SECONDS", help="bigquery: how long each API call may retry.")
@click.option("--repos-table", default=None, metavar="PROJECT.DATASET.TABLE",
              help="bigquery: the repos table a template reads (github_repos has none): a "
              "loaded SEART export, or what queries/bigquery_repos.sql makes.")
@click.option("--dry-run", is_flag=True,
              help="Print the estimate (duckdb: with the transpiled SQL); run nothing.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output.")
@engine_options
def extract(engine_name: str, tables: str | None, query: str, params: tuple[str, ...],
            out_dir: str | None, partition_bytes: str | None, project: str | None,
            export_url: str | None, export_format: str, max_bytes_billed: str,
            bq_dataset: str, location: str, deadline: float, repos_table: str | None,
            dry_run: bool, overwrite: bool, engine: Any) -> None:
    """Run a query template over GitHub-shaped tables into a dataset directory."""
    from corpus.cli_options import build
    from corpus.extract.template import parse_assignments
    from corpus.io import DatasetDir
    from corpus.units import format_bytes, parse_size

    if not dry_run and not out_dir:
        raise click.UsageError("--out is required (or use --dry-run)")
    if engine_name == "bigquery":
        from corpus.cli_cloud import extract_bigquery

        extract_bigquery(query, parse_assignments(list(params)), out_dir, project, export_url,
                          export_format, parse_size(max_bytes_billed), bq_dataset, location,
                          deadline, dry_run, overwrite, engine, repos_table)
        return
    from corpus.extract.duckdb_job import ExtractJob, describe

    if not tables:
        raise click.UsageError("--tables is required with --engine duckdb")
    if repos_table:
        raise click.UsageError("--repos-table is for --engine bigquery: locally the repos table "
                               "is TABLES/repos.parquet (corpus github-tables --repos FILE)")
    opts = build(ExtractOptions, {"partition_bytes": partition_bytes}, "corpus extract",
                 extra={"query": query, "tables": tables,
                        "params": parse_assignments(list(params))})
    job = ExtractJob(opts, DatasetDir(out_dir or "unused-by-dry-run"))
    if dry_run:
        d = describe(job)
        out.print(d["sql"], markup=False, highlight=False)
        console.print(f"-- estimate: {d['rows']:,} rows, {format_bytes(d['content_bytes'])} "
                      f"of content, {d['partitions']} partitions")
        for name, t in d["tables_scanned"].items():
            console.print(f"-- scans {name}: {t['rows']:,} rows, "
                          f"{format_bytes(t['bytes'])} uncompressed")
        return
    engine.run(job, overwrite=overwrite)
    _print_stats(out_dir)


@cli.command("filter")
@click.argument("input_dir", metavar="IN")
@click.argument("out_dir", metavar="OUT")
@click.option("--pipeline", "config", required=True, metavar="CONFIG.toml",
              help="Pipeline config whose filter stage gives the rules (pipelines/codex.toml, "
              "codeparrot.toml, polycoder.toml).")
@click.option("--stage", "stage_name", default=None, metavar="NAME",
              help="Which filter stage of the config, if it has several.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output.")
@engine_options
def filter_(input_dir: str, out_dir: str, config: str, stage_name: str | None,
            overwrite: bool, engine: Any) -> None:
    """Quality filters: each rule's metric becomes a column; dropped documents go to
    OUT/removed/ with the rule and value that dropped them."""
    from corpus import pipeline
    from corpus.io import DatasetDir

    # only the filter stage is used: the files the other stages read are not looked at
    spec = pipeline.stage_of(pipeline.load(config, files=False), "filter", stage_name)
    pipeline.KINDS["filter"](engine, spec, input_dir, DatasetDir(out_dir), overwrite=overwrite)
    _print_stats(out_dir)


@cli.command("licenses")
@click.argument("input_dir", metavar="IN")
@click.argument("out_dir", metavar="OUT")
@options_from(LicenseOptions, split=("allow", "deny"), metavars={"allow": "KEYS", "deny": "KEYS"})
@click.option("--overwrite", is_flag=True, help="Replace an existing output.")
@engine_options
def licenses(input_dir: str, out_dir: str, overwrite: bool, engine: Any, **given: Any) -> None:
    """Keep documents whose license is allowed; dropped ones go to OUT/removed/ with a reason
    naming their license."""
    from corpus.licenses.stage import run_licenses

    opts = _options("licenses", LicenseOptions, given, "corpus licenses", ("allow", "deny"))
    run_licenses(engine, input_dir, out_dir, opts, overwrite=overwrite)
    _print_stats(out_dir)


@cli.command()
@click.argument("input_dir", metavar="IN")
@click.argument("out_dir", metavar="OUT")
@options_from(ScrubOptions, split=("drop_files_with",), metavars={"drop_files_with": "KIND,…"})
@click.option("--overwrite", is_flag=True, help="Replace an existing output.")
@click.option("--report", is_flag=True, help="Then show per kind its count and a few scrubbed "
              "examples in context (values masked); on a finished OUT, only that.")
@engine_options
def scrub(input_dir: str, out_dir: str, overwrite: bool, report: bool, engine: Any,
          **given: Any) -> None:
    """Replace secrets and PII with typed placeholders (<AWS_ACCESS_KEY>, <EMAIL>, …) and
    count them per kind in a `secrets` column; found values are never written anywhere."""
    from corpus.io import DatasetDir
    from corpus.scrub import report as scrub_report
    from corpus.scrub.stage import ScrubJob

    done = DatasetDir(out_dir).complete_manifest() if report and not overwrite else None
    if done is not None and done.get("stage") == "scrub":
        scrub_report.render(done, out)
        return

    if given.get("drop_files_with"):  # kinds as people type them: private_key
        given["drop_files_with"] = tuple(v.upper() for v in given["drop_files_with"])
    opts = _options("scrub", ScrubOptions, given, "corpus scrub", ("drop_files_with",))
    engine.run(ScrubJob(DatasetDir(input_dir), DatasetDir(out_dir), opts), overwrite=overwrite)
    _print_stats(out_dir)
    if report:
        scrub_report.render(DatasetDir(out_dir).complete_manifest() or {}, out)


@cli.command()
@click.argument("input_dir", metavar="IN")
@click.argument("out_dir", metavar="OUT")
@options_from(DecontamOptions, rename={"benchmarks": "benchmark", "benchmark_files":
                                       "benchmark-file"},
              metavars={"benchmarks": "NAME", "benchmark_files": "F.jsonl"})
@click.option("--overwrite", is_flag=True, help="Replace an existing output.")
@engine_options
def decontaminate(input_dir: str, out_dir: str, overwrite: bool, engine: Any,
                  **given: Any) -> None:
    """Drop documents that contain a benchmark's prompt or canonical solution (whitespace
    normalized), with a reason naming the task."""
    from corpus.contamination.stage import DecontaminateJob
    from corpus.io import DatasetDir

    files_only = {"benchmarks": []} if given.get("benchmark_files") else {}
    opts = _options("decontaminate", DecontamOptions, given, "corpus decontaminate",
                    **files_only)
    engine.run(DecontaminateJob(DatasetDir(input_dir), DatasetDir(out_dir), opts),
               overwrite=overwrite)
    _print_stats(out_dir)


DEDUP_FLAGS = {"ranking": "rank", "license_preference": "prefer-license"}


@cli.command()
@click.argument("input_dir", metavar="IN")
@click.argument("out_dir", metavar="OUT")
@click.option("--exact", is_flag=True, help="Exact deduplication (xxh3_128 of the content).")
@options_from(ExactOptions, only=("ignore_whitespace", "variables"), note="With --exact: ")
@click.option("--minhash", is_flag=True,
              help="Near-deduplication: MinHash LSH over token n-gram shingles.")
@options_from(MinHashOptions, exclude=("ranking", "license_preference"), note="With --minhash: ")
@options_from(MinHashOptions, only=("ranking", "license_preference"),
              rename=DEDUP_FLAGS,
              metavars={"ranking": "COLUMN [asc|desc]", "license_preference": "SPDX"})
@click.option("--overwrite", is_flag=True, help="Replace an existing output.")
@engine_options
def dedup(input_dir: str, out_dir: str, exact: bool, minhash: bool, overwrite: bool,
          engine: Any, **given: Any) -> None:
    """Remove duplicate documents, keeping one per group (smallest id unless ranked)."""
    from corpus import pipeline
    from corpus.io import DatasetDir

    if exact == minhash:
        raise click.UsageError("choose one method: --exact or --minhash")
    cls, method = (ExactOptions, "exact") if exact else (MinHashOptions, "minhash")

    only_for(cls, given, f"--{method}", DEDUP_FLAGS)
    table = {"method": method, **table_of(cls, given)}
    spec = pipeline.StageSpec("dedup", "dedup", input_dir, table)
    spec.opts = _options("dedup", cls, given, "corpus dedup", method=method)
    pipeline.KINDS["dedup"](engine, spec, input_dir, DatasetDir(out_dir), overwrite=overwrite)
    _print_stats(out_dir)


__all__ = ["cli", "cli_cloud", "cli_data", "cli_eval", "cli_model", "cli_run", "cli_train",
           "console", "main", "out"]
