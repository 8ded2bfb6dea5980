"""`corpus shard IN OUT --format parquet`: Hub-layout Parquet shards and their dataset card,
split by corpus/splits.py (the same documents `--format tokens` and `corpus push` put in
validation and test), made on the engine
(corpus/publish/shard_job.py), so a killed run resumes per shard, a finished one is reused
("up to date") and the manifest accounts for every row like any other stage's. IN and OUT may
be gs:// (any fsspec URL), as for every stage."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from corpus import splits as sp
from corpus.config_check import Size, validate
from corpus.io import MANIFEST, DatasetDir
from corpus.publish.shard_job import STATE, HubShardJob
from corpus.publish.split import LayoutOptions
from corpus.splits import SplitChoice, SplitRule, empty_notes
from corpus.units import format_bytes


@dataclass
class ParquetShardOptions(SplitChoice):
    #: documents (by id hash) in the validation split; None: the preset's (default 0.01)
    valid_fraction: sp.ValidFraction | None = None
    shard_bytes: Size = 500 * 10**6  # content bytes per shard (target)
    test_fraction: sp.TestFraction | None = None  # None: the preset's (default 0)
    splits: sp.SplitPreset | None = None  # a preset of both fractions (corpus/splits.py)
    valid_from: sp.ValidFrom | None = None  # validation = these repositories (one per line)

    def check(self, where: str) -> None:
        """The annotations' bounds, also for options built in Python rather than a config."""
        validate(type(self), dataclasses.asdict(self), where)


def parquet_shards(engine: Any, input: DatasetDir, out: DatasetDir,
                   options: ParquetShardOptions, where: str = "shard", overwrite: bool = False,
                   replace_stale: bool = False) -> dict[str, Any]:
    """Run the shard job; the result is its manifest plus a one-line `summary`. The engine
    reuses, resumes or refuses the output like any stage's (replace_stale: a pipeline)."""
    options.check(where)
    if replace_stale and not out.exists(MANIFEST) and out.exists(STATE):
        out.clear()  # shards of a corpus version that wrote them without the engine: ours
    rule = options.split_rule()
    opts = LayoutOptions(rule, shard_bytes=options.shard_bytes)
    manifest = engine.run(HubShardJob(input, out, opts), overwrite=overwrite,
                          replace_stale=replace_stale)
    return {**manifest, "summary": summary(manifest, rule)}


def summary(manifest: dict[str, Any], rule: SplitRule) -> str:
    splits = manifest["parquet"]["splits"]
    parts = [f"{name}: {s['rows']:,} documents, {format_bytes(s['content_bytes'])} of content "
             f"in {len(s['files'])} shard{'s' if len(s['files']) > 1 else ''}"
             for name, s in splits.items()]
    return "; ".join(parts + empty_notes(rule, splits))


# --- the stage's declaration (corpus/registry.py) ---------------------------------------------
KIND = "shard"
OPTIONS = ParquetShardOptions
READS = ("content",)
WRITES: tuple[str, ...] = ()


def run_stage(engine: Any, opts: ParquetShardOptions, input: DatasetDir, out: DatasetDir,
              where: str, overwrite: bool = False, replace_stale: bool = False,
              ) -> dict[str, Any]:
    return parquet_shards(engine, input, out, opts, where, overwrite, replace_stale)
