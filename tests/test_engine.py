"""The engine on real clusters: a LocalCluster and a hand-started `dask scheduler` + workers
give identical output; a stage killed half-way resumes to byte-identical output without
recomputing finished partitions; lost rows fail the stage."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cloudpickle
import psutil
import pytest

from corpus.errors import InvariantError
from corpus.io import DatasetDir
from corpus.stage import Job, write_documents
from tests.conftest import DISTS, QUERIES, parquet_files, run_cli

DASK = str(Path(sys.executable).parent / "dask")


def wait_for(predicate, timeout: float, what: str, poll: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(poll)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def external_cluster(tmp_path_factory):
    """`dask scheduler` and two `dask worker` processes on 127.0.0.1, started by hand."""
    d = tmp_path_factory.mktemp("cluster")
    sched_file = d / "scheduler.json"
    procs = [subprocess.Popen([DASK, "scheduler", "--host", "127.0.0.1", "--port", "0",
                               "--no-dashboard", "--scheduler-file", str(sched_file)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=d)]
    try:
        wait_for(sched_file.exists, 60, "the scheduler")
        wait_for(lambda: "address" in sched_file.read_text(), 10, "the scheduler file")
        address = json.loads(sched_file.read_text())["address"]
        for _ in range(2):
            procs.append(subprocess.Popen(
                [DASK, "worker", address, "--nthreads", "1", "--nworkers", "1",
                 "--host", "127.0.0.1", "--no-dashboard"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=d))
        from distributed import Client

        with Client(address) as c:
            c.wait_for_workers(2, timeout=90)
        yield address, procs
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()


PIPELINE = """
[pipeline]
output = "unused"

[[stages]]
name = "tables"
kind = "github-tables"
site_packages = true
include = {dists}
chunk_bytes = "1MiB"

[[stages]]
name = "python"
kind = "extract"
input = "tables"
query = "{queries}/github_python.sql"
partition_bytes = "512KiB"

