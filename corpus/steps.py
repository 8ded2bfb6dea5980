"""A stage's steps, declared as typed objects instead of ("map", name) tuples that the engine
had to decode: what runs per partition and what runs once, over small summaries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class MapStep:
    """`job.<name>(key)` on every partition, resumable like the partitions themselves;
    `job.<name>(key, results)` when it uses earlier global results.

    keys: "input" runs over the job's input partitions (`step_partitions()` when the job has
    one, else its output partitions), "output" over its output partitions."""

    name: str
    keys: Literal["input", "output"] = "input"
    uses: tuple[str, ...] = ()  # earlier global results it is given, as `results=`


@dataclass(frozen=True)
class GlobalStep:
    """`job.<name>()` once, on a worker, over what the earlier steps wrote. Its small JSON
    result is kept in the output under the stage's fingerprint (a resume reuses it) and is
    given to the later steps that name it in `uses` (as their `results` argument)."""

    name: str
    uses: tuple[str, ...] = ()


Step = MapStep | GlobalStep
