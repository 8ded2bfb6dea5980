"""Config tables checked against the stages' Options dataclasses, in one line per mistake.

The dataclasses stay plain stdlib dataclasses (Python code and the CLI build them directly);
their annotations carry the types and bounds (`Annotated[int, Field(ge=1)]`), and pydantic
checks a TOML table against them here, in strict mode: a bool must be a TOML boolean (`"no"` is
not false), a number a number, a list a list, and every key must be a field. The first mistake
becomes one ConfigError line naming where it is and the key:

    pipelines/x.toml: stage "scrubbed" (scrub): drop_files_with: expected a list of strings,
    got the string "PRIVATE_KEY"
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import json
import tomllib
import typing
from typing import Annotated, Any, Literal, NotRequired, Required, TypeVar

import annotated_types as at
from pydantic import BeforeValidator, ConfigDict, Field, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo
from typing_extensions import TypedDict, is_typeddict  # pydantic needs its TypedDict on 3.11

from corpus.errors import ConfigError, InputError
from corpus.units import parse_size

T = TypeVar("T")

#: strict types, no unknown keys; nested tables (TypedDicts) inherit it
STRICT = ConfigDict(strict=True, extra="forbid")


def _size(value: Any) -> Any:
    """A size string ("64MiB") as bytes; anything else is left to the int check."""
    if isinstance(value, str):
        try:
            return parse_size(value)
        except ConfigError as e:
            raise ValueError(str(e)) from e
    return value


#: bytes, as an integer or a size string ("64MiB", "500MB"); at least 1
Size = Annotated[int, BeforeValidator(_size), Field(ge=1)]


def read_toml(path: str, what: str) -> dict[str, Any]:
    """A TOML file, or one clear error naming it."""
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as e:
        raise InputError(f"cannot read {what} {path}: {e.strerror or e}") from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path} is not valid TOML: {e}") from e


def validate(cls: type[T], data: Any, where: str) -> T:
    """`cls(**data)` for a TOML table, after checking it against cls's annotations. Values are
    kept as written where they passed unchanged (a threshold of 1000 stays the int 1000, so
    fingerprints do not move); sizes become bytes."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a table, got {show(data)}")
    try:
        checked = _adapter(cls).validate_python(data)
    except ValidationError as e:
        raise ConfigError(f"{where}: {explain(e, field_types(cls))}") from e
    return cls(**{k: data[k] if data[k] == v else v for k, v in checked.items()})


def field_types(cls: type) -> dict[str, Any]:
    """A dataclass's field annotations, resolved, with their Annotated bounds."""
    return typing.get_type_hints(cls, include_extras=True)


@functools.cache
def _adapter(cls: type) -> TypeAdapter[Any]:
    """A TypedDict of cls's init fields (required: those without a default) and its adapter:
    a TypedDict validates a dict in strict mode and returns only the keys given."""
    hints = field_types(cls)
    fields = {f.name: (hints[f.name] if _has_default(f) else Required[hints[f.name]])
              for f in dataclasses.fields(cls) if f.init}
    table = TypedDict(cls.__name__, fields, total=False)  # type: ignore[operator]
    table.__pydantic_config__ = STRICT  # type: ignore[attr-defined]
    return TypeAdapter(table)


def _has_default(f: dataclasses.Field[Any]) -> bool:
    return f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING


def check_keys(table: dict[str, Any], allowed: list[str], where: str, what: str = "key") -> None:
    """Refuse keys of a table outside `allowed`, naming them (and the closest allowed one)."""
    unknown = [k for k in table if k not in allowed]
    if unknown:
        raise ConfigError(f"{where}: {_unknown(unknown, allowed, what)}")


