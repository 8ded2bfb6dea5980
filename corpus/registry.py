"""Stage kinds, declared rather than discovered: kind -> the modules that declare it.

Each module declares, as module constants next to its job: KIND, OPTIONS (its Options
dataclass, the single place for defaults, bounds and help), READS and WRITES (column names),
and either `make_job(opts, input, out)` (a job for the runner) or `run_stage(engine, opts,
input, out, where, **kw)` (a stage that runs more than one job, or prepares its folder first).
A kind with variants (dedup: exact or MinHash; shard: Parquet or tokens) lists one module per
variant; the options object decides which. A job's optional `setup()` runs once per worker
process (corpus/stage.py). Modules are imported when a kind is used, not before.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from corpus.errors import ConfigError

#: Runner stage kinds and their declaring modules. A new kind adds its module here (and its
#: options parser to corpus/stage_options.py PARSERS).
MODULES: dict[str, tuple[str, ...]] = {
    "github-tables": ("corpus.github.build",),
    "import": ("corpus.imports.job",),
    "extract": ("corpus.extract.duckdb_job",),
    "filter": ("corpus.filters.stage",),
    "dedup": ("corpus.dedup.exact", "corpus.dedup.near"),
    "licenses": ("corpus.licenses.stage",),
    "scrub": ("corpus.scrub.stage",),
    "decontaminate": ("corpus.contamination.stage",),
    "tokenizer": ("corpus.tokens.tokenizer_job",),
    "shard": ("corpus.publish.shards", "corpus.tokens.shards"),
}


@dataclass(frozen=True)
class Declaration:
    kind: str
    module: str
    options: type
    reads: tuple[str, ...]
    writes: tuple[str, ...]
    needs_input: bool
    make_job: Callable[..., Any] | None
    run_stage: Callable[..., dict[str, Any]] | None


def declarations(kind: str) -> list[Declaration]:
    """Every variant of a kind, in MODULES order."""
    if kind not in MODULES:
        raise ConfigError(f"unknown stage kind {kind!r}: one of {', '.join(MODULES)}")
    return [_load(kind, name) for name in MODULES[kind]]


def declaration(kind: str, opts: Any) -> Declaration:
    """The variant of `kind` whose OPTIONS `opts` is."""
    for d in declarations(kind):
        if isinstance(opts, d.options):
            return d
    raise ConfigError(f"stage kind {kind}: no variant takes {type(opts).__name__}")


def _load(kind: str, name: str) -> Declaration:
    m = importlib.import_module(name)
    if getattr(m, "KIND", None) != kind:
        raise AssertionError(f"{name} declares KIND {getattr(m, 'KIND', None)!r}, not {kind!r}")
    make_job, run_stage = getattr(m, "make_job", None), getattr(m, "run_stage", None)
    if (make_job is None) == (run_stage is None):
        raise AssertionError(f"{name}: declare exactly one of make_job and run_stage")
    return Declaration(kind, name, m.OPTIONS, tuple(m.READS), tuple(m.WRITES),
                       bool(getattr(m, "NEEDS_INPUT", True)), make_job, run_stage)
