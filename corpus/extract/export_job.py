"""Read a BigQuery export (Parquet or gzip JSON lines on gs://) into a dataset directory.

One partition per exported file, streamed batch by batch from GCS through gcsfs straight into
the output partition: no local copy of the export, never a whole file in memory (Parquet by row
group, JSON lines by block). Types are made the document schema's (JSON exports carry INT64 as
text); the rows written must add up to the rows BigQuery reported for the table.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator, Mapping
from typing import Any

import pyarrow as pa
import pyarrow.json as pj
import pyarrow.parquet as pq

from corpus import schema
from corpus.errors import InputError, SchemaError
from corpus.extract.bigquery import Export
from corpus.io import DatasetDir, url_to_fs
from corpus.stage import Job, write_documents

STAGE = "extract"
BATCH_ROWS = 2048
JSON_BLOCK = 8 << 20


class ExportReadJob(Job):
    stage = STAGE

    def __init__(self, export: Export, output: DatasetDir, query: str):
        self.export, self.output = export, output
        self.config = {"engine": "bigquery", "query": query, "format": export.format,
                       "export_fingerprint": export.fingerprint, "table": export.table}
        self.input_hash = export.fingerprint
        self.input_url = export.files[0].rsplit("/", 1)[0] if export.files else None
        self.out_schema = schema.arrow_schema(schema.RAW)

    def partitions(self, results: Mapping[str, Any] | None = None) -> list[str]:
        return [f"part-{i:05d}" for i in range(len(self.export.files))]

    def expected_rows_in(self) -> int:
        return self.export.rows

    def _batches(self, url: str) -> Iterator[pa.RecordBatch]:
        fs, path = url_to_fs(url)
        with fs.open(path, "rb") as f:
            if self.export.format == "parquet":
                reader = pq.ParquetFile(f)
                for batch in reader.iter_batches(BATCH_ROWS):
                    yield from conformed(pa.Table.from_batches([batch]))
            else:
                with gzip.GzipFile(fileobj=f) as g:
                    reader = pj.open_json(g, read_options=pj.ReadOptions(block_size=JSON_BLOCK))
                    for batch in reader:
                        yield from conformed(pa.Table.from_batches([batch]))

    def run_partition(self, key: str) -> dict[str, Any]:
        url = self.export.files[int(key.split("-")[1])]
        try:
            return write_documents(self.output, key, self._batches(url), self.out_schema)
        except FileNotFoundError as e:
            raise InputError(f"exported file {url} is gone; re-run to export again") from e
        except pa.ArrowInvalid as e:
            raise InputError(f"cannot read exported file {url}: {e}") from e


def conformed(t: pa.Table) -> Iterator[pa.RecordBatch]:
    """The document columns in the schema's types (JSON gives INT64 as strings, null columns
    as null type); an exported column the schema lacks is an error, not silently dropped."""
    names = [c.name for c in schema.RAW]
    missing = [n for n in names if n not in t.column_names]
    extra = [n for n in t.column_names if n not in names]
    if missing or extra:
        raise SchemaError("exported rows " + "; ".join(
            ([f"lack {', '.join(missing)}"] if missing else [])
            + ([f"have columns the document schema does not: {', '.join(extra)} (the "
                "bigquery engine keeps the document columns only)"] if extra else [])))
    yield from schema.conform(t.select([c.name for c in schema.RAW]), schema.RAW).to_batches()


class ReadApiJob(Job):
    """The result table read with the BigQuery Storage Read API instead of an export: no bucket
    needed (the Read API bills per byte read). One partition per read stream; each worker opens
    its own client (`make_storage_client`, injectable for emulators). Streams live 6 hours: a
    run resumed later re-plans its streams and starts over."""
    stage = STAGE

    def __init__(self, table: str, rows: int, fingerprint: str, output: DatasetDir, query: str,
                 streams: int):
        from google.cloud.bigquery_storage import types

        from corpus.extract.bigquery import make_storage_client

        self.output, self.rows = output, rows
        project, dataset, name = table.split(".")
        session = make_storage_client().create_read_session(
            parent=f"projects/{project}", max_stream_count=streams,
            read_session=types.ReadSession(
                table=f"projects/{project}/datasets/{dataset}/tables/{name}",
                data_format=types.DataFormat.ARROW))
        self.streams = [s.name for s in session.streams]
        self.config = {"engine": "bigquery", "query": query, "read": "storage-api",
                       "table": table, "session": session.name}
        self.input_hash = fingerprint
        self.input_url = None
        self.out_schema = schema.arrow_schema(schema.RAW)

    def partitions(self, results: Mapping[str, Any] | None = None) -> list[str]:
        return [f"part-{i:05d}" for i in range(len(self.streams))]

    def expected_rows_in(self) -> int:
        return self.rows

    def _batches(self, stream: str) -> Iterator[pa.RecordBatch]:
        from corpus.extract.bigquery import make_storage_client

        for page in make_storage_client().read_rows(stream).rows().pages:
            yield from conformed(pa.Table.from_batches([page.to_arrow()]))

    def run_partition(self, key: str) -> dict[str, Any]:
        return write_documents(self.output, key, self._batches(self.streams[int(key[5:])]),
                               self.out_schema)
