"""Reading a pipeline config: the whole of it checked before any stage runs.

Its tables and keys; each stage's name, kind and options (types, bounds and the kind's own checks,
corpus/stage_options.py); each input and stage reference: an earlier stage (of the right kind),
else an existing path, or a URL. `corpus.pipeline` runs what `load` returns.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from typing import Any

from corpus import stage_options
from corpus.config_check import check_keys, read_toml, show, validate
from corpus.errors import ConfigError


@dataclass
class StageSpec:
    name: str
    kind: str
    input: str | None
    options: dict[str, Any]  # the stage's TOML table (less name, kind, input), as written
    #: its validated Options object: set by load(); for a spec built in code, on first use
    opts: Any = None


@dataclass
class Pipeline:
    path: str
    output: str
    stages: list[StageSpec] = field(default_factory=list)


@dataclass
class PipelineTable:
    """The [pipeline] table."""
    output: str  # the root: each stage writes ROOT/<stage name>/


#: the keys of a [[stages]] entry that are not the kind's options
STAGE_KEYS = ("name", "kind", "input")


#: the stage kinds (corpus/pipeline.py KINDS runs them)
KINDS = tuple(stage_options.PARSERS)

#: Options whose value may be the name of an earlier stage (then: that stage's output folder),
#: and the kind of stage they may name.
STAGE_REFERENCES = ("tokenizer", "data")  # an eval stage's data: a dataset stage
REFERENCE_KINDS = {"tokenizer": "tokenizer"}

#: Options that name files or folders, per kind: relative paths in them (and in `input`,
#: `[pipeline].output`) are relative to the config file's folder, not to the cwd.
PATH_KEYS: dict[str, tuple[str, ...]] = {
    "github-tables": ("sources", "site_packages_dirs", "repos"),
    "extract": ("query",),
    "import": ("source",),
    "filter": ("tokenizer",),
    "decontaminate": ("benchmark_files",),
    "shard": ("tokenizer", "valid_from"),
    "train": ("model", "deepspeed", "init"),
    "eval": ("data", "problem_file"),
}


#: Kinds that read no earlier stage, and what they read instead
SOURCES = {"github-tables": "`sources`, `site_packages`, `site_packages_dirs`",
           "import": "`source`"}


def where_of(spec: StageSpec) -> str:
    return f'stage "{spec.name}" ({spec.kind})'


def load(path: str, files: bool = True) -> Pipeline:
    """The config at `path`, checked whole before anything runs: its tables and keys, every
    stage's options (types, bounds, what the kind checks), each input and stage reference
    (an earlier stage, else an existing path or a URL). With files=False, the files the stages
    would read (inputs, queries, model configs, …) are not looked at: for a command that takes
    one stage's options from the config."""
    data = read_toml(path, "pipeline config")
    check_keys(data, ["pipeline", "stages"], path, "table")
    head = validate(PipelineTable, data.get("pipeline", {}), f"{path}: [pipeline]")
    base = os.path.dirname(path)
    head.output = relative_to(base, head.output)
    raw = data.get("stages", [])
    if not isinstance(raw, list) or not all(isinstance(s, dict) for s in raw):
        raise ConfigError(f"{path}: stages: expected [[stages]] tables, got {show(raw)}")
    if not raw:
        raise ConfigError(f"{path}: no [[stages]]")
    stages: list[StageSpec] = []
    for i, table in enumerate(raw, 1):
        spec = _stage(path, i, table, stages)
        stages.append(spec)
    names = [s.name for s in stages]
    for i, spec in enumerate(stages):
        where = f"{path}: {where_of(spec)}"
        _check_input(spec, stages[:i], names[i:], where, files, base)
        for key in STAGE_REFERENCES:
            value = spec.options.get(key)
            if isinstance(value, str):
                _check_reference(key, value, stages[:i], names[i:], where, files, spec.kind,
                                 base)
        _resolve_paths(spec, base, set(names))  # after the checks: their messages say as written
        spec.opts = stage_options.parse(spec.kind, spec.options, where, spec.input, files)
        if spec.kind == "train":
            _check_train(spec, stages[:i], where, files)
    return Pipeline(path, head.output, stages)


def relative_to(base: str, value: str) -> str:
    """A config's path as the process opens it: relative ones joined to the config's folder;
    absolute paths and URLs as written."""
    if not base or "://" in value or os.path.isabs(value):
        return value
    return os.path.normpath(os.path.join(base, value))


