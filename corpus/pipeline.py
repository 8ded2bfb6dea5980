"""`corpus run CONFIG.toml`: stages in order, each into its own folder under one output root.

    [pipeline]
    output = "out/demo"              # the root; relative paths: to this file's folder

    [[stages]]
    name = "tables"                  # also the output folder's name
    kind = "github-tables"           # a key of KINDS
    site_packages = true             # the kind's options

    [[stages]]
    name = "python"
    kind = "extract"
    input = "tables"                 # an earlier stage's name, or a path / URL
    query = "queries/github_python.sql"

`load` (corpus/pipeline_config.py) checks the whole config before anything runs and gives each
stage its validated options object, which `run` passes to the stage as is.

A stage whose output is complete and was made from the same config and input is skipped; one
whose config or input changed is recomputed; a half-done one resumes.
"""

from __future__ import annotations

import dataclasses
import posixpath
from collections.abc import Callable
from typing import Any

from corpus import registry, stage_options
from corpus.config_check import read_toml, validate
from corpus.engine import Engine
from corpus.errors import ConfigError, InputError
from corpus.io import DatasetDir
from corpus.pipeline_config import (
    STAGE_REFERENCES,
    Pipeline,
    StageSpec,
    load,
    where_of,
)

__all__ = ["KINDS", "STAGE_REFERENCES", "Pipeline", "StageSpec", "describe", "load",
           "read_toml", "run", "stage_of"]


def options_of(spec: StageSpec) -> Any:
    """The stage's validated options (checked now if load() did not)."""
    if spec.opts is None:
        spec.opts = stage_options.parse(spec.kind, spec.options, where_of(spec), spec.input)
    return spec.opts


def _options(cls: type, table: dict[str, Any], where: str, sizes: tuple[str, ...] = ()) -> Any:
    """An options dataclass from a TOML table (for callers outside; sizes: read as sizes
    anyway, by their annotation)."""
    return validate(cls, table, where)


def _needs_input(spec: StageSpec, input_url: str | None) -> DatasetDir:
    if input_url is None:
        raise ConfigError(f"stage {spec.name}: {spec.kind} needs `input` (a dataset directory "
                          "or the name of an earlier stage)")
    return DatasetDir(input_url)


def _declared(engine: Engine, spec: StageSpec, input_url: str | None, out: DatasetDir,
              **kw: Any) -> dict[str, Any]:
    """Every runner kind: its declaration (corpus/registry.py) makes the job, or runs the
    stage when it is more than one job."""
    opts = options_of(spec)
    d = registry.declaration(spec.kind, opts)
    input = _needs_input(spec, input_url) if d.needs_input else None
    if d.make_job is not None:
        return engine.run(d.make_job(opts, input, out), **kw)
    assert d.run_stage is not None
    return d.run_stage(engine, opts, input, out, where_of(spec),
                       overwrite=kw.get("overwrite", False),
                       replace_stale=kw.get("replace_stale", False))


def _train(engine: Engine, spec: StageSpec, input_url: str | None, out: DatasetDir,
           **kw: Any) -> dict[str, Any]:
    """The token shards may be remote (read through fsspec); the run folder is local
    (corpus/localdir.py), copied to a remote output less its checkpoints."""
    from corpus.localdir import local_dir, publish
    from corpus.train.launch import run_stage

    run_dir = local_dir(out.url)
    result = run_stage(options_of(spec), _needs_input(spec, input_url).url, run_dir,
                       overwrite=kw.get("overwrite", False))
    publish(run_dir, out.url, keep_local=("checkpoints",))
    return result


def _local_input(spec: StageSpec, input_url: str | None, what: str) -> str:
    """The local folder of an earlier train / export stage (where its checkpoints are)."""
    from pathlib import Path

    from corpus.localdir import local_dir

    if not input_url:
        raise ConfigError(f"stage {spec.name} ({spec.kind}) needs `input`: {what}")
    local = local_dir(input_url)
    if local != input_url and not Path(local).exists():
        raise InputError(f"stage {spec.name}: {input_url} was made on another machine; "
                         f"{spec.kind} reads its local folder ({local}): run it there")
    return local


def _on_local_folder(what: str, work: Callable[[str, str, Any], dict[str, Any]],
                     ) -> Callable[..., dict[str, Any]]:
    """A stage that reads an earlier stage's local folder (`what`) and writes a local folder
    by `work(input_folder, output_folder, options)`, copied to a remote output."""
    def stage(engine: Engine, spec: StageSpec, input_url: str | None, out: DatasetDir,
              **kw: Any) -> dict[str, Any]:
        from corpus.localdir import local_dir, publish

        src = _local_input(spec, input_url, what)
        folder = local_dir(out.url)
        result = work(src, folder, options_of(spec))
        publish(folder, out.url)
        return {**result, "out": out.url}

    return stage


