"""`corpus filter IN OUT --pipeline CONFIG.toml`: quality filters as a map stage.

Each partition: documents without content are dropped (`null-content`); the metrics the rules
name are computed in slices of at most SLICE_BYTES of text, vectorized; the rules decide in
order; kept documents get every metric as a column, dropped ones a removed/ row whose reason
names the first rule they failed and its value.
"""

from __future__ import annotations

import hashlib
import itertools
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from corpus import schema
from corpus.errors import ConfigError, InputError
from corpus.filters import rules as rl
from corpus.filters.metrics import METRICS, Docs
from corpus.io import DatasetDir
from corpus.malloc import retain_freed_memory
from corpus.stage import MapJob, removed_rows

STAGE = "filter"
SLICE_BYTES = 4 * 1024 * 1024


@dataclass
class FilterOptions:
    rules: list[dict[str, Any]] = field(default_factory=list)
    seed: int = 42  # for the probabilistic rules
    tokenizer: str | None = None  # a `tokenizers` JSON file; default: the code-token regex


def compute_metrics(content: pa.Array, wanted: dict[str, dict[str, Any]],
                    tokenizer: str | None = None,
                    slice_bytes: int = SLICE_BYTES) -> dict[str, np.ndarray]:
    """Each wanted metric (name -> options) over non-null documents, slice by slice."""
    retain_freed_memory()
    nbytes = pc.binary_length(content).to_numpy(zero_copy_only=False).astype(np.int64)
    cuts = slices(nbytes, slice_bytes)
    parts: dict[str, list[np.ndarray]] = {m: [] for m in wanted}
    for a, b in itertools.pairwise(cuts):
        docs = Docs(content.slice(a, b - a), tokenizer)
        for m, opts in wanted.items():
            parts[m].append(METRICS[m].fn(docs, **opts).to_numpy(zero_copy_only=False))
    return {m: (np.concatenate(v) if v else np.zeros(0)) for m, v in parts.items()}


def slices(nbytes: np.ndarray, limit: int) -> list[int]:
    """Row cut points: a new slice wherever the running byte count passes a multiple of
    `limit` (a slice exceeds it by at most one document)."""
    if len(nbytes) == 0:
        return [0]
    block = np.cumsum(nbytes) // max(limit, 1)
    cuts = np.flatnonzero(np.diff(block)) + 1
    return [0, *cuts.tolist(), len(nbytes)]


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
        if wanted.setdefault(r.metric, r.options) != r.options:
            raise ConfigError(f"filter: rule {r.metric} appears twice with other options")
    if table.column("content").null_count:
        valid = table.column("content").is_valid()
        docs, null = table.filter(valid), table.filter(pc.invert(valid))
    else:
        docs, null = table, table.slice(0, 0)
    values = compute_metrics(docs.column("content").combine_chunks(), wanted, tokenizer)
    drop, reasons = rl.decide(rules, values, docs.column("id").combine_chunks(), seed)
    kept = docs
    for m, v in values.items():
        col = pa.array(v, METRICS[m].type)
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
