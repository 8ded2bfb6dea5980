"""The in-process executor: tasks run one after another in this process, in submission order.
For small inputs, tests, and debugging with pdb (a breakpoint in a stage just works); its
output is byte-identical to the Dask executor's."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any


class LocalExecutor:
    name = "local"

    def start(self) -> None:
        pass

    def map(self, fn: Callable[..., Any], items: Sequence[tuple[Any, ...]], label: str,
            names: Sequence[str] | None = None, tick: Callable[[], None] | None = None,
            ) -> Iterator[Any]:
        for item in items:
            yield fn(*item)  # the caller's checkpoint renews the lock between tasks

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return fn(*args)

    def n_workers(self) -> int:
        return 1

    def close(self) -> None:
        pass

    def describe(self) -> str:
        return "in-process, sequential"
