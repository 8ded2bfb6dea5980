"""`corpus import SRC OUT`: an existing corpus (codeparrot-clean's `.json.gz`, The Pile's
`.jsonl.zst`, Parquet or a `datasets` folder) as a dataset directory of document rows, so our
stages run on it.

One partition per source file. Each record's fields are mapped to the document columns
(`columns`: column -> source field, a dotted name reaching into objects, e.g.
`meta.pile_set_name`; unmapped columns are looked up under their usual names), its id is the
git blob sha1 of the content (what `git hash-object` prints), its language comes from the
path's extension when the source has none, and a record that cannot be a document is removed
with a reason, never dropped: not-json, not-an-object, no-content, content-not-text,
not-utf8, bad-copies, not-selected (a `where` condition failed).
"""

from __future__ import annotations

import hashlib
import posixpath
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

import pyarrow as pa
from pydantic import Field

from corpus import languages, schema
from corpus.errors import ConfigError
from corpus.imports import read
from corpus.io import DatasetDir, url_to_fs
from corpus.manifest import digest
from corpus.stage import Job, write_documents

STAGE = "import"
#: document column -> the source fields tried, in order, when `columns` does not name one
USUAL: dict[str, tuple[str, ...]] = {
    "content": ("content", "text", "code"),
    "repo_name": ("repo_name", "repository_name", "repo", "max_stars_repo_name",
                  "meta.repo_name"),
    "path": ("path", "file_path", "filepath", "max_stars_repo_path", "meta.path"),
    "copies": ("copies",),
    "license": ("license", "licenses", "max_stars_repo_licenses", "meta.license"),
    "language": ("language", "lang", "meta.language"),
}
#: document columns the import computes itself
COMPUTED = {"id", "size"}
BATCH_BYTES = 32 << 20


@dataclass
class ImportOptions:
    source: Annotated[str, Field(description="A file, a folder (read recursively) or a glob of "
                                 ".jsonl/.json (.gz, .zst), .parquet or .arrow files.")]
    columns: Annotated[dict[str, str], Field(description=(
        "Document column -> source field (dotted for nested objects), e.g. "
        "{content = \"text\"}; unnamed columns are found by their usual names."))] = \
        field(default_factory=dict)
    where: Annotated[dict[str, list[str]], Field(description=(
        "Keep only records whose field has one of these values, e.g. "
        "{\"meta.pile_set_name\" = [\"Github\"]}; others are removed as not-selected."))] = \
        field(default_factory=dict)


