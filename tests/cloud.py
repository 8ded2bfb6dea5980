"""Real local stand-ins for Google Cloud, started on 127.0.0.1 (../shared/COMPONENTS.md):
gcp-storage-emulator behind gcsfs, bqemulator behind google-cloud-bigquery, seeded with
GitHub-shaped tables built from real installed code. Import the fixtures from a test module."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.conftest import GCS_PORT, GCS_URL, ROOT, free_port

PROJECT = "corpus-test"
PUBLIC = "bigquery-public-data.github_repos"


def _wait_http(url: str, seconds: float, proc: subprocess.Popen | None = None) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} not ready after {seconds} s")


def _honor_preconditions() -> None:
    """gcp-storage-emulator ignores `ifGenerationMatch`; real GCS refuses a write or delete
    whose precondition fails with HTTP 412 (cloud.google.com/storage/docs/request-preconditions)
    and corpus's lock on gs:// relies on it. This adds that one check to the stand-in's upload
    and delete handlers; everything else is the emulator's own."""
    from http import HTTPStatus

    from gcp_storage_emulator import server
    from gcp_storage_emulator.exceptions import NotFound
    from gcp_storage_emulator.handlers import objects

    if getattr(objects, "_corpus_preconditions", False):
        return

    def guarded(handler, name_of):
        def check(request, response, storage, *args, **kwargs):
            want = (request.query.get("ifGenerationMatch") or [None])[0]
            if want is not None:
                try:
                    have = str(storage.get_file_obj(request.params["bucket_name"],
                                                    name_of(request))["generation"])
                except NotFound:
                    have = "0"
                if have != str(want):
                    response.status = HTTPStatus.PRECONDITION_FAILED
                    return None
            return handler(request, response, storage, *args, **kwargs)
        return check

    upload = guarded(objects.insert, lambda r: (r.query.get("name") or [""])[0])
    delete = guarded(objects.delete, lambda r: r.params["object_id"])
    for _, handlers in server.HANDLERS:
        for method, fn in list(handlers.items()):
            if fn is objects.insert:
                handlers[method] = upload
            elif fn is objects.delete:
                handlers[method] = delete
    objects.insert, objects.delete = upload, delete
    objects._corpus_preconditions = True


@pytest.fixture(scope="session")
def gcs() -> Iterator[str]:
    """The GCS emulator on GCS_PORT (conftest points gcsfs there, anonymously), honouring
    write preconditions as GCS does."""
    from gcp_storage_emulator.server import create_server

    _honor_preconditions()
    server = create_server("127.0.0.1", GCS_PORT, in_memory=True)
    server.start()
    _wait_http(f"{GCS_URL}/", 10)
    yield GCS_URL
    server.stop()


def gcs_fs():
    import gcsfs

    return gcsfs.GCSFileSystem(endpoint_url=GCS_URL, token="anon", project=PROJECT)


def make_bucket(name: str) -> str:
    fs = gcs_fs()
    if not fs.exists(name):
        fs.mkdir(name)
    return name


def _extension_home(root: Path) -> Path:
    """A HOME where DuckDB finds the spatial and avro extensions already installed: they ship
    as wheels, and bqemulator's `INSTALL spatial` would otherwise go online."""
    import duckdb

    version = duckdb.__version__
    platform = duckdb.connect().execute("PRAGMA platform").fetchone()[0]
    target = root / ".duckdb" / "extensions" / f"v{version}" / platform
    target.mkdir(parents=True, exist_ok=True)
    for name in ("spatial", "avro"):
        mod = __import__(f"duckdb_extension_{name}")
        src = Path(mod.__file__).parent / "extensions" / f"v{version}" / \
            f"{name}.duckdb_extension"
        link = target / src.name
        if not link.exists():
            link.symlink_to(src)
    return root


@pytest.fixture(scope="session")
def bigquery_emulator(gcs) -> Iterator[dict[str, str]]:
    """bqemulator (through tests/bq_server.py, so exports land in the GCS emulator); yields
    the environment that points corpus's clients at it."""
    work = Path(tempfile.mkdtemp(prefix="bqemu-"))
    home = _extension_home(work / "home")
    rest, grpc = free_port(), free_port()
    env = {**os.environ, "HOME": str(home), "BQEMU_GCS_LOCAL_ROOT": str(work / "gcs"),
           "STORAGE_EMULATOR_HOST": gcs}
    (work / "gcs").mkdir()
    log = open(work / "server.log", "wb")  # noqa: SIM115 — open for the server's lifetime
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "bq_server.py"), "start", "--rest-host",
         "127.0.0.1", "--rest-port", str(rest), "--grpc-host", "127.0.0.1", "--grpc-port",
         str(grpc), "--project", PROJECT, "--log-level", "warning"],
        env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_http(f"http://127.0.0.1:{rest}/readyz", 60, proc)
    except RuntimeError:
        proc.kill()
        raise RuntimeError((work / "server.log").read_text()[-3000:]) from None
    yield {"BIGQUERY_EMULATOR_HOST": f"http://127.0.0.1:{rest}",
           "BIGQUERY_STORAGE_EMULATOR_HOST": f"127.0.0.1:{grpc}",
           "GOOGLE_CLOUD_PROJECT": PROJECT}
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


def bq_client(env: dict[str, str]):
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery

    return bigquery.Client(project=PROJECT, credentials=AnonymousCredentials(),
                           client_options=ClientOptions(
                               api_endpoint=env["BIGQUERY_EMULATOR_HOST"]))


#: BigQuery's schemas of the public GitHub tables (the columns the queries use and more).
SCHEMAS = {
    "files": [("repo_name", "STRING"), ("ref", "STRING"), ("path", "STRING"),
              ("mode", "INT64"), ("id", "STRING"), ("symlink_target", "STRING")],
    "contents": [("id", "STRING"), ("size", "INT64"), ("content", "STRING"),
                 ("binary", "BOOL"), ("copies", "INT64")],
    "licenses": [("repo_name", "STRING"), ("license", "STRING")],
}


@pytest.fixture(scope="session")
def seeded_bigquery(bigquery_emulator, site_tables) -> dict[str, str]:
    """`bigquery-public-data.github_repos` in the emulator, loaded from the same Parquet tables
    the DuckDB engine reads (corpus github-tables over installed distributions)."""
    from google.cloud import bigquery

    client = bq_client(bigquery_emulator)
    client.create_dataset(bigquery.Dataset(PUBLIC), exists_ok=True)
    for name, cols in SCHEMAS.items():
        table = pq.read_table(site_tables / f"{name}.parquet", columns=[c for c, _ in cols])
        buf = io.BytesIO()
        pq.write_table(table, buf)
        buf.seek(0)
        job = client.load_table_from_file(buf, f"{PUBLIC}.{name}", job_config=bigquery.
                                          LoadJobConfig(source_format="PARQUET",
                                                        schema=[bigquery.SchemaField(c, t)
                                                                for c, t in cols],
                                                        write_disposition="WRITE_TRUNCATE"))
        job.result(timeout=120)
        assert client.get_table(f"{PUBLIC}.{name}").num_rows == table.num_rows
    return bigquery_emulator