def _resolve_paths(spec: StageSpec, base: str, names: set[str]) -> None:
    """The stage's input and path options relative to `base`; stage names are left alone
    (they name an earlier stage, or are refused by name)."""
    def one(value: Any) -> Any:
        return relative_to(base, value) if isinstance(value, str) and value not in names \
            else value

    if spec.input is not None:
        spec.input = one(spec.input)
    for key in PATH_KEYS.get(spec.kind, ()):
        value = spec.options.get(key)
        if isinstance(value, list):
            spec.options[key] = [one(v) for v in value]
        elif value is not None:
            spec.options[key] = one(value)


def _stage(path: str, i: int, table: dict[str, Any], before: list[StageSpec]) -> StageSpec:
    """A [[stages]] entry's name, kind and input, checked; its options as written."""
    where = f"{path}: stage #{i}"
    for key in ("name", "kind"):
        if key not in table:
            raise ConfigError(f"{where}: missing required key `{key}`")
        if not isinstance(table[key], str):
            raise ConfigError(f"{where}: {key}: expected a string, got {show(table[key])}")
    name, kind = table["name"], table["kind"]
    if not name or "/" in name or name in (".", ".."):
        raise ConfigError(f"{where}: name: {name!r} cannot be a folder name (no '/')")
    if name in (s.name for s in before):
        raise ConfigError(f"{where}: name: {name!r} is repeated (stage names name folders)")
    if kind not in KINDS:
        raise ConfigError(f'{path}: stage "{name}": unknown kind {kind!r} '
                          f"(known: {', '.join(sorted(KINDS))})")
    spec = StageSpec(name, kind, table.get("input"),
                     {k: v for k, v in table.items() if k not in STAGE_KEYS})
    if spec.input is not None and not isinstance(spec.input, str):
        raise ConfigError(f"{path}: {where_of(spec)}: input: expected a string (a stage's name, "
                          f"a path or a URL), got {show(spec.input)}")
    return spec


def _check_input(spec: StageSpec, earlier: list[StageSpec], later: list[str], where: str,
                 files: bool, base: str = "") -> None:
    if spec.kind in SOURCES:
        if spec.input is not None:
            raise ConfigError(f"{where}: input: a {spec.kind} stage has no input (it reads "
                              f"{SOURCES[spec.kind]})")
        return
    if spec.input is None:
        raise ConfigError(f"{where}: missing required key `input` (an earlier stage's name, or "
                          "a dataset directory)")
    _check_reference("input", spec.input, earlier, later, where, files, spec.kind, base)


def _check_reference(key: str, value: str, earlier: list[StageSpec], later: list[str],
                     where: str, files: bool, kind: str, base: str = "") -> None:
    """An input or STAGE_REFERENCES value: an earlier stage (of the kind it must name), or an
    existing path (relative to `base`, the config's folder), or a URL. A later stage, or a
    name that is neither, is refused by name."""
    found = next((s for s in earlier if s.name == value), None)
    wanted = REFERENCE_KINDS.get(key)
    if found is not None:
        if wanted and found.kind != wanted:
            raise ConfigError(f'{where}: {key}: stage "{value}" is a {found.kind} stage, '
                              f"not a {wanted} stage")
        return
    if value in later:
        what = "is this stage itself" if value == later[0] else "runs after this one"
        raise ConfigError(f'{where}: {key}: stage "{value}" {what}; a stage reads only '
                          "the stages before it")
    if "://" in value or not files:
        return
    is_file = key == "tokenizer" and kind == "filter"  # a `tokenizers` JSON file
    found_path = relative_to(base, value)
    if os.path.isfile(found_path) if is_file else os.path.exists(found_path):
        return
    names = [s.name for s in earlier]
    close = difflib.get_close_matches(value, names, n=1)
    hint = f'did you mean "{close[0]}"? ' if close else ""
    listed = f"stages before it: {', '.join(names)}" if names else "no stage comes before it"
    raise ConfigError(f'{where}: {key}: "{value}" is not a stage ({hint}{listed}) and no '
                      f"{'file' if is_file else 'path'} of that name exists")


def _check_train(spec: StageSpec, earlier: list[StageSpec], where: str, files: bool) -> None:
    """A train stage reading a token shard stage of this config: the shards' context must fit
    the model's (checked here rather than when training starts, after every other stage)."""
    from corpus.tokens.shards import TokenShardOptions

    source = next((s for s in earlier if s.name == spec.input), None)
    if source is None:
        return
    if not isinstance(source.opts, TokenShardOptions):
        raise ConfigError(f'{where}: input: stage "{source.name}" ({source.kind}) does not make '
                          'token shards (a shard stage with format = "tokens" does)')
    if files:
        from corpus.train.config import load as load_model

        model, _ = load_model(spec.opts.model)
        if source.opts.seq_len > model.n_positions:
            raise ConfigError(f'{where}: model: n_positions {model.n_positions} of '
                              f'{spec.opts.model} is shorter than stage "{source.name}"\'s '
                              f"seq_len {source.opts.seq_len}")
