"""`corpus run CONFIG.toml`: stages in order, each into its own folder under one output root.

    [pipeline]
    output = "out/demo"              # the root; relative paths are relative to the cwd

    [[stages]]
    name = "tables"                  # also the output folder's name
    kind = "github-tables"           # a key of KINDS
    site_packages = true             # the kind's options

    [[stages]]
    name = "python"
    kind = "extract"
    input = "tables"                 # an earlier stage's name, or a path / URL
    query = "queries/github_python.sql"

A stage whose output is complete and was made from the same config and input is skipped; one
whose config or input changed is recomputed; a half-done one resumes.
"""

from __future__ import annotations

import dataclasses
import posixpath
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from corpus.engine import Engine
from corpus.errors import ConfigError, InputError
from corpus.io import DatasetDir
from corpus.units import parse_size


@dataclass
class StageSpec:
    name: str
    kind: str
    input: str | None
    options: dict[str, Any]


@dataclass
class Pipeline:
    path: str
    output: str
    stages: list[StageSpec] = field(default_factory=list)


def _options(cls: type, spec: dict[str, Any], where: str, sizes: tuple[str, ...] = ()) -> Any:
    """Build an options dataclass from a TOML table, refusing unknown keys by name."""
    allowed = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown option {', '.join(unknown)} "
                          f"(allowed: {', '.join(sorted(allowed))})")
    values = {k: parse_size(v) if k in sizes else v for k, v in spec.items()}
    try:
        return cls(**values)
    except TypeError as e:
        raise ConfigError(f"{where}: {e}") from e


def _github_tables(engine: Engine, spec: StageSpec, input_url: str | None, out: DatasetDir,
                   **kw: Any) -> dict[str, Any]:
    from corpus.github.build import GithubTablesJob, GithubTablesOptions

    opts = _options(GithubTablesOptions, spec.options, f"stage {spec.name}", ("chunk_bytes",))
    return engine.run(GithubTablesJob(opts, out), **kw)


def _extract(engine: Engine, spec: StageSpec, input_url: str | None, out: DatasetDir,
             **kw: Any) -> dict[str, Any]:
    from corpus.extract.duckdb_job import ExtractJob, ExtractOptions

    options = dict(spec.options)
    engine_name = options.pop("engine", "duckdb")
    if engine_name != "duckdb":
        raise ConfigError(f"stage {spec.name}: unknown engine {engine_name!r} (known: duckdb)")
    options["tables"] = _needs_input(spec, input_url).url
    opts = _options(ExtractOptions, options, f"stage {spec.name}", ("partition_bytes",))
    return engine.run(ExtractJob(opts, out), **kw)


def _needs_input(spec: StageSpec, input_url: str | None) -> DatasetDir:
    if input_url is None:
        raise ConfigError(f"stage {spec.name}: {spec.kind} needs `input` (a dataset directory "
                          "or the name of an earlier stage)")
    return DatasetDir(input_url)


def _filter(engine: Engine, spec: StageSpec, input_url: str | None, out: DatasetDir,
            **kw: Any) -> dict[str, Any]:
    from corpus.filters.stage import FilterJob, FilterOptions

    opts = _options(FilterOptions, spec.options, f"stage {spec.name}")
    return engine.run(FilterJob(opts, _needs_input(spec, input_url), out), **kw)


def _dedup(engine: Engine, spec: StageSpec, input_url: str | None, out: DatasetDir,
           **kw: Any) -> dict[str, Any]:
    from corpus.dedup.exact import ExactDedupJob, ExactOptions
    from corpus.dedup.near import MinHashDedupJob, MinHashOptions

    options = dict(spec.options)
    method = options.pop("method", "exact")
    jobs = {"exact": (ExactDedupJob, ExactOptions), "minhash": (MinHashDedupJob, MinHashOptions)}
    if method not in jobs:
        raise ConfigError(f"stage {spec.name}: unknown dedup method {method!r} "
                          f"(known: {', '.join(jobs)})")
    job, options_cls = jobs[method]
    opts = _options(options_cls, options, f"stage {spec.name}",
                    ("verify_memory",) if method == "minhash" else ())
    return engine.run(job(opts, _needs_input(spec, input_url), out), **kw)


#: Stage kinds a config can name. A new stage kind adds one entry here.
def _licenses(engine: Engine, spec: StageSpec, input_url: str | None, out: DatasetDir,
              **kw: Any) -> dict[str, Any]:
    from corpus.licenses.stage import pipeline_stage

    return pipeline_stage(engine, spec, input_url, out, **kw)


def _scrub(engine: Engine, spec: StageSpec, input_url: str | None, out: DatasetDir,
           **kw: Any) -> dict[str, Any]:
    from corpus.scrub.redact import ScrubOptions
    from corpus.scrub.stage import ScrubJob

    opts = _options(ScrubOptions, spec.options, f"stage {spec.name}")
    return engine.run(ScrubJob(_needs_input(spec, input_url), out, opts), **kw)


def _decontaminate(engine: Engine, spec: StageSpec, input_url: str | None, out: DatasetDir,
                   **kw: Any) -> dict[str, Any]:
    from corpus.contamination.stage import DecontaminateJob, DecontamOptions

    opts = _options(DecontamOptions, spec.options, f"stage {spec.name}")
    return engine.run(DecontaminateJob(_needs_input(spec, input_url), out, opts), **kw)


