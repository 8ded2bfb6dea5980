"""Shared fixtures. The test corpus is real code: distributions installed in this virtualenv,
each a "repository" with the license its metadata states."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _inherited(name: str, make: Any) -> str:
    """A value chosen once per test session: a Dask worker that imports this module again (to
    unpickle a task defined in a test file) keeps its parent's value instead of choosing anew,
    which would point its gcsfs at another port."""
    if name not in os.environ:
        os.environ[name] = str(make())
    return os.environ[name]


# Set before anything imports gcsfs, huggingface_hub or datasets (they read these at import) and
# before any Dask cluster starts (workers inherit os.environ): see ../shared/COMPONENTS.md.
os.environ["GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"] = "false"
#: The GCS emulator's address (tests/cloud.py starts it on this port when a test asks for it):
#: gcsfs in this process and in every Dask worker reaches it anonymously through these.
GCS_PORT = int(_inherited("CORPUS_TEST_GCS_PORT", free_port))
GCS_URL = f"http://127.0.0.1:{GCS_PORT}"
os.environ.update({"STORAGE_EMULATOR_HOST": GCS_URL, "FSSPEC_GCS_TOKEN": "anon",
                   "FSSPEC_GCS_PROJECT": "corpus-test"})
HUB_PORT = int(_inherited("CORPUS_TEST_HUB_PORT", free_port))
HUB_URL = f"http://127.0.0.1:{HUB_PORT}"
#: A token the fake Hub accepts; tests search every output for it (it must never be printed).
HUB_TOKEN = _inherited("CORPUS_TEST_HUB_TOKEN", lambda: "hf_testtoken" + os.urandom(8).hex())
os.environ.update({"HF_ENDPOINT": HUB_URL, "HF_TOKEN": HUB_TOKEN, "HF_HUB_DISABLE_XET": "1",
                   "HF_HOME": _inherited("CORPUS_TEST_HF_HOME",
                                         lambda: tempfile.mkdtemp(prefix="corpus-test-hf-")),
                   "HF_HUB_OFFLINE": "0", "HF_HUB_DISABLE_TELEMETRY": "1",
                   "HF_HUB_DISABLE_PROGRESS_BARS": "1"})

import pytest

from corpus.engine import Engine

#: The cloud stand-ins' fixtures (gcs, bigquery_emulator, seeded_bigquery), defined once for the
#: session: a fixture imported into two test modules would start its server twice.
pytest_plugins = ["tests.cloud"]
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
def hub():
    """The Hub stand-in (tests/hub_server.py) on HUB_PORT, where HF_ENDPOINT points; once per
    session, for every module that pushes. Organization "not-mine" is forbidden (403)."""
    from tests.hub_server import serve

    server, state = serve(HUB_PORT, HUB_TOKEN)
    state.forbidden.add("not-mine")
    yield state
    server.shutdown()


@pytest.fixture(scope="session")
def site_tables(tmp_path_factory, engine) -> Path:
    """GitHub-shaped tables of DISTS, built once per session."""
    out = tmp_path_factory.mktemp("tables")
    opts = GithubTablesOptions(site_packages=True, include=DISTS)
    engine.run(GithubTablesJob(opts, DatasetDir(str(out))))
    return out


@pytest.fixture(scope="session")
def python_docs(engine, site_tables, tmp_path_factory) -> Path:
    """Real Python files: CodeParrot's query over site_tables, in 4 MiB partitions."""
    from corpus.extract.duckdb_job import ExtractJob, ExtractOptions

    out = tmp_path_factory.mktemp("python-docs")
    engine.run(ExtractJob(ExtractOptions(str(QUERIES / "github_python.sql"), str(site_tables),
                                         partition_bytes=4 << 20), DatasetDir(str(out))))
    return out


#: packages with C, C++, JavaScript and TypeScript beside their Python
MULTILANG = ["numpy", "bokeh", "pyarrow", "tornado"]


