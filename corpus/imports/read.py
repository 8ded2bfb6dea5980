"""The files of an existing corpus, as records: JSON lines (`.jsonl`, `.json`, `.ndjson`;
plain, `.gz` as codeparrot-clean ships, `.zst` as The Pile ships, `.bz2`, `.xz`), Parquet,
and Arrow files of a `datasets` folder (`save_to_disk`: `data-*.arrow`, an IPC stream).

A record is (where, fields) where fields is a dict, or (where, error) for a line that is not
a JSON object: one bad line never hides the others. Decompression streams (pyarrow's codecs,
no whole file in memory); Parquet and Arrow are read a batch at a time.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from corpus.errors import InputError
from corpus.io import url_to_fs

CODECS = {".gz": "gzip", ".zst": "zstd", ".bz2": "bz2", ".lz4": "lz4"}
JSON = (".jsonl", ".json", ".ndjson")
BATCH_ROWS = 1024
#: what `datasets`' save_to_disk writes beside its .arrow files: metadata, not records
DATASETS_METADATA = {"dataset_info.json", "state.json", "dataset_dict.json"}
Record = tuple[str, "dict[str, Any] | str"]


def kind(path: str) -> str | None:
    """json, parquet or arrow by the file's name; None for a file that is none of them."""
    name = posixpath.basename(path).lower()
    for ext in CODECS:
        if name.endswith(ext):
            name = name[:-len(ext)]
            break
    if name.endswith(JSON):
        return "json"
    if name.endswith(".parquet"):
        return "parquet"
    if name.endswith(".arrow"):
        return "arrow"
    return None


def files(source: str) -> list[str]:
    """The importable files of a file, a folder (recursively) or a glob, sorted."""
    fs, path = url_to_fs(source)
    if any(c in path for c in "*?["):
        found = sorted(fs.glob(path))
    elif fs.isdir(path):
        found = sorted(fs.find(path))
    elif fs.isfile(path):
        found = [path]
    else:
        raise InputError(f"import source {source} does not exist")
    out = [p for p in found if kind(p) and "/." not in p[len(path):]
           and posixpath.basename(p) not in DATASETS_METADATA]
    if not out:
        raise InputError(f"import source {source} holds no .jsonl/.json(.gz|.zst), .parquet or "
                         ".arrow files")
    return [fs.unstrip_protocol(p) if "://" in source else p for p in out]


def records(url: str) -> Iterator[list[Record]]:
    """Batches of records of one file."""
    k = kind(url)
    if k == "json":
        yield from _json_lines(url)
        return
    if k not in ("parquet", "arrow"):
        raise InputError(f"cannot import {url}: not JSON lines, Parquet or Arrow")
    n = 0
    for b in (_parquet if k == "parquet" else _arrow)(url):
        rows = b.to_pylist()
        yield [(f"row {n + i + 1}", r) for i, r in enumerate(rows)]
        n += len(rows)


def _parquet(url: str) -> Iterator[pa.RecordBatch]:
    fs, path = url_to_fs(url)
    with fs.open(path, "rb") as f:
        yield from pq.ParquetFile(f).iter_batches(BATCH_ROWS)


def _arrow(url: str) -> Iterator[pa.RecordBatch]:
    """save_to_disk's files are IPC streams; an IPC file (random access) is read too."""
    fs, path = url_to_fs(url)
    with fs.open(path, "rb") as f:
        try:
            batches: Any = iter(pa.ipc.open_stream(f))
        except pa.ArrowInvalid:
            f.seek(0)
            reader = pa.ipc.open_file(f)
            batches = (reader.get_batch(i) for i in range(reader.num_record_batches))
        for b in batches:
            for start in range(0, b.num_rows, BATCH_ROWS):
                yield b.slice(start, BATCH_ROWS)


def _stream(url: str) -> Any:
    fs, path = url_to_fs(url)
    raw = fs.open(path, "rb")
    codec = next((c for ext, c in CODECS.items() if path.lower().endswith(ext)), None)
    return pa.CompressedInputStream(raw, codec) if codec else raw


def _json_lines(url: str) -> Iterator[list[Record]]:
    batch: list[Record] = []
    with _stream(url) as f:
        for n, line in enumerate(_lines(f), 1):
            if not line.strip():
                continue
            where = f"line {n}"
            try:
                value = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                batch.append((where, f"not-json {type(e).__name__}: {str(e)[:80]}"))
            else:
                batch.append((where, value if isinstance(value, dict) else
                              f"not-an-object a JSON {type(value).__name__}"))
            if len(batch) >= BATCH_ROWS:
                yield batch
                batch = []
    if batch:
        yield batch


def _lines(f: Any) -> Iterator[bytes]:
    """Lines of a binary stream, split on \\n only (JSON lines; a \\r stays in its line)."""
    rest = b""
    while chunk := f.read(1 << 20):
        parts = (rest + chunk).split(b"\n")
        rest = parts.pop()
        yield from parts
    if rest:
        yield rest
