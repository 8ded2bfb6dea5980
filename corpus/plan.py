"""What `corpus run` would do, before it does it: per stage, its input, its output folder and
whether it is up to date or will run (`corpus run --dry-run` prints it; nothing is written).

A stage is up to date when its output is complete and the run that made it recorded the same
stage digest (ROOT/plan.json, written after each stage): the digest covers the stage's kind,
its options, its input (an earlier stage's digest, else the input folder's manifest hash) and
the corpus version, so a changed stage makes every stage after it "will run". An output made
without that record (by an older version, or a Python caller) counts as "will run": the run
itself then finds it up to date, and records it.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Any

import corpus
from corpus import manifest as mf
from corpus.errors import ConfigError
from corpus.io import DatasetDir
from corpus.pipeline_config import Pipeline

#: the digests of the stages a run finished, at the run root
RECORD = "plan.json"
UP_TO_DATE, WILL_RUN, SKIPPED = "up to date", "will run", "not selected"


@dataclass
class Step:
    name: str
    kind: str
    input: str | None  # an earlier stage's name, or a path / URL
    output: str
    digest: str
    status: str  # UP_TO_DATE, WILL_RUN or SKIPPED (outside --only / --from)


def select(p: Pipeline, only: tuple[str, ...] = (), start: str | None = None) -> set[str] | None:
    """The stages --only (those) or --from (that one and every one after it) select; None:
    all of them. An unknown name is one error naming the stages."""
    names = [s.name for s in p.stages]
    for name in [*only, *([start] if start else [])]:
        if name not in names:
            raise ConfigError(f"{p.path}: no stage named {name!r} (stages: {', '.join(names)})")
    if only and start:
        raise ConfigError("choose one of --only and --from")
    if only:
        return set(only)
    if start:
        return set(names[names.index(start):])
    return None


def plan(p: Pipeline, root: str, selected: set[str] | None = None,
         overwrite: bool = False) -> list[Step]:
    """Each stage's step, in order."""
    root = root.rstrip("/")
    recorded = (DatasetDir(root).read_json(RECORD) or {}).get("stages", {}) \
        if DatasetDir(root).exists() else {}
    digests: dict[str, str] = {}
    steps: list[Step] = []
    for spec in p.stages:
        out = posixpath.join(root, spec.name)
        source = digests.get(spec.input or "") or _input_hash(spec.input)
        digests[spec.name] = d = mf.digest({"kind": spec.kind, "options": spec.options,
                                            "input": source, "version": corpus.__version__})
        fresh = (not overwrite and recorded.get(spec.name) == d and _complete(out)
                 and all(s.status == UP_TO_DATE for s in steps if s.name == spec.input))
        status = UP_TO_DATE if fresh else WILL_RUN
        if selected is not None and spec.name not in selected:
            status = SKIPPED
        steps.append(Step(spec.name, spec.kind, spec.input, out, d, status))
    if selected is not None:
        _check_inputs(steps, selected)
    return steps


def _input_hash(url: str | None) -> str | None:
    """An input outside the config: its manifest's hash (or, without one, its location)."""
    if url is None:
        return None
    d = DatasetDir(url)
    m = d.manifest() if d.exists() else None
    return mf.dataset_hash(m) if m else url


def _complete(url: str) -> bool:
    d = DatasetDir(url)
    if not d.exists():
        return False
    m = d.manifest()
    return m is None or bool(m.get("complete"))  # no manifest: a record folder (train, eval)


def _check_inputs(steps: list[Step], selected: set[str]) -> None:
    """A selected stage reading an unselected one needs that stage's output, finished."""
    by_name = {s.name: s for s in steps}
    for s in steps:
        source = by_name.get(s.input or "")
        if s.name in selected and source is not None and source.name not in selected \
                and not _complete(source.output):
            raise ConfigError(f'stage "{s.name}" reads stage "{source.name}", which has no '
                              f"finished output in {source.output}: run it first (or select it)")


def record(root: str, steps: list[Step], name: str) -> None:
    """After stage `name` finished: its digest into ROOT/plan.json."""
    d = DatasetDir(root.rstrip("/"))
    data = d.read_json(RECORD) or {}
    stages = data.get("stages", {})
    stages[name] = next(s.digest for s in steps if s.name == name)
    d.write_json(RECORD, {"stages": stages})


def as_rows(steps: list[Step]) -> list[dict[str, Any]]:
    return [{"stage": s.name, "kind": s.kind, "input": s.input or "", "output": s.output,
             "status": s.status} for s in steps]
