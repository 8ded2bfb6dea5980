"""`corpus migrate DIR...`: an output of the old layout (corpus-dataset/1: documents at the top
of the folder) converted in place to the Hugging Face layout (documents under data/, a dataset
card). Moves files (renames), rewrites the manifest's file lists and format, writes the card;
the content hash is unchanged, so later stages made from it stay up to date.

Safe to repeat and to interrupt: a file already moved is recognised, and the manifest is
rewritten last, so an interrupted conversion is finished by running the command again.
"""

from __future__ import annotations

import posixpath
from typing import Any

from corpus import dataset_card
from corpus.errors import InputError
from corpus.io import DATA_DIR, MANIFEST, DatasetDir, is_legacy
from corpus.manifest import FORMAT

CONVERTED, CURRENT = "converted", "already in the current layout"


def targets(url: str) -> list[str]:
    """The folder itself when it is an output, else (a run root) every stage folder in it."""
    d = DatasetDir(url)
    if not d.exists():
        raise InputError(f"no such folder: {url}")
    if d.exists(MANIFEST):
        return [url]
    found = sorted(p for p in d.fs.ls(d.path, detail=False)
                   if d.fs.isdir(p) and d.fs.exists(posixpath.join(p, MANIFEST)))
    if not found:
        raise InputError(f"{url} is neither a corpus output (no {MANIFEST}) nor a run root "
                         "(no stage folder with one)")
    return [posixpath.join(url.rstrip("/"), posixpath.basename(p.rstrip("/"))) for p in found]


def migrate(url: str) -> list[tuple[str, str]]:
    """Convert every output under `url`; (folder, what happened) for each."""
    return [(t, migrate_dir(t)) for t in targets(url)]


def moved(rel: str, keys: set[str]) -> str:
    """Where the old layout's file `rel` lives now: a partition's documents go under data/."""
    if "/" not in rel and rel.endswith(".parquet") and rel[: -len(".parquet")] in keys:
        return posixpath.join(DATA_DIR, rel)
    return rel


def migrate_dir(url: str) -> str:
    d = DatasetDir(url)
    m = d.manifest()
    if m is None:
        raise InputError(f"{url} holds no {MANIFEST}: not a corpus output")
    if not is_legacy(m):
        return CURRENT
    if not m.get("complete"):
        raise InputError(f"{url} is an unfinished output of the old layout: run its stage "
                         "again with --overwrite (there is nothing finished to convert)")
    keys = {p["key"] for p in m.get("partitions", [])}
    files: dict[str, int] = m.get("files") or {
        f: 0 for p in m.get("partitions", []) for f in p.get("files", [])}
    renames = {rel: moved(rel, keys) for rel in files}
    for old, new in renames.items():  # an interrupted run may have moved some already
        if old != new and d.exists(old):
            d.fs.makedirs(d.join(DATA_DIR), exist_ok=True)
            d.fs.mv(d.join(old), d.join(new))
    new_files = {renames[rel]: size for rel, size in files.items()}
    sizes = d.files()
    bad = [f for f, size in new_files.items()
           if f not in sizes or ("files" in m and sizes[f] != size)]
    if bad:
        raise InputError(f"{url} is damaged ({len(bad)} listed files missing or changed, e.g. "
                         f"{bad[0]}): run its stage again with --overwrite")
    out: dict[str, Any] = {**m, "format": FORMAT, "partitions": [
        {**p, "files": [renames.get(f, f) for f in p.get("files", [])]}
        for p in m.get("partitions", [])]}
    if not (m.get("card") or (m.get("parquet") or {}).get("card")):  # Hub shards have theirs
        dataset_card.write(d, out)
    out["files"] = {**{f: sizes[f] for f in new_files},
                    **({dataset_card.FILE: d.fs.size(d.join(dataset_card.FILE))}
                       if d.exists(dataset_card.FILE) else {})}
    d.write_manifest(out)
    return CONVERTED
