"""Which licenses a corpus keeps: normalize a license value, then judge it against the lists.

A corpus has few distinct license values (GitHub's keys, SPDX expressions, free text from
package metadata), so every decision is made once per distinct value (`decide`, cached) and
mapped over the Arrow column with `pc.index_in` (`decide_column`): no Python call per document.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Annotated

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from license_expression import (
    AND,
    OR,
    ExpressionError,
    LicenseSymbol,
    LicenseWithExceptionSymbol,
    Licensing,
    get_spdx_licensing,
)
from pydantic import Field

from corpus.errors import ConfigError
from corpus.github.licenses import ALIASES, _norm

#: Permissive licenses kept by default, in GitHub's lowercase key spelling (docs/licenses.md).
#: The first four are what RedPajama v1 kept from BigQuery's `licenses` table
#: (`license LIKE 'mit%' OR 'bsd%' OR 'apache%'`, RedPajama-Data data_prep/github/README.md);
#: the rest are permissive licenses on The Stack v1's list (Kocetkov et al. 2022,
#: arXiv:2211.15533, section 3 and appendix) that GitHub or our detector can produce.
DEFAULT_ALLOW: tuple[str, ...] = (
    "mit", "apache-2.0", "bsd-2-clause", "bsd-3-clause",  # RedPajama v1 and The Stack v1
    "mit-0", "0bsd", "isc", "unlicense", "cc0-1.0", "zlib", "bsl-1.0", "bsd-3-clause-clear",
    "artistic-2.0", "mpl-2.0", "psf-2.0", "python-2.0", "hpnd", "mit-cmu", "upl-1.0",
    "ecl-2.0", "ncsa", "postgresql", "x11", "wtfpl",
)

#: "BSD" without a clause count. Its own key: it may be BSD-4-Clause (the advertising clause),
#: so it is kept only when the allow list names `bsd` itself.
AMBIGUOUS_BSD = "bsd"
_BSD_WORDS = {"bsd", "bsd license", "bsd licence", "bsd style", "bsd like"}

NO_LICENSE = "no-license"
UNPARSABLE = "license-unparsable"
NOT_ALLOWED = "license-not-allowed"
DENIED = "license-denied"


@dataclass
class LicenseOptions:
    allow: Annotated[list[str], Field(description="SPDX keys to keep (replaces the default "
                                      "permissive list, see docs/licenses.md); `bsd` keeps "
                                      "unnumbered BSD.")] = \
        field(default_factory=lambda: list(DEFAULT_ALLOW))
    deny: Annotated[list[str], Field(description="SPDX keys to drop even when allowed.")] = \
        field(default_factory=list)
    keep_unlicensed: Annotated[bool, Field(description="Keep documents without a license "
                                           "(dropped as `no-license` by default).")] = False


@functools.cache
def _licensing() -> Licensing:
    return get_spdx_licensing()


@functools.cache
def _parse(text: str) -> object | None:
    """The license-expression tree of a text, or None when it does not parse."""
    try:
        return _licensing().parse(text, validate=False)
    except ExpressionError:
        return None


def _keys(expr: object) -> list[str]:
    return [s.key for s in _licensing().license_symbols(expr, unique=True)]


@functools.cache
def normalize(value: str) -> str | None:
    """A license value as a lowercase SPDX expression (`mit or apache-2.0`), GitHub keys and
    free text ("MIT License", "Apache 2.0") included; `bsd` for an unnumbered BSD; None when
    empty, not an expression, or naming a license SPDX does not know."""
    text = value.strip()
    if not text or "\n" in text or len(text) > 500:
        return None
    words = _norm(text)
    if words in _BSD_WORDS:
        return AMBIGUOUS_BSD
    text = ALIASES.get(words, text)
    expr = _parse(text)
    if expr is None:
        return None
    unknown = {k.lower() for k in _licensing().unknown_license_keys(expr)}
    if unknown - {AMBIGUOUS_BSD}:
        return None
    return str(expr).lower()


def _allowed(node: object, allow: frozenset[str]) -> bool:
    """OR: one alternative allowed; AND: every part; WITH: the base license's verdict."""
    if isinstance(node, OR):
        return any(_allowed(a, allow) for a in node.args)
    if isinstance(node, AND):
        return all(_allowed(a, allow) for a in node.args)
    if isinstance(node, LicenseWithExceptionSymbol):
        return _allowed(node.license_symbol, allow)
    if isinstance(node, LicenseSymbol):
        return node.key.lower() in allow
    raise TypeError(f"unexpected license expression node {node!r}")


