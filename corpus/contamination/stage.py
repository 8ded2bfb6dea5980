"""`corpus decontaminate IN OUT`: drop documents that contain a benchmark's prompt or
canonical solution (corpus/contamination/match.py), each with a reason naming the task."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Annotated

import numpy as np
import pyarrow as pa
from pydantic import Field

from corpus import schema
from corpus.contamination.benchmarks import load
from corpus.contamination.match import Matcher
from corpus.io import DatasetDir
from corpus.stage import MapJob, removed_rows

STAGE = "decontaminate"


@dataclass
class DecontamOptions:
    benchmarks: Annotated[list[str], Field(description="Built-in benchmarks (humaneval).")] = \
        field(default_factory=lambda: ["humaneval"])
    benchmark_files: Annotated[list[str], Field(description="JSONL files of {task_id, prompt, "
                                                "solution}.")] = field(default_factory=list)
    min_chars: Annotated[int, Field(ge=1, description="Shorter snippets (after whitespace "
                                    "normalization) are not matched.")] = 40
    ngram: Annotated[int, Field(ge=1, le=30, description="Also drop on token n-gram overlap "
                                "with a benchmark solution.")] | None = None
    ngram_threshold: Annotated[float, Field(gt=0, le=1, description="With ngram: fraction of "
                                            "a solution's n-grams found in the document.")] = 0.7


class DecontaminateJob(MapJob):
    stage = STAGE
    requires = (schema.Column("content", schema.STRING),)

    def __init__(self, input: DatasetDir, output: DatasetDir, opts: DecontamOptions):
        self.snippets = load(opts.benchmarks, opts.benchmark_files)  # errors before any work
        # the snippets' text is part of the config: another benchmark file, another output
        super().__init__(input, output, {**asdict(opts), "snippets": len(self.snippets),
                                         "snippets_sha256": _digest(self.snippets)})
        self.opts = opts
        self.matcher: Matcher | None = None

    def map(self, table: pa.Table) -> tuple[pa.Table, pa.Table]:
        if self.matcher is None:
            o = self.opts
            self.matcher = Matcher(self.snippets, o.min_chars, o.ngram, o.ngram_threshold)
        reasons = self.matcher.reasons(table.column("content"))
        drop = np.array([r is not None for r in reasons], dtype=bool)
        removed = removed_rows(table.filter(pa.array(drop)), STAGE,
                               [r for r in reasons if r is not None])
        return table.filter(pa.array(~drop)), removed

    def __getstate__(self) -> dict:
        return {**self.__dict__, "matcher": None}  # rebuilt on the worker


def _digest(snippets: list) -> str:
    from corpus.manifest import digest

    return digest([(s.benchmark, s.task, s.part, s.text) for s in snippets])


# --- the stage's declaration (corpus/registry.py) ---------------------------------------------
KIND = "decontaminate"
OPTIONS = DecontamOptions
READS = tuple(c.name for c in DecontaminateJob.requires)
WRITES: tuple[str, ...] = ()


def make_job(opts: DecontamOptions, input: DatasetDir, out: DatasetDir) -> DecontaminateJob:
    return DecontaminateJob(input, out, opts)
