"""What bench/train.py measures of a launch: wall and CPU time of the whole process tree
(sampled, so the steady steps' CPU can be read off on a busy machine), and the tokens/s
figures of a run's `train` events."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def sh(cmd: list[str], log: Path, env: dict[str, str] | None = None) -> float:
    """Run a command with its output in `log`; its wall time in seconds. A failure shows the
    end of the log."""
    return run(cmd, log, env)["wall"]


def run(cmd: list[str], log: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    """sh, with the CPU seconds (user + system) of the command and every process it waited
    for (the launcher's ranks), the load average before and after, and a sample every 0.25 s
    of (time, CPU seconds so far) of the process tree (psutil), to read the CPU time of the
    steady steps off: a figure a busy machine disturbs less than the wall clock."""
    import psutil

    load0, cpu0 = os.getloadavg()[0], _children_cpu()
    samples: list[tuple[float, float]] = []
    t0 = time.perf_counter()
    with log.open("w") as f:
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT,
                                env={**os.environ, **(env or {})})
        ps = psutil.Process(proc.pid)
        while proc.poll() is None:
            try:
                tree = [ps, *ps.children(recursive=True)]
                cpu = 0.0
                for p in tree:
                    with contextlib.suppress(psutil.Error):
                        c = p.cpu_times()
                        cpu += c.user + c.system
                samples.append((time.time(), cpu))
            except psutil.Error:
                pass
            time.sleep(0.25)
        rc = proc.wait()
    wall = time.perf_counter() - t0
    if rc:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
        sys.exit(f"error: {' '.join(cmd[:3])} … exited with {rc}; end of {log}:\n{tail}")
    return {"wall": wall, "cpu": _children_cpu() - cpu0, "load0": load0,
            "load1": os.getloadavg()[0], "samples": samples}


def steady_cpu(samples: list[tuple[float, float]], t_from: float, t_to: float) -> float:
    """CPU seconds of the process tree between two times (linear between samples)."""
    def at(t: float) -> float:
        for (ta, ca), (tb, cb) in itertools.pairwise(samples):
            if ta <= t <= tb:
                return ca + (cb - ca) * (t - ta) / max(tb - ta, 1e-9)
        return samples[-1][1] if t > samples[-1][0] else samples[0][1]
    return at(t_to) - at(t_from)


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def train_steps(path: Path) -> list[dict[str, Any]]:
    events = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [e for e in events if e.get("event") == "train"]


def figures(runs: list[dict[str, Any]], warmup: int) -> dict[str, Any]:
    """Median and mean tokens/s of the `train` events after the warmup steps, pooled over the
    rounds, each round's median, and the tokens per CPU-second of the same steps (from the
    end of the warmup's last step to the end of the last step: what evaluations and
    checkpoints in between cost is in it, on both sides alike)."""
    rounds = [train_steps(r["log"]) for r in runs]
    logs = [r["log"] for r in runs]
    timed = [[e for e in r if e["step"] > warmup] for r in rounds]
    if not all(timed):
        sys.exit(f"error: a run has no train steps after the warmup of {warmup}: {logs}")
    rates = [e["tokens_per_s"] for r in timed for e in r]
    cpu = [steady_cpu(run["samples"], r[warmup - 1]["time"], r[-1]["time"]) if warmup else None
           for run, r in zip(runs, rounds, strict=True)]
    tokens = [(r[-1]["tokens"] - r[warmup - 1]["tokens"]) if warmup else 0 for r in rounds]
    every = [e["tokens_per_s"] for r in rounds for e in r]
    return {"median": statistics.median(rates),
            "mean": len(rates) / sum(1 / r for r in rates),  # the same tokens every step
            "mean_all": len(every) / sum(1 / r for r in every),  # the first steps included
            "min": min(rates), "max": max(rates),
            "rounds": [statistics.median(e["tokens_per_s"] for e in r) for r in timed],
            "first": [r[0]["tokens_per_s"] for r in rounds],
            "loss": [(r[0]["loss"], r[-1]["loss"]) for r in rounds],
            "tokens_per_step": rounds[0][0]["tokens"] // rounds[0][0]["step"],
            "per_cpu_s": [t / c if c else None for t, c in zip(tokens, cpu, strict=True)]}
