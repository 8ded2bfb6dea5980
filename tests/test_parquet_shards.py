"""`corpus shard --format parquet` on the engine: a run killed at several moments resumes to the
bytes of a clean run, reusing its finished shards; the shards do not depend on the input's
partitioning (0-row partitions included); they are cut at exact document boundaries, hold each
split's documents in input order and every input row once; a finished output is up to date."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from corpus.errors import ConfigError, InputError, SchemaError
from corpus.io import DatasetDir
from corpus.keys import validation_mask
from corpus.publish.layout import LayoutOptions, build
from corpus.publish.shards import ParquetShardOptions, parquet_shards
from corpus.splits import SplitRule
from corpus.units import parse_size
from tests.conftest import ROOT, parquet_files, run_cli

SHARD = "64KB"  # small: the real Python files make many shards, so a kill lands mid-run
FRACTION = 0.05


def _input(path: Path) -> pa.Table:
    """The documents of a dataset directory (data/) or of a bare folder of Parquet files."""
    return pq.read_table(sorted(path.glob("data/part-*.parquet")) or
                         sorted(path.glob("part-*.parquet")))


def _shards(engine, src: Path, out: Path, fraction: float = FRACTION,
            shard: str = SHARD) -> dict:
    return parquet_shards(engine, DatasetDir(str(src)), DatasetDir(str(out)),
                          ParquetShardOptions(fraction, parse_size(shard)))


def _split(out: Path, split: str) -> list[Path]:
    return sorted((out / "data").glob(f"{split}-*.parquet"))


@pytest.fixture(scope="module")
def reference(engine, python_docs, tmp_path_factory) -> Path:
    """An uninterrupted run over the real Python files (2 workers)."""
    out = tmp_path_factory.mktemp("parquet-shards") / "ref"
    _shards(engine, python_docs, out)
    return out


def test_shards_cut_at_document_boundaries_in_input_order(reference, python_docs):
    src = _input(python_docs)
    valid = validation_mask(src, FRACTION)
    m = json.loads((reference / "manifest.json").read_text())
    target = parse_size(SHARD)
    assert m["complete"] and m["rows_in"] == m["rows"] == src.num_rows and m["removed"] == 0
    for name, mask in (("train", ~valid), ("validation", valid)):
        files = _split(reference, name)
        n = len(files)
        assert n > 1 and [f.name for f in files] == [
            f"{name}-{i:05d}-of-{n:05d}.parquet" for i in range(n)]
        assert m["parquet"]["splits"][name]["files"] == [f"data/{f.name}" for f in files]
        tables = [pq.read_table(f) for f in files]
        # the split's documents, every one once, in the input's order
        got = pa.concat_tables(tables)
        assert got.column("id").to_pylist() == src.filter(pa.array(mask)).column(
            "id").to_pylist()
        assert got.schema.remove_metadata() == src.schema.remove_metadata()
        for i, t in enumerate(tables):  # a shard ends at the first document reaching target
            sizes = pc.fill_null(pc.binary_length(t.column("content")), 0).to_numpy()
            assert sizes[:-1].sum() < target
            assert i == n - 1 or sizes.sum() >= target


def test_independent_of_partitioning_with_empty_partitions(engine, python_docs, reference,
                                                           tmp_path):
    src = _input(python_docs)
    one, holes = tmp_path / "one", tmp_path / "holes"
    one.mkdir()
    holes.mkdir()
    pq.write_table(src, one / "part-00000.parquet")
    third = src.num_rows // 3
    pieces = [src.slice(0, 0), src.slice(0, third), src.slice(third, 0),
              src.slice(third), src.slice(0, 0)]
    for i, piece in enumerate(pieces):
        pq.write_table(piece, holes / f"part-{i:05d}.parquet", row_group_size=500)
    want = parquet_files(reference)
    for d in (one, holes):
        _shards(engine, d, tmp_path / f"{d.name}-out")
        assert parquet_files(tmp_path / f"{d.name}-out") == want, d.name


def _shard_cmd(src: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "corpus", "shard", str(src), str(out), "--format", "parquet",
            "--shard-size", SHARD, "--valid-fraction", str(FRACTION), "--quiet", *extra]


def _markers(d: Path) -> set[str]:
    return {p.stem for p in d.glob("*.json")} if d.exists() else set()


def _run_until(cmd: list[str], ready, what: str) -> None:
    """Start the command, SIGKILL its whole process group (client and workers) once `ready()`."""
    proc = subprocess.Popen(cmd, cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while proc.poll() is None and not ready():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)
    assert proc.poll() is None, f"the run ended before {what}"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


@pytest.mark.slow
def test_killed_at_several_moments_resumes_byte_identical(python_docs, reference, tmp_path):
    out = tmp_path / "killed"
    scans, shards = out / "_work" / "scan" / "_done", out / "_done"
    total = len(json.loads((reference / "manifest.json").read_text())["partitions"])
    assert total >= 20
    cmd = _shard_cmd(python_docs, out, "--workers", "1")
    _run_until(cmd, lambda: bool(_markers(scans)), "the first scanned partition")
    _run_until(cmd, lambda: bool(_markers(shards)), "the first finished shard")
    _run_until(cmd, lambda: len(_markers(shards)) >= total // 2, "half of the shards")
    finished = _markers(shards)
    assert 0 < len(finished) < total
    assert not json.loads((out / "manifest.json").read_text())["complete"]

    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert parquet_files(out) == parquet_files(reference)
    assert (out / "_layout.json").read_bytes() == (reference / "_layout.json").read_bytes()
    m = json.loads((out / "manifest.json").read_text())
    assert m["complete"] and len(m["runs"]) == 4
    last = m["runs"][-1]
    assert set(last["reused"]) == finished
    assert set(last["computed"]) == {p["key"] for p in m["partitions"]} - finished
    assert last["scan"]["computed"] == 0  # every partition was scanned by the killed runs
    assert not (out / "_done").exists() and not (out / "_work").exists()
    assert not [p for p in out.rglob("*") if ".tmp-" in p.name]


def test_second_run_is_up_to_date(python_docs, tmp_path):
    out = tmp_path / "pq"
    first = run_cli(*_shard_cmd(python_docs, out, "--workers", "1")[3:])
    assert first.returncode == 0, first.stderr
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*.parquet")}
    second = run_cli(*_shard_cmd(python_docs, out, "--workers", "1")[3:])
    assert second.returncode == 0, second.stderr
    assert "up to date" in second.stderr, second.stderr
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.parquet")} == stamps
    assert second.stdout.splitlines()[0] == first.stdout.splitlines()[0]  # the same summary
    assert "train:" in first.stdout and "validation:" in first.stdout


def _tiny(d: Path, n: int = 5) -> Path:
    d.mkdir()
    texts = [f"x = {i}\n" * (i + 1) for i in range(n)]
    pq.write_table(pa.table({
        "id": pa.array([f"{i:040x}" for i in range(n)], pa.large_string()),
        "repo_name": pa.array(["r/x"] * n, pa.large_string()),
        "path": pa.array([f"f{i}.py" for i in range(n)], pa.large_string()),
        "content": pa.array(texts, pa.large_string())}), d / "part-00000.parquet")
    return d


def test_empty_validation_split_gives_a_train_split_only(engine, tmp_path):
    src = _tiny(tmp_path / "src")
    assert not validation_mask(_input(src), 1e-6).any()
    m = _shards(engine, src, tmp_path / "o", fraction=1e-6, shard="1MB")
    assert set(m["parquet"]["splits"]) == {"train"} and m["rows"] == 5
    assert [p.name for p in (tmp_path / "o" / "data").iterdir()] == [
        "train-00000-of-00001.parquet"]
    assert "validation: no document fell in it" in m["summary"]
    none = _shards(engine, src, tmp_path / "none", fraction=0, shard="1MB")
    assert set(none["parquet"]["splits"]) == {"train"} and "validation" not in none["summary"]
    # push follows the same rule: an empty split is absent there too
    layout = build(str(src), str(tmp_path / "stage"), LayoutOptions(SplitRule(1e-6)))
    assert set(layout.splits) == {"train"} and layout.rows_in == 5


def test_no_documents_is_one_clear_error(tmp_path):
    src = tmp_path / "empty"
    src.mkdir()
    schema = pa.schema([("id", pa.large_string()), ("content", pa.large_string())])
    for i in range(2):
        pq.write_table(schema.empty_table(), src / f"part-{i:05d}.parquet")
    r = run_cli("shard", str(src), str(tmp_path / "o"), "--format", "parquet", "--workers", "1")
    assert r.returncode == 1 and "holds no documents" in r.stderr
    assert "Traceback" not in r.stderr
    with pytest.raises(InputError, match="holds no documents"):
        build(str(src), str(tmp_path / "stage"), LayoutOptions())


def test_a_pipeline_replaces_shards_of_the_earlier_layout(engine, tmp_path):
    """Folders written before the shards ran on the engine (data/ + _layout.json, no
    manifest): a pipeline replaces them; a single command refuses without --overwrite."""
    src = _tiny(tmp_path / "src", 40)
    old = tmp_path / "old"
    (old / "data").mkdir(parents=True)
    (old / "data" / "train-00000-of-00001.parquet").write_bytes(b"stale")
    (old / "_layout.json").write_text(json.dumps({"identity": "x", "splits": {}, "rows_in": 0}))
    opts = ParquetShardOptions(0.2, parse_size("1KB"))
    with pytest.raises(ConfigError, match=r"holds no manifest\.json"):
        parquet_shards(engine, DatasetDir(str(src)), DatasetDir(str(old)), opts)
    m = parquet_shards(engine, DatasetDir(str(src)), DatasetDir(str(old)), opts,
                       replace_stale=True)
    assert m["complete"] and m["rows"] == 40
    written = sorted(p.name for p in (old / "data").iterdir())
    assert written == sorted(f.split("/")[1] for s in m["parquet"]["splits"].values()
                             for f in s["files"])
    rows = sum(pq.read_metadata(old / "data" / f).num_rows for f in written)
    assert rows == 40 and len(written) > 2
    assert np.array_equal(
        pq.read_table(_split(old, "validation")).column("id").to_numpy(zero_copy_only=False),
        _input(src).filter(pa.array(validation_mask(_input(src), 0.2))).column("id")
        .to_numpy(zero_copy_only=False))


def test_partitions_with_other_columns_are_refused_by_name(tmp_path):
    src = _tiny(tmp_path / "src")
    t = pq.read_table(src / "part-00000.parquet").drop_columns(["path"])
    pq.write_table(t, src / "part-00001.parquet")
    with pytest.raises(SchemaError, match="partition part-00001 has columns id, repo_name, "
                                          "content; the first partition has"):
        build(str(src), str(tmp_path / "stage"), LayoutOptions())
