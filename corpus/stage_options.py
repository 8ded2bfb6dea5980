"""Each stage kind's options, from its TOML table, checked before any stage runs.

`parse(kind, table, where)` validates the table against the kind's Options dataclass
(corpus/config_check.py: unknown keys, types, bounds) and then what only the kind knows, where
that is cheap and local: filter rules, license keys, scrub kinds, benchmark names, and with
`files` the files a stage reads (the query and its parameters, benchmark files, the model TOML
and DeepSpeed JSON of a train stage). A mistake is one ConfigError line starting with `where`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from corpus.config_check import show, validate
from corpus.errors import ConfigError, CorpusError


def parse(kind: str, table: dict[str, Any], where: str, input: str | None = None,
          files: bool = True) -> Any:
    """The validated Options object of a stage of this kind (`input`: the extract stage's
    tables until the run resolves it)."""
    return PARSERS[kind](dict(table), where, input, files)


@contextmanager
def about(where: str, key: str | None = None) -> Iterator[None]:
    """Prefix the message of a CorpusError raised by a stage's own checks with where/key."""
    try:
        yield
    except CorpusError as e:
        raise type(e)(f"{where}: {key + ': ' if key else ''}{e}") from e


def choice(table: dict[str, Any], key: str, choices: tuple[str, ...], where: str,
           default: str | None = None) -> str:
    """Pop a key that selects the stage's variant (dedup's method, shard's format)."""
    value = table.pop(key, default)
    if value is None:
        raise ConfigError(f"{where}: missing required option `{key}` "
                          f"({' or '.join(json.dumps(c) for c in choices)})")
    if value not in choices:
        raise ConfigError(f"{where}: {key}: expected one of "
                          f"{', '.join(json.dumps(c) for c in choices)}, got {show(value)}")
    return str(value)


def _missing(paths: list[str], where: str, key: str) -> None:
    for p in paths:
        if "://" not in p and not os.path.exists(p):
            raise ConfigError(f"{where}: {key}: {p} does not exist")


def _github_tables(t: dict[str, Any], where: str, input: str | None, files: bool) -> Any:
    from corpus.github.build import GithubTablesOptions

    opts = validate(GithubTablesOptions, t, where)
    if files:
        _missing(opts.sources, where, "sources")
        _missing(opts.site_packages_dirs, where, "site_packages_dirs")
    return opts


def _import(t: dict[str, Any], where: str, input: str | None, files: bool) -> Any:
    from corpus.imports.job import ImportOptions

    opts = validate(ImportOptions, t, where)
    if files and not any(c in opts.source for c in "*?["):
        _missing([opts.source], where, "source")
    return opts


def _extract(t: dict[str, Any], where: str, input: str | None, files: bool) -> Any:
    from corpus.extract import template, transpile
    from corpus.extract.duckdb_job import ExtractOptions

    choice(t, "engine", ("duckdb",), where, default="duckdb")
    if "tables" in t:
        raise ConfigError(f"{where}: tables: an extract stage reads the tables of its `input`")
    opts = validate(ExtractOptions, {**t, "tables": input or ""}, where)
    if files:
        with about(where, "query"):
            tpl = template.load(opts.query)
            transpile.parse(tpl.sql, opts.query)
        for name, value in opts.params.items():  # TOML has types: "1024" is not an INT64
            p = tpl.params.get(name)
            if p is not None and isinstance(value, str) and p.element != "STRING":
                raise ConfigError(f"{where}: params.{name}: expected {p.type}, got {show(value)}")
        with about(where, "params"):
            template.bind(tpl, opts.params)
    return opts


def _filter(t: dict[str, Any], where: str, input: str | None, files: bool) -> Any:
    from corpus.filters import rules as rl
    from corpus.filters.stage import FilterOptions

    opts = validate(FilterOptions, t, where)
    if not opts.rules:
        raise ConfigError(f"{where}: rules: a filter stage needs at least one rule")
    rules = rl.parse(list(opts.rules), where)  # its messages name the rule: "rule #2: …"
    seen: dict[str, dict[str, Any]] = {}
    for r in rules:  # one metric column per name: its options must agree
        if seen.setdefault(r.metric, r.options) != r.options:
            raise ConfigError(f"{where}: rules: {r.metric} appears twice with other options")
    return opts


def _dedup(t: dict[str, Any], where: str, input: str | None, files: bool) -> Any:
    from corpus.dedup.exact import ExactOptions
    from corpus.dedup.near import MinHashOptions

    method = choice(t, "method", ("exact", "minhash"), where, default="exact")
    cls = ExactOptions if method == "exact" else MinHashOptions
    return validate(cls, t, f'{where}, method "{method}"')


