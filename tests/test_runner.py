"""The runner (corpus/runner.py) on its two executors: a global step's result survives a
SIGKILL and is reused, not recomputed, and the in-process and Dask executors write the same
bytes for a whole pipeline (issue 15, items 2 and 3)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from corpus import pipeline, registry, stage, stage_options
from corpus.dedup.exact import ExactOptions
from corpus.dedup.near import MinHashDedupJob, MinHashOptions
from corpus.engine import Engine
from corpus.errors import ConfigError
from corpus.io import MANIFEST, DatasetDir
from corpus.runner import result_file
from corpus.steps import GlobalStep, MapStep
from tests.conftest import QUERIES, ROOT, parquet_files, run_cli

MINHASH = ["--minhash", "--verify", "--threshold", "0.7", "--verify-memory", "64KiB"]


def manifest(d: Path) -> dict:
    return json.loads((d / MANIFEST).read_text())


def dedup_cmd(src: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "corpus", "dedup", str(src), str(out), *MINHASH,
            "--workers", "1", "--quiet", *extra]


def test_minhash_declares_typed_steps(python_docs, tmp_path):
    job = MinHashDedupJob(MinHashOptions(verify=True), DatasetDir(str(python_docs)),
                          DatasetDir(str(tmp_path / "out")))
    assert job.steps() == [MapStep("summarize"), GlobalStep("candidates"),
                           MapStep("scatter", uses=("candidates",)),
                           GlobalStep("resolve", uses=("candidates",))]


def test_unknown_executor_is_one_config_error(monkeypatch):
    monkeypatch.setenv("CORPUS_EXECUTOR", "threads")
    with pytest.raises(ConfigError, match="executor 'threads': one of dask, local"):
        Engine(progress=False)


def test_every_kind_is_declared_once_per_variant():
    """A config's kinds are the parsers' kinds; each runner kind's variants are told apart by
    their options class, and what a variant reads is what its job checks for."""
    assert set(pipeline.KINDS) == set(stage_options.PARSERS)
    for kind in registry.MODULES:
        variants = registry.declarations(kind)
        assert len({d.options for d in variants}) == len(variants), kind
        for d in variants:
            assert (d.make_job is None) != (d.run_stage is None), d.module
    assert registry.declaration("dedup", MinHashOptions()).writes == ("cluster_id",)
    assert registry.declaration("dedup", ExactOptions()).module == "corpus.dedup.exact"
    with pytest.raises(ConfigError, match="unknown stage kind 'sort'"):
        registry.declarations("sort")


def test_each_arrow_of_the_flow_is_one_module():
    """docs/concepts.md's table names, per arrow, the module that declares it: the file
    exists, the modules it names beside it exist, and every runner kind is in the table."""
    text = (ROOT / "docs" / "concepts.md").read_text()
    rows = [line.split("|")[1:4] for line in text.splitlines()
            if line.startswith("| ") and "`corpus/" in line]
    assert len(rows) >= 15
    named = set()
    for arrow, module, others in rows:
        path = ROOT / module.strip().strip("`")
        assert path.is_file(), (arrow, path)
        named.add(path.relative_to(ROOT).with_suffix("").as_posix().replace("/", "."))
        for other in re.findall(r"`([\w/]+\.py)`", others):
            assert (path.parent / other).is_file() or (ROOT / other).is_file(), (arrow, other)
    declared = {m for modules in registry.MODULES.values() for m in modules}
    assert declared <= named, declared - named


def test_a_job_is_the_declared_contract_only(tmp_path):
    """The runner asks a job only what the Job base declares: a bare subclass with keys and
    run_partition runs, its finish() keys reach the manifest."""
    import pyarrow as pa

    class Two(stage.Job):
        stage = "two"

        def __init__(self, out: DatasetDir):
            self.output, self.config = out, {"n": 2}

        def partitions(self, results):
            return ["a", "b"]

        def expected_rows_in(self):
            return 2

        def run_partition(self, key):
            t = pa.table({"id": [key], "content": [key * 3]})
            return stage.write_documents(self.output, key, t, t.schema, t.slice(0, 0))

        def finish(self, records):
            return {"finished_with": [r["key"] for r in records]}

    with Engine(progress=False, executor="local") as engine:
        m = engine.run(Two(DatasetDir(str(tmp_path / "two"))))
    assert (m["rows_in"], m["rows"], m["finished_with"]) == (2, 2, ["a", "b"])
    assert m["input"] is None and not hasattr(Two, "results")


def test_in_process_run_is_resumable_and_runs_setup_once(python_docs, tmp_path):
    """The local executor through the runner: MinHash's setup() ran once in this process,
    global results are kept under the fingerprint, and a second run is up to date."""
    out = DatasetDir(str(tmp_path / "out"))
    with Engine(progress=False, executor="local") as local:
        assert local.n_workers() == 1 and "in-process" in local.executor.describe()
        m = local.run(MinHashDedupJob(MinHashOptions(), DatasetDir(str(python_docs)), out))
        assert m["complete"] and m["runs"][0]["executor"] == "local"
        assert m["runs"][0]["global_steps"] == {"candidates": "computed",
                                                "resolve": "computed"}
        assert ("dedup-minhash", m["fingerprint"]) in stage._READY
        assert not out.exists("_work")  # kept results go with the scratch space
        again = local.run(MinHashDedupJob(MinHashOptions(), DatasetDir(str(python_docs)), out))
        assert again["runs"] == m["runs"]


@pytest.mark.slow
def test_killed_after_a_global_step_reuses_it(python_docs, tmp_path):
    """SIGKILL the moment MinHash's `candidates` result is kept; the re-run reuses it (the
    run record says so), computes only `resolve`, and writes the uninterrupted run's bytes."""
    ref, out = tmp_path / "ref", tmp_path / "out"
    res = subprocess.run(dedup_cmd(python_docs, ref), capture_output=True, text=True,
                         cwd=ROOT, timeout=600)
    assert res.returncode == 0, res.stderr
    first = manifest(ref)["runs"]
    assert [r["global_steps"] for r in first] == [{"candidates": "computed",
                                                   "resolve": "computed"}]

    kept = out / result_file("candidates")
    proc = subprocess.Popen(dedup_cmd(python_docs, out), cwd=ROOT, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 600
    while not kept.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    os.killpg(proc.pid, signal.SIGKILL)  # the command and its Dask workers, at once
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode() if proc.stderr \
        else ""
    assert kept.exists() and not manifest(out)["complete"]
    assert json.loads(kept.read_text())["fingerprint"] == manifest(out)["fingerprint"]

    res = subprocess.run(dedup_cmd(python_docs, out), capture_output=True, text=True,
                         cwd=ROOT, timeout=600)
    assert res.returncode == 0, res.stderr
    m = manifest(out)
    assert m["complete"] and len(m["runs"]) == 2
    rerun = m["runs"][-1]
    assert rerun["global_steps"] == {"candidates": "reused", "resolve": "computed"}
    assert rerun["summarize"]["computed"] == 0  # the map step before it: all markers kept
    def result(step: dict) -> dict:
        return {k: v for k, v in step.items() if k != "seconds"}

    assert result(rerun["candidates"]) == result(first[0]["candidates"])  # as computed then
    assert rerun["candidates"]["candidate_pairs"] > 0
    assert m["rows"] == manifest(ref)["rows"] and m["removed"] > 0
    assert parquet_files(out) == parquet_files(ref)
    assert not (out / "_work").exists()


PIPELINE = """
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
rules = [{{ rule = "line_mean", max = 30 }}]

[[stages]]
name = "deduped"
kind = "dedup"
input = "filtered"
method = "exact"

[[stages]]
name = "near-deduped"
kind = "dedup"
input = "deduped"
method = "minhash"
threshold = 0.7
verify = true
verify_memory = "64KiB"
"""


@pytest.mark.slow
def test_local_and_dask_executors_write_identical_pipelines(tmp_path):
    """The same config on the in-process executor and on a two-worker LocalCluster: every
    stage's Parquet files are byte-identical."""
    outputs = {}
    for executor, extra in (("local", []), ("dask", ["--workers", "2"])):
        out = tmp_path / executor
        config = tmp_path / f"{executor}.toml"
        config.write_text(PIPELINE.format(out=out, queries=QUERIES))
        res = run_cli("run", str(config), "--executor", executor, "--quiet", *extra,
                      timeout=900)
        assert res.returncode == 0, res.stderr[-3000:]
        outputs[executor] = out
    stages = ["tables", "python", "filtered", "deduped", "near-deduped"]
    for name in stages:
        local, dask = outputs["local"] / name, outputs["dask"] / name
        m = manifest(local)
        assert m["complete"] and m["runs"][-1]["executor"] == "local"
        assert manifest(dask)["runs"][-1]["executor"] == "dask"
        assert m["rows"] == manifest(dask)["rows"]
        files = parquet_files(local)
        assert files, name
        assert files == parquet_files(dask), name
    assert manifest(outputs["local"] / "python")["partitions_total"] > 1
    assert manifest(outputs["local"] / "near-deduped")["runs"][-1]["global_steps"] == {
        "candidates": "computed", "resolve": "computed"}
