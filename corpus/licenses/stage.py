"""`corpus licenses IN OUT`: keep documents whose license the policy allows, as a map stage.

Kept documents pass through unchanged; every dropped one gets a removed/ row whose reason names
its license (`license-not-allowed gpl-3.0-only`, `license-unparsable Proprietary`,
`no-license`). The rules are in corpus/licenses/policy.py and docs/licenses.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pyarrow as pa

from corpus import schema
from corpus.io import DatasetDir
from corpus.licenses.policy import LicenseOptions, Policy, decide_column
from corpus.stage import MapJob, removed_rows

if TYPE_CHECKING:  # stages never import Dask; only the entry points take an engine
    from corpus.engine import Engine

STAGE = "licenses"


class LicenseFilterJob(MapJob):
    stage = STAGE
    requires = (schema.Column("id", schema.STRING), schema.Column("license", schema.STRING))

    def __init__(self, opts: LicenseOptions, input: DatasetDir, output: DatasetDir):
        self.policy = Policy.of(opts)  # refuses unknown keys before any work
        config = {"allow": sorted(self.policy.allow), "deny": sorted(self.policy.deny),
                  "keep_unlicensed": self.policy.keep_unlicensed}
        super().__init__(input, output, config)

    def map(self, table: pa.Table) -> tuple[pa.Table, pa.Table]:
        return filter_licenses(table, self.policy)


def filter_licenses(table: pa.Table, policy: Policy) -> tuple[pa.Table, pa.Table]:
    """(kept, removed rows) of one partition."""
    keep, reasons = decide_column(table.column("license"), policy)
    mask = pa.array(keep)
    dropped = pa.array(~keep)
    removed = removed_rows(table.filter(dropped), STAGE, reasons.filter(dropped).to_pylist())
    return table.filter(mask), removed


def run_licenses(engine: Engine, input_url: str, output_url: str, opts: LicenseOptions,
                 overwrite: bool = False, **kw: Any) -> dict[str, Any]:
    """Run the stage from a dataset directory into another; returns the output manifest."""
    job = LicenseFilterJob(opts, DatasetDir(input_url), DatasetDir(output_url))
    return engine.run(job, overwrite=overwrite, **kw)


def pipeline_stage(engine: Engine, spec: Any, input_url: str | None, out: DatasetDir,
                   overwrite: bool = False, **kw: Any) -> dict[str, Any]:
    """The `licenses` kind of corpus/pipeline.py: spec.options is the stage's TOML table."""
    from corpus.pipeline import _needs_input, _options

    opts = _options(LicenseOptions, spec.options, f"stage {spec.name}")
    job = LicenseFilterJob(opts, _needs_input(spec, input_url), out)
    return engine.run(job, overwrite=overwrite, **kw)


# --- the stage's declaration (corpus/registry.py) ---------------------------------------------
KIND = "licenses"
OPTIONS = LicenseOptions
READS = tuple(c.name for c in LicenseFilterJob.requires)
WRITES: tuple[str, ...] = ()

make_job = LicenseFilterJob  # (opts, input, output)
