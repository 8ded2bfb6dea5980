"""What a report shows, gathered from a pipeline run folder: the stages' manifests, the small
metric columns, and a few removed documents. Plain data (dicts, NumPy arrays), no HTML.

The stage order is `RUN_DIR/pipeline.json` (written by `corpus run`), else the manifests'
start times. Metric histograms are computed over the filter stage's *input* with the filter's
own scorers, so the dropped side of every threshold is visible too.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from corpus import schema
from corpus.errors import InputError
from corpus.io import DatasetDir
from corpus.manifest import resolve_url
from corpus.report.timings import timings

PIPELINE_RECORD = "pipeline.json"
HISTOGRAMS = ("line_mean", "line_max", "alpha_frac", "size")
SAMPLES_PER_REASON = 2
SAMPLE_LINES = 12
METRIC_DOCS = 50_000  # metric histograms over at most this many documents (evenly spread)


@dataclass
class Stage:
    name: str
    kind: str
    url: str
    manifest: dict[str, Any] | None  # dataset directories (and token shards)
    extra: dict[str, Any] = field(default_factory=dict)  # tokenizer report, train log, layout


@dataclass
class Report:
    run_dir: str
    stages: list[Stage]
    funnel: list[dict[str, Any]]
    metrics: dict[str, np.ndarray]
    thresholds: dict[str, list[tuple[str, float]]]
    token_counts: np.ndarray | None
    languages: dict[str, int]
    licenses: dict[str, int]
    clusters: list[int]
    secrets: dict[str, int]
    samples: list[dict[str, Any]]
    training: list[dict[str, Any]]
    evaluation: list[dict[str, Any]] = field(default_factory=list)  # eval stages' eval.json
    timings: list[dict[str, Any]] = field(default_factory=list)  # report/timings.py


def stages_of(run_dir: str) -> list[Stage]:
    root = Path(run_dir)
    if not root.is_dir():
        raise InputError(f"no such run folder: {run_dir}")
    record = root / PIPELINE_RECORD
    if record.exists():
        listed = [(s["name"], s["kind"]) for s in json.loads(record.read_text())["stages"]]
    else:
        found = []
        for d in sorted(p for p in root.iterdir() if (p / "manifest.json").exists()):
            m = json.loads((d / "manifest.json").read_text())
            found.append(((m.get("runs") or [{}])[0].get("started", ""), d.name, m["stage"]))
        listed = [(name, kind) for _, name, kind in sorted(found)]
    if not listed:
        raise InputError(f"{run_dir} holds no pipeline run (no {PIPELINE_RECORD}, no stage "
                         "folders with a manifest.json)")
    out = []
    for name, kind in listed:
        d = root / name
        if not d.exists():
            continue
        manifest = DatasetDir(str(d)).manifest()
        extra: dict[str, Any] = {}
        for f in ("corpus_tokenizer.json", "_layout.json", "eval.json"):
            if (d / f).exists():
                extra[f] = json.loads((d / f).read_text())
        if (d / "log.jsonl").exists():
            extra["log"] = [json.loads(x) for x in (d / "log.jsonl").read_text().splitlines()
                            if x.strip()]
        out.append(Stage(name, kind, str(d), manifest, extra))
    return out


def funnel(stages: list[Stage]) -> list[dict[str, Any]]:
    """Per dataset stage: documents in, kept, removed; bytes kept and removed; reasons."""
    rows = []
    for s in stages:
        m = s.manifest
        if m is None or "rows_in" not in m:
            continue
        removed_bytes = sum(r["bytes"] for r in (m.get("reasons") or {}).values())
        rows.append({"name": s.name, "stage": m["stage"], "rows_in": m["rows_in"],
                     "rows": m["rows"], "removed": m["removed"],
                     "content_bytes": m.get("content_bytes") or 0,
                     "removed_bytes": removed_bytes, "reasons": m.get("reasons") or {}})
    return rows


def _read(url: str, columns: list[str], limit: int | None = None) -> pa.Table:
    d = DatasetDir(url)
    keys = d.partition_keys()
    tables = []
    for key in keys:
        with d.fs.open(d.join(d.part_file(key)), "rb") as f:
            pf = pq.ParquetFile(f)
            tables.append(pf.read(columns=[c for c in columns if c in pf.schema_arrow.names]))
    t = pa.concat_tables(tables, promote_options="default") if tables else pa.table({})
    if limit is not None and t.num_rows > limit:  # evenly spread: not one repository's files
        t = t.take(pa.array(np.linspace(0, t.num_rows - 1, limit).astype(np.int64)))
    return t


def filter_metrics(stages: list[Stage]) -> tuple[dict[str, np.ndarray],
                                                  dict[str, list[tuple[str, float]]]]:
    """Histogram values over the filter stage's input, and each rule's thresholds."""
    from corpus.filters.stage import compute_metrics

    filt = next((s for s in stages if s.manifest and s.manifest["stage"] == "filter"), None)
    if filt is None or not filt.manifest.get("input"):
        return {}, {}
    thresholds: dict[str, list[tuple[str, float]]] = {}
    for rule in filt.manifest["config"].get("rules", []):
        for bound in ("min", "max"):
            if bound in rule:
                thresholds.setdefault(rule["rule"], []).append((bound, float(rule[bound])))
    t = _read(resolve_url(filt.manifest["input"], filt.url), ["content"], METRIC_DOCS)
    content = pc.drop_null(t.column("content").combine_chunks())
    values = compute_metrics(content, {m: {} for m in HISTOGRAMS})
    return values, thresholds


def token_counts(stages: list[Stage]) -> np.ndarray | None:
    tok = next((s for s in stages if s.manifest and "tokens" in s.manifest), None)
    if tok is None:
        return None
    files = sorted(Path(tok.url).glob("*.docs.parquet"))
    if not files:
        return None
    return pq.read_table(files, columns=["n_tokens"]).column("n_tokens").to_numpy()


def breakdowns(stages: list[Stage]) -> tuple[dict[str, int], dict[str, int]]:
    """Languages and licenses of the last dataset stage that counted them."""
    for s in reversed(stages):
        m = s.manifest
        if m and (m.get("languages") or m.get("licenses")) and "tokens" not in m:
            return dict(m.get("languages") or {}), dict(m.get("licenses") or {})
    return {}, {}


def cluster_sizes(stages: list[Stage]) -> list[int]:
    """Near-duplicate clusters: 1 keeper + the documents removed as its near-duplicates."""
    keepers: Counter[str] = Counter()
    for s in stages:
        if not (s.manifest and s.manifest["stage"] == "dedup-minhash"):
            continue
        for f in sorted((Path(s.url) / "removed").glob("*.parquet")):
            for reason in pq.read_table(f, columns=["reason"]).column("reason").to_pylist():
                if reason.startswith("near-duplicate-of "):
                    keepers[reason.split()[1]] += 1
    return sorted((n + 1 for n in keepers.values()), reverse=True)


def secrets(stages: list[Stage]) -> dict[str, int]:
    total: Counter[str] = Counter()
    for s in stages:
        if s.manifest and s.manifest.get("secrets"):
            total.update(s.manifest["secrets"])
    return dict(total.most_common())


def samples(stages: list[Stage], per_reason: int = SAMPLES_PER_REASON) -> list[dict[str, Any]]:
    """A few removed documents per stage and reason, read from the stage's input, redacted whole
    with the strongest options of the run's scrub stages and only then cut to their first lines
    (corpus/scrub/show.py). `head` is None when a document may not be shown: one removed for a
    secret that this redaction does not find again is never shown raw."""
    from corpus.scrub.show import fit_to_show, strongest

    opts = strongest(s.manifest.get("config") or {} for s in stages
                     if s.manifest and s.manifest.get("stage") == "scrub")
    out = []
    for s in stages:
        m = s.manifest
        if not m or not m.get("removed") or not m.get("input"):
            continue
        removed = [pq.read_table(f) for f in sorted((Path(s.url) / "removed").glob("*.parquet"))]
        if not removed:
            continue
        rm = pa.concat_tables(removed)
        picked: dict[str, list[dict[str, Any]]] = {}
        for row in rm.to_pylist():
            key = schema.reason_key(row["reason"])
            if len(picked.setdefault(key, [])) < per_reason:
                picked[key].append(row)
        wanted = {(r["id"], r["repo_name"], r["path"]) for rows in picked.values() for r in rows}
        texts = _contents(resolve_url(m["input"], s.url) or "", wanted)
        for key, rows in picked.items():
            for r in rows:
                text = texts.get((r["id"], r["repo_name"], r["path"]))
                head = fit_to_show(text, r["path"] or "", opts, SAMPLE_LINES, r["reason"])
                out.append({"stage": s.name, "reason_key": key, "reason": r["reason"],
                            "repo_name": r["repo_name"], "path": r["path"], "size": r["size"],
                            "head": head, "withheld": text is not None and head is None})
    return out


def _contents(url: str, wanted: set[tuple[str, str, str]]) -> dict[tuple[str, str, str], str]:
    """The content of these (id, repo_name, path) documents of a dataset directory."""
    d = DatasetDir(url)
    ids = sorted({w[0] for w in wanted})
    found = {}
    try:
        keys = d.partition_keys()
    except InputError:
        return found
    for key in keys:
        t = d.read_parquet(d.part_file(key), columns=["id", "repo_name", "path", "content"],
                           filters=[("id", "in", ids)])
        for i, r, p, c in zip(*(t.column(n).to_pylist() for n in
                                ("id", "repo_name", "path", "content")), strict=True):
            if (i, r, p) in wanted and c is not None:
                found[(i, r, p)] = c
    return found


def training(stages: list[Stage]) -> list[dict[str, Any]]:
    for s in stages:
        if "log" in s.extra:
            return s.extra["log"]
    return []


def collect(run_dir: str) -> Report:
    stages = stages_of(run_dir)
    values, thresholds = filter_metrics(stages)
    langs, lics = breakdowns(stages)
    return Report(run_dir, stages, funnel(stages), values, thresholds, token_counts(stages),
                  langs, lics, cluster_sizes(stages), secrets(stages), samples(stages),
                  training(stages), [{**s.extra["eval.json"], "stage": s.name}
                                     for s in stages if "eval.json" in s.extra],
                  timings(stages))

