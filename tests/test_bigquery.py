"""`corpus extract --engine bigquery` against bqemulator (real google-cloud-bigquery client) and
the GCS emulator (real gcsfs), seeded with GitHub-shaped tables built from installed code."""

from __future__ import annotations

import json
import re
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from corpus.extract.duckdb_job import ExtractJob, ExtractOptions
from corpus.io import DatasetDir
from tests.cloud import PROJECT, bq_client, gcs_fs, make_bucket
from tests.conftest import QUERIES, free_port, run_cli

pytestmark = pytest.mark.slow
KEY = ["repo_name", "path"]


def rows(url: str) -> pa.Table:
    d = DatasetDir(url)
    files = sorted(p for p in d.fs.find(d.path) if p.rsplit("/", 1)[-1].startswith("part-")
                   and "/removed/" not in p)
    tables = []
    for p in files:
        with d.fs.open(p, "rb") as f:
            tables.append(pq.read_table(f))
    return pa.concat_tables(tables).sort_by([("repo_name", "ascending"),
                                             ("path", "ascending")])


def extract(env: dict[str, str], *args: str, timeout: int = 300):
    return run_cli("extract", "--engine", "bigquery", "--workers", "2", *args,
                   env=env, timeout=timeout)


@pytest.fixture(scope="module")
def duckdb_result(engine, site_tables, tmp_path_factory) -> pa.Table:
    out = tmp_path_factory.mktemp("duck")
    engine.run(ExtractJob(ExtractOptions(str(QUERIES / "github_python.sql"), str(site_tables),
                                         params={"min_size": 2048}), DatasetDir(str(out))))
    return rows(str(out))


@pytest.mark.parametrize("fmt", ["parquet", "json"])
def test_bigquery_export_read_through_gcs_equals_duckdb(seeded_bigquery, duckdb_result, fmt):
    bucket = make_bucket(f"corpus-{fmt}")
    out = f"gs://{bucket}/dataset"
    r = extract(seeded_bigquery, "--query", str(QUERIES / "github_python.sql"), "--param",
                "min_size=2048", "--project", PROJECT, "--export", f"gs://{bucket}/export",
                "--export-format", fmt, "--out", out)
    assert r.returncode == 0, r.stderr
    got = rows(out)
    assert got.num_rows == duckdb_result.num_rows > 100
    assert got.column_names == duckdb_result.column_names
    assert got.equals(duckdb_result.cast(got.schema))
    # the job was labelled, its id and dry-run bytes printed, and a console link given
    assert "dry run: the query will scan" in r.stderr
    assert "job corpus_query_" in r.stderr and "job corpus_export_" in r.stderr
    assert "console.cloud.google.com/bigquery" in r.stderr
    for job_id in re.findall(r"job (corpus_(?:query|export)_[\w-]+)", r.stderr):
        job = bq_client(seeded_bigquery).get_job(job_id)
        assert job.state == "DONE" and job.error_result is None
    manifest = json.loads(gcs_fs().cat(f"{bucket}/dataset/manifest.json"))
    assert manifest["config"]["engine"] == "bigquery"
    assert sum(p["rows"] for p in manifest["partitions"]) == got.num_rows

    # a re-run with the same prefix reuses the finished export: no new job
    again = f"gs://{bucket}/dataset2"
    r2 = extract(seeded_bigquery, "--query", str(QUERIES / "github_python.sql"), "--param",
                 "min_size=2048", "--project", PROJECT, "--export", f"gs://{bucket}/export",
                 "--export-format", fmt, "--out", again)
    assert r2.returncode == 0, r2.stderr
    assert "reusing the finished export" in r2.stderr
    assert "dry run" not in r2.stderr and "job corpus_query_" not in r2.stderr
    assert rows(again).equals(got)


def test_cost_gate_refuses_before_any_job(seeded_bigquery):
    bucket = make_bucket("corpus-gate")
    env = {**seeded_bigquery, "CORPUS_BIGQUERY_DRY_RUN_BYTES": str(3 * 10**12)}
    r = extract(env, "--query", str(QUERIES / "github_python.sql"), "--project", PROJECT,
                "--export", f"gs://{bucket}/x", "--out", f"gs://{bucket}/out")
    assert r.returncode == 1
    assert "3,000,000,000,000 bytes" in r.stderr and "refused" in r.stderr
    assert "$17.05" in r.stderr  # 3e12 / 2**40 * 6.25
    assert "job corpus_" not in r.stderr
    assert not gcs_fs().exists(f"{bucket}/out") and not gcs_fs().exists(f"{bucket}/x")
    # raised deliberately, the same query runs
    r = extract(env, "--query", str(QUERIES / "github_python.sql"), "--project", PROJECT,
                "--export", f"gs://{bucket}/x", "--out", f"gs://{bucket}/out",
                "--max-bytes-billed", "3TB")
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("case", ["bad-sql", "forbidden", "missing-bucket", "unrelated-files",
                                  "unreachable", "gcs-unreachable", "no-project"])
