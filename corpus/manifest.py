"""What a stage records about its output, and the hashes that decide what can be reused."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import subprocess
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import corpus

#: 2: documents under data/, a dataset card (README.md); 1 had them at the top.
FORMAT = "corpus-dataset/2"


def digest(obj: Any) -> str:
    """sha256 of a JSON-able object, independent of dict order."""
    data = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(data).hexdigest()


@functools.cache
def code_version() -> dict[str, str | None]:
    """Package version, plus the git commit when running from a checkout."""
    root = Path(corpus.__file__).resolve().parent.parent
    commit = None
    if (root / ".git").exists():
        try:
            out = subprocess.run(
                ["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"],
                capture_output=True, text=True, timeout=5, check=False,
            )
            commit = out.stdout.strip() or None
        except (OSError, subprocess.SubprocessError):
            commit = None
    return {"corpus": corpus.__version__, "git": commit}


def fingerprint(stage: str, config: dict[str, Any], input_hash: str | None) -> str:
    """Identity of a stage's output: same fingerprint, same bytes. The git commit is left out
    on purpose so a resumed run after an unrelated commit still reuses finished partitions."""
    return digest({"stage": stage, "config": config, "input": input_hash,
                   "version": corpus.__version__})


def dataset_hash(manifest: dict[str, Any]) -> str:
    """Hash of a finished dataset's content-determined facts (not its timings): what the next
    stage records as its input hash."""
    return digest({
        "fingerprint": manifest.get("fingerprint"),
        "partitions": [
            (p["key"], p.get("rows"), p.get("removed"), p.get("bytes"))
            for p in manifest.get("partitions", [])
        ],
        "tables": manifest.get("tables"),
    })


def merge_counts(records: Iterable[dict[str, Any]], field: str) -> dict[str, int]:
    total: Counter[str] = Counter()
    for rec in records:
        total.update(rec.get(field) or {})
    return dict(sorted(total.items(), key=lambda kv: (-kv[1], kv[0])))


def merge_reasons(records: Iterable[dict[str, Any]]) -> dict[str, dict[str, int]]:
    total: dict[str, dict[str, int]] = {}
    for rec in records:
        for rule, c in (rec.get("reasons") or {}).items():
            t = total.setdefault(rule, {"rows": 0, "bytes": 0})
            t["rows"] += c["rows"]
            t["bytes"] += c["bytes"]
    return dict(sorted(total.items()))


def totals(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Stage-level sums over partition records."""
    return {
        "rows_in": sum(r["rows_in"] for r in records),
        "rows": sum(r["rows"] for r in records),
        "removed": sum(r["removed"] for r in records),
        "bytes": sum(r["bytes"] for r in records),
        "content_bytes": sum(r.get("content_bytes", 0) for r in records),
        "reasons": merge_reasons(records),
        "languages": merge_counts(records, "languages"),
        "licenses": merge_counts(records, "licenses"),
    }


def relative_url(target: str | None, base: str) -> str | None:
    """`target` as the manifest of directory `base` records it: relative to `base` when both
    are local paths (so a moved run root keeps working), else the URL as given."""
    if target is None or "://" in target or "://" in base:
        return target
    return os.path.relpath(os.path.abspath(target), os.path.abspath(base))


def resolve_url(recorded: str | None, base: str) -> str | None:
    """The inverse of relative_url: what a manifest of `base` names, as a usable path/URL."""
    if recorded is None or "://" in recorded or os.path.isabs(recorded) or "://" in base:
        return recorded
    return os.path.normpath(os.path.join(base, recorded))
