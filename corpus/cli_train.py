"""The end of the flow: `corpus tokenizer train`, `corpus shard`, `corpus train`, and
`corpus report` over a whole run. Thin, like cli.py: the work is in corpus/tokens,
corpus/train and corpus/report."""

from __future__ import annotations

import os
from typing import Any

import click

from corpus.cli_base import _options, _print_stats, cli, console, engine_options, out
from corpus.cli_options import only_for, options_from, table_of
from corpus.publish.shards import ParquetShardOptions
from corpus.splits import SPLIT_FIELDS
from corpus.splits import cli_options as split_options
from corpus.tokens.bpe import TokenizerOptions
from corpus.tokens.shards import TokenShardOptions
from corpus.train.launch import options as launch_options


@cli.group()
def tokenizer() -> None:
    """Tokenizers trained on the corpus."""


@tokenizer.command("train")
@click.argument("input_dir", metavar="IN")
@click.argument("out_dir", metavar="OUT")
@options_from(TokenizerOptions, rename={"heldout_fraction": "heldout"},
              metavars={"sample_docs": "N", "sample_bytes": "SIZE", "heldout_fraction": "F"})
@click.option("--compare", default=None, metavar="TOKENIZER",
              help="Another tokenizer (folder or tokenizer.json) to report on the same "
              "held-back documents, e.g. one trained on general text.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output.")
@engine_options
def tokenizer_train(input_dir: str, out_dir: str, compare: str | None, overwrite: bool,
                    engine: Any, **given: Any) -> None:
    """Byte-level BPE (GPT-2 byte alphabet, whitespace runs kept, <|endoftext|>) trained on
    the documents of IN; OUT loads with transformers' AutoTokenizer. IN and OUT may be
    gs:// URLs; a finished OUT is up to date, a killed run resumes."""
    from corpus.tokens import bpe
    from corpus.tokens.tokenizer_job import train

    opts = _options("tokenizer", TokenizerOptions, given, "corpus tokenizer train")
    m = train(input_dir, out_dir, opts, compare=compare, engine=engine, overwrite=overwrite)
    out.print(bpe.summary(m["tokenizer"], out_dir), highlight=False)


@cli.command()
@click.argument("input_dir", metavar="IN")
@click.argument("out_dir", metavar="OUT")
@click.option("--format", "fmt", type=click.Choice(["parquet", "tokens"]), required=True,
              help="parquet: Hub-layout shards and their dataset card; tokens: packed token "
              "sequences (Arrow IPC) for training.")
@click.option("--shard-size", default=None, metavar="SIZE",
              help="Target shard size (default: 256MB of tokens; 500MB of content for "
              "parquet).")
@split_options
@options_from(TokenShardOptions, exclude=(*SPLIT_FIELDS, "shard_bytes"), note="tokens: ",
              metavars={"tokenizer": "DIR"})
@click.option("--overwrite", is_flag=True, help="Replace an existing output.")
@engine_options
def shard(input_dir: str, out_dir: str, fmt: str, shard_size: str | None, overwrite: bool,
          engine: Any, **given: Any) -> None:
    """Shards for people and the Hub (parquet, with a dataset card) or for streamed training
    (tokens), split into train / validation / test by corpus/splits.py's rule."""
    from corpus import pipeline
    from corpus.io import DatasetDir

    cls = TokenShardOptions if fmt == "tokens" else ParquetShardOptions
    only_for(cls, given, f"--format {fmt}")
    options: dict[str, Any] = {"format": fmt, **table_of(cls, given)}
    if shard_size:
        options["shard_bytes"] = shard_size
    if fmt == "tokens" and "tokenizer" not in options:
        raise click.UsageError("--format tokens needs --tokenizer DIR")
    spec = pipeline.StageSpec("shard", "shard", input_dir, options)
    manifest = pipeline.KINDS["shard"](engine, spec, input_dir,
                                       DatasetDir(out_dir), overwrite=overwrite)
    if fmt == "tokens":
        from corpus.tokens.shards import describe

        _print_stats(out_dir)
        out.print(describe(manifest), highlight=False)
    else:
        out.print(manifest["summary"], highlight=False)
    console.print(f"[dim]written to {out_dir}")


@cli.command("train")
@launch_options
@click.option("--nproc-per-node", type=click.IntRange(1), default=1, show_default=True,
              help="Processes on this machine (re-launched under torchrun). Under a launcher "
              "(torchrun, deepspeed) leave it at 1.")
def train(nproc_per_node: int, **kw: Any) -> None:
    """Train a GPT-2 on token shards with DeepSpeed: checkpoints and log.jsonl under --out,
    resuming from its latest checkpoint. On CPU: gloo and fp32; on GPUs: NCCL, bf16/fp16."""
    from pathlib import Path

    from corpus.train import launch

    if "RANK" in os.environ:  # a rank under a launcher: the launcher's caller owns --out
        launch.run(launch.args_from(kw), nproc_per_node)
    else:
        from corpus.lock import writer_lock

        with writer_lock(kw["out"]):
            launch.run(launch.args_from(kw), nproc_per_node)
    if int(os.environ.get("RANK", 0)) == 0:
        out.print(launch.describe(launch.summarize(Path(kw["out"]))), highlight=False)


@cli.command()
@click.argument("run_dir", metavar="RUN_DIR")
@click.option("--out", "out_file", default=None, metavar="FILE",
              help="Where to write the page (default: RUN_DIR/report.html).")
def report(run_dir: str, out_file: str | None) -> None:
    """One self-contained HTML page about a pipeline run: documents and bytes per stage and
    reason, filter metrics with their thresholds, languages, licenses, near-duplicate
    clusters, secrets found, samples of removed files, training loss."""
    from corpus.report.render import write

    out.print(f"report: {write(run_dir, out_file)}")
