"""The report's figures, drawn with matplotlib (Agg, no display) and returned as PNG bytes, so
the page can embed them and be read with no network."""

from __future__ import annotations

import io
from typing import Any

import numpy as np

THRESHOLD_COLOR = "#c0392b"
KEPT, REMOVED = "#2e86c1", "#e59866"


def _figure(w: float = 7.5, h: float = 3.2) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(w, h), dpi=100)


def _png(fig: Any) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def funnel(rows: list[dict[str, Any]], field: str, removed_field: str, label: str) -> bytes:
    """Kept and removed per stage, in pipeline order."""
    fig, ax = _figure(7.5, 0.45 * len(rows) + 1.2)
    names = [r["name"] for r in rows][::-1]
    kept = np.array([r[field] for r in rows][::-1], dtype=float)
    gone = np.array([r[removed_field] for r in rows][::-1], dtype=float)
    ax.barh(names, kept, color=KEPT, label="kept")
    ax.barh(names, gone, left=kept, color=REMOVED, label="removed")
    ax.set_xlabel(label)
    ax.legend(loc="lower right", frameon=False)
    return _png(fig)


def bars(counts: dict[str, float], xlabel: str, top: int = 15) -> bytes:
    items = list(counts.items())[:top][::-1]
    fig, ax = _figure(7.5, 0.32 * len(items) + 1.2)
    ax.barh([str(k)[:60] for k, _ in items], [v for _, v in items], color=KEPT)
    ax.set_xlabel(xlabel)
    return _png(fig)


def histogram(values: np.ndarray, name: str, thresholds: list[tuple[str, float]],
              log_x: bool = False) -> bytes:
    """A metric's distribution with the configured thresholds drawn on it."""
    fig, ax = _figure(3.6, 2.6)
    v = values[np.isfinite(values)].astype(float)
    if log_x:
        v = v[v > 0]
        bins = np.logspace(np.log10(max(v.min(), 1)), np.log10(v.max() + 1), 50) if len(v) \
            else 10
        ax.set_xscale("log")
    else:
        bins = 50
    ax.hist(v, bins=bins, color=KEPT)
    ax.set_yscale("log")
    for bound, x in thresholds:
        ax.axvline(x, color=THRESHOLD_COLOR, linestyle="--", linewidth=1.5)
        ax.annotate(f"{bound} {x:g}", (x, 1), xycoords=("data", "axes fraction"),
                    xytext=(3, -12), textcoords="offset points", color=THRESHOLD_COLOR,
                    fontsize=8)
    ax.set_title(name, fontsize=10)
    ax.set_ylabel("documents")
    return _png(fig)


def cluster_sizes(sizes: list[int]) -> bytes:
    fig, ax = _figure(5.0, 2.8)
    counts = np.bincount(np.asarray(sizes, dtype=np.int64))
    xs = np.flatnonzero(counts)
    ax.bar(xs, counts[xs], color=KEPT)
    ax.set_xlabel("documents in the cluster")
    ax.set_ylabel("clusters")
    ax.set_yscale("log")
    return _png(fig)


def training(log: list[dict[str, Any]]) -> bytes:
    fig, ax = _figure(6.0, 2.8)
    train = [e for e in log if e["event"] == "train"]
    evals = [e for e in log if e["event"] == "eval"]
    ax.plot([e["step"] for e in train], [e["loss"] for e in train], color=KEPT, label="train")
    if evals:
        ax.plot([e["step"] for e in evals], [e["val_loss"] for e in evals], "o-",
                color=REMOVED, label="validation")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.legend(frameon=False)
    return _png(fig)


def perplexity(rows: list[dict[str, Any]]) -> bytes:
    """Perplexity per group (language), on a log scale: PolyCoder's figure."""
    finite = [r for r in rows if r.get("perplexity") not in (None, float("inf"))]
    fig, ax = _figure(6.0, 0.4 + 0.32 * max(len(finite), 1))
    ax.barh([str(r["group"]) for r in finite], [r["perplexity"] for r in finite], color=KEPT)
    ax.set_xscale("log")
    ax.invert_yaxis()
    ax.set_xlabel("perplexity (log scale)")
    return _png(fig)
