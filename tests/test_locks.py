"""One writer per output: a second writer is refused with the holder named, a dead holder's lock
is taken over, and two `corpus run`s on one root never mix (issue 12, finding 2)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from corpus.lock import LOCK_FILE, LockError, writer_lock
from tests.conftest import QUERIES, ROOT, parquet_files, run_cli

#: A process that holds a lock until told otherwise; prints "held" once it has it, then
#: "lost: …" if the lock's lease is lost (gs://).
HOLDER = """
import sys, time
from corpus.lock import writer_lock
with writer_lock(sys.argv[1]) as lock:
    print("held", flush=True)
    while True:
        try:
            lock.check()
        except Exception as e:
            print("lost:", e, flush=True)
            break
        time.sleep(0.1)
"""


def hold(url: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, url], stdout=subprocess.PIPE,
                            text=True, cwd=ROOT, env={**os.environ, **(env or {})})
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_second_writer_is_refused_with_the_holder_named(tmp_path):
    out = tmp_path / "out"
    holder = hold(str(out))
    try:
        with pytest.raises(LockError) as e, writer_lock(str(out)):
            pass
        message = str(e.value)
        assert f"pid {holder.pid}" in message and "is being written by" in message
        assert "\n" not in message
    finally:
        holder.kill()  # SIGKILL: the kernel drops its lock; the file stays
        holder.wait()
    assert (out / LOCK_FILE).exists()
    with writer_lock(str(out)):  # a dead holder's lock is taken over
        info = json.loads((out / LOCK_FILE).read_text())
        assert info["pid"] == os.getpid()
        with writer_lock(str(out)):  # re-entrant within one process
            pass
    assert (out / LOCK_FILE).read_text() == ""  # released: no holder named


def test_a_locked_output_is_not_touched(tmp_path, site_tables):
    """The refused writer fails before it reads, clears or writes anything of the output."""
    out = tmp_path / "raw"
    res = run_cli("extract", "--tables", str(site_tables), "--query",
                  str(QUERIES / "github_python.sql"), "--out", str(out), "--workers", "1")
    assert res.returncode == 0, res.stderr
    before = parquet_files(out), (out / "manifest.json").read_text()
    holder = hold(str(out))
    try:
        res = run_cli("extract", "--tables", str(site_tables), "--query",
                      str(QUERIES / "github_python.sql"), "--param", "min_size=4096",
                      "--out", str(out), "--overwrite", "--workers", "1")
    finally:
        holder.kill()
        holder.wait()
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert f"is being written by pid {holder.pid}" in res.stderr
    assert (parquet_files(out), (out / "manifest.json").read_text()) == before


CONFIG = """
[pipeline]
output = "{out}"

[[stages]]
name = "tables"
kind = "github-tables"
site_packages = true
include = ["idna", "urllib3", "certifi", "click"]

[[stages]]
name = "python"
kind = "extract"
input = "tables"
query = "{queries}/github_python.sql"
partition_bytes = "64KiB"

[[stages]]
name = "filtered"
kind = "filter"
input = "python"
rules = [{{ rule = "line_max", max = {line_max} }}, {{ rule = "alpha_frac", min = 0.25 }}]

[[stages]]
name = "deduped"
kind = "dedup"
input = "filtered"
method = "exact"
"""


def _config(tmp_path: Path, name: str, out: Path, line_max: int) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(CONFIG.format(out=out, queries=QUERIES, line_max=line_max))
    return path


@pytest.mark.slow
@pytest.mark.parametrize("same", [True, False], ids=["same-config", "other-config"])
def test_two_runs_on_one_root_exactly_one_proceeds(tmp_path, same):
    root = tmp_path / "root"
    configs = [_config(tmp_path, "a", root, 1000), _config(tmp_path, "b", root,
                                                             1000 if same else 60)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-m", "corpus", "run", str(c), "--workers", "1",
                               "--quiet"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for c in configs]
    results = [(p, *p.communicate(timeout=600)) for p in procs]
    winners = [i for i, (p, _, _) in enumerate(results) if p.returncode == 0]
    assert len(winners) == 1, [r[2][-2000:] for r in results]
    (won, _, _), (lost, _, err) = results[winners[0]], results[1 - winners[0]]
    assert lost.returncode == 1 and "Traceback" not in err
    assert f"is being written by pid {won.pid}" in err, err
    assert err.count("error:") == 1

    clean = tmp_path / "clean"
    ref = _config(tmp_path, "ref", clean, 1000 if winners[0] == 0 or same else 60)
    res = run_cli("run", str(ref), "--workers", "1", "--quiet")
    assert res.returncode == 0, res.stderr
    assert parquet_files(root) == parquet_files(clean)
    for stage in ("tables", "python", "filtered", "deduped"):
        m = json.loads((root / stage / "manifest.json").read_text())
        c = json.loads((clean / stage / "manifest.json").read_text())
        assert m["complete"] and len(m["runs"]) == 1
        assert (m["fingerprint"], m["rows"], m["files"]) == (c["fingerprint"], c["rows"],
                                                            c["files"])


# --- gs:// -------------------------------------------------------------------------------
def test_gcs_lock_lease_takeover_and_loss(gcs):
    from tests.cloud import make_bucket

    url = f"gs://{make_bucket('locks')}/out-{os.getpid()}"
    short = {"CORPUS_LOCK_LEASE_S": "1.5"}
    holder = hold(url, short)
    try:
        with pytest.raises(LockError, match=f"pid {holder.pid}"), writer_lock(url):
            pass
        holder.send_signal(signal.SIGSTOP)  # a holder that stops renewing (hung, partitioned)
        time.sleep(2.0)  # its lease expires
        with writer_lock(url) as lock:  # taken over with a write conditional on that lease
            holder.send_signal(signal.SIGCONT)
            assert holder.stdout is not None
            line = holder.stdout.readline()  # its next renewal is refused: it stops
            assert line.startswith("lost:") and "another process took it over" in line
            lock.check()  # the new holder still holds it
    finally:
        holder.send_signal(signal.SIGCONT)
        holder.kill()
        holder.wait()
    from tests.cloud import gcs_fs

    assert not gcs_fs().exists(f"{url}/{LOCK_FILE}")  # released by its holder: deleted
