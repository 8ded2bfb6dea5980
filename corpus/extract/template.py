"""Query templates: BigQuery Standard SQL files that declare their named parameters.

A template declares each `@name` it uses in a header comment, with a BigQuery type and
optionally a JSON default:

    -- @param min_size INT64 = 1024        -- smallest file, in bytes
    -- @param extensions ARRAY<STRING> = [".py"]

so that a missing or unknown parameter is refused before any work, and the BigQuery engine can
send typed query parameters.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from corpus.errors import ConfigError, InputError

SCALARS = {"INT64", "FLOAT64", "STRING", "BOOL"}
_DECL = re.compile(
    r"^--\s*@param\s+(?P<name>[A-Za-z_]\w*)\s+(?P<type>[A-Z0-9<>]+)"
    r"(?:\s*=\s*(?P<default>.+?))?\s*(?:--\s*(?P<doc>.*))?$")


@dataclass(frozen=True)
class Param:
    name: str
    type: str  # INT64, FLOAT64, STRING, BOOL, or ARRAY<one of those>
    default: Any = None
    doc: str = ""

    @property
    def element(self) -> str:
        return self.type[6:-1] if self.is_array else self.type

    @property
    def is_array(self) -> bool:
        return self.type.startswith("ARRAY<")


@dataclass(frozen=True)
class Template:
    path: str
    sql: str
    params: dict[str, Param]


def load(path: str) -> Template:
    try:
        sql = Path(path).read_text()
    except OSError as e:
        raise InputError(f"cannot read query {path}: {e.strerror or e}") from e
    params: dict[str, Param] = {}
    for n, line in enumerate(sql.splitlines(), 1):
        if "@param" not in line or not line.lstrip().startswith("--"):
            continue
        m = _DECL.match(line.strip())
        if not m:
            raise ConfigError(f"{path}:{n}: cannot read parameter declaration {line.strip()!r}; "
                              "expected '-- @param NAME TYPE [= JSON default]'")
        ptype = m["type"]
        if ptype not in SCALARS and not (ptype.startswith("ARRAY<") and ptype[6:-1] in SCALARS):
            raise ConfigError(f"{path}:{n}: unsupported parameter type {ptype}")
        default = None
        if m["default"] is not None:
            try:
                default = _check(Param(m["name"], ptype), json.loads(m["default"]))
            except ValueError as e:
                raise ConfigError(f"{path}:{n}: bad default for @{m['name']}: {e}") from e
        params[m["name"]] = Param(m["name"], ptype, default, (m["doc"] or "").strip())
    return Template(path, sql, params)


def _scalar(t: str, v: Any) -> Any:
    if t == "INT64" and isinstance(v, int) and not isinstance(v, bool):
        return v
    if t == "FLOAT64" and isinstance(v, int | float) and not isinstance(v, bool):
        return float(v)
    if t == "STRING" and isinstance(v, str):
        return v
    if t == "BOOL" and isinstance(v, bool):
        return v
    raise ValueError(f"{v!r} is not a {t}")


def _check(p: Param, v: Any) -> Any:
    if p.is_array:
        if not isinstance(v, list):
            raise ValueError(f"{v!r} is not a {p.type}")
        return [_scalar(p.element, x) for x in v]
    return _scalar(p.type, v)


def _parse_text(p: Param, text: str) -> Any:
    """A value given on the command line: JSON if it looks like it, else plain text
    (comma-separated for arrays)."""
    def one(t: str, s: str) -> Any:
        s = s.strip()
        if t == "INT64":
            return int(s.replace("_", ""))
        if t == "FLOAT64":
            return float(s)
        if t == "BOOL":
            if s.lower() not in ("true", "false"):
                raise ValueError(f"{s!r} is not true or false")
            return s.lower() == "true"
        return s

    if p.is_array:
        if text.strip().startswith("["):
            return _check(p, json.loads(text))
        return [one(p.element, s) for s in text.split(",") if s.strip()]
    return one(p.type, text)


def bind(t: Template, given: dict[str, Any]) -> dict[str, Any]:
    """Typed values for every declared parameter: given (text or typed), else the default."""
    unknown = sorted(set(given) - set(t.params))
    if unknown:
        declared = ", ".join(sorted(t.params)) or "none"
        raise ConfigError(f"unknown parameter {', '.join('@' + u for u in unknown)} for query "
                          f"{t.path} (it declares: {declared})")
    values = {}
    for name, p in t.params.items():
        if name in given:
            raw = given[name]
            try:
                values[name] = _parse_text(p, raw) if isinstance(raw, str) else _check(p, raw)
            except ValueError as e:
                raise ConfigError(f"parameter @{name} ({p.type}): {e}") from e
        elif p.default is not None:
            values[name] = p.default
        else:
            raise ConfigError(f"query {t.path} needs parameter @{name} ({p.type}); "
                              f"pass --param {name}=VALUE")
    return values


def parse_assignments(items: list[str]) -> dict[str, str]:
    """`name=value` strings from the command line."""
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"--param {item!r}: expected name=value")
        out[name.strip().lstrip("@")] = value
    return out