[[stages]]
name = "multilang"
kind = "extract"
input = "tables"
query = "{queries}/github_multilang.sql"
partition_bytes = "1MiB"
"""


@pytest.mark.slow
def test_local_and_external_cluster_give_identical_output(external_cluster, tmp_path):
    address, _ = external_cluster
    config = tmp_path / "p.toml"
    config.write_text(PIPELINE.format(dists=json.dumps(DISTS), queries=QUERIES))
    local, remote = tmp_path / "local", tmp_path / "remote"
    r1 = run_cli("run", str(config), "--output", str(local), "--workers", "2", "--quiet")
    assert r1.returncode == 0, r1.stderr
    r2 = run_cli("run", str(config), "--output", str(remote), "--scheduler", address, "--quiet")
    assert r2.returncode == 0, r2.stderr
    a, b = parquet_files(local), parquet_files(remote)
    assert len([k for k in a if k.startswith("python/data/part-")]) >= 4
    assert a == b
    m = json.loads((remote / "python" / "manifest.json").read_text())
    assert m["runs"][-1]["scheduler"] == address and m["runs"][-1]["workers"] == 2
    assert m["fingerprint"] == json.loads((local / "python/manifest.json").read_text())[
        "fingerprint"]


def extract_cmd(tables: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "corpus", "extract", "--tables", str(tables), "--query",
            str(QUERIES / "github_python.sql"), "--out", str(out), "--partition-size", "96KiB",
            "--quiet", *extra]


@pytest.mark.slow
def test_killed_stage_resumes_byte_identical(site_tables, tmp_path, engine):
    ref, out = tmp_path / "ref", tmp_path / "killed"
    res = subprocess.run(extract_cmd(site_tables, ref, "--workers", "2"), capture_output=True,
                         text=True)
    assert res.returncode == 0, res.stderr
    total = json.loads((ref / "manifest.json").read_text())["partitions_total"]
    assert total >= 20

    # SIGKILL the whole stage (client and worker processes) once a few partitions are done
    proc = subprocess.Popen(extract_cmd(site_tables, out, "--workers", "1"),
                            start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    markers = out / "_done"
    wait_for(lambda: proc.poll() is not None
             or (markers.exists() and len(list(markers.glob("*.json"))) >= 3), 120,
             "three finished partitions")
    assert proc.poll() is None, "the stage ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = {p.stem for p in markers.glob("*.json")}
    assert len(finished) < total, "the stage finished before it could be killed"
    before = json.loads((out / "manifest.json").read_text())
    assert not before["complete"]

    res = subprocess.run(extract_cmd(site_tables, out, "--workers", "2"), capture_output=True,
                         text=True)
    assert res.returncode == 0, res.stderr
    assert parquet_files(out) == parquet_files(ref)
    m = json.loads((out / "manifest.json").read_text())
    assert m["complete"] and len(m["runs"]) == 2
    first, second = m["runs"]
    assert set(second["reused"]) == finished
    assert set(second["computed"]) == {p["key"] for p in m["partitions"]} - finished
    for p in m["partitions"]:
        assert p["run"] == (first["id"] if p["key"] in finished else second["id"])
    assert not (out / "_done").exists()
    assert not [p for p in out.rglob("*") if ".tmp-" in p.name]


@pytest.mark.slow
def test_worker_killed_mid_stage_is_retried(site_tables, tmp_path, external_cluster):
    address, procs = external_cluster
    ref, out = tmp_path / "ref", tmp_path / "out"
    assert subprocess.run(extract_cmd(site_tables, ref, "--workers", "2"),
                          capture_output=True).returncode == 0
    proc = subprocess.Popen(extract_cmd(site_tables, out, "--scheduler", address),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: proc.poll() is not None
             or ((out / "_done").exists() and len(list((out / "_done").glob("*"))) >= 2),
             120, "two finished partitions")
    assert proc.poll() is None, "the stage ended before a worker could be killed"
    nanny = psutil.Process(procs[1].pid)
    for child in nanny.children(recursive=True):  # the worker process under its nanny
        child.send_signal(signal.SIGKILL)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert parquet_files(out) == parquet_files(ref)


class LosesARow(Job):
    """A broken stage: reads a partition and silently drops its last row."""
    stage = "loses-a-row"

    def __init__(self, source: str, output: DatasetDir):
        self.source, self.output = source, output
        self.config: dict = {}

    def partitions(self, results=None):
        return DatasetDir(self.source).partition_keys()

    def expected_rows_in(self):
        return None

    def run_partition(self, key):
        d = DatasetDir(self.source)
        t = d.read_parquet(d.part_file(key))
        rec = write_documents(self.output, key, t.slice(0, t.num_rows - 1), t.schema)
        rec["rows_in"] = t.num_rows
        return rec


def test_lost_rows_fail_the_stage(engine, site_tables, tmp_path):
    from corpus.extract.duckdb_job import ExtractJob, ExtractOptions

    src = tmp_path / "src"
    engine.run(ExtractJob(ExtractOptions(str(QUERIES / "github_python.sql"), str(site_tables),
                                         partition_bytes=4 << 20), DatasetDir(str(src))))
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    try:
        with pytest.raises(InvariantError, match=r"lost rows .* partition part-00000"):
            engine.run(LosesARow(str(src), DatasetDir(str(tmp_path / "broken"))))
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    m = DatasetDir(str(tmp_path / "broken")).manifest()
    assert m is not None and not m["complete"], "a failed stage must not look finished"


def test_refuses_foreign_or_stale_output(engine, site_tables, tmp_path):
    from corpus.errors import ConfigError
    from corpus.extract.duckdb_job import ExtractJob, ExtractOptions

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    opts = ExtractOptions(str(QUERIES / "github_python.sql"), str(site_tables))
    with pytest.raises(ConfigError, match="not empty and holds no manifest"):
        engine.run(ExtractJob(opts, DatasetDir(str(foreign))))
    assert (foreign / "notes.txt").read_text() == "mine"
    out = DatasetDir(str(tmp_path / "out"))
    engine.run(ExtractJob(opts, out))
    other = ExtractOptions(str(QUERIES / "github_python.sql"), str(site_tables),
                           params={"min_size": 5000})
    with pytest.raises(ConfigError, match="another 'extract' run"):
        engine.run(ExtractJob(other, out))
    m = engine.run(ExtractJob(other, out), overwrite=True)
    assert m["config"]["params"]["min_size"] == 5000


def test_json_log_format_for_batch_jobs(python_docs, tmp_path):
    """--log-format json: every stderr line is a JSON object; progress carries documents/s and
    the ETA, and the stage's result equals its manifest."""
    out = tmp_path / "filtered"
    r = run_cli("filter", str(python_docs), str(out), "--pipeline", "pipelines/codeparrot.toml",
                "--workers", "1", "--log-format", "json")
    assert r.returncode == 0, r.stderr
    events = [json.loads(line) for line in r.stderr.splitlines() if line.strip()]
    kinds = [e["event"] for e in events]
    assert kinds[0] == "cluster" and events[0]["scheduler"] == "local"
    progress = [e for e in events if e["event"] == "progress"]
    assert progress and progress[-1]["done"] == progress[-1]["total"]
    assert progress[-1]["docs_per_s"] > 0 and progress[-1]["eta_s"] is not None
    done = next(e for e in events if e["event"] == "stage-done")
    m = json.loads((out / "manifest.json").read_text())
    assert (done["rows_in"], done["rows"], done["removed"]) == (m["rows_in"], m["rows"],
                                                                m["removed"])
    assert "━" not in r.stderr  # no bars
