"""`corpus export`: a training run as a Hugging Face model folder. Thin, like cli.py: the work
is in corpus/train/export.py."""

from __future__ import annotations

import click

from corpus.cli_base import cli, out


@cli.command("export")
@click.argument("run_dir", metavar="RUN_DIR")
@click.argument("out_dir", metavar="OUT_DIR")
@click.option("--step", type=click.IntRange(1), default=None,
              help="Export the checkpoint of this step (default: the latest).")
@click.option("--license", "license_", default="other", show_default=True,
              help="The model card's license (an SPDX-style id the Hub knows, e.g. apache-2.0).")
@click.option("--dataset", default=None, metavar="NAME",
              help="The model card's dataset (default: the token shards' folder name).")
def export(run_dir: str, out_dir: str, step: int | None, license_: str,
           dataset: str | None) -> None:
    """Write RUN_DIR's checkpoint (ZeRO shards consolidated) as a Hugging Face model folder:
    config.json, model.safetensors, generation_config.json, the corpus tokenizer and a model
    card. AutoModelForCausalLM / AutoTokenizer / pipeline() load OUT_DIR offline."""
    from corpus.train.export import ExportOptions, describe
    from corpus.train.export import export as do_export

    r = do_export(run_dir, out_dir, ExportOptions(step, license_, dataset))
    out.print(describe(r, out_dir), highlight=False)
