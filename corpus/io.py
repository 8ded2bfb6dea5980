"""Dataset directories on any fsspec filesystem: atomic Parquet partitions, removed rows, JSON.

Layout of a dataset directory (see docs/datasets.md), a Hugging Face dataset folder:
    data/part-00000.parquet ...   documents, zstd
    removed/part-00000.parquet    one row per dropped document (only where some were dropped)
    README.md                     the dataset card: its `configs` name data/ (default) and
                                  removed/, so `datasets.load_dataset(DIR)` reads the documents
    _done/part-00000.json         a partition's record, written after its data (resume marker)
    manifest.json                 the stage's record: config, input hash, counts, timings, and
                                  every file of the finished output with its size
    .corpus-lock                  the writer's lock (corpus/lock.py); never part of the data

A folder without a manifest is read as plain Parquet: its `data/*.parquet`, else its top-level
`*.parquet` files. A manifest of an older layout (documents at the top) is refused with the
command that converts it (`corpus migrate`, corpus/migrate.py).

A directory is complete only when its manifest says so and every file it lists is there with
its recorded size (`problems`); a writer removes the manifest before anything else.
"""

from __future__ import annotations

import errno
import json
import os
import posixpath
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from corpus.errors import InputError
from corpus.lock import LOCK_FILE
from corpus.manifest import FORMAT

COMPRESSION = "zstd"
#: Target uncompressed bytes per Parquet row group: big enough to compress well, small enough
#: that a reader (or DuckDB's row-group pruning) does not pull a whole partition at once.
ROW_GROUP_BYTES = 32 * 1024 * 1024
DONE_DIR = "_done"
DATA_DIR = "data"
REMOVED_DIR = "removed"
MANIFEST = "manifest.json"
#: Manifest formats whose documents lie at the top of the directory.
LEGACY_FORMATS = ("corpus-dataset/1",)
TMP_MARK = ".tmp-"
#: Top-level folders of resume markers and multi-step scratch space (not data).
SCRATCH = (DONE_DIR, "_work", "_chunks")


def url_to_fs(url: str) -> tuple[fsspec.AbstractFileSystem, str]:
    fs, path = fsspec.core.url_to_fs(url)
    return fs, path.rstrip("/") or "/"


