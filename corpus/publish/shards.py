"""`corpus shard IN OUT --format parquet`: the Hub layout (corpus/publish/layout.py) with a
validation split by document id, the same documents `--format tokens` puts in validation."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from corpus.errors import ConfigError
from corpus.io import DatasetDir
from corpus.publish.layout import STATE, LayoutOptions, build, build_is_current
from corpus.tokens.format import is_local
from corpus.units import format_bytes, parse_size


def parquet_shards(input: DatasetDir, out: DatasetDir, options: dict[str, Any],
                   where: str, overwrite: bool = False,
                   replace_stale: bool = False) -> dict[str, Any]:
    """Reuses its own earlier output for the same input and options; replaces it when they
    changed only with overwrite or replace_stale (a pipeline); never writes into a folder
    holding something else."""
    unknown = sorted(set(options) - {"valid_fraction", "shard_bytes"})
    if unknown:
        raise ConfigError(f"{where}: unknown option {', '.join(unknown)} for format parquet "
                          "(allowed: shard_bytes, valid_fraction)")
    if not is_local(out.fs):
        raise ConfigError(f"{where}: parquet shards are written to a local folder, not "
                          f"{out.url} (push them to the Hub with `corpus push`)")
    fraction = float(options.get("valid_fraction", 0.01))
    opts = LayoutOptions(split_valid=fraction or None, split_by="id",
                         shard_bytes=parse_size(options.get("shard_bytes", "500MB")))
    root = Path(out.path)
    if overwrite:
        shutil.rmtree(root, ignore_errors=True)
    elif root.exists() and any(root.iterdir()):
        if not (root / STATE).exists():
            raise ConfigError(f"{out.url} exists, is not empty and holds no {STATE}: refusing to "
                              "write into it (choose another output, or pass --overwrite)")
        if not replace_stale and not build_is_current(input.url, root, opts):
            raise ConfigError(f"{out.url} holds shards of another input or other options; "
                              "pass --overwrite to replace them")
    layout = build(input.url, out.path, opts)
    summary = "; ".join(
        f"{name}: {s['rows']:,} documents, {format_bytes(s['content_bytes'])} of content in "
        f"{len(s['files'])} shard{'s' if len(s['files']) > 1 else ''}"
        for name, s in layout.splits.items())
    return {"stage": "shard-parquet", "splits": layout.splits, "rows_in": layout.rows_in,
            "reused": layout.reused, "summary": summary, "rows": layout.rows_in, "removed": 0}
