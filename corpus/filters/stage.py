"""`corpus filter IN OUT --pipeline CONFIG.toml`: quality filters as a map stage.

Each partition: documents without content are dropped (`null-content`); the metrics the rules
name are computed in slices of at most SLICE_BYTES of text, vectorized; the rules decide in
order; kept documents get every metric as a column, dropped ones a removed/ row whose reason
names the first rule they failed and its value. A metric sees the partition's table (every
column), so a metric of `path` or a threshold per language is one function and one config line.
"""

from __future__ import annotations

import hashlib
import itertools
import os
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BeforeValidator, ConfigDict, Field
from typing_extensions import TypedDict

from corpus import schema
from corpus import text as tx
from corpus.config_check import show
from corpus.errors import ConfigError, InputError
from corpus.filters import groups as gr
from corpus.filters import registry
from corpus.filters import rules as rl
from corpus.filters.metric import Docs
from corpus.io import DatasetDir
from corpus.malloc import retain_freed_memory
from corpus.stage import MapJob, removed_rows

STAGE = "filter"
SLICE_BYTES = 4 * 1024 * 1024


def _threshold(value: Any) -> Any:
    """A number, or a table of numbers per group (checked in full by rules.parse)."""
    if isinstance(value, bool) or not isinstance(value, int | float | dict):
        raise ValueError(f"expected a number, or a table of numbers per group, got {show(value)}")
    return value


#: min/max: a number, or { group = number, "*" = number } with `by`
Threshold = Annotated[Any, BeforeValidator(_threshold)]


class RuleSpec(TypedDict, total=False):
    """One entry of `rules`: a metric and its decision. The other keys are the metric's options,
    checked against its signature by rules.parse (registry.check_options)."""
    rule: str  # a built-in metric or "package.module:function" (a @metric)
    metric: str  # the same as `rule`
    min: Threshold  # drop when the metric is below
    max: Threshold  # drop when it is above
    by: Literal["language", "extension"]  # min/max as tables per group
    probability: Annotated[float, Field(ge=0, le=1)]  # flags: drop a flagged one this often


RuleSpec.__pydantic_config__ = ConfigDict(strict=True, extra="allow")  # type: ignore[attr-defined]


@dataclass
class FilterOptions:
    rules: list[RuleSpec] = field(default_factory=list)
    seed: int = 42  # for the probabilistic rules
    tokenizer: str | None = None  # a `tokenizers` JSON file; default: the code-token regex


def compute_metrics(rows: pa.Table | pa.Array, wanted: dict[str, dict[str, Any]],
                    tokenizer: str | None = None,
                    slice_bytes: int = SLICE_BYTES) -> dict[str, np.ndarray]:
    """Each wanted metric (its name or "module:function" -> options) over documents with
    content (a table of the partition's columns, or only the content), slice by slice."""
    retain_freed_memory()
    table = rows if isinstance(rows, pa.Table) else pa.table({"content": rows})
    metrics = {m: registry.resolve(m) for m in wanted}
    nbytes = pc.binary_length(table.column("content")).to_numpy(zero_copy_only=False)
    cuts = tx.slices(nbytes.astype(np.int64), slice_bytes)
    parts: dict[str, list[np.ndarray]] = {m: [] for m in wanted}
    for a, b in itertools.pairwise(cuts):
        docs = Docs(table.slice(a, b - a), tokenizer)
        for m, opts in wanted.items():
            v = metrics[m].fn(docs, **opts)
            if len(v) != len(docs):
                raise InputError(f"filter: metric {m} returned {len(v)} values for "
                                 f"{len(docs)} documents")
            parts[m].append(np.asarray(v.to_numpy(zero_copy_only=False)))
    return {m: (np.concatenate(v) if v else np.zeros(0)) for m, v in parts.items()}


class FilterJob(MapJob):
    stage = STAGE
    requires = (schema.Column("id", schema.STRING), schema.Column("content", schema.STRING))

    def __init__(self, opts: FilterOptions, input: DatasetDir, output: DatasetDir):
        self.rules = rl.parse(opts.rules, "filter")
        if not self.rules:
            raise ConfigError("filter: no rules configured")
        self.seed, self.tokenizer = opts.seed, opts.tokenizer
        config: dict[str, Any] = {"rules": opts.rules, "seed": opts.seed,
                                  "tokenizer": opts.tokenizer}
        if opts.tokenizer:
            config["tokenizer_sha256"] = _tokenizer_digest(opts.tokenizer)
        super().__init__(input, output, config)

    def map(self, table: pa.Table) -> tuple[pa.Table, pa.Table]:
        return apply_rules(table, self.rules, self.seed, self.tokenizer)


def apply_rules(table: pa.Table, rules: list[rl.Rule], seed: int = 42,
                tokenizer: str | None = None) -> tuple[pa.Table, pa.Table]:
    """(kept with every metric as a column, removed rows) for one partition."""
    wanted: dict[str, dict[str, Any]] = {}
    for r in rules:
        if wanted.setdefault(r.source or r.metric, r.options) != r.options:
            raise ConfigError(f"filter: rule {r.metric} appears twice with other options")
        needs = [*r.scorer.reads, *([gr.BY[r.by]] if r.by else [])]
        if missing := [c for c in needs if c not in table.column_names]:
            raise InputError(f"filter: rule {r.metric} reads column {missing[0]}, which the "
                             "input does not have")
    if table.column("content").null_count:
        valid = table.column("content").is_valid()
        docs, null = table.filter(valid), table.filter(pc.invert(valid))
    else:
        docs, null = table, table.slice(0, 0)
    values = compute_metrics(docs, wanted, tokenizer)
    columns = {r.metric: (values[r.source or r.metric], r.scorer.type) for r in rules}
    drop, reasons = rl.decide(rules, {m: v for m, (v, _) in columns.items()},
                              docs.column("id").combine_chunks(), seed, docs)
    kept = docs
    for m, (v, type_) in columns.items():
        col = pa.array(v, type_)
        if m in kept.column_names:
            kept = kept.set_column(kept.schema.get_field_index(m), m, col)
        else:
            kept = kept.append_column(m, col)
    kept = kept.filter(pa.array(~drop))
    dropped = docs.filter(pa.array(drop))
    removed = pa.concat_tables([
        removed_rows(null, STAGE, ["null-content"] * null.num_rows),
        removed_rows(dropped, STAGE, [r for r in reasons if r is not None]),
    ])
    return kept, removed


def _tokenizer_digest(path: str) -> str:
    if not os.path.isfile(path):
        raise InputError(f"tokenizer file {path} does not exist")
    try:
        from tokenizers import Tokenizer

        Tokenizer.from_file(path)
    except Exception as e:  # tokenizers raises a bare Exception on bad JSON
        raise InputError(f"cannot load tokenizer {path}: {e}") from e
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


# --- the stage's declaration (corpus/registry.py) ---------------------------------------------
KIND = "filter"
OPTIONS = FilterOptions
READS = tuple(c.name for c in FilterJob.requires)
WRITES: tuple[str, ...] = ()

make_job = FilterJob  # (opts, input, output)
