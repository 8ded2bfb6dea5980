"""`corpus shard IN OUT --format parquet`: Hub-layout Parquet shards with a validation split by
document id (the same documents `--format tokens` puts in validation), made on the engine
(corpus/publish/shard_job.py), so a killed run resumes per shard, a finished one is reused
("up to date") and the manifest accounts for every row like any other stage's."""

from __future__ import annotations

import dataclasses
import shutil
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import Field

from corpus.config_check import Size, validate
from corpus.errors import ConfigError
from corpus.io import MANIFEST, DatasetDir
from corpus.publish.shard_job import DATA_DIR, STATE, HubShardJob
from corpus.publish.split import LayoutOptions
from corpus.tokens.format import is_local
from corpus.units import format_bytes


@dataclass
class ParquetShardOptions:
    #: documents (by id hash) in the validation split
    valid_fraction: Annotated[float, Field(ge=0, lt=1)] = 0.01
    shard_bytes: Size = 500 * 10**6  # content bytes per shard (target)

    def check(self, where: str) -> None:
        """The annotations' bounds, also for options built in Python rather than a config."""
        validate(type(self), dataclasses.asdict(self), where)


def parquet_shards(engine: Any, input: DatasetDir, out: DatasetDir,
                   options: ParquetShardOptions, where: str = "shard", overwrite: bool = False,
                   replace_stale: bool = False) -> dict[str, Any]:
    """Run the shard job; the result is its manifest plus a one-line `summary`. The engine
    reuses, resumes or refuses the output like any stage's (replace_stale: a pipeline)."""
    options.check(where)
    if not is_local(out.fs):
        raise ConfigError(f"{where}: parquet shards are written to a local folder, not "
                          f"{out.url} (push them to the Hub with `corpus push`)")
    if replace_stale and not out.exists(MANIFEST) and out.exists(STATE):
        # shards of a corpus version that wrote them without the engine: ours, stale
        shutil.rmtree(out.join(DATA_DIR), ignore_errors=True)
        out.fs.rm(out.join(STATE))
    opts = LayoutOptions(split_valid=options.valid_fraction or None, split_by="id",
                         shard_bytes=options.shard_bytes)
    manifest = engine.run(HubShardJob(input, out, opts), overwrite=overwrite,
                          replace_stale=replace_stale)
    return {**manifest, "summary": summary(manifest, options.valid_fraction > 0)}


def summary(manifest: dict[str, Any], wants_validation: bool) -> str:
    splits = manifest["parquet"]["splits"]
    parts = [f"{name}: {s['rows']:,} documents, {format_bytes(s['content_bytes'])} of content "
             f"in {len(s['files'])} shard{'s' if len(s['files']) > 1 else ''}"
             for name, s in splits.items()]
    if wants_validation and "validation" not in splits:
        parts.append("validation: no document fell in it (raise --valid-fraction); only a "
                     "train split was written")
    return "; ".join(parts)