class DatasetDir:
    """A directory of Parquet partitions plus its manifest, addressed by local path or URL."""

    def __init__(self, url: str):
        self.url = str(url)
        self.fs, self.path = url_to_fs(self.url)
        self._plain_cache: bool | None = None

    def __repr__(self) -> str:
        return f"DatasetDir({self.url!r})"

    def __reduce__(self):  # ship the URL to workers, not the filesystem object
        return (DatasetDir, (self.url,))

    # --- paths ----------------------------------------------------------------------------
    def join(self, *parts: str) -> str:
        return posixpath.join(self.path, *parts)

    def part_file(self, key: str) -> str:
        """A partition's documents: data/KEY.parquet (KEY.parquet in a plain folder)."""
        return f"{key}.parquet" if self._plain() else posixpath.join(DATA_DIR, f"{key}.parquet")

    def _plain(self) -> bool:
        """A folder of Parquet files at the top and no manifest (decided once)."""
        if self._plain_cache is None:
            self._plain_cache = not self.fs.exists(self.join(MANIFEST)) and \
                not self.fs.isdir(self.join(DATA_DIR)) and self.fs.isdir(self.path) and any(
                    p.endswith(".parquet") for p in self.fs.ls(self.path, detail=False))
        return self._plain_cache

    @staticmethod
    def removed_file(key: str) -> str:
        return posixpath.join(REMOVED_DIR, f"{key}.parquet")

    def exists(self, rel: str = "") -> bool:
        return self.fs.exists(self.join(rel) if rel else self.path)

    def is_empty(self) -> bool:
        """Nothing in it but (maybe) a writer's lock."""
        return not self.exists() or not [
            p for p in self.fs.ls(self.path, detail=False)
            if posixpath.basename(p.rstrip("/")) != LOCK_FILE]

    # --- JSON -----------------------------------------------------------------------------
    def read_json(self, rel: str) -> dict[str, Any] | None:
        path = self.join(rel)
        if not self.fs.exists(path):
            return None
        try:
            with self.fs.open(path, "rb") as f:
                return json.loads(f.read())
        except (OSError, ValueError) as e:
            raise InputError(f"cannot read {self.url}/{rel}: {e}") from e

    def write_json(self, rel: str, obj: Any) -> None:
        data = json.dumps(obj, indent=1, sort_keys=True, default=str).encode() + b"\n"
        self._atomic(rel, lambda f: f.write(data))

    def manifest(self) -> dict[str, Any] | None:
        return self.read_json(MANIFEST)

    def complete_manifest(self) -> dict[str, Any] | None:
        """The manifest, when it says complete and every file it lists is intact."""
        m = self.manifest()
        check_layout(self.url, m)
        return m if m is not None and m.get("complete") and not self.problems(m) else None

    def files(self) -> dict[str, int]:
        """Every data file under the directory (relative path -> size): not the manifest, the
        lock, resume markers, scratch space or temporary files. One listing."""
        out: dict[str, int] = {}
        if not self.fs.exists(self.path):
            return out
        for path, info in self.fs.find(self.path, detail=True).items():
            rel = posixpath.relpath(path, self.path)
            top = rel.split("/", 1)[0]
            if rel in (MANIFEST, LOCK_FILE) or top in SCRATCH or TMP_MARK in rel \
                    or info.get("type") == "directory":
                continue
            out[rel] = int(info.get("size") or 0)
        return dict(sorted(out.items()))

    def problems(self, manifest: dict[str, Any]) -> list[str]:
        """Files a finished manifest lists that are missing or have another size. Manifests
        written before file sizes were recorded: their partitions' files must exist."""
        have = self.files()
        if "files" in manifest:
            want = manifest["files"]
            return sorted(f"{rel} (missing)" if rel not in have else
                          f"{rel} ({have[rel]} bytes, expected {size})"
                          for rel, size in want.items() if have.get(rel) != size)
        return sorted(f"{f} (missing)" for p in manifest.get("partitions", [])
                      for f in p.get("files", []) if f not in have)

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        self.write_json(MANIFEST, manifest)

    # --- Parquet --------------------------------------------------------------------------
    def write_parquet(
        self, rel: str, data: pa.Table | Iterable[pa.RecordBatch], schema: pa.Schema,
        row_group_bytes: int = ROW_GROUP_BYTES, compression: str = COMPRESSION,
    ) -> int:
        """Write atomically (temp name, then rename); return the file's size in bytes.
        compression="none" for data that cannot compress (hashes), to save the CPU."""
        batches = data.to_batches() if isinstance(data, pa.Table) else data

        def write(f):
            with pq.ParquetWriter(f, schema, compression=compression) as w:
                for group in row_groups(batches, schema, row_group_bytes):
                    w.write_table(group)

        self._atomic(rel, write)
        return int(self.fs.size(self.join(rel)))

    def read_parquet(self, rel: str, columns: list[str] | None = None,
                     filters: list[tuple[str, str, Any]] | None = None) -> pa.Table:
        path = self.join(rel)
        try:
            with self.fs.open(path, "rb") as f:
                return pq.read_table(f, columns=columns, filters=filters)
        except FileNotFoundError as e:
            raise InputError(f"missing Parquet file {self.url}/{rel}") from e
        except (OSError, pa.ArrowException) as e:
            raise InputError(f"cannot read Parquet file {self.url}/{rel}: {e}") from e

    def parquet_metadata(self, rel: str) -> pq.FileMetaData:
        """A file's footer: schema, rows, row groups. InputError naming the file if unreadable."""
        try:
            with self.fs.open(self.join(rel), "rb") as f:
                return pq.ParquetFile(f).metadata
        except FileNotFoundError as e:
            raise InputError(f"missing Parquet file {self.url}/{rel}") from e
        except (OSError, pa.ArrowException) as e:
            raise InputError(f"cannot read Parquet file {self.url}/{rel}: {e}") from e

    def content_hash(self, keys: list[str]) -> str:
        """What a stage reading this directory records as its input hash: the manifest's
        content hash when a stage wrote it, else the names and sizes of its partitions."""
        from corpus.manifest import dataset_hash, digest

        manifest = self.manifest()
        if manifest is not None and manifest.get("complete"):
            return dataset_hash(manifest)
        return digest([(k, self.fs.size(self.join(self.part_file(k)))) for k in keys])

    @property
    def object_store(self) -> bool:
        """gs://, s3://, …: an object appears whole when its upload completes, and a rename
        is a copy (or, on the GCS emulator, unsupported), so writes go straight to the name."""
        protocols = {self.fs.protocol} if isinstance(self.fs.protocol, str) \
            else set(self.fs.protocol)
        return bool(protocols & {"gs", "gcs", "s3", "s3a", "az", "abfs", "hf"})

    def _atomic(self, rel: str, write) -> None:
        try:
            self._atomic_write(rel, write)
        except OSError as e:
            if e.errno in (errno.ENOSPC, errno.EDQUOT) and not e.filename:
                raise OSError(e.errno, os.strerror(e.errno), f"{self.url}/{rel}") from e
            raise

    def _atomic_write(self, rel: str, write) -> None:
        final = self.join(rel)
        if self.object_store:
            f = self.fs.open(final, "wb")
            try:
                write(f)
            except BaseException:
                f.discard()  # cancel the upload: a failed write must not leave a partial object
                f.closed = True  # …and closing must not commit what was buffered
                raise
            f.close()
            return
        parent = posixpath.dirname(final)
        self.fs.makedirs(parent, exist_ok=True)
        tmp = f"{final}{TMP_MARK}{uuid.uuid4().hex[:12]}"
        try:
            with self.fs.open(tmp, "wb") as f:
                write(f)
            self.fs.mv(tmp, final)
        except BaseException:
            if self.fs.exists(tmp):
                self.fs.rm(tmp)
            raise

    # --- partitions -----------------------------------------------------------------------
    def partition_keys(self) -> list[str]:
        """Partitions in order: the manifest's list, else every top-level *.parquet file."""
        manifest = self.manifest()
        check_layout(self.url, manifest)
        if manifest is not None:
            if not manifest.get("complete"):
                raise InputError(
                    f"{self.url} is incomplete (its stage has not finished); re-run that stage"
                )
            if bad := self.problems(manifest):
                raise InputError(
                    f"{self.url} is damaged: {len(bad)} of the files its manifest lists are "
                    f"missing or changed ({', '.join(bad[:3])}{', …' if len(bad) > 3 else ''});"
                    " re-run its stage")
            return [p["key"] for p in manifest["partitions"]]
        if not self.exists():
            raise InputError(f"no such dataset directory: {self.url}")
        top = self.path if self._plain() else self.join(DATA_DIR)
        files = sorted(p for p in self.fs.ls(top, detail=False) if p.endswith(".parquet")) \
            if self.fs.isdir(top) else []
        if not files:
            raise InputError(f"{self.url} holds no manifest.json and no *.parquet files")
        return [posixpath.basename(p)[: -len(".parquet")] for p in files]

    def done_records(self, marker_dir: str = DONE_DIR) -> dict[str, dict[str, Any]]:
        """Records of finished partitions: marker present and every file it lists exists."""
        records: dict[str, dict[str, Any]] = {}
        done = self.join(marker_dir)
        if not self.fs.exists(done):
            return records
        for path in self.fs.ls(done, detail=False):
            name = posixpath.basename(path)
            if not name.endswith(".json") or TMP_MARK in name:
                continue
            rec = self.read_json(posixpath.join(marker_dir, name))
            if rec and all(self.fs.exists(self.join(f)) for f in rec.get("files", [])):
                records[rec["key"]] = rec
        return records

    def invalidate(self) -> None:
        """Replace the manifest by a tombstone (`complete: false, cleared: true`): from here on
        the directory is not complete, whatever happens to the rest of it, and a later writer
        knows it may empty it (first step of every replace)."""
        try:
            old = self.manifest()
        except InputError:  # unreadable: replaced all the same
            old = None
        if old is not None or not self.is_empty():
            self.write_manifest({"format": FORMAT, "complete": False,
                                 "cleared": True, "stage": (old or {}).get("stage")})

    def clear(self) -> None:
        """Empty the directory: the manifest first (a kill halfway leaves an incomplete
        directory, never a "complete" one with holes), then everything but the lock."""
        if not self.fs.exists(self.path):
            return
        self.invalidate()
        keep = (LOCK_FILE, MANIFEST)
        for p in self.fs.ls(self.path, detail=False):
            if posixpath.basename(p.rstrip("/")) not in keep:
                self.fs.rm(p, recursive=True)
        self.fs.rm(self.join(MANIFEST))

    def remove_temp_files(self) -> int:
        """Delete leftovers of writes that died before their rename."""
        if not self.fs.exists(self.path):
            return 0
        leftovers = [p for p in self.fs.find(self.path) if TMP_MARK in posixpath.basename(p)]
        for p in leftovers:
            self.fs.rm(p)
        return len(leftovers)


