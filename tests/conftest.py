"""Shared fixtures. The test corpus is real code: distributions installed in this virtualenv,
each a "repository" with the license its metadata states."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from corpus.engine import Engine
from corpus.github.build import GithubTablesJob, GithubTablesOptions
from corpus.io import DatasetDir

ROOT = Path(__file__).resolve().parent.parent
QUERIES = ROOT / "queries"

#: Distributions the tables tests read: small, real, with known licenses, and with vendored
#: copies of each other (pip vendors requests, urllib3, idna, certifi, rich).
DISTS = ["requests", "urllib3", "idna", "certifi", "charset-normalizer", "click", "pip", "rich",
         "sqlglot"]


@pytest.fixture(scope="session")
def engine():
    """One local cluster of 2 worker processes for the in-process tests."""
    with Engine(workers=2, progress=False) as e:
        yield e


@pytest.fixture(scope="session")
def site_tables(tmp_path_factory, engine) -> Path:
    """GitHub-shaped tables of DISTS, built once per session."""
    out = tmp_path_factory.mktemp("tables")
    opts = GithubTablesOptions(site_packages=True, include=DISTS)
    engine.run(GithubTablesJob(opts, DatasetDir(str(out))))
    return out


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: int = 300,
            ) -> subprocess.CompletedProcess[str]:
    """The `corpus` command as a user runs it, in a subprocess."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "corpus", *args], capture_output=True,
                          text=True, env=full_env, timeout=timeout, cwd=ROOT)


def parquet_files(root: Path) -> dict[str, bytes]:
    """Every Parquet file under root (relative path -> bytes): what byte-identity compares."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.parquet"))}
