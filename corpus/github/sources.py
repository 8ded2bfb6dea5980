"""Where repositories come from: folders of checkouts, and installed Python distributions.

A directory source holds one repository per child directory (or is itself a repository when it
has a `.git`). A site-packages folder holds distributions; each is a "repository" named
`pypi/NAME@VERSION` whose files are the ones its RECORD lists.
"""

from __future__ import annotations

import csv
import fnmatch
import hashlib
import io
import os
import posixpath
import re
import site
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib.metadata import Distribution
from pathlib import Path

from corpus.errors import InputError

DEFAULT_REF = "refs/heads/main"


@dataclass(frozen=True)
class Repo:
    name: str  # repo_name in the tables
    ref: str
    root: str  # paths in the tables are relative to this directory
    kind: str  # "dir" or "dist"
    meta_dir: str | None = None  # the .dist-info / .egg-info folder of a distribution
    size_hint: int = 0  # bytes, to balance work; 0 when unknown
    identity: str = ""  # changes when the source changes: part of the input hash


@dataclass(frozen=True)
class Entry:
    """One file of a repository, or why it was skipped."""
    path: str  # relative, '/'-separated
    abspath: str
    skip: str | None = None  # reason, when the file cannot be part of the tables


def canonical(name: str) -> str:
    """PEP 503 name: lowercase, runs of -_. as one '-'."""
    return re.sub(r"[-_.]+", "-", name).lower()


def select(repos: Sequence[Repo], include: Sequence[str], exclude: Sequence[str]) -> list[Repo]:
    """Keep repos whose name (or, for a distribution, its package name) matches an include
    pattern (all when none given) and no exclude pattern. Patterns are fnmatch, any case."""
    def names(r: Repo) -> list[str]:
        out = [r.name.lower()]
        if r.kind == "dist":
            out.append(r.name[len("pypi/"):].split("@")[0])
        else:
            out.append(r.name.rsplit("/", 1)[-1].lower())
        return out

    def hit(r: Repo, patterns: Sequence[str]) -> bool:
        return any(fnmatch.fnmatchcase(n, p.lower()) or fnmatch.fnmatchcase(n, canonical(p))
                   for n in names(r) for p in patterns)

    return [r for r in repos if (not include or hit(r, include)) and not hit(r, exclude)]


# --- directories of repositories ---------------------------------------------------------
def _git_ref(root: Path) -> tuple[str, str]:
    """(ref, identity) from .git/HEAD, or the default ref for a plain folder."""
    head = root / ".git" / "HEAD"
    try:
        text = head.read_text().strip()
    except OSError:
        return DEFAULT_REF, ""
    if text.startswith("ref: "):
        ref = text[5:]
        try:
            commit = (root / ".git" / ref).read_text().strip()
        except OSError:
            commit = ""
        return ref, f"{ref}@{commit}"
    return text, text


def dir_repos(src: str) -> list[Repo]:
    root = Path(src)
    if not root.is_dir():
        raise InputError(f"source {src} is not a directory")
    children = [root] if (root / ".git").exists() else sorted(
        p for p in root.iterdir() if p.is_dir() and not p.is_symlink() and p.name != ".git")
    repos = []
    for child in children:
        ref, ident = _git_ref(child)
        owner = root.resolve().parent.name if child == root else root.resolve().name
        repos.append(Repo(
            name=f"{owner}/{child.name}", ref=ref, root=str(child.resolve()), kind="dir",
            identity=f"{child.resolve()}|{child.stat().st_mtime_ns}|{ident}",
        ))
    return repos


def walk_dir(repo: Repo) -> Iterator[Entry]:
    """Every file under the repository, `.git/` skipped, symlinks recorded, never followed."""
    for dirpath, dirnames, filenames in os.walk(repo.root, followlinks=False):
        links = [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]
        dirnames[:] = sorted(d for d in dirnames if d != ".git" and d not in links)
        for name in sorted(filenames + links):
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, repo.root).replace(os.sep, "/")
            yield Entry(rel, full)


