"""`corpus scrub --report`: what the stage changed, per kind: its count and a few examples in
their context, so a user can audit the redaction before training on it.

An example is the scrubbed output's own line around a placeholder (so every value the stage
found is already replaced in it, its own and its neighbours'), with the path, the line number
and the replaced value's length: never a character of the value itself.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from corpus.scrub.redact import Placed

#: examples kept per kind: per partition, then over the stage
EXAMPLES = 3
#: characters of context on each side of a placeholder
CONTEXT = 70


def example(out: str, path: str, placed: Placed) -> dict[str, Any]:
    """One example: the output line around the placeholder, cut to CONTEXT on each side."""
    kind, a, b, length = placed
    start = max(out.rfind("\n", 0, a) + 1, a - CONTEXT)
    end = out.find("\n", b)
    end = min(len(out) if end < 0 else end, b + CONTEXT)
    return {"kind": kind, "path": path, "line": out.count("\n", 0, a) + 1,
            "context": out[start:end].strip(), "value_chars": length}


def collect(into: dict[str, list[dict[str, Any]]], out: str, path: str,
            placed: list[Placed]) -> None:
    """Add a document's examples to `into` (kind -> examples), EXAMPLES per kind at most."""
    for p in placed:
        kept = into.setdefault(p[0], [])
        if len(kept) < EXAMPLES:
            kept.append(example(out, path, p))


def merge(records: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The stage's examples from its partitions' records, EXAMPLES per kind, in order."""
    merged: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        for kind, examples in (r.get("examples") or {}).items():
            merged.setdefault(kind, [])
            merged[kind] += examples[:EXAMPLES - len(merged[kind])]
    return dict(sorted(merged.items()))


def render(manifest: dict[str, Any], console: Console) -> None:
    """The report of one scrub output, from its manifest."""
    counts = manifest.get("secrets") or {}
    examples = manifest.get("secret_examples") or {}
    table = Table(title=f"scrub: {sum(counts.values()):,} values replaced in "
                        f"{manifest.get('rows', 0):,} kept documents")
    for col in ("kind", "count", "examples (path:line, the scrubbed line, value length)"):
        table.add_column(col, overflow="fold")
    for kind, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        shown = "\n".join(f"{e['path']}:{e['line']}  {e['context']}  "
                          f"[{e['value_chars']} chars]" for e in examples.get(kind, []))
        table.add_row(f"<{kind}>", f"{n:,}", shown or "—")
    if not counts:
        table.add_row("—", "0", "nothing found")
    console.print(table)
    removed = manifest.get("reasons") or {}
    if removed:
        console.print("removed: " + ", ".join(f"{r} {n['rows']:,}" for r, n in removed.items()))
