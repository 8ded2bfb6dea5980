"""`corpus github-tables`: GitHub-shaped `files`, `contents`, `licenses` tables from local code.

Work is split in two: chunks of repositories are walked and hashed in parallel (each writes its
files rows, its distinct blobs and its licenses under `_chunks/`), then one global step on the
engine merges them with DuckDB (out of core): `copies` counted over all files, blobs deduplicated,
everything sorted so the same sources always give byte-identical tables.
"""

from __future__ import annotations

import dataclasses
import os
import posixpath
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Annotated, Any

import pyarrow as pa
from pydantic import Field

from corpus import duck, schema
from corpus.config_check import Size
from corpus.errors import InputError
from corpus.github import licenses, sources
from corpus.github import repos as repo_list
from corpus.github.blob import MAX_CONTENT_BYTES, MODE_SYMLINK, Blob, read_blob
from corpus.github.names import escape
from corpus.github.safeio import Unreadable, os_reason
from corpus.io import DatasetDir
from corpus.manifest import digest, merge_counts
from corpus.stage import DocumentStats, Job, reason_counts
from corpus.units import parse_size

STAGE = "github-tables"
CHUNKS = "_chunks"
#: Small row groups, sorted by id: a query over an id range (one extract partition) reads only
#: the groups whose min/max overlap it.
TABLE_ROW_GROUP_BYTES = 4 * 1024 * 1024
#: DuckDB's memory while merging the chunks (past it, the sort spills to disk; its default, 80 %
#: of RAM, is no bound on a shared worker), and contents rows per batch written
MERGE_MEMORY = "256MB"
MERGE_BATCH_ROWS = 1024
BLOBS = (schema.Column("id", schema.STRING), schema.Column("size", schema.INT64),
         schema.Column("content", schema.STRING), schema.Column("binary", schema.BOOL))


@dataclass
class GithubTablesOptions:
    sources: Annotated[list[str], Field(description="Folders whose child folders are "
                                        "repositories (or a repository itself).")] = \
        field(default_factory=list)
    site_packages: Annotated[bool, Field(description="Every installed distribution of this "
                                         "Python environment, as a repo named "
                                         "pypi/NAME@VERSION.")] = False
    site_packages_dirs: Annotated[list[str], Field(description="A folder of installed "
                                                   "distributions (pip install --target DIR)."
                                                   )] = field(default_factory=list)
    include: Annotated[list[str], Field(description="Only repos / distributions whose name "
                                        "matches (fnmatch).")] = field(default_factory=list)
    exclude: Annotated[list[str], Field(description="Skip these (fnmatch).")] = \
        field(default_factory=list)
    chunk_bytes: Annotated[Size, Field(description="Work per task, by the sizes the "
                                       "distributions declare.")] = 64 * 1024 * 1024
    repos: Annotated[str | None, Field(description=(
        "A repository list, written as the repos table (stars, forks, is_fork, commits, "
        "language, license, dates): a SEART GitHub Search export (.csv or .json) or a GitHub "
        "API dump (JSON array or lines)."))] = None


def discover(opts: GithubTablesOptions) -> list[sources.Repo]:
    repos: list[sources.Repo] = []
    for src in opts.sources:
        repos += sources.dir_repos(src)
    # each folder is an environment of its own: a name shadows the same name only within it
    # (so several releases of a package, installed into folders of their own, are all read)
    if opts.site_packages:
        repos += sources.dist_repos(sources.site_dirs())
    for folder in opts.site_packages_dirs:
        repos += sources.dist_repos([folder])
    if not (opts.sources or opts.site_packages or opts.site_packages_dirs):
        raise InputError("nothing to read: give SRC folders, --site-packages or "
                         "--site-packages-dir")
    names: set[str] = set()
    unique = []
    for r in sources.select(repos, opts.include, opts.exclude):
        if r.name not in names:
            names.add(r.name)
            unique.append(r)
    if not unique:
        raise InputError("no repositories found" + (
            f" matching --include {opts.include}" if opts.include else ""))
    # stats of every file of the selected repositories only (see sources.identity)
    return [dataclasses.replace(r, identity=sources.identity(r)) for r in unique]


