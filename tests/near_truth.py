"""Exact near-duplicate ground truth, independent of corpus' code: pure-Python shingle sets
and an exact similarity join (prefix filtering: two sets with Jaccard >= t share an element
among the first |A| - ceil(t|A|) + 1 of A in any fixed order, so no true pair is missed), every
candidate verified exactly. And the keeper-agnostic score of a removal."""

from __future__ import annotations

import math
import re
from collections import defaultdict

TOKEN = re.compile(r"[A-Za-z0-9_]+")


def shingle_set(text: str, n: int) -> frozenset:
    tokens = TOKEN.findall(text)
    if not tokens:
        return frozenset()
    if len(tokens) < n:
        return frozenset([tuple(tokens)])
    return frozenset(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def true_pairs(docs: list[str], threshold: float, n: int) -> set[tuple[int, int]]:
    sets = [shingle_set(d, n) for d in docs]
    index: dict[tuple, list[int]] = defaultdict(list)
    candidates: set[tuple[int, int]] = set()
    for i, s in enumerate(sets):
        if not s:
            continue
        ordered = sorted(s, key=hash)
        prefix = len(ordered) - math.ceil(threshold * len(ordered)) + 1
        for e in ordered[:prefix]:
            candidates.update((j, i) for j in index[e])
            index[e].append(i)
    return {(i, j) for i, j in candidates
            if len(sets[i] & sets[j]) / len(sets[i] | sets[j]) >= threshold}


def score(n_docs: int, pairs: set[tuple[int, int]], removed: set[int]) -> tuple[float, ...]:
    """(precision, recall, F1): in each true component of size k, up to k-1 removals are
    correct, more are false positives; removals outside true components are false positives."""
    parent = list(range(n_docs))

    def root(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for i, j in pairs:
        parent[root(i)] = root(j)
    comps: dict[int, list[int]] = defaultdict(list)
    for i in range(n_docs):
        comps[root(i)].append(i)
    tp = fp = fn = 0
    for members in comps.values():
        k, r = len(members), sum(m in removed for m in members)
        correct = min(r, k - 1)
        tp, fp, fn = tp + correct, fp + r - correct, fn + (k - 1) - correct
    p = tp / (tp + fp) if tp + fp else 1.0
    rec = tp / (tp + fn) if tp + fn else 1.0
    return p, rec, (2 * p * rec / (p + rec) if p + rec else 0.0)