def test_failures_are_one_clear_sentence(seeded_bigquery, tmp_path, case):
    bucket = make_bucket("corpus-errors")
    query, env = str(QUERIES / "github_python.sql"), dict(seeded_bigquery)
    export, expect = f"gs://{bucket}/{case}", ""
    args = ["--project", PROJECT]
    if case == "bad-sql":
        query = str(tmp_path / "bad.sql")
        (tmp_path / "bad.sql").write_text("SELECT id FROM `bigquery-public-data.github_repos."
                                          "files` WHERE nonsense_column > 1")
        expect = "rejected"
    elif case == "forbidden":  # a malformed project: BigQuery answers Access Denied (403)
        query = str(tmp_path / "forbidden.sql")
        (tmp_path / "forbidden.sql").write_text("SELECT id FROM `bad--project.github_repos."
                                                "files`")
        expect = "permission denied (403)"
    elif case == "missing-bucket":
        export, expect = "gs://no-such-bucket-here/x", "bucket gs://no-such-bucket-here does not"
    elif case == "unrelated-files":
        gcs_fs().pipe(f"{bucket}/{case}/notes.txt", b"someone else's file")
        expect = "already holds 1 files that are not an export of this query"
    elif case == "unreachable":
        env["BIGQUERY_EMULATOR_HOST"] = f"http://127.0.0.1:{free_port()}"
        args += ["--deadline", "3"]
        expect = "cannot reach the service within the deadline"
    elif case == "gcs-unreachable":
        env["STORAGE_EMULATOR_HOST"] = f"http://127.0.0.1:{free_port()}"
        args += ["--deadline", "3"]
        expect = "checking bucket gs://corpus-errors: cannot reach the service"
    elif case == "no-project":
        args = []
        env.pop("GOOGLE_CLOUD_PROJECT")
        expect = "--project is required"
    t0 = time.monotonic()
    r = extract(env, "--query", query, *args, "--export", export, "--out", str(tmp_path / "o"),
                timeout=120)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert time.monotonic() - t0 < 60
    assert "Traceback" not in r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and expect in errors[0], r.stderr


