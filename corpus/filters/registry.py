"""Which metric a rule names, and its options, checked at config time.

A rule names a built-in metric (metrics.py) or any module's: "package.module:function", a
function declared with `@metric(column, type)`. Its options are the function's keyword
parameters; their annotations are the options' types and bounds, checked strictly like every
other config key (corpus/config_check.py), so a plugin needs no schema of its own.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import typing
from typing import Any, Required

from pydantic import TypeAdapter, ValidationError
from typing_extensions import TypedDict

from corpus.config_check import STRICT, check_keys, explain
from corpus.errors import ConfigError
from corpus.filters.metric import Metric, metric_of
from corpus.filters.metrics import METRICS


def resolve(name: Any) -> Metric:
    """The metric a rule names; a ConfigError (without the where prefix) otherwise."""
    if not isinstance(name, str) or ":" not in name:
        if name in METRICS:
            return METRICS[name]
        raise ConfigError(f"unknown rule {name!r} (known: {', '.join(METRICS)}; or "
                          '"package.module:function" for a @metric of your own)')
    module, _, attr = name.partition(":")
    try:
        found = importlib.import_module(module)
    except ImportError as e:
        raise ConfigError(f"rule {name!r}: cannot import {module}: {e}") from e
    fn = getattr(found, attr, None)
    if fn is None:
        raise ConfigError(f"rule {name!r}: {module} has no {attr!r}")
    m = metric_of(fn)
    if m is None:
        raise ConfigError(f"rule {name!r}: {attr} is not declared with @metric(column, type) "
                          "(corpus.filters.metric)")
    if m.name in METRICS and METRICS[m.name] is not m:
        raise ConfigError(f"rule {name!r}: its column {m.name!r} is a built-in metric's")
    return m


def options_of(m: Metric) -> dict[str, Any]:
    """The metric's options (its parameters after the rows) and their annotations."""
    params = list(inspect.signature(m.fn).parameters.values())[1:]
    hints = typing.get_type_hints(m.fn, include_extras=True)
    return {p.name: hints.get(p.name, Any) for p in params
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


@functools.cache
def _adapter(fn: Any) -> TypeAdapter[Any]:
    m = metric_of(fn)
    assert m is not None
    params = inspect.signature(fn).parameters
    fields = {k: (tp if params[k].default is not inspect.Parameter.empty else Required[tp])
              for k, tp in options_of(m).items()}
    table = TypedDict(f"{m.name} options", fields, total=False)  # type: ignore[operator]
    table.__pydantic_config__ = STRICT  # type: ignore[attr-defined]
    return TypeAdapter(table)


def check_options(m: Metric, options: dict[str, Any], where: str,
                  rule_keys: tuple[str, ...]) -> None:
    """Refuse an option the metric does not take (naming the closest key) or of a wrong type."""
    check_keys(options, [*rule_keys, *options_of(m)], where)
    try:
        _adapter(m.fn).validate_python(options)
    except ValidationError as e:
        text = explain(e, options_of(m))
        raise ConfigError(f"{where}{': ' if text.startswith('missing') else '.'}{text}") from e