def is_legacy(manifest: dict[str, Any] | None) -> bool:
    """A finished or half-written output of an older layout (not a tombstone of a replace)."""
    return manifest is not None and not manifest.get("cleared") and \
        manifest.get("format") in LEGACY_FORMATS


def check_layout(url: str, manifest: dict[str, Any] | None) -> None:
    """Refuse a directory of an older layout: it would be misread."""
    if manifest is not None and is_legacy(manifest):
        raise InputError(f"{url} is in the old corpus layout ({manifest.get('format')}, "
                         f"documents at the top): convert it with `corpus migrate {url}`")


def row_groups(batches: Iterable[pa.RecordBatch], schema: pa.Schema,
               target: int = ROW_GROUP_BYTES) -> Iterator[pa.Table]:
    """Regroup batches into row groups of about `target` bytes. A group ends at the first row
    where the bytes since the group's start reach the target, whatever the incoming batch sizes,
    so the same rows always give byte-identical files."""
    pending: list[pa.RecordBatch] = []
    pending_bytes = 0
    for batch in batches:
        if batch.num_rows == 0:
            continue
        if batch.schema != schema:
            batch = batch.cast(schema)
        pending.append(batch)
        pending_bytes += int(row_bytes(batch).sum())
        if pending_bytes < target:
            continue
        table = pa.Table.from_batches(pending, schema=schema)
        start = 0
        for end in _cut_points(row_bytes(table), target):
            yield table.slice(start, end - start)
            start = end
        rest = table.slice(start).combine_chunks()
        pending = rest.to_batches()
        pending_bytes = int(row_bytes(rest).sum())
    if pending:
        yield pa.Table.from_batches(pending, schema=schema)


def _cut_points(sizes: np.ndarray, target: int) -> list[int]:
    """End rows (exclusive) of each full group: where bytes since the last cut reach target."""
    cum = np.cumsum(sizes)
    cuts: list[int] = []
    reach = target
    while True:
        i = int(np.searchsorted(cum, reach, side="left"))
        if i >= len(cum):
            return cuts
        cuts.append(i + 1)
        reach = int(cum[i]) + target


def row_bytes(data: pa.Table | pa.RecordBatch) -> np.ndarray:
    """Bytes per row: string/binary lengths plus 8 per other column (an estimate that depends
    only on the row's values, never on how batches were sliced)."""
    total = np.zeros(data.num_rows, dtype=np.int64)
    for col in data.columns:
        t = col.type
        if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t) \
                or pa.types.is_large_binary(t):
            total += pc.fill_null(pc.binary_length(col), 0).to_numpy(zero_copy_only=False)
        else:
            total += 8
    return total
