"""A TABLES folder: GitHub-shaped tables, each `NAME.parquet` or a folder `NAME/` of Parquet.

Anything else in the folder (manifest.json, removed/, notes) is ignored.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable

import pyarrow as pa
import pyarrow.parquet as pq

from corpus import schema
from corpus.errors import InputError
from corpus.io import DatasetDir
from corpus.manifest import dataset_hash, digest


def locate(tables: str, names: Iterable[str]) -> dict[str, list[str]]:
    """URLs of the Parquet files of each named table; InputError naming what is missing."""
    d = DatasetDir(tables)
    if not d.exists():
        raise InputError(f"tables folder {tables} does not exist")
    found: dict[str, list[str]] = {}
    for name in sorted(set(names)):
        single = d.join(f"{name}.parquet")
        folder = d.join(name)
        if d.fs.isfile(single):
            files = [single]
        elif d.fs.isdir(folder):
            files = sorted(p for p in d.fs.find(folder) if p.endswith(".parquet"))
            if not files:
                raise InputError(f"table '{name}': folder {tables}/{name}/ holds no .parquet files")
        else:
            raise InputError(
                f"missing table '{name}' in {tables}: expected {name}.parquet or a folder "
                f"{name}/ of Parquet files")
        found[name] = [_url(d, p) for p in files]
    return found


def _url(d: DatasetDir, path: str) -> str:
    """Full URL of a path on the folder's filesystem (keeps gs:// and friends)."""
    return d.fs.unstrip_protocol(path) if d.url != d.path else path


def check(located: dict[str, list[str]]) -> dict[str, pa.Schema]:
    """Read every file's footer; fail on unreadable files and on columns GitHub's tables do
    not have in the expected type. Returns each table's schema (from its first file)."""
    schemas = {}
    for name, urls in located.items():
        for url in urls:
            d = DatasetDir(posixpath.dirname(url))
            try:
                with d.fs.open(d.join(posixpath.basename(url)), "rb") as f:
                    s = pq.read_schema(f)
            except (OSError, pa.ArrowException) as e:
                raise InputError(f"table '{name}': cannot read Parquet file {url}: {e}") from e
            schema.check(s, schema.GITHUB_TABLES.get(name, ()), f"table '{name}' ({url})")
            schemas.setdefault(name, s)
    return schemas


def stats(located: dict[str, list[str]]) -> dict[str, dict[str, int]]:
    """Rows and uncompressed bytes per table, from Parquet footers only."""
    out = {}
    for name, urls in located.items():
        rows = nbytes = 0
        for url in urls:
            d = DatasetDir(posixpath.dirname(url))
            with d.fs.open(d.join(posixpath.basename(url)), "rb") as f:
                meta = pq.ParquetFile(f).metadata
            rows += meta.num_rows
            nbytes += sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
        out[name] = {"rows": rows, "bytes": nbytes}
    return out


def tables_hash(tables: str, located: dict[str, list[str]]) -> str:
    """The input hash of a TABLES folder: its manifest's hash when `corpus github-tables`
    wrote it, else the names and sizes of its Parquet files."""
    d = DatasetDir(tables)
    manifest = d.manifest()
    if manifest is not None and manifest.get("complete"):
        return dataset_hash(manifest)
    sizes = []
    for name, urls in sorted(located.items()):
        for url in urls:
            dd, base = DatasetDir(posixpath.dirname(url)), posixpath.basename(url)
            sizes.append((name, base, dd.fs.size(dd.join(base))))
    return digest(sizes)
