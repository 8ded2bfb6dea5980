"""The one table `corpus run` ends with: a row per stage (rows in -> kept, bytes, seconds,
MB/s per core, computed or up to date), read from the stage folders' manifests and records,
instead of each stage's full stats (`corpus stats ROOT/<stage>` has those)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from corpus.stats_records import summary_row
from corpus.units import format_bytes

COLUMNS = ("stage", "kind", "rows in", "→ kept", "bytes", "seconds", "MB/s/core", "")


@dataclass
class Ran:
    """What the run saw of one stage."""
    name: str
    kind: str
    url: str
    input: str | None  # the URL it read
    seconds: float
    computed: bool  # False: up to date, nothing done


def rows(ran: list[Ran], cores: int) -> list[dict[str, Any]]:
    """The table's rows: throughput is the bytes the stage read (its input's, else its own
    output's) per second of the stage and per worker core."""
    out: list[dict[str, Any]] = []
    by_url: dict[str, dict[str, Any]] = {}
    for r in ran:
        row = summary_row(r.url, r.name, r.kind)
        by_url[r.url] = row
        source = by_url.get(r.input or "") or (_row(r.input) if r.input else None)
        read = (source or {}).get("bytes") or row.get("bytes") or 0
        rate = read / r.seconds / max(cores, 1) / 1e6 if r.computed and r.seconds > 0 else None
        out.append({"stage": r.name, "kind": r.kind, "rows_in": row.get("rows_in"),
                    "rows": row.get("rows"), "bytes": row.get("bytes"),
                    "seconds": round(r.seconds, 1), "mb_s_core": rate,
                    "status": "computed" if r.computed else "up to date"})
    return out


def _row(url: str) -> dict[str, Any] | None:
    try:
        return summary_row(url, url, None)
    except Exception:  # an input the table cannot size (a URL without a manifest): no rate
        return None


def render(table_rows: list[dict[str, Any]], console: Any) -> None:
    from rich.table import Table

    t = Table(box=None, padding=(0, 1))
    for name in COLUMNS:
        t.add_column(name, no_wrap=True,
                     justify="left" if name in ("stage", "kind", "") else "right")

    def n(v: Any) -> str:
        return "" if v is None else f"{v:,}"

    for r in table_rows:
        t.add_row(r["stage"], r["kind"], n(r["rows_in"]), n(r["rows"]),
                  "" if r["bytes"] is None else format_bytes(r["bytes"]), f"{r['seconds']:.1f}",
                  "" if r["mb_s_core"] is None else f"{r['mb_s_core']:.3g}", r["status"])
    print_wide(t, console)


def print_wide(table: Any, console: Any) -> None:
    """A table at its full width, never cut to the terminal's (or a pipe's 80 columns)."""
    from rich.console import Console
    from rich.measure import Measurement

    width = Measurement.get(console, console.options.update(max_width=10_000), table).maximum
    if width <= console.width:
        console.print(table)
        return
    wide = Console(file=console.file, width=width, force_terminal=console.is_terminal,
                   color_system=console.color_system)
    wide.print(table)
