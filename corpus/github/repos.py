"""The `repos` table from a repository list: a SEART GitHub Search export (CSV or JSON, the
source GPT-Code-Clippy selected from) or a GitHub API dump (the REST `repos` / search objects,
as a JSON array, `{"items": [...]}` or JSON lines; `.gz` read as gzip).

Column names are matched as each source spells them (SEART: name, stargazers, isFork,
mainLanguage, createdAt; the API: full_name, stargazers_count, fork, language, created_at);
licenses become the lowercase SPDX keys of the `licenses` table where the name is one GitHub
knows. A value that is not what its column holds is an error naming the row, never a guess.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import hashlib
import io
import json
from collections.abc import Iterator
from typing import Any

import pyarrow as pa

from corpus import schema
from corpus.errors import InputError
from corpus.github.licenses import normalize_expression

#: repos column -> the names sources give it, first found wins
ALIASES: dict[str, tuple[str, ...]] = {
    "repo_name": ("repo_name", "name", "full_name", "nameWithOwner"),
    "stars": ("stars", "stargazers", "stargazers_count", "watch_count", "watchers"),
    "forks": ("forks", "forks_count"),
    "is_fork": ("is_fork", "isFork", "fork"),
    "commits": ("commits",),
    "size": ("size",),
    "language": ("language", "mainLanguage", "main_language"),
    "license": ("license",),
    "created_at": ("created_at", "createdAt"),
    "pushed_at": ("pushed_at", "pushedAt"),
}
#: GitHub's license names (what SEART exports) to the keys of the licenses table
GITHUB_LICENSE_NAMES = {
    "mit license": "mit", "apache license 2.0": "apache-2.0",
    "gnu general public license v3.0": "gpl-3.0", "gnu general public license v2.0": "gpl-2.0",
    "gnu affero general public license v3.0": "agpl-3.0",
    "gnu lesser general public license v3.0": "lgpl-3.0",
    "gnu lesser general public license v2.1": "lgpl-2.1",
    'bsd 3-clause "new" or "revised" license': "bsd-3-clause",
    'bsd 2-clause "simplified" license': "bsd-2-clause", "bsd 4-clause \"original\" or \"old\" "
    "license": "bsd-4-clause", "mozilla public license 2.0": "mpl-2.0",
    "eclipse public license 2.0": "epl-2.0", "eclipse public license 1.0": "epl-1.0",
    "the unlicense": "unlicense", "creative commons zero v1.0 universal": "cc0-1.0",
    "isc license": "isc", "boost software license 1.0": "bsl-1.0", "zlib license": "zlib",
    "do what the f*ck you want to public license": "wtfpl", "artistic license 2.0": "artistic-2.0",
    "european union public license 1.2": "eupl-1.2", "academic free license v3.0": "afl-3.0",
    "other": "other",
}
_NONE = {"", "null", "none", "nan"}


def read(path: str) -> pa.Table:
    """The repos table of a repository list (see the module docstring)."""
    from corpus.io import url_to_fs

    fs, p = url_to_fs(path)
    if not fs.isfile(p):
        raise InputError(f"--repos {path}: no such file")
    with fs.open(p, "rb") as f:
        raw = f.read()
    if path.endswith(".gz"):
        raw = gzip.decompress(raw)
    name = path[:-3] if path.endswith(".gz") else path
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InputError(f"--repos {path}: not UTF-8 text ({e.reason} at byte {e.start})") from e
    records = _csv(text) if name.lower().endswith(".csv") else _json(text, path)
    return table(records, path)


def _csv(text: str) -> Iterator[tuple[int, dict[str, Any]]]:
    reader = csv.DictReader(io.StringIO(text))
    for row in reader:
        yield reader.line_num, row


def _json(text: str, path: str) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        if e.msg != "Extra data":
            raise InputError(f"--repos {path}: not JSON (line {e.lineno}: {e.msg})") from e
        for n, line in enumerate(text.splitlines(), 1):  # JSON lines
            if line.strip():
                try:
                    yield n, json.loads(line)
                except json.JSONDecodeError as e2:
                    raise InputError(f"--repos {path}, line {n}: not JSON ({e2.msg})") from e2
        return
    if isinstance(doc, dict) and any(k in doc for k in ALIASES["repo_name"]):
        doc = [doc]  # one repository (a one-line JSON lines file)
    items = doc.get("items", doc.get("repos")) if isinstance(doc, dict) else doc
    if not isinstance(items, list):
        raise InputError(f"--repos {path}: expected a JSON array of repositories or an object "
                         "with 'items'")
    yield from ((i + 1, r) for i, r in enumerate(items))


def table(records: Iterator[tuple[int, dict[str, Any]]], where: str) -> pa.Table:
    """Rows of the REPOS schema, sorted by repo_name; InputError naming the first bad row."""
    cols: dict[str, list[Any]] = {c.name: [] for c in schema.REPOS}
    seen: dict[str, int] = {}
    for n, rec in records:
        if not isinstance(rec, dict):
            raise InputError(f"--repos {where}, row {n}: not an object")
        row = {c.name: _value(c, _field(rec, c.name), where, n) for c in schema.REPOS}
        name = row["repo_name"]
        if not name:
            raise InputError(f"--repos {where}, row {n}: no repository name (one of "
                             f"{', '.join(ALIASES['repo_name'])})")
        if name in seen:
            raise InputError(f"--repos {where}, row {n}: {name} is listed twice (first at row "
                             f"{seen[name]})")
        seen[name] = n
        for k, v in row.items():
            cols[k].append(v)
    t = pa.table({c.name: pa.array(cols[c.name], c.arrow) for c in schema.REPOS},
                 schema=schema.arrow_schema(schema.REPOS))
    return t.sort_by("repo_name")


def _field(rec: dict[str, Any], column: str) -> Any:
    for key in ALIASES[column]:
        if key in rec:
            return rec[key]
    return None


def _value(col: schema.Column, v: Any, where: str, n: int) -> Any:
    if isinstance(v, str) and v.strip().lower() in _NONE:
        return None
    if v is None:
        return None
    try:
        if col.name == "license":
            return license_key(v)
        if col.type == schema.INT64:
            if isinstance(v, bool) or (isinstance(v, float) and not v.is_integer()):
                raise ValueError
            return int(str(v).replace(",", "").strip()) if isinstance(v, str) else int(v)
        if col.type == schema.BOOL:
            if isinstance(v, bool):
                return v
            word = str(v).strip().lower()
            if word not in ("true", "false", "1", "0"):
                raise ValueError
            return word in ("true", "1")
        if col.type == schema.TIMESTAMP:
            t = dt.datetime.fromisoformat(str(v).strip())
            return t if t.tzinfo else t.replace(tzinfo=dt.UTC)
        return str(v).strip()
    except (ValueError, TypeError):
        raise InputError(f"--repos {where}, row {n}: {col.name} {str(v)[:40]!r} is not "
                         f"{'a date' if col.type == schema.TIMESTAMP else col.type}") from None


def fingerprint(t: pa.Table) -> str:
    """sha256 of the table's Arrow IPC bytes: changes exactly when a value does."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, t.schema) as w:
        w.write_table(t)
    return hashlib.sha256(sink.getvalue()).hexdigest()


def license_key(v: Any) -> str | None:
    """A license as the licenses table keys it: from an API object (spdx_id, key, name) or a
    name; an unrecognised name is kept lowercased, so a license is never dropped."""
    if isinstance(v, dict):
        spdx = v.get("spdx_id")
        if spdx and spdx != "NOASSERTION":
            return normalize_expression(spdx) or spdx.lower()
        v = v.get("key") or v.get("name")
        if not v:
            return None
    text = str(v).strip()
    return (GITHUB_LICENSE_NAMES.get(text.lower()) or normalize_expression(text)
            or text.lower())
