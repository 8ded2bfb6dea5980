"""bqemulator, with EXPORT DATA landing in the GCS emulator as it does on real BigQuery.

bqemulator writes `gs://…` exports under a local folder (BQEMU_GCS_LOCAL_ROOT) and never talks
to a GCS server (../shared/COMPONENTS.md, 1a). This launcher wraps its export writer: the bucket
must exist in the GCS emulator at $STORAGE_EMULATOR_HOST (else the job fails with BigQuery's
"Not found"), and each written file is uploaded there and removed locally before the job is
DONE. Everything else is bqemulator unchanged. Usage: python tests/bq_server.py start [options]
"""

from __future__ import annotations

import os
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from bqemulator.cli import main
from bqemulator.domain.errors import NotFoundError
from bqemulator.jobs import executor

_write_export = executor.write_export


def _bucket_exists(endpoint: str, bucket: str) -> bool:
    try:
        with urllib.request.urlopen(f"{endpoint}/storage/v1/b/{urllib.parse.quote(bucket)}",
                                    timeout=30):
            return True
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return False
        raise


def _upload(endpoint: str, bucket: str, name: str, data: bytes) -> None:
    url = (f"{endpoint}/upload/storage/v1/b/{urllib.parse.quote(bucket)}/o?uploadType=media"
           f"&name={urllib.parse.quote(name, safe='')}")
    req = urllib.request.Request(url, data=data, method="POST",
                                 headers={"Content-Type": "application/octet-stream"})
    with urllib.request.urlopen(req, timeout=120):
        pass


def write_export(arrow_table, options, ctx):  # bqemulator's signature
    endpoint = os.environ["STORAGE_EMULATOR_HOST"].rstrip("/")
    bucket = options.uri[len("gs://"):].split("/", 1)[0]
    if not _bucket_exists(endpoint, bucket):
        raise NotFoundError(f"Not found: Bucket {bucket} (EXPORT DATA to {options.uri})")
    outcome = _write_export(arrow_table, options, ctx)
    for uri in outcome.uris:
        local = Path(executor._resolve_uri(uri, ctx))
        _upload(endpoint, bucket, uri[len("gs://"):].split("/", 1)[1], local.read_bytes())
        local.unlink()
    return outcome


executor.write_export = write_export

if __name__ == "__main__":
    main()