def blob_id(data: bytes) -> str:
    """git's blob sha1: sha1 of 'blob <size>\\0' and the bytes."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def lookup(rec: Mapping[str, Any], name: str) -> tuple[bool, Any]:
    """(found, value) of a field, a dotted name walking into nested objects."""
    value: Any = rec
    for part in name.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return False, None
        value = value[part]
    return True, value


class ImportJob(Job):
    stage = STAGE

    def __init__(self, opts: ImportOptions, output: DatasetDir):
        computed = sorted(set(opts.columns) & COMPUTED)
        if computed:
            raise ConfigError(f"columns: {', '.join(computed)}: computed from the content, "
                              "never imported")
        unknown = sorted(set(opts.columns) - set(USUAL))
        if unknown:
            raise ConfigError(f"columns: {', '.join(unknown)}: not a document column "
                              f"({', '.join(USUAL)})")
        self.opts, self.output = opts, output
        self.files = read.files(opts.source)
        #: each file as the manifest names it: relative to the folder they share
        base = posixpath.dirname(self.files[0]) if len(self.files) == 1 else \
            posixpath.commonpath(self.files)
        self.names = [posixpath.relpath(f, base) for f in self.files]
        self.config = {"source": opts.source, "columns": dict(sorted(opts.columns.items())),
                       "where": {k: sorted(v) for k, v in sorted(opts.where.items())}}
        fs, _ = url_to_fs(self.files[0])
        infos = [fs.info(p) for p in self.files]
        self.input_hash = digest([(p, i.get("size"), str(i.get("mtime")))
                                  for p, i in zip(self.files, infos, strict=True)])
        self.input_url = opts.source
        self.out_schema = schema.arrow_schema(schema.RAW)

    def partitions(self, results: Mapping[str, Any] | None = None) -> list[str]:
        return [f"part-{i:05d}" for i in range(len(self.files))]

    def run_partition(self, key: str) -> dict[str, Any]:
        url = self.files[int(key.split("-")[1])]
        removed: dict[str, list[Any]] = {c.name: [] for c in schema.REMOVED}
        seen: dict[str, set[str]] = {"used": set(), "all": set()}

        def kept() -> Iterator[pa.RecordBatch]:
            cols: dict[str, list[Any]] = {c.name: [] for c in schema.RAW}
            size = 0
            for batch in read.records(url):
                for where, rec in batch:
                    doc, reason = self._document(url, where, rec, seen)
                    if reason is not None:
                        for c, v in (("id", doc.get("id")), ("repo_name", doc.get("repo_name")),
                                     ("path", doc.get("path")), ("size", doc.get("size")),
                                     ("stage", STAGE), ("reason", reason)):
                            removed[c].append(v)
                        continue
                    for c in cols:
                        cols[c].append(doc[c])
                    size += doc["size"]
                    if size >= BATCH_BYTES:
                        yield self._batch(cols)
                        cols, size = {c.name: [] for c in schema.RAW}, 0
            if cols["id"]:
                yield self._batch(cols)

        record = write_documents(self.output, key, kept(), self.out_schema, lambda: pa.table(
            {c.name: pa.array(removed[c.name], c.arrow) for c in schema.REMOVED}))
        record["source"] = self.names[int(key.split("-")[1])]
        record["fields_unused"] = sorted(seen["all"] - seen["used"])
        return record

    def _batch(self, cols: dict[str, list[Any]]) -> pa.RecordBatch:
        return pa.record_batch([pa.array(cols[c.name], c.arrow) for c in schema.RAW],
                               schema=self.out_schema)

    def _field(self, rec: Mapping[str, Any], column: str, seen: dict[str, set[str]]
               ) -> tuple[bool, Any]:
        names = (self.opts.columns[column],) if column in self.opts.columns else USUAL[column]
        for name in names:
            found, value = lookup(rec, name)
            if found:
                seen["used"].add(name.split(".")[0])
                return True, value
        return False, None

    def _document(self, url: str, where: str, rec: Any, seen: dict[str, set[str]]
                  ) -> tuple[dict[str, Any], str | None]:
        """The document of a record, or what it could be known by and why it is removed."""
        fallback = {"repo_name": f"import/{posixpath.basename(url)}", "path": where}
        if isinstance(rec, str):
            return fallback, rec
        seen["all"].update(rec)
        doc: dict[str, Any] = {}
        for c in ("repo_name", "path"):
            found, value = self._field(rec, c, seen)
            doc[c] = str(value) if found and value is not None else fallback[c]
        for name, allowed in self.opts.where.items():
            found, value = lookup(rec, name)
            seen["used"].add(name.split(".")[0])
            if not found or str(value) not in allowed:
                return doc, f"not-selected {name}={value if found else '(missing)'}"
        found, content = self._field(rec, "content", seen)
        if not found or content is None:
            return doc, "no-content"
        if isinstance(content, bytes):
            try:
                content = content.decode("utf-8")
            except UnicodeDecodeError:
                doc["size"] = len(content)
                return doc, "not-utf8"
        if not isinstance(content, str):
            return doc, f"content-not-text a {type(content).__name__}"
        try:
            data = content.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate (JSON "\ud800")
            return doc, "not-utf8 lone surrogate"
        doc.update(id=blob_id(data), size=len(data), content=content)
        found, copies = self._field(rec, "copies", seen)
        try:
            doc["copies"] = int(copies) if found and copies is not None else 1
        except (TypeError, ValueError):
            return doc, f"bad-copies {str(copies)[:40]!r}"
        _, lic = self._field(rec, "license", seen)
        doc["license"] = " or ".join(map(str, lic)) if isinstance(lic, list) else (
            None if lic is None else str(lic))
        _, lang = self._field(rec, "language", seen)
        doc["language"] = str(lang) if lang else languages.of_path(doc["path"])
        return doc, None

    def finish(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        unused = sorted({f for r in records for f in r.get("fields_unused", [])})
        return {"import": {"files": len(self.files), "fields_not_imported": unused}}


# --- the stage's declaration (corpus/registry.py) ---------------------------------------------
KIND = "import"
OPTIONS = ImportOptions
NEEDS_INPUT = False  # a source: its files are options
READS: tuple[str, ...] = ()
WRITES = tuple(c.name for c in schema.RAW)


def make_job(opts: ImportOptions, input: DatasetDir | None, out: DatasetDir) -> ImportJob:
    return ImportJob(opts, out)
