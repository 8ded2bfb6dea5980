"""The report page: one HTML file, figures embedded as data: URIs, no script, no network."""

from __future__ import annotations

import base64
import html
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from corpus import __version__
from corpus.report import plots
from corpus.report.collect import Report, collect
from corpus.units import format_bytes

SECTIONS = ("funnel", "timings", "reasons", "metrics", "languages", "licenses", "near-duplicates",
            "secrets", "samples", "training", "evaluation")

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;max-width:1100px;
color:#222;padding:0 1rem}
h1{font-size:1.6rem}h2{border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2.2rem}
table{border-collapse:collapse;margin:.6rem 0;font-size:.9rem}
td,th{padding:.25rem .7rem;border-bottom:1px solid #eee;text-align:left}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
img{max-width:100%;margin:.3rem .3rem .3rem 0}
pre{background:#f6f8fa;padding:.6rem;overflow-x:auto;font-size:.8rem;max-height:16rem}
.muted{color:#777}.grid{display:flex;flex-wrap:wrap}
"""


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _num(n: int | float) -> str:
    return f"{n:,}" if isinstance(n, int) else f"{n:,.3g}"


def _table(head: list[str], rows: list[list[Any]], numeric: set[int] | None = None,
           attrs: list[dict[str, str]] | None = None) -> str:
    numeric = numeric or set()
    th = "".join(f'<th class="{"n" if i in numeric else ""}">{html.escape(h)}</th>'
                 for i, h in enumerate(head))
    body = []
    for r, row in enumerate(rows):
        cells = []
        for i, v in enumerate(row):
            a = (attrs[r].get(head[i], "") if attrs else "")
            cls = "n" if i in numeric else ""
            text = _num(v) if isinstance(v, int | float) and not isinstance(v, bool) \
                else html.escape(str(v))
            cells.append(f'<td class="{cls}"{a}>{text}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{th}</tr>{''.join(body)}</table>"


def _section(sid: str, title: str, body: str) -> str:
    return f'<section id="{sid}"><h2>{html.escape(title)}</h2>{body}</section>'


def _none(what: str) -> str:
    return f'<p class="muted">No {html.escape(what)} in this run.</p>'


def _funnel(r: Report) -> str:
    if not r.funnel:
        return _none("dataset stages")
    rows, attrs = [], []
    for f in r.funnel:
        rows.append([f["name"], f["stage"], f["rows_in"], f["rows"], f["removed"],
                     format_bytes(f["content_bytes"]), format_bytes(f["removed_bytes"])])
        n = html.escape(f["name"])
        attrs.append({k: f' data-stage="{n}" data-field="{field}"' for k, field in
                      (("documents in", "rows_in"), ("kept", "rows"), ("removed", "removed"))})
    table = _table(["stage", "kind", "documents in", "kept", "removed", "content kept",
                    "content removed"], rows, {2, 3, 4}, attrs)
    dataset = [f for f in r.funnel if f["stage"] != "github-tables"]
    figs = (_img(plots.funnel(dataset, "rows", "removed", "documents"), "documents per stage")
            + _img(plots.funnel([{**f, "cb": f["content_bytes"] / 2**20,
                                  "rb": f["removed_bytes"] / 2**20} for f in dataset],
                                "cb", "rb", "content (MiB)"), "bytes per stage")) \
        if dataset else ""
    return table + f'<div class="grid">{figs}</div>'


def _timings(r: Report) -> str:
    rows = [[t["name"], t["kind"], "—" if t["seconds"] is None else round(t["seconds"], 1),
             format_bytes(t["bytes_read"]), t["workers"],
             "—" if t["mb_s_core"] is None else t["mb_s_core"],
             "—" if t["share"] is None else f"{t['share']:.0%}"] for t in r.timings]
    if not rows:
        return _none("stage timings")
    return _table(["stage", "kind", "seconds", "read", "workers", "MB/s per core", "share"],
                  rows, {2, 4, 5, 6}) + \
        '<p class="muted">Seconds of every run that computed part of the stage (manifests); ' \
        "MB/s per core: the content bytes the stage read, per second, per worker.</p>"


def _reasons(r: Report) -> str:
    rows, counts = [], {}
    for f in r.funnel:
        for key, c in f["reasons"].items():
            rows.append([f["name"], key, c["rows"], format_bytes(c["bytes"])])
            counts[f"{f['name']}: {key}"] = c["rows"]
    if not rows:
        return _none("removals")
    top = dict(sorted(counts.items(), key=lambda kv: -kv[1]))
    return _table(["stage", "reason", "documents", "bytes"], rows, {2}) + \
        _img(plots.bars(top, "documents removed", top=20), "removals per reason")


def _metrics(r: Report) -> str:
    parts = []
    for name, values in r.metrics.items():
        if len(values):
            parts.append(_img(plots.histogram(values, name, r.thresholds.get(name, []),
                                              log_x=name in ("line_max", "size")), name))
    if r.token_counts is not None and len(r.token_counts):
        parts.append(_img(plots.histogram(r.token_counts, "tokens per document",
                                          r.thresholds.get("num_tokens", []), log_x=True),
                          "tokens per document"))
    if not parts:
        return _none("filter metrics")
    note = ('<p class="muted">Over the filter stage\'s input, computed by its own scorers; '
            'dashed lines are the configured thresholds.</p>')
    return note + f'<div class="grid">{"".join(parts)}</div>'


def _counts(counts: dict[str, int], what: str) -> str:
    if not counts:
        return _none(what)
    return _img(plots.bars(counts, "documents"), what) + \
        _table([what, "documents"], [[k, v] for k, v in list(counts.items())[:30]], {1})


def _clusters(r: Report) -> str:
    if not r.clusters:
        return _none("near-duplicate clusters")
    s = r.clusters
    head = (f"<p>{len(s):,} clusters of near-duplicates, {sum(s) - len(s):,} documents removed "
            f"(one kept per cluster); the largest holds {s[0]:,} documents.</p>")
    return head + _img(plots.cluster_sizes(s), "near-duplicate cluster sizes")


def _secrets(r: Report) -> str:
    if not r.secrets:
        return _none("secrets or PII")
    return _img(plots.bars(r.secrets, "found and replaced"), "secrets per kind") + \
        _table(["kind", "found"], [[k, v] for k, v in r.secrets.items()], {1})


def _samples(r: Report) -> str:
    if not r.samples:
        return _none("removed documents")
    out = ['<p class="muted">The first lines of a few removed documents per reason, redacted '
           'whole (secrets and PII replaced) before they were cut.</p>']
    for s in r.samples:
        head = html.escape(s["head"]) if s["head"] is not None else \
            "(not shown: its secrets could not be redacted here)" if s.get("withheld") else \
            "(content not available)"
        out.append(f'<div class="sample"><p><b>{html.escape(s["stage"])}</b> — '
                   f'{html.escape(s["reason"])}<br><span class="muted">'
                   f'{html.escape(s["repo_name"] or "")}:{html.escape(s["path"] or "")} '
                   f'({format_bytes(s["size"] or 0)})</span></p><pre>{head}</pre></div>')
    return "".join(out)


def _training(r: Report) -> str:
    train = [e for e in r.training if e["event"] == "train"]
    if not train:
        return _none("training")
    evals = [e for e in r.training if e["event"] == "eval"]
    text = (f"<p>Loss {train[0]['loss']:.3f} at step {train[0]['step']} → "
            f"{train[-1]['loss']:.3f} at step {train[-1]['step']}")
    if evals:
        text += (f"; validation loss {evals[-1]['val_loss']:.3f} "
                 f"(perplexity {evals[-1]['perplexity']:,.1f})")
    return text + ".</p>" + _img(plots.training(r.training), "training loss")


def _evaluation(r: Report) -> str:
    """Each eval stage: perplexity per group (table and figure), pass@k, a few samples."""
    if not r.evaluation:
        return _none("evaluation")
    out = [_side_by_side(r.evaluation)] if len(r.evaluation) > 1 else []
    for e in r.evaluation:
        out.append(f"<h3>{html.escape(e['stage'])}: {html.escape(str(e.get('model', '')))}</h3>")
        ppl = e.get("perplexity")
        if ppl:
            rows = ppl["rows"]
            out.append(f"<p>Perplexity on the {html.escape(str(ppl.get('split', '')))} split "
                       f"of {html.escape(str(ppl.get('data', '')))} (context "
                       f"{ppl.get('context', '?')}, stride {ppl.get('stride', '?')}).</p>")
            out.append(_table(["group", "documents", "tokens", "loss", "perplexity"],
                              [[x["group"], x["documents"], x["tokens"], x["loss"],
                                x["perplexity"]] for x in rows], {1, 2, 3, 4}))
            if any(x.get("perplexity") not in (None, float("inf")) for x in rows):
                out.append(_img(plots.perplexity(rows), "perplexity per group"))
        he = e.get("humaneval")
        if he:
            passk = he.get("pass_at_k") or {}
            out.append(f"<p>HumanEval: {he.get('problems', '?')} problems, n = "
                       f"{he.get('n', '?')} samples each, temperature "
                       f"{he.get('temperature', '?')}, top-p {he.get('top_p', '?')}.</p>")
            out.append(_table(list(passk), [list(passk.values())], set(range(len(passk)))))
            for smp in he.get("examples", [])[:4]:
                verdict = "passed" if smp.get("passed") else html.escape(
                    str(smp.get("outcome", "failed")))
                out.append(f"<p><b>{html.escape(str(smp.get('task_id')))}</b> — {verdict}</p>"
                           f"<pre>{html.escape(str(smp.get('completion', ''))[:2000])}</pre>")
    return "".join(out)


def _side_by_side(evaluation: list[dict[str, Any]]) -> str:
    """Several eval stages (an ablation): their numbers in one table, the first the baseline,
    as `corpus eval compare` prints them; why not, when they are not comparable."""
    from corpus.errors import InputError
    from corpus.eval import compare

    stages = [e["stage"] for e in evaluation]
    try:
        c = compare.compare([compare.Evaluated(e["stage"], e.get("perplexity"),
                                               e.get("humaneval")) for e in evaluation])
    except InputError as err:
        return f"<p>The eval stages side by side: not shown ({html.escape(str(err))}).</p>"
    text = (f"<p>Side by side, {html.escape(stages[0])} the baseline (a ratio below 1: a lower "
            "perplexity).</p>")
    groups = compare.shown_groups(c)
    if groups:
        text += _table(["group", "tokens", *stages, *(f"{s} / {stages[0]}" for s in stages[1:])],
                       [[g, c.tokens[g], *("—" if v is None else v for v in c.perplexity[g]),
                         *("—" if x is None else round(x, 4)
                           for x in compare.ratios(c.perplexity[g])[1:])] for g in groups],
                       set(range(1, 2 * len(stages) + 1)))
    if c.pass_at_k:
        text += _table(["HumanEval", *stages], [[k, *("—" if v is None else v for v in vs)]
                                                for k, vs in c.pass_at_k.items()],
                       set(range(1, len(stages) + 1)))
    return text + "".join(f"<p>{html.escape(n)}</p>" for n in c.notes)


def render(r: Report) -> str:
    body = {
        "funnel": ("Documents and bytes per stage", _funnel(r)),
        "timings": ("Time per stage", _timings(r)),
        "reasons": ("Removal reasons", _reasons(r)),
        "metrics": ("Filter metrics", _metrics(r)),
        "languages": ("Languages", _counts(r.languages, "language")),
        "licenses": ("Licenses", _counts(r.licenses, "license")),
        "near-duplicates": ("Near-duplicate clusters", _clusters(r)),
        "secrets": ("Secrets and PII found", _secrets(r)),
        "samples": ("Removed documents, by reason", _samples(r)),
        "training": ("Training", _training(r)),
        "evaluation": ("Evaluation", _evaluation(r)),
    }
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    nav = " · ".join(f'<a href="#{s}">{html.escape(body[s][0])}</a>' for s in SECTIONS)
    sections = "".join(_section(s, *body[s]) for s in SECTIONS)
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f"<title>corpus report: {html.escape(r.run_dir)}</title><style>{CSS}</style>"
            f"</head><body><h1>corpus report: {html.escape(r.run_dir)}</h1>"
            f'<p class="muted">{len(r.stages)} stages; made {when} by corpus {__version__}.</p>'
            f"<nav>{nav}</nav>{sections}</body></html>\n")


def write(run_dir: str, out: str | None = None) -> Path:
    path = Path(out) if out else Path(run_dir) / "report.html"
    page = render(collect(run_dir))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path
