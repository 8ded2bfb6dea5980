"""`corpus scrub IN OUT`: secrets and PII replaced by typed placeholders, counted per kind.

The provider rules' candidates come from one compiled pass over the partition's content
buffer (engine.py); the Python regexes run only where they can match (bench/scrub.py
measures it). A document whose scrubbing fails is dropped
with a reason naming the error type only (its message could quote the text), never passed on
unscrubbed. Found values are never written: not to `removed/`, the manifest or logs.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pyarrow as pa

from corpus import schema
from corpus.io import DatasetDir
from corpus.scrub import engine, report
from corpus.scrub.redact import ScrubOptions, redact_placed
from corpus.stage import MapJob, removed_rows, write_documents

STAGE = "scrub"


def scrub_table(table: pa.Table, opts: ScrubOptions,
                examples: dict[str, list[dict[str, Any]]] | None = None,
                ) -> tuple[pa.Table, pa.Table]:
    """(kept, removed) of one batch: the candidates of the provider rules from one compiled
    pass over its content buffer, then each document redacted; a few examples per kind of
    the kept documents go into `examples` (report.py)."""
    column = table.column("content")
    candidates = engine.index().partition(column)
    contents = column.to_pylist()
    paths = table.column("path").to_pylist()
    out: list[str | None] = []
    found: list[str] = []
    keep: list[bool] = []
    reasons: list[str] = []
    drop_kinds = set(opts.drop_files_with)
    for text, path, cands in zip(contents, paths, candidates, strict=True):
        if text is None:
            out.append(None)
            found.append("{}")
            keep.append(True)
            continue
        try:
            scrubbed, counts, placed = redact_placed(text, path or "", opts, cands)
        except Exception as e:  # a detector error: drop, never pass the text on unscrubbed
            keep.append(False)
            reasons.append(f"scrub-error {type(e).__name__}")
            out.append(None)
            found.append("{}")
            continue
        hit = sorted(drop_kinds & set(counts)) if drop_kinds and counts else None
        if hit:
            keep.append(False)
            reasons.append(f"contains-secret {','.join(hit)}")
        else:
            keep.append(True)
            if examples is not None and placed:
                report.collect(examples, scrubbed, path or "", placed)
        out.append(scrubbed)
        found.append(json.dumps(dict(sorted(counts.items()))) if counts else "{}")
    mask = pa.array(keep, pa.bool_())  # typed: an empty list alone is a null array
    idx = table.schema.get_field_index("content")
    scrubbed_table = table.set_column(idx, "content", pa.array(out, pa.large_string()))
    secrets = pa.array(found, pa.large_string())
    if "secrets" in scrubbed_table.column_names:  # scrubbing a scrubbed dataset again
        scrubbed_table = scrubbed_table.set_column(
            scrubbed_table.schema.get_field_index("secrets"), "secrets", secrets)
    else:
        scrubbed_table = scrubbed_table.append_column("secrets", secrets)
    kept = scrubbed_table.filter(mask)
    removed = removed_rows(table.filter(pa.compute.invert(mask)), STAGE, reasons)
    return kept, removed


class ScrubJob(MapJob):
    stage = STAGE
    requires = (schema.Column("content", schema.STRING), schema.Column("path", schema.STRING))

    def __init__(self, input: DatasetDir, output: DatasetDir, opts: ScrubOptions):
        super().__init__(input, output, {"scrub": opts.__dict__})
        self.opts = opts

    def map(self, table: pa.Table) -> tuple[pa.Table, pa.Table]:
        return scrub_table(table, self.opts)

    def run_partition(self, key: str) -> dict[str, Any]:
        table = self.input.read_parquet(self.input.part_file(key))
        examples: dict[str, list[dict[str, Any]]] = {}
        kept, removed = scrub_table(table, self.opts, examples)
        record = write_documents(self.output, key, kept, kept.schema, removed,
                                 rows_in=table.num_rows)
        record["examples"] = examples
        totals: Counter[str] = Counter()
        for counts in kept.column("secrets").to_pylist():
            totals.update(json.loads(counts))
        record["secrets"] = dict(sorted(totals.items()))
        return record

    def finish(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        """Findings per kind over the stage (kept documents) and a few examples of each, for
        the manifest (`corpus scrub --report` shows them)."""
        totals: Counter[str] = Counter()
        for r in records:
            totals.update(r.get("secrets") or {})
        return {"secrets": dict(sorted(totals.items())),
                "secret_examples": report.merge(records)}


# --- the stage's declaration (corpus/registry.py) ---------------------------------------------
KIND = "scrub"
OPTIONS = ScrubOptions
READS = tuple(c.name for c in ScrubJob.requires)
WRITES = ("content",)  # redacted in place


def make_job(opts: ScrubOptions, input: DatasetDir, out: DatasetDir) -> ScrubJob:
    return ScrubJob(input, out, opts)
