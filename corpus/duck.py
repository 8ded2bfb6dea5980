"""DuckDB connections set up the same way everywhere: thread count, spill folder, fsspec."""

from __future__ import annotations

import os
import tempfile

import duckdb
import fsspec

from corpus.io import url_to_fs


def connect(threads: int | None = None,
            memory_limit: str | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory database that spills to the system temp folder, never to the cwd.
    Threads: as asked, else CORPUS_DUCKDB_THREADS, else one per core."""
    spill = os.path.join(tempfile.gettempdir(), f"corpus-duckdb-{os.getpid()}")
    default = os.environ.get("CORPUS_DUCKDB_THREADS") or os.cpu_count() or 1
    config = {
        "threads": str(threads or default),
        "temp_directory": spill,
        "preserve_insertion_order": "true",
        # VARCHAR as Arrow large_string: our schema's type, so batches need no copying cast
        "arrow_large_buffer_size": "true",
    }
    if memory_limit:
        config["memory_limit"] = memory_limit
    con = duckdb.connect(config=config)
    con.execute("SET enable_progress_bar = false")  # the engine shows progress, not DuckDB
    return con


def source(con: duckdb.DuckDBPyConnection, url: str) -> str:
    """A path DuckDB can read for `url`, registering the fsspec filesystem when it is remote."""
    fs, path = url_to_fs(url)
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    if protocol in ("file", "local"):
        return path
    if not _registered(con, protocol):
        con.register_filesystem(fsspec.filesystem(protocol, **fs.storage_options))
    return f"{protocol}://{path}"


def _registered(con: duckdb.DuckDBPyConnection, protocol: str) -> bool:
    return any(protocol == name or f"{protocol}://" in name
               for name in con.list_filesystems())


def literal(value: str) -> str:
    """A SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def parquet_scan(con: duckdb.DuckDBPyConnection, urls: list[str]) -> str:
    """`read_parquet([...])` over these files."""
    return "read_parquet([" + ", ".join(literal(source(con, u)) for u in urls) + "])"