def test_credentials_never_printed(tmp_path, monkeypatch, caplog):
    """Real ADC path (no emulator): a service-account key whose token endpoint is closed. The
    command fails with one sentence and neither the key nor the token request leaks."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()).decode()
    sa = {"type": "service_account", "project_id": PROJECT, "private_key_id": "k1" * 20,
          "private_key": key, "client_email": f"robot@{PROJECT}.iam.gserviceaccount.com",
          "client_id": "1", "token_uri": f"http://127.0.0.1:{free_port()}/token"}
    (tmp_path / "sa.json").write_text(json.dumps(sa))
    env = {"GOOGLE_APPLICATION_CREDENTIALS": str(tmp_path / "sa.json"),
           "BIGQUERY_EMULATOR_HOST": "", "GOOGLE_CLOUD_PROJECT": PROJECT}
    r = extract(env, "--query", str(QUERIES / "github_python.sql"), "--deadline", "3",
                "--export", "gs://any-bucket/x", "--out", str(tmp_path / "o"), "--dry-run",
                timeout=120)
    assert r.returncode == 1, r.stderr
    secret = key.splitlines()[5]  # a line of the key's body
    for text in (r.stdout, r.stderr):
        assert secret not in text and sa["private_key_id"] not in text
    assert "Traceback" not in r.stderr
    errors = [x for x in r.stderr.splitlines() if x.startswith("error:")]
    assert len(errors) == 1 and "cannot obtain an access token" in errors[0], r.stderr
    # in-process, with every logger at DEBUG: the records do not carry it either
    import logging

    from corpus.extract.bigquery import BigQueryExtract, BigQueryOptions, CloudError

    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("BIGQUERY_EMULATOR_HOST")
    caplog.set_level(logging.DEBUG)
    with pytest.raises(CloudError, match="access token"):
        BigQueryExtract(BigQueryOptions(str(QUERIES / "github_python.sql"), "gs://b/x",
                                        deadline_s=2), say=logging.getLogger("t").info).dry_run()
    assert caplog.records and secret not in caplog.text and "BEGIN PRIVATE" not in caplog.text


def test_every_stage_reads_and_writes_gs(engine, site_tables, gcs, tmp_path):
    """Dataset directories on gs:// (GCS emulator through gcsfs, read by the Dask workers and
    by DuckDB): filter, exact and near dedup give the same rows as on local disk."""
    bucket = make_bucket("corpus-stages")
    src = f"gs://{bucket}/raw"
    r = run_cli("extract", "--tables", str(site_tables), "--query",
                str(QUERIES / "github_python.sql"), "--partition-size", "2MiB", "--out", src,
                "--workers", "2")
    assert r.returncode == 0, r.stderr
    local = tmp_path / "raw"
    r = run_cli("extract", "--tables", str(site_tables), "--query",
                str(QUERIES / "github_python.sql"), "--partition-size", "2MiB",
                "--out", str(local), "--workers", "1")
    assert r.returncode == 0, r.stderr
    assert rows(src).equals(rows(str(local)))
    stages = [("filtered", "raw", ["filter", "--pipeline", "pipelines/codeparrot.toml"]),
              ("deduped", "filtered", ["dedup", "--exact"]),
              ("near", "deduped", ["dedup", "--minhash", "--verify", "--verify-memory", "1MiB"])]
    for name, before, args in stages:
        cmd, *opts = args
        for base in (f"gs://{bucket}", str(tmp_path)):
            r = run_cli(cmd, f"{base}/{before}", f"{base}/{name}", *opts, "--workers", "2")
            assert r.returncode == 0, r.stderr
        got, want = rows(f"gs://{bucket}/{name}"), rows(str(tmp_path / name))
        assert got.equals(want) and 0 < got.num_rows < rows(src).num_rows
        fs = gcs_fs()
        assert fs.exists(f"{bucket}/{name}/manifest.json")
        assert not [p for p in fs.find(f"{bucket}/{name}") if ".tmp-" in p]


def test_storage_read_api_without_bucket(seeded_bigquery, duckdb_result, tmp_path):
    """No --export: the result table read over the Storage Read API (gRPC client injected by
    BIGQUERY_STORAGE_EMULATOR_HOST), one partition per stream: same rows as DuckDB."""
    out = tmp_path / "read-api"
    r = extract(seeded_bigquery, "--query", str(QUERIES / "github_python.sql"), "--param",
                "min_size=2048", "--project", PROJECT, "--out", str(out))
    assert r.returncode == 0, r.stderr
    got = rows(str(out))
    assert got.equals(duckdb_result.cast(got.schema))
    assert json.loads((out / "manifest.json").read_text())["config"]["read"] == "storage-api"


def test_jobs_carry_labels_and_the_bytes_limit(seeded_bigquery, monkeypatch):
    """What the client sends on the wire (bqemulator does not keep job labels, so the requests
    are recorded): every job is labelled and carries maximum_bytes_billed = the gate."""
    from corpus.extract.bigquery import BigQueryExtract, BigQueryOptions

    for k, v in seeded_bigquery.items():
        monkeypatch.setenv(k, v)
    bucket = make_bucket("corpus-wire")
    client = bq_client(seeded_bigquery)
    sent: list[dict] = []
    request = client._http.request

    def recording(method, url, data=None, **kw):
        if method == "POST" and url.split("?")[0].endswith("/jobs") and data:
            sent.append(json.loads(data))
        return request(method, url, data=data, **kw)

    monkeypatch.setattr(client._http, "request", recording)
    opts = BigQueryOptions(str(QUERIES / "github_python.sql"), f"gs://{bucket}/e",
                           project=PROJECT, params={"min_size": "4096"},
                           max_bytes_billed=5 * 10**9)
    export = BigQueryExtract(opts, client=client, say=lambda m: None).run()
    assert export.rows > 0 and export.files
    kinds = [(j["configuration"].get("dryRun", False),
              re.sub(r"[0-9a-f-]{36}$", "", j["jobReference"]["jobId"])) for j in sent]
    assert kinds == [(True, kinds[0][1]), (False, "corpus_query_"), (False, "corpus_export_")]
    for j in sent:
        assert j["configuration"]["labels"] == {"tool": "corpus", "stage": "extract"}
    for j in sent[1:]:
        assert j["configuration"]["query"]["maximumBytesBilled"] == str(5 * 10**9)
    params = {p["name"]: p["parameterValue"]["value"]
              for p in sent[1]["configuration"]["query"]["queryParameters"]}
    assert params == {"min_size": "4096", "max_size": "1048575"}