def _licenses(t: dict[str, Any], where: str, input: str | None, files: bool) -> Any:
    from corpus.licenses.policy import LicenseOptions, normalize_keys

    opts = validate(LicenseOptions, t, where)
    normalize_keys(opts.allow, f"{where}: allow")  # what Policy.of does with each list
    normalize_keys(opts.deny, f"{where}: deny")
    return opts


def _scrub(t: dict[str, Any], where: str, input: str | None, files: bool) -> Any:
    from corpus.scrub.redact import ScrubOptions, known_kinds

    opts = validate(ScrubOptions, t, where)
    known = known_kinds()
    for i, kind in enumerate(opts.drop_files_with, 1):
        if kind not in known:
            raise ConfigError(f"{where}: drop_files_with #{i}: unknown kind {json.dumps(kind)} "
                              f"(known: {', '.join(sorted(known))})")
    return opts


def _decontaminate(t: dict[str, Any], where: str, input: str | None, files: bool) -> Any:
    from corpus.contamination import benchmarks
    from corpus.contamination.stage import DecontamOptions

    opts = validate(DecontamOptions, t, where)
    for i, name in enumerate(opts.benchmarks, 1):
        if name not in benchmarks.BUILTIN:
            raise ConfigError(f"{where}: benchmarks #{i}: unknown benchmark {json.dumps(name)} "
                              f"(built in: {', '.join(benchmarks.BUILTIN)})")
    if not opts.benchmarks and not opts.benchmark_files:
        raise ConfigError(f"{where}: benchmarks: no benchmark to decontaminate against")
    if files:
        with about(where, "benchmark_files"):
            for path in opts.benchmark_files:
                benchmarks.from_jsonl(path)
    return opts


def _tokenizer(t: dict[str, Any], where: str, input: str | None, files: bool) -> Any:
    from corpus.tokens.bpe import TokenizerOptions

    return validate(TokenizerOptions, t, where)


def _shard(t: dict[str, Any], where: str, input: str | None, files: bool) -> Any:
    fmt = choice(t, "format", ("parquet", "tokens"), where)
    from corpus.publish.shards import ParquetShardOptions
    from corpus.tokens.shards import TokenShardOptions

    cls: type = TokenShardOptions if fmt == "tokens" else ParquetShardOptions
    where = f'{where}, format "{fmt}"'
    opts = validate(cls, t, where)
    with about(where):  # the split rule of corpus/splits.py: a preset or fractions, sum < 1
        opts.split_rule()
    if files and opts.valid_from:
        _missing([opts.valid_from], where, "valid_from")
    return opts


def _train(t: dict[str, Any], where: str, input: str | None, files: bool) -> Any:
    from corpus.train import config
    from corpus.train.launch import TrainStage

    opts = validate(TrainStage, t, where)
    if files:
        with about(where, "model"):
            config.load(opts.model)
        with about(where, "deepspeed"):
            config.check_deepspeed(opts.deepspeed)
    return opts


def _export(t: dict[str, Any], where: str, input: str | None, files: bool) -> Any:
    from corpus.train.export import ExportOptions

    return validate(ExportOptions, t, where)


def _eval(t: dict[str, Any], where: str, input: str | None, files: bool) -> Any:
    from corpus.eval.stage import EvalOptions

    opts = validate(EvalOptions, t, where)
    if not opts.data and not opts.humaneval:
        raise ConfigError(f"{where}: an eval stage needs `data` (perplexity) or "
                          "`humaneval = true`")
    if opts.humaneval and (big := [k for k in opts.k if k > opts.n]):
        raise ConfigError(f"{where}: k: pass@{big[0]} needs n >= {big[0]} samples per problem, "
                          f"got n = {opts.n}")
    if opts.split not in ("train", "validation", "test", "all"):
        raise ConfigError(f"{where}: split: expected train, validation, test or all, "
                          f"got {show(opts.split)}")
    if opts.by not in ("language", "extension", "none"):
        raise ConfigError(f"{where}: by: expected language, extension or none, got {show(opts.by)}")
    if files and opts.problem_file:
        _missing([opts.problem_file], where, "problem_file")
    return opts


#: kind -> (table, where, input, files) -> its Options object; one entry per kind of KINDS
PARSERS: dict[str, Callable[[dict[str, Any], str, str | None, bool], Any]] = {
    "github-tables": _github_tables,
    "import": _import,
    "extract": _extract,
    "filter": _filter,
    "dedup": _dedup,
    "licenses": _licenses,
    "scrub": _scrub,
    "decontaminate": _decontaminate,
    "tokenizer": _tokenizer,
    "shard": _shard,
    "train": _train,
    "export": _export,
    "eval": _eval,
}
