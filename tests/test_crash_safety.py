"""A directory is complete only when its manifest says so and every file it lists is intact:
a kill while an output is replaced never leaves a "complete" dataset with holes (issue 12,
finding 3), a damaged output is recomputed rather than reused, and a moved run root keeps
working (finding 8, last part)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from corpus.io import MANIFEST, DatasetDir
from tests.conftest import QUERIES, ROOT, parquet_files, run_cli


def extract_cmd(tables: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "corpus", "extract", "--tables", str(tables), "--query",
            str(QUERIES / "github_python.sql"), "--out", str(out), "--partition-size",
            "64KiB", "--quiet", *extra]


def manifest(d: Path) -> dict:
    return json.loads((d / MANIFEST).read_text())


@pytest.fixture(scope="module")
def reference(site_tables, tmp_path_factory) -> Path:
    """CodeParrot's query over the session tables, in many small partitions."""
    ref = tmp_path_factory.mktemp("crash") / "ref"
    res = subprocess.run(extract_cmd(site_tables, ref, "--workers", "2"), capture_output=True,
                         text=True, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    assert manifest(ref)["partitions_total"] >= 20
    return ref


class Killed(BaseException):
    """What the simulated kill raises: not an Exception, nothing catches it."""


def test_a_replace_cut_short_at_any_point_is_never_complete(reference, tmp_path, monkeypatch):
    """The kill lands after k deletions of the clear, for every k: the directory is never
    complete, and what a reader or the next run sees is "incomplete", not the old manifest
    over missing files."""
    n_files = len(list(reference.iterdir()))
    for k in range(0, n_files + 2, max(1, n_files // 12)):
        out = tmp_path / f"k{k}"
        shutil.copytree(reference, out)
        d = DatasetDir(str(out))
        real_rm, calls = d.fs.rm, [0]

        def rm(path, *args, _real=real_rm, _calls=calls, _k=k, **kwargs):
            if _calls[0] >= _k:
                raise Killed
            _calls[0] += 1
            return _real(path, *args, **kwargs)

        monkeypatch.setattr(d.fs, "rm", rm)
        with contextlib.suppress(Killed):
            d.clear()
        monkeypatch.undo()
        assert d.complete_manifest() is None, f"complete after {k} deletions"
        m = d.manifest()
        assert m is None or not m.get("complete")


@pytest.mark.slow
def test_killed_replace_then_rerun_gives_the_clean_output(reference, site_tables, tmp_path):
    """A real SIGKILL of an --overwrite run (another query parameter) once it has started to
    replace the output; the next run of the first command recomputes, it is not "up to
    date"."""
    out = tmp_path / "out"
    shutil.copytree(reference, out)
    fp = manifest(out)["fingerprint"]
    proc = subprocess.Popen(extract_cmd(site_tables, out, "--workers", "1", "--overwrite",
                                        "--param", "min_size=2048"), cwd=ROOT,
                            start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)

    def replacing() -> bool:
        try:
            return manifest(out).get("fingerprint") != fp
        except (OSError, ValueError):
            return True  # between the tombstone and the new manifest, or mid-write

    deadline = time.monotonic() + 120
    while not replacing() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.001)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert DatasetDir(str(out)).complete_manifest() is None or \
        manifest(out)["fingerprint"] != fp
    res = subprocess.run(extract_cmd(site_tables, out, "--workers", "2", "--overwrite"),
                         capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    assert "up to date" not in res.stderr
    assert parquet_files(out) == parquet_files(reference)


PIPELINE = """
[pipeline]
output = "{out}"

[[stages]]
name = "python"
kind = "extract"
input = "{tables}"
query = "{queries}/github_python.sql"
partition_bytes = "64KiB"

[[stages]]
name = "filtered"
kind = "filter"
input = "python"
rules = [{{ rule = "line_max", max = 1000 }}, {{ rule = "alpha_frac", min = 0.25 }}]
"""


@pytest.mark.slow
def test_damaged_output_is_recomputed_not_reused(site_tables, tmp_path):
    """Partitions deleted or truncated behind a finished stage's back: `stats` says damaged,
    the next stage refuses to read it (one line), and `corpus run` recomputes just those
    partitions, after which everything equals the undamaged run."""
    root = tmp_path / "root"
    config = tmp_path / "p.toml"
    config.write_text(PIPELINE.format(out=root, tables=site_tables, queries=QUERIES))
    assert run_cli("run", str(config), "--workers", "2", "--quiet").returncode == 0
    clean = parquet_files(root)
    parts = sorted((root / "python").glob("data/part-*.parquet"))
    gone, cut = parts[1:4], parts[5]
    for p in gone:
        p.unlink()
    cut.write_bytes(cut.read_bytes()[:100])

    res = run_cli("stats", str(root / "python"))
    assert res.returncode == 0 and "damaged: 4 listed files missing or changed" in res.stdout
    res = run_cli("filter", str(root / "python"), str(tmp_path / "f2"), "--pipeline",
                  str(config), "--workers", "1")
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert "is damaged: 4 of the files its manifest lists are missing or changed" in res.stderr

    res = run_cli("run", str(config), "--workers", "2", "--quiet")
    assert res.returncode == 0, res.stderr
    assert "is damaged (4 listed files missing or changed" in res.stderr
    assert "recomputing" in res.stderr
    m = manifest(root / "python")
    assert sorted(m["runs"][-1]["computed"]) == sorted(p.stem for p in [*gone, cut])
    assert parquet_files(root) == clean
    assert "filter:" in res.stderr and "is up to date" in res.stderr.split("filter:")[1]


@pytest.mark.slow
def test_a_moved_root_keeps_working(site_tables, tmp_path):
    root = tmp_path / "root"
    config = tmp_path / "p.toml"
    config.write_text(PIPELINE.format(out=root, tables=site_tables, queries=QUERIES))
    assert run_cli("run", str(config), "--workers", "2", "--quiet").returncode == 0
    assert manifest(root / "filtered")["input"] == "../python"  # relative, not absolute
    moved = tmp_path / "elsewhere" / "moved"
    moved.parent.mkdir()
    root.rename(moved)
    res = run_cli("report", str(moved))
    assert res.returncode == 0, res.stderr
    res = run_cli("run", str(config), "--output", str(moved), "--workers", "1", "--quiet")
    assert res.returncode == 0, res.stderr
    assert res.stderr.count("is up to date") == 2
