"""What a filter metric is: a function of a batch of the partition's rows (an Arrow table),
registered with `@metric(column, type)`; the shared measures it may use (`Docs`).

    @metric("comment_frac", pa.float64())
    def comment_frac(d: Docs) -> pa.Array:   # d.table: the rows, every column of the input
        ...

A metric returns one value per row and never decides anything: the rules (rules.py) threshold
its column, and the column stays in the output. `reference` is an optional per-document twin,
`(row: dict, **options) -> value`, that the parity tests compare the vectorized metric with.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from corpus import text as tx


@dataclass(frozen=True)
class Metric:
    name: str  # its output column (and the rule's name in removal reasons)
    fn: Callable[..., pa.Array]  # (Docs, **options) -> one value per row
    type: pa.DataType
    reads: tuple[str, ...] = ("content",)  # input columns it needs besides content
    reference: Callable[..., Any] | None = None  # (row dict, **options) -> value

    @property
    def is_flag(self) -> bool:
        return pa.types.is_boolean(self.type)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled as its function (by module and name): the twin may be a lambda."""
        return (_of, (self.fn,))


def _of(fn: Callable[..., pa.Array]) -> Metric:
    return fn.metric  # type: ignore[attr-defined]


def metric(name: str, type: pa.DataType, *, reads: tuple[str, ...] = ("content",),
           reference: Callable[..., Any] | None = None
           ) -> Callable[[Callable[..., pa.Array]], Callable[..., pa.Array]]:
    """Declare a function as the metric whose output column is `name`, of Arrow `type`."""
    def register(fn: Callable[..., pa.Array]) -> Callable[..., pa.Array]:
        fn.metric = Metric(name, fn, type, tuple(reads), reference)  # type: ignore[attr-defined]
        return fn
    return register


def metric_of(obj: Any) -> Metric | None:
    """The Metric an object was declared as, or None."""
    m = getattr(obj, "metric", None)
    return m if isinstance(m, Metric) and m.fn is obj else None


def collect(namespace: dict[str, Any]) -> dict[str, Metric]:
    """The metrics declared in a module's namespace, by column, in definition order."""
    found = [m for v in namespace.values() if (m := metric_of(v)) is not None]
    return {m.name: m for m in found}


class Docs:
    """A batch of rows with non-null content, and the measures metrics share, computed once."""

    def __init__(self, rows: pa.Table | pa.Array, tokenizer: str | None = None):
        self.table = rows if isinstance(rows, pa.Table) else pa.table({"content": rows})
        self.content = self.table.column("content").combine_chunks()
        self.tokenizer = tokenizer
        self._lines: dict[int, tx.Lines] = {}
        self._heads: dict[int, pa.Array] = {}

    def __len__(self) -> int:
        return self.table.num_rows

    def column(self, name: str) -> pa.Array:
        return self.table.column(name).combine_chunks()

    @functools.cached_property
    def text(self) -> tx.Text:
        return tx.text_of(self.content)

    @functools.cached_property
    def lower_arrow(self) -> pa.Array:
        """The documents with ASCII letters lowercased (what keyword matching reads)."""
        return pc.ascii_lower(self.content)

    @functools.cached_property
    def lower(self) -> tx.Text:
        return tx.text_of(self.lower_arrow)

    def lines(self, first: int) -> tx.Lines:
        if first not in self._lines:
            self._lines[first] = tx.lines(self.text, first)
        return self._lines[first]

    def head(self, first: int) -> pa.Array:
        """The first `first` lines of each document, ASCII-lowercased."""
        if first not in self._heads:
            self._heads[first] = tx.to_arrow(tx.spans(self.lower, self.lower.starts,
                                                      self.lines(first).first_end))
        return self._heads[first]

    def count(self, keyword: str) -> np.ndarray:
        """s.lower().count(keyword) per document."""
        return self.lower.per_doc(tx.find(self.lower, keyword))

    @functools.cached_property
    def tokens(self) -> np.ndarray:
        if self.tokenizer:
            return tokenizer_counts(self.tokenizer, self.content)
        return tx.regex_tokens(self.text)


@functools.cache
def _load_tokenizer(path: str) -> Any:
    from tokenizers import Tokenizer

    return Tokenizer.from_file(path)


def tokenizer_counts(path: str, content: pa.Array) -> np.ndarray:
    """Token counts from a `tokenizers` JSON file (no special tokens added)."""
    tok = _load_tokenizer(path)
    encodings = tok.encode_batch(content.to_pylist(), add_special_tokens=False)
    return np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(encodings))