def _export(run: str, folder: str, opts: Any) -> dict[str, Any]:
    from corpus.train.export import export

    return export(run, folder, opts)


def _eval(model: str, folder: str, opts: Any) -> dict[str, Any]:
    from corpus.eval.stage import run

    return run(model, folder, opts)


#: Stage kinds a config can name: the runner's kinds (corpus/registry.py declares them; a new
#: one adds its module there and its parser to corpus/stage_options.py PARSERS), and the
#: stages that run a process of their own on a local folder.
KINDS: dict[str, Callable[..., dict[str, Any]]] = {
    **dict.fromkeys(registry.MODULES, _declared),
    "train": _train,
    "export": _on_local_folder("a train stage", _export),
    "eval": _on_local_folder("an export stage or a model folder", _eval),
}


def run(p: Pipeline, engine: Engine, output: str | None = None, overwrite: bool = False,
        on_stage: Callable[[StageSpec, str, dict[str, Any]], None] | None = None,
        only: set[str] | None = None) -> dict[str, str]:
    """Run every stage in order (with `only`: those stages; the others' outputs are read as
    they are), holding the root's writer lock; return stage name -> URL."""
    from corpus.lock import writer_lock

    root = (output or p.output).rstrip("/")
    with writer_lock(root):  # before anything under the root is written
        return _run(p, engine, root, overwrite, on_stage, only)


def _run(p: Pipeline, engine: Engine, root: str, overwrite: bool,
         on_stage: Callable[[StageSpec, str, dict[str, Any]], None] | None,
         only: set[str] | None = None) -> dict[str, str]:
    DatasetDir(root).write_json("pipeline.json", {  # the stage order, for `corpus report`
        "config": p.path, "stages": [{"name": s.name, "kind": s.kind, "input": s.input}
                                     for s in p.stages]})
    done: dict[str, str] = {}
    for spec in p.stages:
        input_url = done.get(spec.input, spec.input) if spec.input else None
        if spec.input and spec.input not in done and spec.input in {s.name for s in p.stages}:
            raise ConfigError(f"stage {spec.name} reads {spec.input}, which runs after it")
        out = DatasetDir(posixpath.join(root, spec.name))
        if only is not None and spec.name not in only:  # --only / --from: not run, read as is
            done[spec.name] = out.url
            continue
        spec = _resolved(spec, done)
        engine.log.record("stage-start", stage_name=spec.name, kind=spec.kind, output=out.url)
        manifest = KINDS[spec.kind](engine, spec, input_url, out, overwrite=overwrite,
                                    replace_stale=True)
        done[spec.name] = out.url
        if on_stage:
            on_stage(spec, out.url, manifest)
    return done


def _resolved(spec: StageSpec, done: dict[str, str]) -> StageSpec:
    """The spec with its options naming an earlier stage set to that stage's output (a filter's
    tokenizer: the tokenizer.json in it)."""
    from corpus.tokens.bpe import FILE

    opts = options_of(spec)
    changes = {}
    for key in STAGE_REFERENCES:
        value = getattr(opts, key, None)
        if isinstance(value, str) and value in done:
            url = done[value]
            changes[key] = posixpath.join(url, FILE) if spec.kind == "filter" else url
    if not changes:
        return spec
    return dataclasses.replace(spec, options={**spec.options, **changes},
                               opts=dataclasses.replace(opts, **changes))


def stage_of(p: Pipeline, kind: str, name: str | None = None) -> StageSpec:
    """The config's stage of this kind (the named one if there are several)."""
    found = [s for s in p.stages if s.kind == kind and (name is None or s.name == name)]
    if not found:
        raise ConfigError(f"{p.path} has no {kind} stage" + (f" named {name!r}" if name else ""))
    if len(found) > 1:
        raise ConfigError(f"{p.path} has several {kind} stages "
                          f"({', '.join(s.name for s in found)}): choose one with --stage")
    return found[0]


def describe(result: dict[str, Any]) -> str | None:
    """One line for a stage whose output is not a dataset directory (tokenizer, parquet shards,
    a training run); None for dataset directories (their stats say more)."""
    if "tokens" in result and "fingerprint" in result:
        from corpus.tokens.shards import describe as tokens

        return tokens(result)
    if result.get("stage") == "train":
        from corpus.train.launch import describe as train

        return train(result)
    if result.get("stage") == "eval":
        from corpus.eval.stage import describe as evaluation

        return evaluation(result)
    if "architecture" in result and "tag" in result:
        from corpus.train.export import describe as export

        return export(result, str(result.get("out", "")))
    if result.get("stage") == "shard-parquet":
        return str(result["summary"])
    if result.get("stage") == "tokenizer" and "tokenizer" in result:
        from corpus.tokens.bpe import summary

        return summary(result["tokenizer"], "")
    return None