# --- installed distributions -------------------------------------------------------------
def site_dirs() -> list[str]:
    """The running environment's site-packages folders (and the user's, when enabled). Not
    every sys.path entry: the current directory may hold a project's own .egg-info."""
    dirs = list(site.getsitepackages())
    if site.ENABLE_USER_SITE:
        dirs.append(site.getusersitepackages())
    seen, out = set(), []
    for p in dirs:
        p = os.path.abspath(p)
        if p not in seen and os.path.isdir(p):
            seen.add(p)
            out.append(p)
    return out


def dist_repos(paths: Sequence[str]) -> list[Repo]:
    """Distributions found in these folders (one environment): the first of a name wins,
    as for imports."""
    repos: dict[str, Repo] = {}
    for folder in paths:
        if not os.path.isdir(folder):
            raise InputError(f"site-packages folder {folder} does not exist")
        for entry in sorted(os.scandir(folder), key=lambda e: e.name):
            if not entry.name.endswith((".dist-info", ".egg-info")) or not entry.is_dir():
                continue
            dist = Distribution.at(entry.path)
            name, version = dist.metadata["Name"], dist.version
            if not name or canonical(name) in repos:
                continue
            record = _read_bytes(os.path.join(entry.path, "RECORD"))
            size = sum(int(f.size or 0) for f in dist.files or [])
            repos[canonical(name)] = Repo(
                name=f"pypi/{canonical(name)}@{version}", ref=f"refs/tags/{version}",
                root=folder, kind="dist", meta_dir=entry.path, size_hint=size,
                identity=f"{name}|{version}|{hashlib.sha256(record).hexdigest()}",
            )
    return sorted(repos.values(), key=lambda r: r.name)


def _read_bytes(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return b""


def record_paths(meta_dir: str) -> list[str]:
    """Paths a distribution's RECORD lists (relative to its site folder), in RECORD order."""
    data = _read_bytes(os.path.join(meta_dir, "RECORD")).decode("utf-8", "replace")
    return [row[0] for row in csv.reader(io.StringIO(data)) if row and row[0]]


def walk_dist(repo: Repo) -> Iterator[Entry]:
    """The files of a distribution; entries outside its site folder (scripts in bin/) or gone
    from disk are yielded with a skip reason so they are counted, not lost."""
    assert repo.meta_dir is not None
    listed = record_paths(repo.meta_dir)
    if not listed:
        dist = Distribution.at(repo.meta_dir)
        listed = [str(f) for f in dist.files or []]
    seen = set()
    for raw in listed:
        rel = posixpath.normpath(raw.replace("\\", "/"))
        if rel in seen:
            continue
        seen.add(rel)
        full = os.path.join(repo.root, rel)
        if rel.startswith("../") or rel == ".." or posixpath.isabs(rel):
            yield Entry(rel, full, skip="outside-site-packages")
        elif not os.path.lexists(full):
            yield Entry(rel, full, skip="missing")
        else:
            yield Entry(rel, full)


def walk(repo: Repo) -> Iterator[Entry]:
    return walk_dist(repo) if repo.kind == "dist" else walk_dir(repo)


def license_texts(repo: Repo) -> list[str]:
    """Texts of the repository's license files: top level for a folder; the metadata's
    License-File entries (or LICENSE* in its .dist-info) for a distribution."""
    from corpus.github.licenses import is_license_file

    candidates: list[Path] = []
    if repo.kind == "dir":
        candidates = sorted(p for p in Path(repo.root).iterdir()
                            if p.is_file() and is_license_file(p.name))
    else:
        assert repo.meta_dir is not None
        meta = Path(repo.meta_dir)
        dist = Distribution.at(meta)
        for lf in dist.metadata.get_all("License-File") or []:
            for c in (meta / "licenses" / lf, meta / lf):
                if c.is_file():
                    candidates.append(c)
                    break
        if not candidates:
            candidates = sorted(p for p in meta.rglob("*") if p.is_file()
                                and is_license_file(p.name))
    texts = []
    for p in candidates:
        try:
            texts.append(p.read_bytes()[:200_000].decode("utf-8", "replace"))
        except OSError:
            continue
    return texts
