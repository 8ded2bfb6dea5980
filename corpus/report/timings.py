"""Time and throughput per stage of a run, from the stages' manifests alone: seconds of work (every
run that computed some of it, so a resumed stage counts all its parts), the bytes it read (its
input's content bytes, else its stored bytes; a first stage: its own), MB/s per worker core and
each stage's share of the total. The slowest stage of a pipeline is the one to make faster."""

from __future__ import annotations

from typing import Any

from corpus.manifest import resolve_url


def _input_url(url: str, manifest: dict[str, Any]) -> str | None:
    return resolve_url(manifest.get("input"), url) if manifest.get("input") else None


def _seconds(manifest: dict[str, Any]) -> float | None:
    t = manifest.get("timings") or {}
    if t.get("run_seconds") is not None:
        return float(t["run_seconds"])
    runs = [r.get("seconds") for r in manifest.get("runs") or [] if r.get("seconds")]
    return float(sum(runs)) if runs else None


def _workers(manifest: dict[str, Any]) -> int:
    return max([int(r.get("workers") or 1) for r in manifest.get("runs") or []] or [1])


def _size(manifest: dict[str, Any]) -> int:
    return int(manifest.get("content_bytes") or manifest.get("bytes") or 0)


def timings(stages: list[Any]) -> list[dict[str, Any]]:
    """A row per stage with a manifest: name, kind, seconds, bytes read, workers, MB/s per core
    (None without a time or a size) and share of the run's seconds."""
    rows: list[dict[str, Any]] = []
    size = {s.url: _size(s.manifest or {}) for s in stages}
    for s in stages:
        m = s.manifest
        if not m:
            continue
        seconds = _seconds(m)
        source = _input_url(s.url, m)
        read = size.get(source or "") or _size(m)
        workers = _workers(m)
        rate = read / seconds / workers / 1e6 if seconds and read else None
        rows.append({"name": s.name, "kind": m.get("stage", s.kind), "seconds": seconds,
                     "bytes_read": read, "workers": workers, "mb_s_core": rate})
    total = sum(r["seconds"] or 0 for r in rows)
    for r in rows:
        r["share"] = (r["seconds"] or 0) / total if total else None
    return rows
