"""Run every benchmark and print one table of their headline rows.

Each script runs as it would alone (`python bench/X.py --summary FILE`, at its normal size, in
its own process, one after the other so that they do not compete for the cores) and writes its
headline rows to FILE; this script only gathers them. A script that fails becomes a row saying
so, and the exit status is non-zero. Ratio = ours / baseline in every row.

    .venv/bin/python bench/run_all.py [--only filters,exact | --skip minhash] [--quiet]
                                      [--markdown FILE] [--json FILE] [--timeout SECONDS]
                                      [--args 'minhash=--methods corpus']
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
#: in the order of docs/benchmarks.md
BENCHES = ["extract", "filters", "exact", "minhash", "scrub", "pipeline", "tokenizer",
           "token_counts", "loader", "train", "eval"]
SCORES = {"recall", "precision", "F1"}
COLUMNS = ["bench", "figure", "ours", "baseline", "baseline name", "ratio", "target"]


def names(value: str) -> list[str]:
    """A comma-separated list of benchmark names, each checked."""
    out = [v.strip() for v in value.split(",") if v.strip()]
    unknown = [v for v in out if v not in BENCHES]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown benchmark {', '.join(unknown)}; "
                                         f"choose from {', '.join(BENCHES)}")
    return out


def number(x: float | None, unit: str = "") -> str:
    """Enough digits to read, not more than the noise of a shared machine; scores (recall,
    F1) with four decimals, where their differences are."""
    if x is None:
        return "—"
    ax = abs(x)
    text = (f"{x / 1e6:,.1f} M" if ax >= 1e6 else f"{x:,.0f}" if ax >= 100
            else f"{x:.1f}" if ax >= 10 else f"{x:.4f}" if unit in SCORES else f"{x:.3g}")
    return f"{text} {unit}".strip()


def times(x: float | None) -> str:
    """A ratio: two decimals below 10, and no more digits than the figures it divides."""
    if x is None:
        return "—"
    return f"{x:,.0f}x" if x >= 100 else f"{x:.1f}x" if x >= 10 else f"{x:.2f}x"


def cells(row: dict[str, Any]) -> list[str]:
    return [row["bench"], row["figure"], number(row.get("ours"), row.get("unit", "")),
            number(row.get("baseline"), row.get("unit", "")), row.get("baseline_name") or "—",
            times(row.get("ratio")), row.get("target") or "—"]


def run(name: str, extra: list[str], quiet: bool, timeout: float | None) -> dict[str, Any]:
    """One script in a subprocess: its rows, or one row saying how it failed."""
    with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as tmp, \
            open(Path(tmp) / "log", "w+") as log:
        summary = Path(tmp) / "summary.json"
        cmd = [sys.executable, str(HERE / f"{name}.py"), "--summary", str(summary), *extra]
        t0 = time.perf_counter()
        # a session of its own, so that a timeout or ^C also ends its cluster's workers
        proc = subprocess.Popen(cmd, cwd=HERE.parent, stdout=log if quiet else None,
                                stderr=subprocess.STDOUT if quiet else None,
                                start_new_session=True,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            code = proc.wait(timeout=timeout)
            why = f"FAILED (exit code {code})" if code else ""
        except subprocess.TimeoutExpired:
            code, why = -1, f"FAILED (timed out after {timeout:.0f} s)"
            stop(proc)
        except KeyboardInterrupt:
            stop(proc)
            raise
        seconds = time.perf_counter() - t0
        rows: list[dict[str, Any]] = []
        if not why:
            try:
                rows = json.loads(summary.read_text())
            except (OSError, ValueError) as e:
                code, why = 1, f"FAILED (exit code 0 but no summary: {type(e).__name__})"
            if not why and not rows:
                code, why = 1, "FAILED (exit code 0 but no summary rows)"
        if why:
            rows = [{"bench": name, "figure": why}]
            if quiet:  # the reader of a quiet run needs the end of what failed
                log.seek(0)
                tail = log.read().splitlines()[-20:]
                print("\n".join(f"  {name}| {line}" for line in tail), flush=True)
    return {"name": name, "code": code, "seconds": round(seconds, 1), "rows": rows}


def stop(proc: subprocess.Popen) -> None:
    """^C to its whole session first, so that its `finally` removes its temporary folders;
    then, if it is still there after 15 s, SIGKILL."""
    try:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass


def plain(table: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in table) for i in range(len(COLUMNS))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
             for r in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown(table: list[list[str]]) -> str:
    def line(r: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in r) + " |"

    return "\n".join([line(table[0]), "|" + "---|" * len(COLUMNS),
                      *(line(r) for r in table[1:])]) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", type=names, help=f"comma-separated, of {','.join(BENCHES)}")
    ap.add_argument("--skip", type=names, default=[], help="comma-separated names to leave out")
    ap.add_argument("--quiet", action="store_true",
                    help="print progress lines only, not each script's own output")
    ap.add_argument("--markdown", metavar="FILE", help="also write the table as Markdown")
    ap.add_argument("--json", metavar="FILE",
                    help="also write every script's rows, exit code and seconds as JSON")
    ap.add_argument("--args", action="append", default=[], metavar="NAME=ARGS",
                    help="extra options for one script, e.g. 'loader=--mb 16' (repeatable)")
    ap.add_argument("--timeout", type=float, help="seconds per script (default: none)")
    args = ap.parse_args()
    extra: dict[str, list[str]] = {}
    for item in args.args:
        name, _, opts = item.partition("=")
        if name not in BENCHES:
            ap.error(f"--args {item!r}: NAME is one of {', '.join(BENCHES)}")
        extra[name] = shlex.split(opts)
    chosen = [b for b in (args.only or BENCHES) if b not in args.skip]

    started = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    t0 = time.perf_counter()
    results = []
    for i, name in enumerate(chosen, 1):
        cmd = " ".join(["bench/" + name + ".py", *extra.get(name, [])])
        print(f"run_all: [{i}/{len(chosen)}] {cmd} ...", flush=True)
        if not args.quiet:
            print(f"{'=' * 24} {cmd} {'=' * 24}", flush=True)
        r = run(name, extra.get(name, []), args.quiet, args.timeout)
        results.append(r)
        status = "ok" if r["code"] == 0 else r["rows"][0]["figure"]
        print(f"run_all: [{i}/{len(chosen)}] {name}: {status} in {r['seconds']:.0f} s", flush=True)
    total = time.perf_counter() - t0

    table = [COLUMNS] + [cells(row) for r in results for row in r["rows"]]
    print(f"\n{plain(table)}\n")
    took = ", ".join(f"{r['name']} {r['seconds']:.0f} s" for r in results)
    plural = "s" if len(results) != 1 else ""
    print(f"run_all: {len(results)} benchmark{plural} in {total / 60:.1f} min ({took}); "
          f"{os.cpu_count()} cores; ratio = ours / baseline")
    if args.markdown:
        Path(args.markdown).write_text(markdown(table))
        print(f"run_all: Markdown table written to {args.markdown}")
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"started": started, "cores": os.cpu_count(), "seconds": round(total, 1),
             "benches": results}, indent=1) + "\n")
    failed = [r["name"] for r in results if r["code"]]
    if failed:
        sys.exit(f"run_all: failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
