"""The exact Jaccard check of MinHash candidate pairs (`corpus dedup --minhash --verify`).

Candidate pairs arrive grouped by the verify groups of their two documents (u before v in
keeper order, so group(u) <= group(v)); each group's shingle sets are loaded on demand, so
only two groups are in memory at a time. Pairs at or above the threshold are kept.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import pyarrow as pa

from corpus.dedup import kernels
from corpus.dedup.sets import SetBlock

#: a candidate edge: documents u < v (global keeper order) and where each one's set is
#: (p = partition, q = row in it)
EDGES = pa.schema([("u", pa.int64()), ("v", pa.int64()), ("pu", pa.int32()),
                   ("qu", pa.int32()), ("pv", pa.int32()), ("qv", pa.int32())])
#: an edge with the verify groups of its two documents
GROUPED = EDGES.append(pa.field("gu", pa.int32())).append(pa.field("gv", pa.int32()))


def accepted_edges(n_groups: int, edges_of: Callable[[int], pa.Table],
                   load: Callable[[int], SetBlock], threshold: float,
                   counts: dict[str, int]) -> Iterator[pa.RecordBatch]:
    """The candidate edges whose exact Jaccard is >= threshold, as EDGES batches.
    edges_of(g): the GROUPED edges whose u is in group g, sorted by gv; load(g): group g's
    sets. counts gets `verified_pairs` and `accepted_pairs` added as the batches go."""
    for gu in range(n_groups):
        e = edges_of(gu)
        if not e.num_rows:
            continue
        c = {name: e.column(name).to_numpy() for name in GROUPED.names}
        a = load(gu)
        keep = np.zeros(e.num_rows, dtype=bool)
        starts = np.flatnonzero(np.r_[True, c["gv"][1:] != c["gv"][:-1]])
        for s, t in zip(starts, np.r_[starts[1:], e.num_rows], strict=True):
            b = a if c["gv"][s] == gu else load(int(c["gv"][s]))
            j = kernels.jaccards(a.values, a.offsets, a.index(c["pu"][s:t], c["qu"][s:t]),
                                 b.values, b.offsets, b.index(c["pv"][s:t], c["qv"][s:t]))
            keep[s:t] = j >= threshold
            del b
        counts["verified_pairs"] = counts.get("verified_pairs", 0) + e.num_rows
        counts["accepted_pairs"] = counts.get("accepted_pairs", 0) + int(keep.sum())
        yield pa.RecordBatch.from_arrays([pa.array(c[name][keep]) for name in EDGES.names],
                                         schema=EDGES)