def group(repos: list[sources.Repo], chunk_bytes: int) -> list[list[sources.Repo]]:
    """Consecutive repositories packed into chunks of about chunk_bytes (unknown size: alone)."""
    chunks: list[list[sources.Repo]] = []
    size = 0
    for r in repos:
        if not chunks or r.size_hint == 0 or size + r.size_hint > chunk_bytes \
                or chunks[-1][-1].size_hint == 0:
            chunks.append([r])
            size = r.size_hint
        else:
            chunks[-1].append(r)
            size += r.size_hint
    return chunks


def detect_license(repo: sources.Repo) -> tuple[str | None, str]:
    texts = sources.license_texts(repo)
    if repo.kind == "dist":
        assert repo.meta_dir is not None
        return licenses.from_metadata(sources.SafeDistribution(repo.meta_dir).metadata, texts)
    for text in texts:
        if key := licenses.detect_text(text):
            return key, "license file"
    return None, "none"


class GithubTablesJob(Job):
    stage = STAGE

    def __init__(self, opts: GithubTablesOptions, output: DatasetDir):
        self.output = output
        repos = discover(opts)
        total = sum(r.size_hint for r in repos)
        # at least ~16 chunks when there is enough to split, so small inputs use every worker
        self.chunks = group(repos, max(1 << 20, min(opts.chunk_bytes, total // 16)))
        self.config = asdict(opts)
        self.config["sources"] = [escape(os.path.abspath(s)) for s in opts.sources]
        self.config["site_packages_dirs"] = [escape(os.path.abspath(s))
                                             for s in opts.site_packages_dirs]
        self.config["repos"] = escape(os.path.abspath(opts.repos)) if opts.repos else None
        # read now: a bad list fails before any repository is walked
        self.repos = repo_list.read(opts.repos) if opts.repos else None
        self.input_hash = digest([r.identity for r in repos] + (
            [repo_list.fingerprint(self.repos)] if self.repos is not None else []))

    def partitions(self, results: Mapping[str, Any] | None = None) -> list[str]:
        return [f"chunk-{i:05d}" for i in range(len(self.chunks))]

    def expected_rows_in(self) -> int | None:
        return None  # files are enumerated on the workers; each chunk accounts for its own

    def run_partition(self, key: str) -> dict[str, Any]:
        repos = self.chunks[int(key.split("-")[1])]
        files: dict[str, list[Any]] = {c.name: [] for c in schema.FILES}
        blobs: dict[str, Any] = {}
        removed: dict[str, list[Any]] = {c.name: [] for c in schema.REMOVED}
        lic_rows: dict[str, list[str]] = {"repo_name": [], "license": []}
        unlicensed, rows_in = [], 0
        notes: Counter[str] = Counter()  # kept as they are, but worth knowing (names.py)
        for repo in repos:
            notes["repo-name-escaped"] += repo.name_escaped
            key_, _ = detect_license(repo)
            if key_:
                lic_rows["repo_name"].append(repo.name)
                lic_rows["license"].append(key_)
            else:
                unlicensed.append(repo.name)
            seen: set[str] = set()
            for entry in sources.walk(repo):
                rows_in += 1
                notes["path-escaped"] += entry.escaped
                reason, blob = entry.skip, None
                if reason is None and entry.path in seen:
                    reason = "path-collision"  # an escaped name spelled like a real one
                if reason is None:
                    blob, reason = _read(entry.abspath)
                seen.add(entry.path)
                if blob is None:
                    for col, v in (("id", None), ("repo_name", repo.name), ("path", entry.path),
                                   ("size", None), ("stage", STAGE), ("reason", reason)):
                        removed[col].append(v)
                    continue
                # a link's blob is its target's bytes: binary exactly when they are not UTF-8
                notes["symlink-target-escaped"] += blob.mode == MODE_SYMLINK and blob.binary
                for col, v in (("repo_name", repo.name), ("ref", repo.ref), ("path", entry.path),
                               ("mode", blob.mode), ("id", blob.id),
                               ("symlink_target", blob.symlink_target)):
                    files[col].append(v)
                blobs.setdefault(blob.id, blob)
        out = self.output
        by_id = [blobs[i] for i in sorted(blobs)]
        written = [
            self._write(f"{CHUNKS}/files/{key}.parquet", files, schema.FILES),
            self._write(f"{CHUNKS}/blobs/{key}.parquet", {  # by id: ranges read few groups
                "id": [b.id for b in by_id], "size": [b.size for b in by_id],
                "content": [b.content for b in by_id],
                "binary": [b.binary for b in by_id]}, BLOBS, TABLE_ROW_GROUP_BYTES),
            self._write(f"{CHUNKS}/licenses/{key}.parquet", lic_rows, schema.LICENSES),
        ]
        n_removed = len(removed["path"])
        if n_removed:
            written.append(self._write(out.removed_file(key), removed, schema.REMOVED))
        return {
            "rows_in": rows_in, "rows": len(files["path"]), "removed": n_removed,
            "bytes": sum(n for _, n in written),
            "content_bytes": sum(b.size for b in blobs.values()),
            "reasons": reason_counts(pa.table(removed)) if n_removed else {},
            "licenses": _count(lic_rows["license"]), "languages": {},
            "repos": [r.name for r in repos], "unlicensed": unlicensed,
            "notes": {k: n for k, n in sorted(notes.items()) if n},
            "files": [rel for rel, _ in written],
        }

    def _write(self, rel: str, cols: dict[str, list[Any]], columns,
               row_group_bytes: int | None = None) -> tuple[str, int]:
        arrow = schema.arrow_schema(columns)
        table = pa.table({c.name: pa.array(cols[c.name], c.arrow) for c in columns}, schema=arrow)
        extra = {"row_group_bytes": row_group_bytes} if row_group_bytes else {}
        return rel, self.output.write_parquet(rel, table, arrow, **extra)

    def finish(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        """Merge the chunks into the three tables (runs on a worker)."""
        out = self.output
        con = duck.connect(memory_limit=MERGE_MEMORY)
        chunk = {kind: [f"{out.url.rstrip('/')}/{CHUNKS}/{kind}/{r['key']}.parquet"
                        for r in records] for kind in ("files", "blobs", "licenses")}
        scan = {k: duck.parquet_scan(con, v) for k, v in chunk.items()}
        readers = {  # each query runs when its table is written (one result at a time)
            "files": lambda: con.execute(f"SELECT * FROM {scan['files']} ORDER BY repo_name, "
                                         "path").to_arrow_reader(8192),
            "contents": lambda: _contents(con, scan["files"], scan["blobs"], id_ranges(
                sum(r.get("content_bytes", 0) for r in records))),
            "licenses": lambda: con.execute(f"SELECT * FROM {scan['licenses']} ORDER BY "
                                            "repo_name").to_arrow_reader(8192),
        }
        tables = {}
        for name, batches in readers.items():
            columns = schema.GITHUB_TABLES[name]
            counter = DocumentStats()
            nbytes = out.write_parquet(f"{name}.parquet", counter.watch(batches()),
                                       schema.arrow_schema(columns),
                                       row_group_bytes=TABLE_ROW_GROUP_BYTES)
            tables[name] = {"rows": counter.rows, "bytes": nbytes}
        con.close()
        out.fs.rm(posixpath.join(out.path, CHUNKS), recursive=True)
        unlicensed = sorted(n for r in records for n in r.get("unlicensed", []))
        extra = {}
        if self.repos is not None:
            nbytes = out.write_parquet("repos.parquet", self.repos, self.repos.schema)
            tables["repos"] = {"rows": self.repos.num_rows, "bytes": nbytes}
            walked = {n for r in records for n in r.get("repos", [])}
            listed = set(self.repos.column("repo_name").to_pylist())
            # worth knowing, not an error: an export usually lists more than was cloned
            extra["repos_listed"] = {"walked": len(walked & listed),
                                     "not_walked": len(listed - walked),
                                     "walked_not_listed": len(walked - listed)}
        return {"tables": tables, "repos": sum(len(r.get("repos", [])) for r in records),
                "unlicensed_repos": unlicensed, "notes": merge_counts(records, "notes"),
                **extra}


def id_ranges(content_bytes: int) -> list[tuple[str, str | None]]:
    """[lo, hi) ranges of blob ids (sha1 hex: uniform) small enough that sorting one range's
    contents fits in a quarter of MERGE_MEMORY (DuckDB's sort of long strings does not spill
    reliably: the whole of site-packages, ~1 GB, ran out of 512 MB in one sort)."""
    n = max(1, min(4096, -(-content_bytes * 4 // parse_size(MERGE_MEMORY))))
    bounds = [f"{i * 65536 // n:04x}" for i in range(n)]
    return [(lo, bounds[i + 1] if i + 1 < n else None) for i, lo in enumerate(bounds)]


def _contents(con: Any, files: str, blobs: str, ranges: list[tuple[str, str | None]]
              ) -> Iterator[pa.RecordBatch]:
    """The distinct blobs in id order, each with the number of files that hold it. DuckDB only
    sorts, one id range at a time (each chunk's blobs are written in id order, so a range reads
    only the row groups that overlap it); a blob held by several chunks comes once per chunk,
    with the same bytes (its id is their hash), and the repeats are dropped here. The counts
    are read in the same id order, so the k-th distinct blob is the k-th count."""
    counts = con.execute(f"SELECT id, count(*) AS copies FROM {files} GROUP BY id ORDER BY id"
                         ).fetch_arrow_table()
    ids, copies = counts.column("id").combine_chunks(), counts.column("copies")
    last: str | None = None
    pos = 0
    for b in _ranges_sorted(con, blobs, ranges):
        got = b.column("id").to_pylist()
        keep = [i for i, x in enumerate(got) if x != (got[i - 1] if i else last)]
        if not keep:
            continue
        last = got[-1]
        b = b.take(pa.array(keep))
        if not b.column("id").equals(ids.slice(pos, b.num_rows)):
            raise AssertionError("github-tables: the blobs and the files' ids disagree")
        yield b.append_column("copies", copies.slice(pos, b.num_rows).combine_chunks())
        pos += b.num_rows
    if pos != len(ids):
        raise AssertionError(f"github-tables: {len(ids) - pos} files have no blob")


def _ranges_sorted(con: Any, blobs: str, ranges: list[tuple[str, str | None]]
                   ) -> Iterator[pa.RecordBatch]:
    for lo, hi in ranges:
        upper = f" AND id < '{hi}'" if hi else ""
        yield from con.execute(f"SELECT id, size, content, \"binary\" FROM {blobs} WHERE id >= "
                               f"'{lo}'{upper} ORDER BY id").to_arrow_reader(MERGE_BATCH_ROWS)


def _read(path: str) -> tuple[Blob | None, str | None]:
    """The blob of a listed file, or None and why it cannot be in the tables."""
    try:
        return read_blob(path, MAX_CONTENT_BYTES), None
    except Unreadable as e:
        return None, e.reason
    except OSError as e:
        return None, os_reason(e)


def _count(values: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return out


# --- the stage's declaration (corpus/registry.py) ---------------------------------------------
KIND = "github-tables"
OPTIONS = GithubTablesOptions
NEEDS_INPUT = False  # a source: its folders are options
READS: tuple[str, ...] = ()
WRITES = tuple(dict.fromkeys(c.name for c in (*schema.FILES, *schema.CONTENTS, *schema.LICENSES,
                                               *schema.REPOS)))


def make_job(opts: GithubTablesOptions, input: DatasetDir | None,
             out: DatasetDir) -> GithubTablesJob:
    return GithubTablesJob(opts, out)
