"""Progress and messages of long work, for people (rich bars with documents/s and ETA) or for
batch jobs (`--log-format json`: one JSON object per line on stderr, no bars)."""

from __future__ import annotations

import json
import re
import sys
import time
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

FORMATS = ("text", "json")


def bar(console: Console, label: str = "{task.description}", unit: str = "") -> Progress:
    """The commands' one progress bar: label, bar, done/total, rate, elapsed, time left."""
    return Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(),
                    TextColumn(unit + "{task.fields[rate]}"), TimeElapsedColumn(),
                    TimeRemainingColumn(), console=console, transient=False)
_MARKUP = re.compile(r"\[/?[a-z ]*\]")


class Log:
    def __init__(self, fmt: str = "text", progress: bool = True,
                 console: Console | None = None):
        if fmt not in FORMATS:
            raise ValueError(f"log format {fmt!r}: one of {', '.join(FORMATS)}")
        self.fmt = fmt
        self.progress = progress
        self.console = console or Console(stderr=True, soft_wrap=True)

    def event(self, name: str, message: str, **fields: Any) -> None:
        """A message (rich markup allowed) for people, or a JSON line for machines."""
        if self.fmt == "json":
            rec = {"time": round(time.time(), 3), "event": name,
                   "message": _MARKUP.sub("", message), **fields}
            sys.stderr.write(json.dumps(rec, default=str) + "\n")
            sys.stderr.flush()
        else:
            self.console.print(message)

    def record(self, name: str, **fields: Any) -> None:
        """Only for machines: what a person reads elsewhere (stats, summaries)."""
        if self.fmt == "json":
            self.event(name, name, **fields)

    def bar(self, label: str, total: int, completed: int, **fields: Any) -> Bar:
        return Bar(self, label, total, completed, fields)


class Bar:
    """Partitions done of total, documents/s and the time left. `advance(rows)` per partition."""

    #: JSON progress lines at most this often (and at the end)
    JSON_EVERY_S = 5.0

    def __init__(self, log: Log, label: str, total: int, completed: int,
                 fields: dict[str, Any]):
        self.log, self.label, self.fields = log, label, fields
        self.total, self.done = total, completed
        self.rows = 0
        self.t0 = self._last = time.monotonic()
        self._progress: Progress | None = None
        self._task: Any = None

    def _rate(self) -> float:
        return self.rows / max(time.monotonic() - self.t0, 1e-9)

    def _eta(self) -> float | None:
        left, ran = self.total - self.done, time.monotonic() - self.t0
        started = self.done - self._start_done
        return None if started <= 0 else round(ran / started * left, 1)

    def __enter__(self) -> Bar:
        self._start_done = self.done
        if self.log.fmt == "text" and self.log.progress:
            self._progress = bar(self.log.console)
            self._progress.start()
            self._task = self._progress.add_task(self.label, total=self.total,
                                                 completed=self.done, rate="")
        return self

    def advance(self, rows: int = 0) -> None:
        self.done += 1
        self.rows += rows
        if self._progress is not None:
            self._progress.update(self._task, advance=1, rate=f"{self._rate():,.0f} docs/s")
        elif self.log.fmt == "json" and (time.monotonic() - self._last > self.JSON_EVERY_S
                                         or self.done == self.total):
            self._last = time.monotonic()
            self.log.event("progress", f"{self.label}: {self.done}/{self.total}",
                           done=self.done, total=self.total, docs=self.rows,
                           docs_per_s=round(self._rate(), 1), eta_s=self._eta(), **self.fields)

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()
