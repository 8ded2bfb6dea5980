"""A filter metric from outside corpus/, as a user writes one: one function, one decorator.

comment_frac: the fraction of a file's non-blank lines that are comments, the comment marker
chosen by the file's extension (so it reads `path`). A file that is mostly comments is often a
license header, a doc dump or commented-out code.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from corpus.filters.groups import group_keys
from corpus.filters.metric import Docs, metric

#: line-comment marker per extension; files of other extensions have no comments (0)
MARKERS = {"py": "#", "sh": "#", "rb": "#", "toml": "#", "cfg": "#", "yml": "#", "yaml": "#",
           "js": "//", "ts": "//", "c": "//", "h": "//", "cpp": "//", "java": "//", "go": "//",
           "rs": "//", "php": "//", "cs": "//", "scala": "//"}
SPACE = " \t\n\r\f\v"


def reference(row: dict[str, Any], markers: dict[str, str] | None = None) -> float:
    """The definition, one document at a time."""
    name = row["path"].rsplit("/", 1)[-1]
    base, dot, ext = name.rpartition(".")
    marker = (MARKERS if markers is None else markers).get(ext.lower() if dot and base else "")
    lines = [line.strip(SPACE) for line in row["content"].split("\n")]
    lines = [line for line in lines if line]
    if not lines or marker is None:
        return 0.0
    return sum(line.startswith(marker) for line in lines) / len(lines)


@metric("comment_frac", pa.float64(), reads=("path",), reference=reference)
def comment_frac(d: Docs, markers: dict[str, str] | None = None) -> pa.Array:
    table = MARKERS if markers is None else markers
    marker = np.array([table.get(e) for e in group_keys(d.table, "extension").to_pylist()],
                      dtype=object)
    lines = pc.split_pattern(d.content, "\n")
    parent = pc.list_parent_indices(lines).to_numpy()
    stripped = pc.ascii_trim_whitespace(pc.list_flatten(lines))
    nonblank = pc.binary_length(stripped).to_numpy(zero_copy_only=False) > 0
    comment = np.zeros(len(parent), dtype=bool)
    line_marker = marker[parent]
    for m in {x for x in marker if x is not None}:
        starts = pc.starts_with(stripped, m).to_numpy(zero_copy_only=False)
        comment |= (line_marker == m) & starts
    n = len(d)
    total = np.bincount(parent, weights=nonblank, minlength=n)
    comments = np.bincount(parent, weights=comment & nonblank, minlength=n)
    return pa.array(np.where(total > 0, comments / np.maximum(total, 1), 0.0))


def not_a_metric(d: Docs) -> pa.Array:
    """A plain function: a rule naming it is refused."""
    return pa.array(np.zeros(len(d)))
