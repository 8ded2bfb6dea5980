"""`corpus run CONFIG.toml`: the whole pipeline, or its plan (--dry-run), or a part of it
(--only / --from); it ends with one table of the stages (corpus/run_summary.py)."""

from __future__ import annotations

import time
from typing import Any

import click

from corpus.cli_base import cli, engine_options, out


@cli.command()
@click.argument("config", metavar="CONFIG.toml")
@click.option("--output", default=None, metavar="ROOT",
              help="Override [pipeline].output (relative to the current directory).")
@click.option("--overwrite", is_flag=True, help="Recompute every (selected) stage from scratch.")
@click.option("--dry-run", is_flag=True,
              help="Print the plan: every stage, its input, and whether it is up to date or "
              "will run. Runs and writes nothing.")
@click.option("--only", "only", multiple=True, metavar="STAGE",
              help="Run only this stage (repeatable); the others' outputs are read as they are.")
@click.option("--from", "start", default=None, metavar="STAGE",
              help="Run this stage and every stage after it.")
@engine_options
def run(config: str, output: str | None, overwrite: bool, dry_run: bool, only: tuple[str, ...],
        start: str | None, engine: Any) -> None:
    """Run a pipeline config: each stage into ROOT/<stage name>, resuming finished work."""
    from corpus import pipeline
    from corpus import plan as pl

    p = pipeline.load(config)
    root = (output or p.output).rstrip("/")
    selected = pl.select(p, only, start)
    steps = pl.plan(p, root, selected, overwrite)
    if dry_run:
        _print_plan(steps, root)
        return

    from corpus import run_summary as rs
    from corpus.io import DatasetDir
    from corpus.lock import writer_lock

    before = {s.name: DatasetDir(s.output).manifest() if DatasetDir(s.output).exists() else None
              for s in steps}
    status = {s.name: s.status for s in steps}
    ran: list[rs.Ran] = []
    notes: list[str] = []  # the one line of each stage whose output is not a dataset
    clock = [0.0]

    def report(spec: Any, url: str, manifest: dict[str, Any]) -> None:
        engine.log.event("stage", f"[green]✓[/] {spec.name} ({spec.kind}) → {url}",
                         stage_name=spec.name, kind=spec.kind, output=url)
        now = time.perf_counter()
        old = before.get(spec.name)
        computed = (old is None or old.get("runs") != manifest.get("runs")) \
            if "runs" in manifest else status[spec.name] != pl.UP_TO_DATE
        source = next((x.output for x in steps if x.name == spec.input), spec.input)
        ran.append(rs.Ran(spec.name, spec.kind, url, source, now - clock[0], computed))
        if (line := pipeline.describe(manifest)) is not None:  # a model, a tokenizer, …
            notes.append(line)
        clock[0] = now
        pl.record(root, steps, spec.name)

    with writer_lock(root):  # one run per root, taken before anything under it is written
        clock[0] = time.perf_counter()
        pipeline.run(p, engine, output=output, overwrite=overwrite, on_stage=report,
                     only=selected)
        cores = engine.n_workers() if any(r.computed for r in ran) else 1
        rs.render(rs.rows(ran, cores), out)
        for line in notes:
            out.print(line, highlight=False)
        out.print(f"outputs under {root}/; see `corpus stats DIR` for any of them")
        if "://" not in root:
            from corpus.report.render import write

            out.print(f"report: {write(root)}")


def _print_plan(steps: list[Any], root: str) -> None:
    from rich.table import Table

    from corpus.run_summary import print_wide

    t = Table(box=None, padding=(0, 1))
    for name in ("stage", "kind", "input", "output", ""):
        t.add_column(name, no_wrap=True)
    for s in steps:
        t.add_row(s.name, s.kind, s.input or "", s.output, s.status)
    print_wide(t, out)
    todo = sum(s.status == "will run" for s in steps)
    out.print(f"dry run: {todo} of {len(steps)} stages would run under {root}/; nothing ran")
