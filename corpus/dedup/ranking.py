"""Keeper preference of the dedup stages (exact and MinHash): which copy of a group is kept.

A ranking is a list like ["copies desc", "size", "license"]: a RANKABLE column and its order,
applied before the smallest (id, repo_name, path). License ranks by `license_preference`
(most preferred first; others after, alphabetically). One parser and one encoding, so both
dedup stages keep the same document of the same group.
"""

from __future__ import annotations

from typing import Literal

import pyarrow as pa
import pyarrow.compute as pc

from corpus import schema
from corpus.errors import ConfigError

RANKABLE = {"copies", "size", "license"}
#: one keeper preference: a RANKABLE column and its order (license: by license_preference)
Ranking = Literal["copies", "copies asc", "copies desc", "size", "size asc", "size desc",
                  "license", "license asc"]


def check(ranking: list[str], where: str = "dedup") -> None:
    """Refuse a ranking outside Ranking (the CLI builds Options without the config check)."""
    for spec in ranking:
        col, _, order = spec.partition(" ")
        if col not in RANKABLE or order not in ("", "asc", "desc") or \
                (col == "license" and order == "desc"):
            raise ConfigError(f"{where}: cannot rank by {spec!r} (use copies/size with "
                              "asc|desc, or license with license_preference)")


def columns(ranking: list[str]) -> list[str]:
    """The input columns a ranking reads, each once."""
    return list(dict.fromkeys(s.partition(" ")[0] for s in ranking))


def required(ranking: list[str]) -> tuple[schema.Column, ...]:
    """The ranking's columns as input requirements (license a string, the others integers)."""
    return tuple(schema.Column(c, schema.STRING if c == "license" else schema.INT64)
                 for c in (s.partition(" ")[0] for s in ranking))


def rank_columns(table: pa.Table, ranking: list[str],
                 license_preference: list[str]) -> dict[str, pa.Array]:
    """The sort keys r0a, r0b, r1a, …: ascending order puts the preferred keeper first."""
    cols = {}
    for i, spec in enumerate(ranking):
        col, _, order = spec.partition(" ")
        v = table.column(col).combine_chunks()
        if col == "license":
            prefs = {k: j for j, k in enumerate(license_preference)}
            ranks = [(prefs.get(x, len(prefs)), x or "") for x in v.to_pylist()]
            cols[f"r{i}a"] = pa.array([r[0] for r in ranks], pa.int64())
            cols[f"r{i}b"] = pa.array([r[1] for r in ranks], pa.large_string())
        else:
            v = pc.fill_null(v.cast(pa.int64()), 0)
            cols[f"r{i}a"] = pc.negate(v) if order == "desc" else v
    return cols
