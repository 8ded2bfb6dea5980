"""The shell snippets of README.md and docs/*.md: each one runs, or says why it cannot.

Convention. In README.md and docs/*.md, every fenced code block whose info string is `sh`,
`bash` or `console` is a *snippet*. A snippet is run by the tests unless the line right before
its opening fence is an HTML comment

    <!-- not run: REASON -->

where REASON says why it cannot run here: it needs a GCP project, a GPU, a cluster of machines,
a Hub token, an interactive login or a network, it is the install itself, ... Other blocks
(```python, ```toml, a plain ```) are never run.

A runnable snippet is written to run
- from the repository root of a clone in which `make demo` has just finished: `out/demo/<stage>/`
  exist and `.venv/bin` is first on PATH, so `corpus` (and `python`, `dask`) are the venv's;
- in a fresh `bash -euo pipefail -c TEXT`, within 120 s, with no network;
- writing only under `out/` (its own outputs under `out/docs/`), and twice in a row: a command
  that refuses an existing output gets `--overwrite`.
The snippets of one file run in order, top to bottom, so a snippet may read what an earlier
snippet of the same file wrote; two files run side by side, so a page writes its own outputs
(`out/docs/<page>/`, README.md's directly under `out/docs/`) and never reads another page's.

`test_every_snippet_runs_or_says_why_not` checks the markers and runs nothing. `run_snippets`
runs the runnable snippets; the newcomer-path test calls it after `make demo`. To run them by
hand from the repository root: `PATH=.venv/bin:$PATH .venv/bin/python -m tests.test_docs`.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: Info strings (the first word after the opening fence) that make a block a snippet.
SHELLS = frozenset({"sh", "bash", "console"})
#: Seconds one snippet may take.
TIMEOUT_S = 120.0
#: Doc files whose snippets run side by side (2 cores: the snippets are mostly process starts).
PARALLEL = 2

_FENCE = re.compile(r"^(?P<indent> *)(?P<fence>`{3,}|~{3,})\s*(?P<info>[^\s`]*)")
_MARKER = re.compile(r"^\s*<!--\s*not[ -]run\b\s*:?(?P<reason>.*?)-->\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Snippet:
    """One shell block of the docs: where it is, its text, and why it is not run (if so)."""

    file: Path  # relative to the repository root
    line: int  # 1-based line of the opening fence
    text: str
    not_run: str | None  # the marker's reason ("" for a marker without one); None: run it

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


def doc_files(root: Path) -> list[Path]:
    """README.md, then docs/*.md by name."""
    return [p for p in [root / "README.md", *sorted((root / "docs").glob("*.md"))] if p.is_file()]


def _parse(path: Path, root: Path) -> tuple[list[Snippet], list[int]]:
    """The snippets of one Markdown file, and the lines of `not run` markers that are not
    right before a snippet's opening fence (a marker that would be silently ignored)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    rel = path.relative_to(root)
    found: list[Snippet] = []
    markers: dict[int, str] = {}  # 0-based line -> reason, outside code blocks
    used: set[int] = set()
    i = 0
    while i < len(lines):
        if m := _MARKER.match(lines[i]):
            markers[i] = m.group("reason").strip()
        opening = _FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        fence, indent = opening.group("fence"), len(opening.group("indent"))
        closing = re.compile(rf"^ *{re.escape(fence[0])}{{{len(fence)},}}\s*$")
        body: list[str] = []
        j = i + 1
        while j < len(lines) and not closing.match(lines[j]):
            line = lines[j]
            body.append(line[min(indent, len(line) - len(line.lstrip(" "))):])
            j += 1
        if opening.group("info").lower() in SHELLS:
            reason = markers.get(i - 1)
            if reason is not None:
                used.add(i - 1)
            found.append(Snippet(rel, i + 1, "\n".join(body) + "\n", reason))
        i = j + 1
    return found, sorted(k + 1 for k in markers if k not in used)


def snippets(root: Path) -> list[Snippet]:
    """Every snippet of README.md and docs/*.md, in the order they run."""
    return [s for p in doc_files(root) for s in _parse(p, root)[0]]


def test_every_snippet_runs_or_says_why_not() -> None:
    found = snippets(ROOT)
    assert found, "no shell snippets found in README.md and docs/*.md"
    empty = [s.where for s in found if s.not_run is not None and not s.not_run]
    assert not empty, ("snippets marked `not run` without a reason (write "
                       f"`<!-- not run: REASON -->`): {', '.join(empty)}")
    stray = [f"{p.relative_to(ROOT)}:{n}" for p in doc_files(ROOT) for n in _parse(p, ROOT)[1]]
    assert not stray, ("`not run` markers that are not on the line right before a sh/bash/"
                       f"console fence, so they mark nothing: {', '.join(stray)}")


def run_snippet(s: Snippet, root: Path, env: dict[str, str],
                timeout: float = TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    """Run one snippet with `bash -euo pipefail -c TEXT` in root; a snippet that runs past
    `timeout` is killed with everything it started and gets returncode 124."""
    args = ["bash", "-euo", "pipefail", "-c", s.text]
    p = subprocess.Popen(args, cwd=root, env=env, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True)  # its own process group, killed as one
    try:
        stdout, stderr = p.communicate(timeout=timeout)
        returncode = p.returncode
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        stdout, stderr = p.communicate()
        stderr += f"\n{s.where}: timed out after {timeout:g} s"
        returncode = 124
    finally:
        with contextlib.suppress(ProcessLookupError):  # what it left in the background
            os.killpg(p.pid, signal.SIGKILL)
    return subprocess.CompletedProcess(args, returncode, stdout, stderr)


def run_snippets(root: Path, env: dict[str, str], parallel: int = PARALLEL,
                 ) -> list[tuple[Snippet, subprocess.CompletedProcess[str]]]:
    """Run every runnable snippet of root's README.md and docs/*.md; env is the whole
    environment (the caller puts `.venv/bin` first on PATH). The snippets of one file run in
    order; `parallel` files run side by side, the longest text first (their outputs are disjoint:
    out/docs/<page>/). Results come back in document order."""
    by_file: dict[Path, list[Snippet]] = {}
    for s in snippets(root):
        if s.not_run is None:
            by_file.setdefault(s.file, []).append(s)

    def run_file(group: list[Snippet]) -> list[tuple[Snippet, subprocess.CompletedProcess[str]]]:
        return [(s, run_snippet(s, root, env)) for s in group]

    groups = sorted(by_file.values(), key=lambda g: -sum(len(s.text) for s in g))
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        done = [r for rs in pool.map(run_file, groups) for r in rs]
    order = {s: i for i, s in enumerate(s for g in by_file.values() for s in g)}
    return sorted(done, key=lambda r: order[r[0]])


def main() -> int:
    """Run the snippets from the current directory and print one line each, failures in full."""
    root, env, failed = Path.cwd(), dict(os.environ), 0
    t_all = time.perf_counter()
    for s in snippets(root):
        if s.not_run is not None:
            print(f"-       {s.where}  not run: {s.not_run}")
            continue
        t0 = time.perf_counter()
        res = run_snippet(s, root, env)
        print(f"rc={res.returncode:<3} {s.where}  {time.perf_counter() - t0:.1f} s", flush=True)
        if res.returncode:
            failed += 1
            print(f"--- stdout\n{res.stdout[-3000:]}--- stderr\n{res.stderr[-3000:]}---")
    print(f"{failed} failed; {time.perf_counter() - t_all:.1f} s in all")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
