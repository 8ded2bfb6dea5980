"""Per-group thresholds: a rule's `min`/`max` may be a table by language or by file extension
(StarCoder's per-language rules, NeMo-Curator's PerExtensionFilter), `"*"` for the others:

    { rule = "line_max", by = "language", max = { python = 1000, "*" = 500 } }

Group keys are compared lowercased (Python = python; an extension without its dot: py).
A document whose group is not in the table and with no "*" is not bounded by that rule.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from corpus.config_check import show
from corpus.errors import ConfigError

#: what a rule can group by -> the input column it reads
BY = {"language": "language", "extension": "path"}
ANY = "*"


def normalize(table: dict[str, Any], by: str, where: str) -> dict[str, float]:
    """A threshold table with its keys as documents' groups are written (lowercase, no dot)."""
    out: dict[str, float] = {}
    for key, value in table.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}.{key}: expected a number, got {show(value)}")
        group = key if key == ANY else key.lower().removeprefix(".") if by == "extension" \
            else key.lower()
        if group in out:
            raise ConfigError(f"{where}: {key!r} and another key are the same {by}")
        out[group] = value
    return out


def group_keys(table: pa.Table, by: str) -> pa.Array:
    """Each row's group: its language lowercased, or the text after the last dot of its file
    name (not a leading dot) lowercased; "" without one."""
    col = table.column(BY[by]).combine_chunks().cast(pa.large_string())
    if by == "extension":
        name = pc.replace_substring_regex(col, pattern=r"^.*/", replacement="")
        col = pc.struct_field(pc.extract_regex(name, r"^.+\.(?P<ext>[^.]+)$"), [0])
    return pc.utf8_lower(pc.fill_null(col, ""))


def per_row(bound: float | dict[str, float] | None, groups: pa.Array | None,
            n: int) -> np.ndarray | None:
    """The bound of each row (NaN: none), or None when the rule has no such bound."""
    if bound is None:
        return None
    if not isinstance(bound, dict):
        return np.full(n, float(bound))
    assert groups is not None
    keys = [k for k in bound if k != ANY]
    values = np.array([float(bound[k]) for k in keys] + [float(bound.get(ANY, np.nan))])
    idx = pc.fill_null(pc.index_in(groups, value_set=pa.array(keys, pa.large_string())),
                       len(keys))
    return values[idx.to_numpy(zero_copy_only=False)]