def _unknown(keys: list[str], allowed: list[str], what: str) -> str:
    close = difflib.get_close_matches(keys[0], allowed, n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    return (f"unknown {what} {', '.join(keys)} ({hint}allowed: "
            f"{', '.join(sorted(allowed)) or 'none'})")


# --- one line per validation error --------------------------------------------------------

def explain(e: ValidationError, hints: dict[str, Any]) -> str:
    """The first error of a pydantic ValidationError, in words, with its key's path."""
    errors = e.errors(include_url=False)
    # an unknown key first: it is usually the typo behind a missing one
    first = next((x for x in errors if x["type"] == "extra_forbidden"), errors[0])
    loc = tuple(first["loc"])
    where = path(loc)
    if first["type"] == "extra_forbidden":
        parent = loc[:-1]
        keys = [str(x["loc"][-1]) for x in errors
                if x["type"] == "extra_forbidden" and tuple(x["loc"][:-1]) == parent]
        allowed = list(_keys_of(_at(hints, parent)))
        text = _unknown(keys, allowed, "option" if not parent else "key")
        return f"{path(parent)}: {text}" if parent else text
    if first["type"] == "missing":
        what = "option" if len(loc) == 1 else "key"
        return f"{path(loc[:-1]) + ': ' if len(loc) > 1 else ''}missing required {what} " \
               f"`{loc[-1]}`"
    return f"{where}: {_problem(first, _at(hints, loc))}"


def _problem(error: Any, annotation: Any) -> str:
    kind, value, ctx = error["type"], error["input"], error.get("ctx") or {}
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        return f"must be {bounds(annotation) or _bound(kind, ctx)}, got {show(value)}"
    if kind in ("too_short", "too_long"):
        return f"expected {describe(annotation)}, got {show(value)}"
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    return f"expected {describe(annotation)}, got {show(value)}"


def _bound(kind: str, ctx: dict[str, Any]) -> str:
    words = {"greater_than": ("more than", "gt"), "greater_than_equal": ("at least", "ge"),
             "less_than": ("less than", "lt"), "less_than_equal": ("at most", "le")}
    text, key = words[kind]
    return f"{text} {_num(ctx.get(key))}"


def path(loc: tuple[Any, ...]) -> str:
    """("rules", 1, "max") -> "rules #2.max": list items counted from 1, as in a file."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f" #{part + 1}"
        else:
            out += ("." if out else "") + str(part)
    return out


def _strip(tp: Any) -> tuple[Any, list[Any]]:
    """(the type without Annotated/Optional/Required wrappers, the Annotated metadata)."""
    meta: list[Any] = []
    while True:
        origin = typing.get_origin(tp)
        if origin is Annotated:
            meta += list(tp.__metadata__)
            tp = tp.__origin__
        elif origin in (Required, NotRequired):
            tp = typing.get_args(tp)[0]
        elif _is_optional(tp):
            tp = next(a for a in typing.get_args(tp) if a is not type(None))
        else:
            return tp, meta


def _is_optional(tp: Any) -> bool:
    args = typing.get_args(tp)
    return type(None) in args and len(args) == 2 and typing.get_origin(tp) is not Literal


def _at(hints: dict[str, Any], loc: tuple[Any, ...]) -> Any:
    """The annotation of the value at loc: the hints themselves for the whole table, Any
    where the path cannot be followed."""
    if not loc:
        return hints
    tp = hints.get(loc[0], Any)
    for part in loc[1:]:
        base, _ = _strip(tp)
        origin = typing.get_origin(base)
        if isinstance(part, int) and origin is list:
            tp = typing.get_args(base)[0]
        elif is_typeddict(base):
            tp = typing.get_type_hints(base, include_extras=True).get(part, Any)
        elif origin is dict:
            tp = typing.get_args(base)[1]
        else:
            return Any
    return tp


def _keys_of(tp: Any) -> list[str]:
    if isinstance(tp, dict):
        return list(tp)
    base, _ = _strip(tp)
    if is_typeddict(base):
        return list(typing.get_type_hints(base))
    return []


def describe(tp: Any) -> str:
    """What a value of this annotation looks like in a TOML file."""
    base, meta = _strip(tp)
    if any(isinstance(m, BeforeValidator) and m.func is _size for m in meta):
        return 'a size (bytes, or text such as "64MiB")'
    origin = typing.get_origin(base)
    if origin is Literal:
        return "one of " + ", ".join(json.dumps(a) for a in typing.get_args(base))
    if origin is list:
        item = typing.get_args(base)[0] if typing.get_args(base) else Any
        n = _length(meta)
        return f"a list of {f'{n} ' if n else ''}{_plural(item)}"
    if origin is dict or is_typeddict(base) or isinstance(base, dict):
        return "a table"
    words: dict[Any, str] = {bool: "true or false", int: "an integer", float: "a number",
                             str: "a string"}
    return words.get(base, "a value")


def _plural(tp: Any) -> str:
    base, _ = _strip(tp)
    if typing.get_origin(base) is Literal:
        return "strings, each " + describe(base)
    words = {bool: "booleans", int: "integers", float: "numbers", str: "strings"}
    if base in words:
        return words[base]
    return "tables" if typing.get_origin(base) is dict or is_typeddict(base) else "values"


def _length(meta: list[Any]) -> int | None:
    lo = hi = None
    for m in _constraints(meta):
        lo = m.min_length if isinstance(m, at.MinLen) else lo
        hi = m.max_length if isinstance(m, at.MaxLen) else hi
    return lo if lo is not None and lo == hi else None


def _constraints(meta: list[Any]) -> list[Any]:
    out: list[Any] = []
    for m in meta:
        out += list(m.metadata) if isinstance(m, FieldInfo) else [m]
    return out


def limits(tp: Any) -> tuple[Any, bool, Any, bool]:
    """(lower bound, open?, upper bound, open?) of an annotation; None where unbounded."""
    _, meta = _strip(tp)
    lo = hi = None
    lo_open = hi_open = False
    for m in _constraints(meta):
        if isinstance(m, at.Ge | at.Gt):
            lo, lo_open = (m.ge, False) if isinstance(m, at.Ge) else (m.gt, True)
        elif isinstance(m, at.Le | at.Lt):
            hi, hi_open = (m.le, False) if isinstance(m, at.Le) else (m.lt, True)
    return lo, lo_open, hi, hi_open


def bounds(tp: Any) -> str:
    """The range an annotation allows, as a reader writes it: "in (0, 1]", "at least 1"."""
    lo, lo_open, hi, hi_open = limits(tp)
    if lo is not None and hi is not None:
        return f"in {'(' if lo_open else '['}{_num(lo)}, {_num(hi)}{')' if hi_open else ']'}"
    if lo is not None:
        return f"{'more than' if lo_open else 'at least'} {_num(lo)}"
    if hi is not None:
        return f"{'less than' if hi_open else 'at most'} {_num(hi)}"
    return ""


def _num(x: Any) -> str:
    return str(int(x)) if isinstance(x, float) and x.is_integer() else str(x)


def show(value: Any) -> str:
    """A value as the error names it: the string "no", the integer 3, true, a table."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
        if len(text) > 60:
            text = text[:57] + '…"'
        return f"the string {text}"
    if isinstance(value, int):
        return f"the integer {value}"
    if isinstance(value, float):
        return f"the number {value:g}"
    if isinstance(value, list):
        return f"a list of {len(value)} item{'s' if len(value) != 1 else ''}"
    if isinstance(value, dict):
        return "a table"
    return f"a {type(value).__name__}"