@pytest.fixture(scope="session")
def multilang(engine, tmp_path_factory) -> list[tuple[str, str]]:
    """(path, content) of real files of several languages: PolyCoder's query over the
    GitHub-shaped tables of MULTILANG."""
    import pyarrow.parquet as pq

    from corpus.extract.duckdb_job import ExtractJob, ExtractOptions

    tables = tmp_path_factory.mktemp("ml-tables")
    out = tmp_path_factory.mktemp("ml-docs")
    engine.run(GithubTablesJob(GithubTablesOptions(site_packages=True, include=MULTILANG),
                               DatasetDir(str(tables))))
    engine.run(ExtractJob(ExtractOptions(str(QUERIES / "github_multilang.sql"),
                                         str(tables)), DatasetDir(str(out))))
    t = pq.read_table(sorted(out.glob("data/part-*.parquet")), columns=["path", "content"])
    return [(p, c) for p, c in zip(t.column("path").to_pylist(),
                                   t.column("content").to_pylist(), strict=True) if c]


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: int = 300,
            ) -> subprocess.CompletedProcess[str]:
    """The `corpus` command as a user runs it, in a subprocess."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "corpus", *args], capture_output=True,
                          text=True, env=full_env, timeout=timeout, cwd=ROOT)


def parquet_files(root: Path) -> dict[str, bytes]:
    """Every Parquet file under root (relative path -> bytes): what byte-identity compares."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.parquet"))}


#: Older releases of packages the test environment has (its own release is the third): a real
#: near-duplicate corpus. Downloaded once into .cache/ as wheels and unpacked like
#: `pip install --target`.
RELEASES = ["click==8.0.4", "click==8.1.3", "requests==2.25.1", "requests==2.28.2",
            "rich==12.6.0", "rich==13.3.5", "idna==2.10", "idna==3.4", "urllib3==1.26.18",
            "urllib3==2.0.7"]
RELEASED = sorted({r.split("==")[0] for r in RELEASES})


@pytest.fixture(scope="session")
def release_dirs() -> list[Path]:
    import zipfile

    cache = ROOT / ".cache" / "test-releases"
    wheels = cache / "wheels"
    targets = {r: cache / r.replace("==", "-") for r in RELEASES}
    missing = [r for r, d in targets.items() if not (d / ".complete").exists()]
    rounds: list[list[str]] = []  # one release of a package per pip call (pip resolves)
    for r in missing:
        free = next((x for x in rounds if r.split("==")[0] not in
                     {y.split("==")[0] for y in x}), None)
        if free is None:
            rounds.append(free := [])
        free.append(r)
    for batch in rounds:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                        "--only-binary=:all:", "--dest", str(wheels), *batch], check=True)
    if missing:
        for r in missing:
            name, version = r.split("==")
            wheel = next(wheels.glob(f"{name}-{version}-*.whl"))
            with zipfile.ZipFile(wheel) as z:
                z.extractall(targets[r])
            (targets[r] / ".complete").touch()
    return [targets[r] for r in RELEASES]


@pytest.fixture(scope="session")
def near_dup_tables(engine, release_dirs, tmp_path_factory) -> Path:
    """Three releases each of five packages as GitHub-shaped tables."""
    out = tmp_path_factory.mktemp("near") / "tables"
    opts = GithubTablesOptions(site_packages=True, include=RELEASED,
                               site_packages_dirs=[str(d) for d in release_dirs])
    engine.run(GithubTablesJob(opts, DatasetDir(str(out))))
    return out


@pytest.fixture(scope="session")
def tokenizer_dir(engine, python_docs, tmp_path_factory) -> Path:
    """A small BPE trained on the real Python files (corpus tokenizer train)."""
    from corpus.tokens import bpe
    from corpus.tokens.tokenizer_job import train

    out = tmp_path_factory.mktemp("tokenizer")
    train(str(python_docs), str(out), bpe.TokenizerOptions(vocab_size=2048, sample_docs=600),
          engine=engine)
    return out


@pytest.fixture(scope="session")
def token_shards(engine, python_docs, tokenizer_dir, tmp_path_factory) -> Path:
    """The real Python files packed into 64-token sequences, in several shards per split."""
    from corpus.tokens.shards import TokenShardJob, TokenShardOptions

    out = tmp_path_factory.mktemp("tokens")
    opts = TokenShardOptions(str(tokenizer_dir), seq_len=64, shard_bytes=1 << 20,
                             valid_fraction=0.05, seed=3)
    engine.run(TokenShardJob(opts, DatasetDir(str(python_docs)), DatasetDir(str(out))))
    return out
