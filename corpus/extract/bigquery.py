"""`corpus extract --engine bigquery`, the client side: dry run and cost gate, the query into a
destination table, the table exported to GCS, all resumable and with bounded retries.

Order of work, each step reused when a previous run finished it:
1. dry run of the query: bytes it will scan, estimated cost; refused above `max_bytes_billed`
   (which is also passed to the job, so BigQuery enforces it even if the estimate was wrong);
2. `CREATE OR REPLACE TABLE <dataset>.extract_<fingerprint> AS <query>` (a table named after
   the query, its parameters and the format: if it exists, the query is not paid again);
3. `EXPORT DATA OPTIONS(uri='gs://…/part-*.parquet') AS SELECT * FROM <table>` (works on real
   BigQuery and on the emulator), then `_corpus_export.json` beside the files: a re-run with the
   same prefix reuses them.

Credentials come only from the environment (Application Default Credentials); nothing here
prints or logs them. `BIGQUERY_EMULATOR_HOST` points the client at an emulator (anonymous).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import posixpath
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from corpus.errors import ConfigError, InputError
from corpus.extract import template
from corpus.extract.bq_errors import (
    CloudError,
    CostError,
    explain,
    guard,
    job_exception,
    within,
)
from corpus.io import url_to_fs

#: The emulator convention of the Google clients: http://host:port of a BigQuery emulator.
EMULATOR_ENV = "BIGQUERY_EMULATOR_HOST"
#: host:port of the emulator's Storage Read API (gRPC, insecure), for the injectable client.
STORAGE_EMULATOR_ENV = "BIGQUERY_STORAGE_EMULATOR_HOST"
#: Test seam, documented in docs/bigquery.md: emulators report 0 bytes for every dry run, so
#: this replaces the dry run's byte count (it can only make the gate stricter or looser for a
#: test; the job itself still carries `maximum_bytes_billed`).
DRY_RUN_BYTES_ENV = "CORPUS_BIGQUERY_DRY_RUN_BYTES"
#: 1 TiB, BigQuery's free monthly on-demand quota: a full-GitHub query (CodeParrot's scans
#: ~2.6 TB) needs an explicit, deliberate --max-bytes-billed.
DEFAULT_MAX_BYTES = 1 << 40
#: On-demand price per TiB scanned (US multi-region, 2024): only for the printed estimate.
PRICE_PER_TIB = 6.25
MARKER = "_corpus_export.json"
#: what templates call the repos table, and the shape of a table id that may replace it
PUBLIC_REPOS = "bigquery-public-data.github_repos.repos"
TABLE_ID = re.compile(r"[a-z][a-z0-9-]{4,28}[a-z0-9](?:\.[A-Za-z0-9_]{1,1024}){2}")
FORMATS = {"parquet": ("PARQUET", "parquet", None), "json": ("JSON", "jsonl.gz", "GZIP")}


@dataclass
class BigQueryOptions:
    query: str
    export: str | None  # gs://BUCKET/PREFIX; None: read the table with the Storage Read API
    project: str | None = None  # billing project; else GOOGLE_CLOUD_PROJECT or ADC's
    params: dict[str, Any] = field(default_factory=dict)
    export_format: str = "parquet"  # or "json" (gzip JSON lines)
    max_bytes_billed: int = DEFAULT_MAX_BYTES
    dataset: str = "corpus_extract"  # in the billing project, for the destination table
    location: str = "US"  # where github_repos lives; the dataset must be in the same place
    deadline_s: float = 60.0  # bounded retries of every API call
    #: PROJECT.DATASET.TABLE read where a template names github_repos.repos (which
    #: bigquery-public-data does not have: load a SEART export, or queries/bigquery_repos.sql)
    repos_table: str | None = None
    labels: dict[str, str] = field(default_factory=lambda: {"tool": "corpus",
                                                            "stage": "extract"})


@dataclass(frozen=True)
class Export:
    """A finished export: what the reading stage needs, and what it cost."""
    files: list[str]  # gs:// URLs, sorted
    format: str
    rows: int
    fingerprint: str
    table: str
    jobs: dict[str, str]  # step -> job id
    scanned_bytes: int
    reused: bool


# --- clients --------------------------------------------------------------------------------
def make_client(project: str | None, location: str) -> Any:
    """A real google-cloud-bigquery client: an emulator when BIGQUERY_EMULATOR_HOST is set,
    else Application Default Credentials. Missing credentials or project: one clear error."""
    from google.api_core.client_options import ClientOptions
    from google.cloud import bigquery

    project = project or os.environ.get("GOOGLE_CLOUD_PROJECT")
    endpoint = os.environ.get(EMULATOR_ENV)
    if endpoint:
        from google.auth.credentials import AnonymousCredentials

        if not project:
            raise ConfigError("--project is required (the billing project)")
        return bigquery.Client(project=project, location=location,
                               credentials=AnonymousCredentials(),
                               client_options=ClientOptions(api_endpoint=endpoint))
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    try:
        credentials, adc_project = google.auth.default(
            scopes=["https://www.googleapis.com/auth/cloud-platform"])
    except DefaultCredentialsError:
        raise CloudError(
            "no Google Cloud credentials found: run `gcloud auth application-default login` "
            "or set GOOGLE_APPLICATION_CREDENTIALS to a service account key file") from None
    project = project or adc_project
    if not project:
        raise ConfigError("--project is required (the billing project): the credentials name "
                          "none and GOOGLE_CLOUD_PROJECT is not set")
    return bigquery.Client(project=project, location=location, credentials=credentials)


def make_storage_client() -> Any:
    """The Storage Read API client, injectable: an insecure gRPC channel to an emulator when
    BIGQUERY_STORAGE_EMULATOR_HOST is set (the default client would dial Google over TLS)."""
    from google.cloud import bigquery_storage

    target = os.environ.get(STORAGE_EMULATOR_ENV)
    if not target:
        return bigquery_storage.BigQueryReadClient()
    import grpc
    from google.cloud.bigquery_storage_v1.services.big_query_read.transports import (
        BigQueryReadGrpcTransport,
    )

    return bigquery_storage.BigQueryReadClient(
        transport=BigQueryReadGrpcTransport(channel=grpc.insecure_channel(target)))


def query_parameters(tpl: template.Template, values: dict[str, Any]) -> list[Any]:
    """Typed BigQuery query parameters from a template's declarations."""
    from google.cloud import bigquery

    out: list[Any] = []
    for name, p in tpl.params.items():
        if p.is_array:
            out.append(bigquery.ArrayQueryParameter(name, p.element, values[name]))
        else:
            out.append(bigquery.ScalarQueryParameter(name, p.type, values[name]))
    return out


