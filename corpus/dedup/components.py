"""Connected components of a graph too large to hold its edges: min-label propagation."""

from __future__ import annotations

import numpy as np


def components(n: int, edge_batches) -> np.ndarray:
    """Label of every node: the smallest node of its connected component. Min-label hooking
    plus pointer jumping, repeated over the edges (read again each pass) until no label
    changes; memory is one int64 per node plus one batch of edges."""
    labels = np.arange(n, dtype=np.int64)
    changed = True
    while changed:
        changed = False
        for u, v in edge_batches():
            lu, lv = labels[u], labels[v]
            lo, hi = np.minimum(lu, lv), np.maximum(lu, lv)
            diff = lo != hi
            if diff.any():
                changed = True
                np.minimum.at(labels, hi[diff], lo[diff])
                while True:  # compress: every node points straight at its root
                    nxt = labels[labels]
                    if np.array_equal(nxt, labels):
                        break
                    labels = nxt
    return labels
