"""The unbiased pass@k estimator of Chen et al. 2021 (Codex): with n samples of a problem
of which c pass, pass@k = 1 - C(n-c, k) / C(n, k), the chance that k drawn without replacement
include a passing one. Computed as a product (never the binomials, which overflow floats)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from corpus.errors import InputError


def pass_at_k(n: int, c: int, k: int) -> float:
    """1 - prod_{i=n-c+1}^{n} (1 - k/i), the paper's numerically stable form."""
    if k < 1:
        raise InputError(f"pass@{k}: k must be at least 1")
    if n < k:
        raise InputError(f"pass@{k} needs at least {k} samples per problem, not {n}")
    if not 0 <= c <= n:
        raise InputError(f"{c} passing samples out of {n}")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def mean_pass_at_k(counts: Iterable[tuple[int, int]], k: int) -> float:
    """The benchmark's pass@k: the mean over problems of (n, c)."""
    values = [pass_at_k(n, c, k) for n, c in counts]
    if not values:
        raise InputError("pass@k of no problem")
    return float(np.mean(values))


def parse_ks(text: str) -> tuple[int, ...]:
    """`1,10,100` -> (1, 10, 100); one-line errors."""
    try:
        ks = tuple(sorted({int(x) for x in text.split(",") if x.strip()}))
    except ValueError as e:
        raise InputError(f"--k {text!r}: a comma-separated list of whole numbers") from e
    if not ks or ks[0] < 1:
        raise InputError(f"--k {text!r}: each k at least 1")
    return ks
