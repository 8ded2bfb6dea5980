"""Shared by the benchmarks: the `--summary FILE` option, so that bench/run_all.py can gather
each script's headline rows into one table without parsing its printed output."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def add_option(ap: argparse.ArgumentParser) -> None:
    """--summary FILE: off unless given, so that a plain run prints and writes what it did."""
    ap.add_argument("--summary", metavar="FILE",
                    help="also write the headline rows to FILE as JSON (for bench/run_all.py)")


def row(bench: str, figure: str, ours: float, baseline: float | None, baseline_name: str,
        unit: str, target: str = "", ratio: float | None = None) -> dict[str, Any]:
    """One headline row; ratio defaults to ours / baseline (higher is better in every row)."""
    if ratio is None and baseline:
        ratio = ours / baseline
    return {"bench": bench, "figure": figure, "ours": _round(ours), "baseline": _round(baseline),
            "baseline_name": baseline_name, "ratio": _round(ratio), "unit": unit,
            "target": target}


def _round(x: float | None) -> float | None:
    """Four significant digits: more than a shared machine's run-to-run noise allows."""
    return None if x is None else float(f"{x:.4g}")


def write(path: str | None, rows: list[dict[str, Any]]) -> None:
    """Write the rows if --summary was given: a JSON list, one object per row."""
    if path:
        Path(path).write_text(json.dumps(rows, indent=1) + "\n")
