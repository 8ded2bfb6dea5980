"""A stage command's options, generated from its Options dataclass.

One definition per option: the dataclass field's annotation gives the type, its
`Field(description=...)` the help text, its default the default shown, its `Field(ge=...)`
the bound. The click options generated here only parse text into values; what was given goes
through `config_check.validate`, the same check a config's table gets, so `--ngram 99` and
`ngram = 99` are refused by the same bound with the same words. An option not given is left
out of the table: the dataclass's own default applies.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from collections.abc import Callable, Iterable
from typing import Any, Literal, TypeVar

import click
from pydantic import BeforeValidator
from pydantic.fields import FieldInfo

from corpus.config_check import _size, _strip, bounds, field_types, validate

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


def flag_of(name: str, rename: dict[str, str] | None = None) -> str:
    """The command-line spelling of a field: ngram_threshold -> --ngram-threshold."""
    return "--" + (rename or {}).get(name, name).replace("_", "-")


def description(tp: Any) -> str:
    """The help text of an annotation: its Field(description=...)."""
    _, meta = _strip(tp)
    return next((m.description for m in meta if isinstance(m, FieldInfo) and m.description), "")


def _is_size(meta: list[Any]) -> bool:
    return any(isinstance(m, BeforeValidator) and m.func is _size for m in meta)


def _default(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def _shown(value: Any, size: bool) -> str:
    from corpus.units import format_bytes

    if size and isinstance(value, int):
        return format_bytes(value).replace(" ", "").replace(".0", "")
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ",".join(map(str, value)) or "none"
    return str(value)


def click_option(cls: type, name: str, note: str = "", rename: dict[str, str] | None = None,
                 split: bool = False, metavar: str | None = None) -> Callable[[F], F]:
    """The click option of one field: bools as --x/--no-x, lists repeatable (and with split,
    comma-separated), sizes as text; no default of its own (not given: left out)."""
    tp = field_types(cls)[name]
    base, meta = _strip(tp)
    field = {f.name: f for f in dataclasses.fields(cls)}[name]
    flag = flag_of(name, rename)
    default = _default(field)
    text = description(tp)
    if note and text[:2].istitle():  # "With --minhash: tokens per shingle." (not "lSH")
        text = text[0].lower() + text[1:]
    words = [note + text]
    if typing.get_origin(base) is list:
        words.append("Comma-separated or repeated." if split else "Repeatable.")
    if b := bounds(tp):
        words.append(f"({b})")
    if default is not dataclasses.MISSING and default is not None:
        words.append(f"[default: {_shown(default, _is_size(meta))}]")
    help_text = " ".join(w for w in words if w)
    kw: dict[str, Any] = {"default": None, "help": help_text}
    origin = typing.get_origin(base)
    if base is bool:
        decl = f"{flag}/--no-{flag[2:]}"
        return click.option(decl, name, **kw)
    if origin is list:
        item, _ = _strip(typing.get_args(base)[0])
        kw.update(multiple=True, metavar=metavar or ("A,B" if split else "VALUE"))
        if typing.get_origin(item) is Literal:
            kw["metavar"] = metavar or "|".join(json.dumps(a) for a in typing.get_args(item))
        return click.option(flag, name, **kw)
    if _is_size(meta):
        return click.option(flag, name, type=str, metavar=metavar or "SIZE", **kw)
    if origin is Literal:
        return click.option(flag, name, type=click.Choice([str(a) for a in
                                                          typing.get_args(base)]), **kw)
    types = {int: click.INT, float: click.FLOAT, str: click.STRING}
    return click.option(flag, name, type=types.get(base, click.STRING), metavar=metavar, **kw)


def options_from(cls: type, *, only: Iterable[str] | None = None, exclude: Iterable[str] = (),
                 note: str = "", rename: dict[str, str] | None = None,
                 split: Iterable[str] = (), metavars: dict[str, str] | None = None,
                 ) -> Callable[[F], F]:
    """Decorate a click command with an option per init field of cls (`only` those, less
    `exclude`), in field order. The command gets each as a keyword named like the field:
    None (or an empty tuple) when not given; `table_of` turns them into the config table."""
    names = [f.name for f in dataclasses.fields(cls) if f.init
             and (only is None or f.name in set(only)) and f.name not in set(exclude)]
    split = set(split)

    def decorate(f: F) -> F:
        for name in reversed(names):  # click lists options in decoration order, bottom up
            f = click_option(cls, name, note, rename, name in split,
                             (metavars or {}).get(name))(f)
        return f

    return decorate


def table_of(cls: type, given: dict[str, Any], split: Iterable[str] = ()) -> dict[str, Any]:
    """The options that were given, as the TOML table a config would hold: lists from repeated
    (and with split, comma-separated) values; sizes as their text, read by the validation."""
    fields = {f.name for f in dataclasses.fields(cls) if f.init}
    split = set(split)
    table: dict[str, Any] = {}
    for name, value in given.items():
        if name not in fields or value is None or value == ():
            continue
        if isinstance(value, tuple):
            value = [k.strip() for v in value for k in v.split(",") if k.strip()] \
                if name in split else list(value)
        table[name] = value
    return table


def only_for(cls: type, given: dict[str, Any], what: str,
             rename: dict[str, str] | None = None) -> None:
    """Refuse options that were given but are not fields of `cls` (the chosen variant's,
    `what`): one line naming them."""
    other = {k for k, v in given.items() if v not in (None, ())} - set(table_of(cls, given))
    if other:
        raise click.UsageError(f"{', '.join(sorted(flag_of(k, rename) for k in other))}: not "
                               f"an option of {what}")


def build(cls: type[T], given: dict[str, Any], where: str, split: Iterable[str] = (),
          extra: dict[str, Any] | None = None) -> T:
    """The Options object of the given command-line values, checked as a config table is."""
    return validate(cls, {**table_of(cls, given, split), **(extra or {})}, where)