def verdict(expr: str, allow: Iterable[str], deny: Iterable[str] = (),
            ) -> tuple[bool, str | None]:
    """(keep, reason) for a normalized expression (see `normalize`). A denied key counts as
    not allowed even when the allow list has it: deny wins."""
    return _verdict(expr, normalize_keys(allow, "allow"), normalize_keys(deny, "deny"))


@functools.cache
def _verdict(expr: str, allow: frozenset[str], deny: frozenset[str]) -> tuple[bool, str | None]:
    tree = _parse(expr)
    if tree is None:
        return False, f"{UNPARSABLE} {expr}"
    if _allowed(tree, allow - deny):
        return True, None
    if deny & {k.lower() for k in _keys(tree)}:
        return False, f"{DENIED} {expr}"
    return False, f"{NOT_ALLOWED} {expr}"


def normalize_keys(keys: Iterable[str] | frozenset[str], where: str) -> frozenset[str]:
    """Allow/deny list entries as normalized single keys; a typo or an expression is an error."""
    out = set()
    for key in keys:
        norm = normalize(key)
        single = norm == AMBIGUOUS_BSD or (norm is not None
                                           and isinstance(_parse(norm), LicenseSymbol))
        if norm is None or not single:
            raise ConfigError(f"{where}: {key!r} is not a single SPDX license key "
                              "(e.g. mit, apache-2.0, bsd-3-clause; `bsd` for unnumbered BSD)")
        out.add(norm)
    return frozenset(out)


@dataclass(frozen=True)
class Policy:
    allow: frozenset[str]
    deny: frozenset[str]
    keep_unlicensed: bool

    @classmethod
    def of(cls, opts: LicenseOptions) -> Policy:
        return cls(normalize_keys(opts.allow, "licenses: allow"),
                   normalize_keys(opts.deny, "licenses: deny"), opts.keep_unlicensed)

    def decide(self, value: str | None) -> tuple[bool, str | None]:
        """(keep, reason) for one raw license value."""
        if value is None or not value.strip():
            return (True, None) if self.keep_unlicensed else (False, NO_LICENSE)
        expr = normalize(value)
        if expr is None:
            return False, f"{UNPARSABLE} {_shown(value)}"
        return _verdict(expr, self.allow, self.deny)


def _shown(value: str, limit: int = 80) -> str:
    """A raw value fit for a one-line reason (pasted license texts are long and multi-line)."""
    flat = " ".join(value.split())
    return flat if len(flat) <= limit else flat[:limit - 1] + "…"


def decide_column(licenses: pa.Array | pa.ChunkedArray, policy: Policy,
                  ) -> tuple[np.ndarray, pa.Array]:
    """(keep mask, reasons) for a license column: one decision per distinct value."""
    if isinstance(licenses, pa.ChunkedArray):
        licenses = licenses.combine_chunks()
    licenses = licenses.cast(pa.large_string())
    distinct = pc.unique(licenses).drop_null()
    decisions = [policy.decide(v) for v in distinct.to_pylist()]
    decisions.append(policy.decide(None))  # the slot for null
    index = pc.fill_null(pc.index_in(licenses, value_set=distinct), len(distinct))
    keep = pc.take(pa.array([k for k, _ in decisions], pa.bool_()), index)
    reasons = pc.take(pa.array([r for _, r in decisions], pa.large_string()), index)
    return keep.to_numpy(zero_copy_only=False), reasons
