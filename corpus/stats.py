"""`corpus stats DIR`: what a dataset or TABLES folder holds, from its manifest and Parquet
footers. `content` is never read: a folder without a manifest costs its footers plus the small
`language` and `license` columns."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq

from corpus import schema
from corpus.errors import InputError
from corpus.io import DatasetDir, check_layout


def collect(url: str) -> dict[str, Any]:
    d = DatasetDir(url)
    if not d.exists():
        raise InputError(f"no such dataset directory: {url}")
    manifest = d.manifest()
    check_layout(url, manifest)  # the old layout would be misread
    if manifest is not None:
        out = _from_manifest(url, manifest)
        if manifest.get("complete"):  # complete only if every listed file is intact
            out["problems"] = d.problems(manifest)
        return out
    if any(d.fs.exists(d.join(f"{t}.parquet")) or d.fs.isdir(d.join(t))
           for t in schema.GITHUB_TABLES):
        from corpus import tables

        found = tables.locate(url, [t for t in schema.GITHUB_TABLES
                                    if d.fs.exists(d.join(f"{t}.parquet"))
                                    or d.fs.isdir(d.join(t))])
        return {"url": url, "kind": "tables", "stage": None, "complete": None,
                "tables": tables.stats(found)}
    return _from_footers(d)


def _from_manifest(url: str, m: dict[str, Any]) -> dict[str, Any]:
    out = {
        "url": url, "kind": "tables" if m.get("tables") else "dataset",
        "stage": m.get("stage"), "complete": m.get("complete"),
        "partitions": len(m.get("partitions", [])), "partitions_total": m.get("partitions_total"),
        "rows_in": m.get("rows_in"), "rows": m.get("rows"), "removed": m.get("removed"),
        "bytes": m.get("bytes"), "content_bytes": m.get("content_bytes"),
        "reasons": m.get("reasons", {}), "languages": m.get("languages", {}),
        "licenses": m.get("licenses", {}), "timings": m.get("timings", {}),
        "config": m.get("config", {}), "secrets": m.get("secrets", {}),
        **({"tokens": m["tokens"]} if "tokens" in m else {}),
        **({"splits": m["parquet"]["splits"]} if "parquet" in m else {}),
    }
    steps = {}
    for run in m.get("runs", []):  # what each global step reported, latest run winning
        steps.update({k: v for k, v in run.items()
                      if isinstance(v, dict) and k != "global_steps"})
    if steps:
        out["steps"] = steps
    if m.get("notes"):
        out["notes"] = m["notes"]
    if m.get("tables"):
        out["tables"] = m["tables"]
        out["repos"] = m.get("repos")
        out["unlicensed_repos"] = len(m.get("unlicensed_repos", []))
    return out


def _from_footers(d: DatasetDir) -> dict[str, Any]:
    """A plain folder of Parquet files (no manifest): counts from footers and small columns."""
    keys = d.partition_keys()
    rows = nbytes = content = 0
    languages: Counter[str] = Counter()
    licenses: Counter[str] = Counter()
    for key in keys:
        rel = d.part_file(key)
        with d.fs.open(d.join(rel), "rb") as f:
            pf = pq.ParquetFile(f)
            rows += pf.metadata.num_rows
            names = pf.schema_arrow.names
            small = [c for c in ("language", "license", "size") if c in names]
            if small:
                t = pf.read(columns=small)
                for col, counter in (("language", languages), ("license", licenses)):
                    if col in t.column_names:
                        counter.update(pc.fill_null(t.column(col), "(none)").to_pylist())
                if "size" in t.column_names:
                    content += int(pc.sum(t.column("size")).as_py() or 0)
        nbytes += d.fs.size(d.join(rel))
    removed = 0
    if d.fs.isdir(d.join("removed")):
        for p in d.fs.ls(d.join("removed"), detail=False):
            if p.endswith(".parquet"):
                with d.fs.open(p, "rb") as f:
                    removed += pq.ParquetFile(f).metadata.num_rows
    return {"url": d.url, "kind": "dataset", "stage": None, "complete": None,
            "partitions": len(keys), "rows": rows, "removed": removed, "rows_in": rows + removed,
            "bytes": nbytes, "content_bytes": content, "reasons": {},
            "languages": dict(languages.most_common()), "licenses": dict(licenses.most_common())}


def render(s: dict[str, Any], console: Any, top: int = 12) -> None:
    """Print stats for people: a headline, then tables of counts."""
    from rich.table import Table

    from corpus.units import format_bytes

    state = "" if s.get("complete") in (None, True) else " [yellow](incomplete)[/]"
    if s.get("problems"):
        n = len(s["problems"])
        state = (f" [red](damaged: {n} listed file{'s' * (n != 1)} missing or changed, e.g. "
                 f"{s['problems'][0]}; re-run its stage)[/]")
    stage = f" — stage {s['stage']}" if s.get("stage") else ""
    console.print(f"[bold]{s['url']}[/]{stage}{state}")
    if s.get("tables"):
        t = Table("table", "rows", "bytes", box=None, padding=(0, 2))
        for name, v in s["tables"].items():
            t.add_row(name, f"{v['rows']:,}", format_bytes(v["bytes"]))
        console.print(t)
        if s.get("repos") is not None:
            console.print(f"repositories: {s['repos']:,} ({s.get('unlicensed_repos', 0):,} "
                          "without a recognised license, left out of `licenses`)")
    if s.get("tokens"):  # token shards: documents in, sequences out
        from corpus.tokens.shards import describe

        console.print(f"documents: {s['rows']:,} packed, {s.get('removed', 0):,} removed "
                      f"(of {s.get('rows_in', 0):,}); on disk {format_bytes(s.get('bytes') or 0)}"
                      f" in {s.get('partitions', 0)} shards")
        console.print(describe(s), highlight=False)
    elif s.get("splits"):  # Hub Parquet shards: documents per split
        console.print(f"documents: {s['rows']:,} in {s.get('partitions', 0)} Parquet shards, "
                      f"on disk {format_bytes(s.get('bytes') or 0)}; " + "; ".join(
                          f"{k}: {v['rows']:,} ({len(v['files'])} shards)"
                          for k, v in s["splits"].items()), highlight=False)
    elif s.get("rows") is not None and s.get("kind") == "dataset":
        console.print(
            f"rows: {s['rows']:,} kept, {s.get('removed', 0):,} removed "
            f"(of {s.get('rows_in', 0):,}); content {format_bytes(s.get('content_bytes') or 0)}, "
            f"on disk {format_bytes(s.get('bytes') or 0)} in {s.get('partitions', 0)} partitions")
    elif s.get("rows") is not None:
        console.print(f"files: {s.get('rows_in', 0):,} found, {s['rows']:,} in `files`, "
                      f"{s.get('removed', 0):,} skipped")
    for title, key in (("language", "languages"), ("license", "licenses"),
                       ("secrets / PII redacted", "secrets")):
        counts = s.get(key) or {}
        if counts:
            t = Table(title, "count", box=None, padding=(0, 2))
            for k, v in list(counts.items())[:top]:
                t.add_row(str(k), f"{v:,}")
            if len(counts) > top:
                t.add_row(f"… {len(counts) - top} more", "")
            console.print(t)
    if s.get("reasons"):
        t = Table("removed because", "rows", "bytes", box=None, padding=(0, 2))
        for k, v in s["reasons"].items():
            t.add_row(k, f"{v['rows']:,}", format_bytes(v["bytes"]))
        console.print(t)
    if s.get("notes"):  # kept, but changed on the way (e.g. a file name escaped)
        console.print("kept with a note: " + ", ".join(f"{k} {v:,}"
                                                       for k, v in s["notes"].items()))
    for name, info in (s.get("steps") or {}).items():
        shown = {k: v for k, v in info.items() if isinstance(v, int | float) and k != "computed"}
        if shown:
            console.print(f"[dim]{name}: " + ", ".join(
                f"{k.replace('_', ' ')} {v:,}" if isinstance(v, int) else f"{k} {v:.2f}"
                for k, v in shown.items()))
    if s.get("timings"):
        console.print(f"[dim]time: {s['timings'].get('run_seconds', 0):.1f} s over all runs")
