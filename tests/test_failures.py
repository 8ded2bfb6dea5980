"""Every failure is one `error:` line and a non-zero status, the traceback in a log file the line
names, nothing unbounded (issue 12, findings 5 and 8): worker exceptions, a corrupt data page,
a full disk, Ctrl-C and SIGTERM, a --scheduler that is not one, a cluster without workers."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import string
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from corpus.io import DatasetDir
from corpus.stage import Job
from tests.conftest import QUERIES, ROOT, run_cli

DASK = str(Path(sys.executable).parent / "dask")


def one_line_error(res: subprocess.CompletedProcess[str], status: int = 1) -> str:
    """The command failed with `status` and said so in exactly one line, no traceback."""
    assert res.returncode == status, (res.returncode, res.stderr[-3000:])
    assert "Traceback" not in res.stderr and "Traceback" not in res.stdout, res.stderr
    errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, res.stderr
    return errors[0]


def logged(line: str) -> str:
    """The log file an error line names (it exists and holds the traceback)."""
    m = re.search(r"\(details: (.+\.log)\)$", line)
    assert m, line
    text = Path(m.group(1)).read_text()
    assert "Traceback" in text
    return text


@pytest.fixture
def logs(tmp_path, monkeypatch) -> Path:
    d = tmp_path / "logs"
    monkeypatch.setenv("CORPUS_LOG_DIR", str(d))
    return d


def test_corrupt_data_page_is_one_line(python_docs, tmp_path, logs):
    src = tmp_path / "docs"
    shutil.copytree(python_docs, src)
    key = json.loads((src / "manifest.json").read_text())["partitions"][0]["key"]
    part = src / "data" / f"{key}.parquet"
    meta = pq.ParquetFile(part).metadata
    col = meta.row_group(0).column(meta.schema.names.index("content"))
    start = col.data_page_offset + 64  # inside the first data page of `content`, not a header
    data = bytearray(part.read_bytes())
    data[start:start + 4096] = os.urandom(4096)
    part.write_bytes(bytes(data))
    # the footer and the sizes are intact: only reading the page finds it
    res = run_cli("scrub", str(src), str(tmp_path / "out"), "--workers", "1", "--quiet",
                  env={"CORPUS_LOG_DIR": str(logs)})
    line = one_line_error(res)
    assert f"scrub partition {key}" in line or f"{key}.parquet" in line, line


class RaisesWithText(Job):
    """A broken stage whose exception quotes the document (as a library error may)."""
    stage = "raises"

    def __init__(self, source: str, output: DatasetDir):
        self.source, self.output = source, output
        self.config: dict = {}

    def partitions(self, results=None):
        return DatasetDir(self.source).partition_keys()[:1]

    def expected_rows_in(self):
        return None

    def run_partition(self, key):
        d = DatasetDir(self.source)
        t = d.read_parquet(d.part_file(key), columns=["content"])
        raise ValueError(f"cannot handle {t.column('content')[0].as_py()[:200]!r}")


def test_worker_exception_is_one_redacted_line_and_a_redacted_log(engine, python_docs,
                                                                     tmp_path, logs):
    import cloudpickle

    from corpus.failure import StageFailure, one_line

    src = tmp_path / "docs"
    shutil.copytree(python_docs, src)
    key = DatasetDir(str(src)).partition_keys()[0]
    t = pq.read_table(src / "data" / f"{key}.parquet")
    # an AWS access key id, made up now (base32, as real ones are)
    secret = "AKIA" + "".join(random.SystemRandom().choices(string.ascii_uppercase + "234567",
                                                            k=16))
    content = t.column("content").to_pylist()
    content[0] = f"aws_access_key_id = '{secret}'\n" + content[0]
    import pyarrow as pa

    t = t.set_column(t.schema.get_field_index("content"), "content",
                     pa.array(content, pa.large_string()))
    pq.write_table(t, src / "data" / f"{key}.parquet")
    os.remove(src / "manifest.json")  # a plain folder of Parquet files now
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    try:
        with pytest.raises(StageFailure) as e:
            engine.run(RaisesWithText(str(src), DatasetDir(str(tmp_path / "out"))))
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    assert f"raises partition {key} failed: ValueError" in str(e.value)
    assert secret in str(e.value)  # the raw exception quotes it…
    line, status = one_line(e.value)
    assert status == 1 and "\n" not in line
    assert secret not in line and "<AWS_ACCESS_KEY>" in line  # …the user never sees it
    log = logged(line)
    assert secret not in log and "run_partition" in log  # the worker's own traceback


def test_full_disk_is_one_line(site_tables, tmp_path, logs):
    small = tmp_path / "small"
    small.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=400k", "tmpfs", str(small)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"no tmpfs to fill here (needs root): {mounted.stderr.strip()}")
    try:
        res = run_cli("extract", "--tables", str(site_tables), "--query",
                      str(QUERIES / "github_python.sql"), "--out", str(small / "raw"),
                      "--partition-size", "64KiB", "--workers", "2", "--quiet",
                      env={"CORPUS_LOG_DIR": str(logs)})
        line = one_line_error(res)
        assert "no space left on device writing" in line and str(small / "raw") in line
        logged(line)
        m = DatasetDir(str(small / "raw")).manifest()
        assert m is None or not m["complete"]
    finally:
        subprocess.run(["umount", "-l", str(small)], check=False)


def _killed(args: list[str], sig: int, group: bool, after: Path, env: dict[str, str]
            ) -> subprocess.CompletedProcess[str]:
    """Start a command as a user's shell would (SIGINT at its default, a process group of its
    own), signal it once `after` exists, collect what it printed."""
    proc = subprocess.Popen([sys.executable, "-m", "corpus", *args], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True, env={**os.environ, **env},
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while not after.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None, "finished before it could be signalled"
    (os.killpg if group else os.kill)(proc.pid, sig)
    out, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "group", "status"), [
    (signal.SIGINT, True, 130), (signal.SIGTERM, False, 143), (signal.SIGTERM, True, 143)],
    ids=["ctrl-c-to-the-group", "sigterm", "sigterm-to-the-group"])
def test_signals_end_with_one_line_and_resume(site_tables, tmp_path, logs, sig, group, status):
    out = tmp_path / "raw"
    args = ["extract", "--tables", str(site_tables), "--query",
            str(QUERIES / "github_python.sql"), "--out", str(out), "--partition-size", "32KiB",
            "--workers", "2", "--quiet"]
    res = _killed(args, sig, group, out / "_done", {"CORPUS_LOG_DIR": str(logs)})
    line = one_line_error(res, status)
    assert ("interrupted (SIGINT)" if sig == signal.SIGINT else "terminated by SIGTERM") in line
    assert len(res.stderr.strip().splitlines()) <= 2, res.stderr  # the cluster line + the error
    res = run_cli(*args)
    assert res.returncode == 0, res.stderr
    m = json.loads((out / "manifest.json").read_text())
    assert m["complete"] and m["runs"][-1]["reused"], "finished partitions were kept"


def test_scheduler_that_is_not_one(tmp_path):
    import http.server
    import threading

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        t0 = time.monotonic()
        res = run_cli("github-tables", "--site-packages", "--include", "idna", "--out",
                      str(tmp_path / "t"), "--scheduler",
                      f"tcp://127.0.0.1:{server.server_address[1]}",
                      env={"CORPUS_CONNECT_TIMEOUT_S": "3"}, timeout=120)
        elapsed = time.monotonic() - t0
    finally:
        server.shutdown()
    line = one_line_error(res)
    assert "no Dask scheduler at tcp://127.0.0.1:" in line and elapsed < 60
    assert not (tmp_path / "t").exists()


@pytest.mark.slow
def test_a_cluster_without_workers_is_an_error_not_a_wait(tmp_path):
    sched_file = tmp_path / "scheduler.json"
    proc = subprocess.Popen([DASK, "scheduler", "--host", "127.0.0.1", "--port", "0",
                             "--no-dashboard", "--scheduler-file", str(sched_file)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 60
        while not (sched_file.exists() and "address" in sched_file.read_text()):
            assert time.monotonic() < deadline, "no scheduler"
            time.sleep(0.1)
        address = json.loads(sched_file.read_text())["address"]
        res = run_cli("github-tables", "--site-packages", "--include", "idna", "--out",
                      str(tmp_path / "t"), "--scheduler", address,
                      env={"CORPUS_NO_WORKERS_TIMEOUT_S": "4"}, timeout=120)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    line = one_line_error(res)
    assert "no Dask worker has been connected" in line