def _tokenizer(engine: Engine, spec: StageSpec, input_url: str | None, out: DatasetDir,
               overwrite: bool = False, **kw: Any) -> dict[str, Any]:
    from corpus.tokens import bpe

    opts = _options(bpe.TokenizerOptions, spec.options, f"stage {spec.name}")
    d = _needs_input(spec, input_url)
    if not overwrite and (done := bpe.reusable(out.path, d.content_hash(d.partition_keys()),
                                               opts)):
        return done
    return bpe.train(d.url, out.path, opts)


def _shard(engine: Engine | None, spec: StageSpec, input_url: str | None, out: DatasetDir,
           **kw: Any) -> dict[str, Any]:
    options = dict(spec.options)
    fmt = options.pop("format", None)
    where = f"stage {spec.name}"
    if fmt == "tokens":
        from corpus.tokens.shards import TokenShardJob, TokenShardOptions

        opts = _options(TokenShardOptions, options, where, ("shard_bytes",))
        assert engine is not None
        return engine.run(TokenShardJob(opts, _needs_input(spec, input_url), out), **kw)
    if fmt == "parquet":
        from corpus.publish.shards import parquet_shards

        return parquet_shards(_needs_input(spec, input_url), out, options, where,
                              overwrite=kw.get("overwrite", False),
                              replace_stale=kw.get("replace_stale", False))
    raise ConfigError(f"{where}: shard needs format = \"parquet\" or \"tokens\"")


def _train(engine: Engine, spec: StageSpec, input_url: str | None, out: DatasetDir,
           **kw: Any) -> dict[str, Any]:
    from corpus.train.launch import TrainStage, run_stage

    opts = _options(TrainStage, spec.options, f"stage {spec.name}")
    return run_stage(opts, _needs_input(spec, input_url).url, out.path,
                     overwrite=kw.get("overwrite", False))


KINDS: dict[str, Callable[..., dict[str, Any]]] = {
    "github-tables": _github_tables,
    "extract": _extract,
    "filter": _filter,
    "dedup": _dedup,
    "licenses": _licenses,
    "scrub": _scrub,
    "decontaminate": _decontaminate,
    "tokenizer": _tokenizer,
    "shard": _shard,
    "train": _train,
}


#: Options whose value may be the name of an earlier stage (then: that stage's output folder).
STAGE_REFERENCES = ("tokenizer",)


def read_toml(path: str, what: str) -> dict[str, Any]:
    """A TOML file, or one clear error naming it."""
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as e:
        raise InputError(f"cannot read {what} {path}: {e.strerror or e}") from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path} is not valid TOML: {e}") from e


def load(path: str) -> Pipeline:
    data = read_toml(path, "pipeline config")
    head = data.get("pipeline", {})
    if "output" not in head:
        raise ConfigError(f"{path}: [pipeline] needs `output`, the folder for all stages")
    stages, names = [], set()
    for i, raw in enumerate(data.get("stages", []), 1):
        raw = dict(raw)
        name, kind = raw.pop("name", None), raw.pop("kind", None)
        if not name or not kind:
            raise ConfigError(f"{path}: stage #{i} needs `name` and `kind`")
        if kind not in KINDS:
            raise ConfigError(f"{path}: stage {name}: unknown kind {kind!r} "
                              f"(known: {', '.join(sorted(KINDS))})")
        if name in names or "/" in name:
            raise ConfigError(f"{path}: stage name {name!r} is repeated or has a '/'")
        names.add(name)
        stages.append(StageSpec(name, kind, raw.pop("input", None), raw))
    if not stages:
        raise ConfigError(f"{path}: no [[stages]]")
    return Pipeline(path, head["output"], stages)


def run(p: Pipeline, engine: Engine, output: str | None = None, overwrite: bool = False,
        on_stage: Callable[[StageSpec, str, dict[str, Any]], None] | None = None,
        ) -> dict[str, str]:
    """Run every stage in order; return stage name -> output URL."""
    root = (output or p.output).rstrip("/")
    DatasetDir(root).write_json("pipeline.json", {  # the stage order, for `corpus report`
        "config": p.path, "stages": [{"name": s.name, "kind": s.kind, "input": s.input}
                                     for s in p.stages]})
    done: dict[str, str] = {}
    for spec in p.stages:
        input_url = done.get(spec.input, spec.input) if spec.input else None
        if spec.input and spec.input not in done and spec.input in {s.name for s in p.stages}:
            raise ConfigError(f"stage {spec.name} reads {spec.input}, which runs after it")
        out = DatasetDir(posixpath.join(root, spec.name))
        spec = dataclasses.replace(spec, options={  # options naming an earlier stage's output
            k: done.get(v, v) if k in STAGE_REFERENCES and isinstance(v, str) else v
            for k, v in spec.options.items()})
        manifest = KINDS[spec.kind](engine, spec, input_url, out, overwrite=overwrite,
                                    replace_stale=True)
        done[spec.name] = out.url
        if on_stage:
            on_stage(spec, out.url, manifest)
    return done


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
    if result.get("stage") == "shard-parquet":
        return str(result["summary"])
    if "trained_docs" in result:
        from corpus.tokens.bpe import summary

        return summary(result, str(result.get("out", "")))
    return None