# --- the steps ------------------------------------------------------------------------------
class BigQueryExtract:
    """Dry run, gate, destination table, export: `run()` returns the Export."""

    def __init__(self, opts: BigQueryOptions, client: Any | None = None,
                 say: Callable[[str], None] = print):
        if opts.export_format not in FORMATS:
            raise ConfigError(f"export format must be one of {', '.join(FORMATS)}")
        if opts.export is not None and (not opts.export.startswith("gs://")
                                        or len(opts.export.rstrip("/")) <= 5):
            raise ConfigError(f"--export must be gs://BUCKET/PREFIX, not {opts.export!r}")
        if opts.max_bytes_billed <= 0:
            raise ConfigError("--max-bytes-billed must be positive")
        self.opts, self.say = opts, say
        self.tpl = template.load(opts.query)
        if opts.repos_table is not None:
            if not TABLE_ID.fullmatch(opts.repos_table):
                raise ConfigError(f"--repos-table must be PROJECT.DATASET.TABLE, not "
                                  f"{opts.repos_table!r}")
            self.tpl = dataclasses.replace(self.tpl, sql=self.tpl.sql.replace(
                f"`{PUBLIC_REPOS}`", f"`{opts.repos_table}`"))
        self.values = template.bind(self.tpl, opts.params)
        self.fingerprint = hashlib.sha256(json.dumps(
            {"sql": self.tpl.sql, "params": self.values, "format": opts.export_format},
            sort_keys=True).encode()).hexdigest()
        self.client = client or make_client(opts.project, opts.location)
        self.prefix = (opts.export or "").rstrip("/")
        if opts.export is not None:
            self.fs, self.fs_prefix = url_to_fs(self.prefix)

    @property
    def retry(self) -> Any:
        from google.cloud import bigquery

        return bigquery.DEFAULT_RETRY.with_deadline(self.opts.deadline_s)

    def _config(self, **kw: Any) -> Any:
        from google.cloud import bigquery

        return bigquery.QueryJobConfig(labels=self.opts.labels, **kw)

    def dry_run(self) -> int:
        """Bytes the query will scan (the seam DRY_RUN_BYTES_ENV replaces it for emulators)."""
        job = guard("dry run of the query", lambda: self.client.query(
            self.tpl.sql, job_config=self._config(
                dry_run=True, use_query_cache=False,
                query_parameters=query_parameters(self.tpl, self.values)),
            retry=self.retry, timeout=self.opts.deadline_s, job_retry=None))
        scanned = int(job.total_bytes_processed or 0)
        seam = os.environ.get(DRY_RUN_BYTES_ENV)
        return int(seam) if seam else scanned

    def gate(self, nbytes: int) -> None:
        cost = nbytes / 2**40 * PRICE_PER_TIB
        self.say(f"dry run: the query will scan {nbytes:,} bytes ({nbytes / 2**30:,.2f} GiB), "
                 f"estimated on-demand cost ${cost:,.2f} at ${PRICE_PER_TIB}/TiB")
        if nbytes > self.opts.max_bytes_billed:
            raise CostError(
                f"refused: the query would scan {nbytes:,} bytes, above --max-bytes-billed "
                f"{self.opts.max_bytes_billed:,}; raise it deliberately to run this query")

    def _wait(self, job: Any, what: str) -> Any:
        """Poll with progress; bounded retries on each poll, none on the job's own length."""
        self.say(f"{what}: job {job.job_id} — {self.console_link(job)}")
        t0 = time.monotonic()
        last = 0.0
        while not guard(f"{what} (job {job.job_id})",
                         lambda: job.done(retry=self.retry, timeout=self.opts.deadline_s)):
            if time.monotonic() - last > 10:
                self.say(f"{what}: running, {time.monotonic() - t0:,.0f} s")
                last = time.monotonic()
            time.sleep(0.5)
        if job.error_result:
            raise explain(job_exception(job), f"{what} (job {job.job_id})")
        return job

    def console_link(self, job: Any) -> str:
        loc = job.location or self.opts.location
        return (f"https://console.cloud.google.com/bigquery?project={job.project}"
                f"&j=bq:{loc}:{job.job_id}&page=queryresults")

    def _submit(self, sql: str, what: str, prefix: str, **cfg: Any) -> Any:
        job = guard(what, lambda: self.client.query(
            sql, job_config=self._config(maximum_bytes_billed=self.opts.max_bytes_billed, **cfg),
            job_id_prefix=prefix, retry=self.retry, timeout=self.opts.deadline_s,
            job_retry=None))  # never re-run a billed job behind the user's back
        return self._wait(job, what)

    def table_id(self) -> str:
        return f"{self.client.project}.{self.opts.dataset}.extract_{self.fingerprint[:16]}"

    def ensure_table(self, jobs: dict[str, str]) -> tuple[int, int]:
        """The query's result as a table (reused if it exists); returns (rows, bytes)."""
        from google.api_core import exceptions as gx
        from google.cloud import bigquery

        table_id = self.table_id()
        try:
            t = self.client.get_table(table_id, retry=self.retry, timeout=self.opts.deadline_s)
            self.say(f"reusing table {table_id} ({t.num_rows:,} rows): the query is not run "
                     "again")
            return int(t.num_rows or 0), int(t.num_bytes or 0)
        except gx.NotFound:
            pass
        except Exception as e:  # any other failure is explained
            raise explain(e, f"looking up table {table_id}") from None
        ds = bigquery.Dataset(f"{self.client.project}.{self.opts.dataset}")
        ds.location = self.opts.location
        ds.default_table_expiration_ms = 7 * 24 * 3600 * 1000  # scratch results expire
        guard(f"creating dataset {ds.dataset_id}", lambda: self.client.create_dataset(
            ds, exists_ok=True, retry=self.retry, timeout=self.opts.deadline_s))
        job = self._submit(f"CREATE OR REPLACE TABLE `{table_id}` AS\n{self.tpl.sql}",
                           "query into table", "corpus_query_",
                           query_parameters=query_parameters(self.tpl, self.values))
        jobs["query"] = job.job_id
        t = guard(f"reading table {table_id}", lambda: self.client.get_table(
            table_id, retry=self.retry, timeout=self.opts.deadline_s))
        self.say(f"query done: {t.num_rows:,} rows in {table_id}, "
                 f"{int(job.total_bytes_billed or 0):,} bytes billed")
        return int(t.num_rows or 0), int(t.num_bytes or 0)

    # --- the export on GCS ------------------------------------------------------------------
    def _bucket_exists(self) -> None:
        bucket = self.fs_prefix.split("/", 1)[0]
        if not within(self.opts.deadline_s, f"checking bucket gs://{bucket}",
                      lambda: self.fs.exists(bucket)):
            raise InputError(f"bucket gs://{bucket} does not exist (or these credentials "
                             "cannot see it): create it in the same location as the dataset")

    def _listing(self) -> list[str]:
        try:
            self.fs.invalidate_cache(self.fs_prefix)
            return sorted(p for p in self.fs.find(self.fs_prefix)
                          if posixpath.basename(p) != MARKER)
        except FileNotFoundError:
            return []

    def _marker(self) -> dict[str, Any] | None:
        path = f"{self.fs_prefix}/{MARKER}"
        if not self.fs.exists(path):
            return None
        with self.fs.open(path, "rb") as f:
            return json.loads(f.read())

    def _write_marker(self, record: dict[str, Any]) -> None:
        with self.fs.open(f"{self.fs_prefix}/{MARKER}", "wb") as f:
            f.write(json.dumps(record, indent=1).encode())

    def table_only(self) -> tuple[str, int]:
        """Gate, then the result table (reused if it exists): for the Storage Read API path."""
        from google.api_core import exceptions as gx

        try:
            self.client.get_table(self.table_id(), retry=self.retry,
                                  timeout=self.opts.deadline_s)
        except gx.NotFound:
            self.gate(self.dry_run())
        except Exception as e:  # any other failure is explained
            raise explain(e, f"looking up table {self.table_id()}") from None
        rows, _ = self.ensure_table({})
        return self.table_id(), rows

    def run(self) -> Export:
        fmt, ext, compression = FORMATS[self.opts.export_format]
        self._bucket_exists()
        marker, files = self._marker(), self._listing()
        if marker and marker.get("fingerprint") == self.fingerprint and marker.get("done"):
            listed = sorted(marker["files"])
            missing = [u for u in listed if url_to_fs(u)[1] not in files]
            if not missing:
                self.say(f"reusing the finished export under {self.prefix} (job "
                         f"{marker['jobs'].get('export')}): nothing is billed")
                return Export(listed, self.opts.export_format, marker["rows"],
                              self.fingerprint, marker["table"], marker["jobs"], 0, True)
        if files and not (marker and marker.get("fingerprint") == self.fingerprint):
            raise InputError(
                f"export prefix {self.prefix} already holds {len(files)} files that are not an "
                "export of this query (e.g. " + posixpath.basename(files[0]) + "); choose an "
                "empty prefix or delete them")
        scanned = self.dry_run()
        self.gate(scanned)
        jobs: dict[str, str] = {}
        self._write_marker({"fingerprint": self.fingerprint, "done": False})
        rows, _ = self.ensure_table(jobs)
        uri = f"{self.prefix}/part-*.{ext}"
        options = f"uri='{uri}', format='{fmt}', overwrite=true" + (
            f", compression='{compression}'" if compression else "")
        job = self._submit(f"EXPORT DATA OPTIONS({options}) AS\nSELECT * FROM "
                           f"`{self.table_id()}`", f"export to {self.prefix}", "corpus_export_")
        jobs["export"] = job.job_id
        listed = [f"gs://{p}" for p in self._listing() if p.endswith(f".{ext}")]
        if not listed:
            raise CloudError(f"export job {job.job_id} finished but {self.prefix} holds no "
                             f"*.{ext} files")
        self._write_marker({"fingerprint": self.fingerprint, "done": True, "files": listed,
                            "rows": rows, "table": self.table_id(), "jobs": jobs,
                            "format": self.opts.export_format, "query": self.opts.query,
                            "params": self.values})
        self.say(f"exported {rows:,} rows to {len(listed)} files under {self.prefix}")
        return Export(listed, self.opts.export_format, rows, self.fingerprint,
                      self.table_id(), jobs, scanned, False)
