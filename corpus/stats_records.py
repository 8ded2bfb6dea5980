"""`corpus stats PATH` for every output, not only dataset directories: a tokenizer folder, a
train run, a model folder, an eval folder (their own records, summarized in the line the
pipeline prints), and a run root (one table of all its stages). Dataset directories, token
and Parquet shards and TABLES folders are corpus/stats.py's."""

from __future__ import annotations

import json
import posixpath
from typing import Any

from corpus import stats
from corpus.errors import InputError
from corpus.io import MANIFEST, DatasetDir

PIPELINE = "pipeline.json"
#: The record each non-dataset output keeps, by kind (what identifies the folder).
RECORDS = {"eval": "eval.json", "model": "export.json", "tokenizer": "corpus_tokenizer.json",
           "train": "stage.json"}


def kind_of(url: str) -> str:
    """What an output folder is: run, dataset (any folder with a manifest, or plain Parquet),
    tokenizer, train, model or eval."""
    d = DatasetDir(url)
    if not d.exists():
        raise InputError(f"no such dataset directory or output folder: {url}")
    if d.exists(PIPELINE):
        return "run"
    for kind, record in RECORDS.items():  # before the manifest: a tokenizer has one too
        if d.exists(record):
            return kind
    if d.exists(MANIFEST):
        return "dataset"
    if d.exists("log.jsonl"):  # a `corpus train` run started outside a pipeline
        return "train"
    if d.exists("config.json") and (d.exists("model.safetensors")
                                    or d.exists("model.safetensors.index.json")):
        return "model"
    if d.fs.isdir(d.path) and not any(p.endswith(".parquet") for p in d.fs.ls(d.path)) and \
            _children(d):
        return "run"
    return "dataset"


def _children(d: DatasetDir) -> list[str]:
    """Stage folders of a run root: its pipeline's order, else every output folder by name."""
    order = d.read_json(PIPELINE)
    if order is not None:
        return [s["name"] for s in order.get("stages", []) if d.exists(s["name"])]
    names = sorted(posixpath.basename(p.rstrip("/")) for p in d.fs.ls(d.path, detail=False)
                   if d.fs.isdir(p))
    return [n for n in names if d.exists(posixpath.join(n, MANIFEST))
            or any(d.exists(posixpath.join(n, r)) for r in RECORDS.values())]


def folder_bytes(d: DatasetDir) -> int:
    return sum(int(i.get("size") or 0) for i in d.fs.find(d.path, detail=True).values())


def _record(d: DatasetDir, kind: str) -> dict[str, Any]:
    rec = d.read_json(RECORDS[kind])
    if rec is None:  # a model folder that another tool wrote
        return {}
    return rec


def collect(url: str) -> dict[str, Any]:
    """The stats of any output: {"kind", "url", …}; a run root's hold one entry per stage."""
    kind = kind_of(url)
    if kind == "dataset":
        return stats.collect(url)
    d = DatasetDir(url)
    if kind == "run":
        order = {s["name"]: s.get("kind") for s in
                 (d.read_json(PIPELINE) or {}).get("stages", [])}
        rows = [summary_row(posixpath.join(url.rstrip("/"), n), n, order.get(n))
                for n in _children(d)]
        return {"url": url, "kind": "run", "stages": rows}
    return {"url": url, "kind": kind, "bytes": folder_bytes(d), "line": describe(d, kind),
            "record": _record(d, kind)}


def describe(d: DatasetDir, kind: str) -> str:
    """The line the pipeline prints for this output, from the folder's own record."""
    rec = _record(d, kind)
    if kind == "tokenizer":
        from corpus.tokens.bpe import summary

        return summary(rec, d.url)
    if kind == "train":
        from pathlib import Path

        from corpus.train.launch import describe as train
        from corpus.train.launch import summarize
        from corpus.train.loop import LOG

        if not d.exists(LOG):
            return "train: not started (no log.jsonl)"
        return train(summarize(Path(d.path)))
    if kind == "model":
        if not rec:
            conf = d.read_json("config.json") or {}
            return f"model: a Hugging Face {conf.get('model_type', '?')} folder"
        from corpus.train.export import describe as export

        return export(rec, d.url).splitlines()[0]
    from corpus.eval.stage import describe as evaluation

    return evaluation(rec)


def summary_row(url: str, name: str, kind: str | None) -> dict[str, Any]:
    """One stage of a run root: rows in → kept, removed, bytes, and whether it is complete."""
    found = kind_of(url)
    row: dict[str, Any] = {"stage": name, "kind": kind or found, "url": url, "rows_in": None,
                           "rows": None, "removed": None}
    if found != "dataset":
        d = DatasetDir(url)
        return {**row, "bytes": folder_bytes(d), "state": "complete", "line": describe(d, found)}
    try:
        s = stats.collect(url)
    except InputError as e:
        return {**row, "bytes": None, "state": f"unreadable: {e}"}
    state = "damaged" if s.get("problems") else \
        "complete" if s.get("complete") in (True, None) else "incomplete"
    return {**row, "rows_in": s.get("rows_in"), "rows": s.get("rows"),
            "removed": s.get("removed"), "bytes": s.get("bytes"), "state": state}


def render(s: dict[str, Any], console: Any) -> None:
    if s["kind"] in ("dataset", "tables"):
        stats.render(s, console)
        return
    from corpus.units import format_bytes

    if s["kind"] != "run":
        console.print(f"[bold]{s['url']}[/] — {s['kind']}, {format_bytes(s['bytes'])}")
        console.print(s["line"], highlight=False)
        return
    from rich.table import Table

    console.print(f"[bold]{s['url']}[/] — a run of {len(s['stages'])} stages")
    t = Table(box=None, padding=(0, 1))
    for name in ("stage", "kind", "rows in", "→ kept", "removed", "bytes", "state"):
        t.add_column(name, no_wrap=True, justify="left" if name in ("stage", "kind", "state")
                     else "right")

    def n(v: int | None) -> str:
        return "" if v is None else f"{v:,}"

    for r in s["stages"]:
        t.add_row(r["stage"], str(r["kind"]), n(r["rows_in"]), n(r["rows"]), n(r["removed"]),
                  "" if r["bytes"] is None else format_bytes(r["bytes"]), r["state"])
    console.print(t)


def as_json(s: dict[str, Any]) -> str:
    return json.dumps(s, default=str)
