"""Where a runner's tasks run: the Executor protocol, and the choice of one by name."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

from corpus.errors import ConfigError

#: What CORPUS_EXECUTOR / --executor may name.
KINDS = ("dask", "local")


class Executor(Protocol):
    """Runs the runner's tasks; knows nothing of stages, manifests or resume."""

    name: str

    def start(self) -> None:
        """Fail early (an unreachable scheduler) before the runner touches an output."""
        ...

    def map(self, fn: Callable[..., Any], items: Sequence[tuple[Any, ...]], label: str,
            names: Sequence[str] | None = None, tick: Callable[[], None] | None = None,
            ) -> Iterator[Any]:
        """`fn(*item)` for every item, yielding results as they complete; `tick()` every few
        seconds while nothing completes (the writer lock's lease)."""
        ...

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """`fn(*args)` once, on a worker; its result."""
        ...

    def n_workers(self) -> int: ...

    def close(self) -> None: ...

    def describe(self) -> str:
        """One line for logs and the run record: where the work runs."""
        ...


def kind(name: str | None) -> str:
    """The executor kind: `name`, else env CORPUS_EXECUTOR, else dask."""
    chosen = (name or os.environ.get("CORPUS_EXECUTOR") or "dask").strip().lower()
    if chosen not in KINDS:
        raise ConfigError(f"executor {chosen!r}: one of {', '.join(KINDS)} "
                          "(--executor / CORPUS_EXECUTOR)")
    return chosen
