"""Side by side: the numbers of several evaluated models, the last step of an ablation (two
pipelines, the same recipe, the same test split). Refuses to put perplexities side by side
that were not measured on the same documents, since a ratio over different test sets says
nothing about the data; says so when the tokenizers differ (per-token perplexities then
measure different units)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from corpus.errors import InputError


@dataclass
class Evaluated:
    name: str  # what the user gave (a folder or a file)
    perplexity: dict[str, Any] | None  # the perplexity result (rows under "groups")
    humaneval: dict[str, Any] | None  # pass@k by "pass@K", problems, n, temperature


@dataclass
class Comparison:
    names: list[str]
    #: group -> one perplexity per model (None: that model has no such group)
    perplexity: dict[str, list[float | None]] = field(default_factory=dict)
    tokens: dict[str, int] = field(default_factory=dict)  # group -> tokens scored
    pass_at_k: dict[str, list[float | None]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def load(path: str) -> Evaluated:
    """An eval stage's folder or its eval.json, `corpus eval perplexity --json` output, or a
    HumanEval --out folder / its summary.json."""
    p = Path(path)
    for candidate in (p / "eval.json", p / "summary.json", p):
        if candidate.is_file():
            break
    else:
        raise InputError(f"{path}: no eval.json or summary.json (an eval stage's folder, "
                         "`corpus eval perplexity --json` output or a `corpus eval humaneval` "
                         "--out folder)")
    try:
        r = json.loads(candidate.read_text())
    except (ValueError, UnicodeDecodeError) as e:
        raise InputError(f"{candidate} is not JSON: {e}") from None
    if not isinstance(r, dict):
        raise InputError(f"{candidate} is not an evaluation record")
    if "groups" in r and "all" in r:  # `corpus eval perplexity --json`
        return Evaluated(path, r, None)
    if "pass@1" in r or any(k.startswith("pass@") for k in r):  # a humaneval summary.json
        return Evaluated(path, None, {**r, "pass_at_k": {k: v for k, v in r.items()
                                                         if k.startswith("pass@")}})
    if r.get("stage") == "eval" or "perplexity" in r or "humaneval" in r:  # an eval stage's
        return Evaluated(path, r.get("perplexity"), r.get("humaneval"))
    raise InputError(f"{candidate} is not an evaluation record (no perplexity groups, no "
                     "pass@k)")


def _number(v: Any) -> float | None:
    return None if v is None else float(v)  # float("inf"): JSON holds inf as a string


def compare(evals: list[Evaluated]) -> Comparison:
    """Perplexity per group and pass@k per model, checked comparable."""
    if len(evals) < 2:
        raise InputError("compare needs at least two evaluations")
    c = Comparison([e.name for e in evals])
    with_ppl = [e for e in evals if e.perplexity]
    if with_ppl and len(with_ppl) != len(evals):
        c.notes.append("perplexity: only " + ", ".join(e.name for e in with_ppl) + " have it")
    if len(with_ppl) >= 2:
        _same_documents(with_ppl)
        if len({(e.perplexity or {}).get("tokenizer_sha256") for e in with_ppl}) > 1:
            c.notes.append("the models' tokenizers differ: a perplexity per token of one is "
                           "not in the units of the other (compare losses per byte instead)")
        groups: dict[str, list[float | None]] = {}
        for i, e in enumerate(evals):
            ppl = e.perplexity or {}
            for row in ppl.get("groups", []) + ([ppl["all"]] if ppl else []):
                groups.setdefault(row["group"], [None] * len(evals))[i] = \
                    _number(row["perplexity"])
                c.tokens.setdefault(row["group"], int(row["tokens"]))
        c.perplexity = dict(sorted(groups.items(), key=lambda kv: (kv[0] == "all", kv[0])))
    he = [(e.name, e.humaneval) for e in evals if e.humaneval]
    if len(he) >= 2:
        if len({(h.get("problems"), h.get("n"), h.get("temperature")) for _, h in he}) > 1:
            c.notes.append("HumanEval was run with different problems, n or temperature: "
                           + "; ".join(f"{name}: {h.get('problems')} problems, n {h.get('n')}, "
                                       f"T {h.get('temperature')}" for name, h in he))
        for i, e in enumerate(evals):
            for k, v in ((e.humaneval or {}).get("pass_at_k") or {}).items():
                c.pass_at_k.setdefault(k, [None] * len(evals))[i] = float(v)
    if not c.perplexity and not c.pass_at_k:
        raise InputError("nothing to compare: no two of these have perplexity or HumanEval "
                         "numbers")
    return c


def _same_documents(evals: list[Evaluated]) -> None:
    first = evals[0]
    for e in evals[1:]:
        a, b = first.perplexity or {}, e.perplexity or {}
        da, db = a.get("documents_sha256"), b.get("documents_sha256")
        if da is None or db is None:
            raise InputError(f"{first.name if da is None else e.name}: its perplexity record "
                             "does not say which documents it scored (made before "
                             "`documents_sha256` existed): evaluate it again")
        if da != db:
            raise InputError(
                f"{first.name} and {e.name} were scored on different documents "
                f"({a['all']['documents']} of the {a.get('split')} split of {a.get('data')} vs "
                f"{b['all']['documents']} of the {b.get('split')} split of {b.get('data')}): not "
                "comparable; evaluate both on the same data, split options and max_docs")


def as_json(c: Comparison) -> dict[str, Any]:
    def num(v: float | None) -> float | str | None:
        return v if v is None or math.isfinite(v) else str(v)

    return {"models": c.names,
            "perplexity": [{"group": g, "tokens": c.tokens[g], "perplexity": [num(v) for v in vs],
                            "ratio": [num(r) for r in ratios(vs)]}
                           for g, vs in c.perplexity.items()],
            "pass_at_k": dict(c.pass_at_k), "notes": c.notes}


def shown_groups(c: Comparison) -> list[str]:
    """The rows a table shows: every group, then `all`, unless one group is all there is
    (then its row is the total)."""
    groups = list(c.perplexity)
    return groups[:1] if len(groups) == 2 and groups[-1] == "all" else groups


def ratios(values: list[float | None]) -> list[float | None]:
    """Each value over the first (the baseline): below 1 is a lower perplexity."""
    base = values[0]
    if base is None or base == 0 or not math.isfinite(base):
        return [None for _ in values]
    return [None if v is None else v / base for v in values]
