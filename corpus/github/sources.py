"""Where repositories come from: folders of checkouts, and installed Python distributions.

A directory source holds one repository per child directory (or is itself a repository when it
has a `.git`). A site-packages folder holds distributions; each is a "repository" named
`pypi/NAME@VERSION` whose files are the ones its RECORD lists.

Listing never opens a file: entries are classified by lstat (regular files and symlinks are
read, FIFOs, sockets and devices are skipped with a reason), and a repository's identity (what
decides whether its tables are up to date) is the stat of every file it holds.
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
import stat
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib.metadata import PathDistribution
from pathlib import Path

from corpus.errors import InputError
from corpus.github.names import escape, needs_escape
from corpus.github.safeio import os_reason, read_small, skip_reason

DEFAULT_REF = "refs/heads/main"
#: Coarser than any file system's timestamps (FAT: 2 s; ext4, xfs, tmpfs: a few ms).
RACY_NS = 2_000_000_000


@dataclass(frozen=True)
class Repo:
    name: str  # repo_name in the tables
    ref: str
    root: str  # paths in the tables are relative to this directory
    kind: str  # "dir" or "dist"
    meta_dir: str | None = None  # the .dist-info / .egg-info folder of a distribution
    size_hint: int = 0  # bytes, to balance work; 0 when unknown
    identity: str = ""  # changes when a file changes: part of the input hash (see identity)
    name_escaped: bool = False  # the folder name was not UTF-8 (corpus.github.names)


@dataclass(frozen=True)
class Entry:
    """One file of a repository, or why it was skipped."""
    path: str  # relative, '/'-separated; escaped when not UTF-8 (corpus.github.names)
    abspath: str
    skip: str | None = None  # reason, when the file cannot be part of the tables
    st: os.stat_result | None = None  # lstat when listed
    escaped: bool = False  # path holds bytes that are not UTF-8, written escaped


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
def _git_ref(root: Path) -> str:
    """The ref .git/HEAD names (a commit when detached), the default for a plain folder."""
    data = read_small(str(root / ".git" / "HEAD"), 4096)
    text = (data or b"").decode("utf-8", "replace").strip()
    if not text:
        return DEFAULT_REF
    return text[5:] if text.startswith("ref: ") else text


def dir_repos(src: str) -> list[Repo]:
    root = Path(src)
    if not root.is_dir():
        raise InputError(f"source {escape(src)} is not a directory")
    try:
        children = [root] if (root / ".git").exists() else sorted(
            p for p in root.iterdir() if p.is_dir() and not p.is_symlink() and p.name != ".git")
    except OSError as e:
        raise InputError(f"cannot list source {escape(src)}: {e.strerror or e}") from e
    repos = []
    for child in children:
        owner = root.resolve().parent.name if child == root else root.resolve().name
        name = f"{owner}/{child.name}"
        repos.append(Repo(name=escape(name), ref=_git_ref(child), root=str(child.resolve()),
                          kind="dir", name_escaped=needs_escape(name)))
    return repos


def walk_tree(root: str) -> Iterator[Entry]:
    """Every file under root in name order, `.git` skipped, symlinks recorded (never followed),
    special files and folders that cannot be listed yielded with their skip reason. A folder
    seen twice (a bind mount of its parent) is a `directory-loop`, not walked again."""
    seen: set[tuple[int, int]] = set()
    stack = [(root, "")]
    while stack:
        folder, rel = stack.pop()
        try:
            st = os.lstat(folder) if rel else os.stat(folder)  # a sub-folder: not via a link
            if not stat.S_ISDIR(st.st_mode):  # replaced since it was listed
                yield _entry(rel.rstrip("/") or ".", folder, "changed-while-read (not a folder)")
                continue
            with os.scandir(folder) as it:
                items = sorted(it, key=lambda e: e.name)
        except OSError as e:
            why = "missing" if isinstance(e, FileNotFoundError) else \
                f"unreadable-directory: {e.strerror or e}"
            yield _entry(rel.rstrip("/") or ".", folder, why)
            continue
        if (st.st_dev, st.st_ino) in seen:
            yield _entry(rel.rstrip("/"), folder, "directory-loop")
            continue
        seen.add((st.st_dev, st.st_ino))
        subdirs = []
        for item in items:
            if item.name == ".git":
                continue
            try:
                st = item.stat(follow_symlinks=False)
            except OSError as e:
                yield _entry(rel + item.name, item.path, os_reason(e))
                continue
            if stat.S_ISDIR(st.st_mode):
                subdirs.append((item.path, f"{rel}{item.name}/"))
            else:
                yield _entry(rel + item.name, item.path, skip_reason(st.st_mode), st)
        stack.extend(reversed(subdirs))


def _entry(rel: str, full: str, skip: str | None, st: os.stat_result | None = None) -> Entry:
    return Entry(escape(rel), full, skip, st, needs_escape(rel))


def walk_dir(repo: Repo) -> Iterator[Entry]:
    return walk_tree(repo.root)


# --- installed distributions -------------------------------------------------------------
class SafeDistribution(PathDistribution):
    """importlib.metadata's view of a .dist-info / .egg-info folder, reading its files through
    safeio (a FIFO named METADATA cannot block) and decoding bad UTF-8 instead of failing."""

    def __init__(self, path: str):
        super().__init__(Path(path))
        self._folder = path

    def read_text(self, filename: str | os.PathLike[str]) -> str | None:
        data = read_small(os.path.join(self._folder, filename))
        return None if data is None else data.decode("utf-8", "replace")


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
            raise InputError(f"site-packages folder {escape(folder)} does not exist")
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as e:
            raise InputError(f"cannot list {escape(folder)}: {e.strerror or e}") from e
        for entry in entries:
            if not entry.name.endswith((".dist-info", ".egg-info")) or not entry.is_dir():
                continue
            dist = SafeDistribution(entry.path)
            name, version = dist.metadata["Name"], dist.version
            if not name or canonical(name) in repos:
                continue
            size = sum(int(row[2]) for row in _record_rows(entry.path)
                       if len(row) > 2 and row[2].isdigit())
            repos[canonical(name)] = Repo(
                name=f"pypi/{canonical(name)}@{version}", ref=f"refs/tags/{version}",
                root=folder, kind="dist", meta_dir=entry.path, size_hint=size)
    return sorted(repos.values(), key=lambda r: r.name)


def _record_rows(meta_dir: str) -> list[list[str]]:
    data = (read_small(os.path.join(meta_dir, "RECORD")) or b"").decode("utf-8", "replace")
    return [row for row in csv.reader(io.StringIO(data)) if row and row[0]]


def record_paths(meta_dir: str) -> list[str]:
    """Paths a distribution's RECORD lists (relative to its site folder), in RECORD order."""
    return [row[0] for row in _record_rows(meta_dir)]


def walk_dist(repo: Repo) -> Iterator[Entry]:
    """The files of a distribution; entries outside its site folder (scripts in bin/), gone
    from disk or not regular files are yielded with a skip reason so they are counted."""
    assert repo.meta_dir is not None
    listed = record_paths(repo.meta_dir)
    if not listed:
        try:
            listed = [str(f) for f in SafeDistribution(repo.meta_dir).files or []]
        except ValueError:  # a malformed size or hash column
            listed = []
    seen = set()
    for raw in listed:
        rel = posixpath.normpath(raw.replace("\\", "/"))
        if rel in seen:
            continue
        seen.add(rel)
        full = os.path.join(repo.root, rel)
        if rel.startswith("../") or rel == ".." or posixpath.isabs(rel):
            yield Entry(rel, full, skip="outside-site-packages")
            continue
        try:
            st = os.lstat(full)
        except OSError as e:
            yield Entry(rel, full, skip=os_reason(e))
            continue
        yield Entry(rel, full, skip_reason(st.st_mode), st)


def walk(repo: Repo) -> Iterator[Entry]:
    return walk_dist(repo) if repo.kind == "dist" else walk_dir(repo)


def identity(repo: Repo) -> str:
    """What the tables of a repository depend on, hashed: its name and ref, then per file its
    path, type, mode, size, mtime and ctime (ns) and a symlink's target; for a distribution
    also the files of its metadata folder. Stats only, no file is read; ctime is set by the
    kernel on every write and every utime(), so an edit is seen even when it keeps the size
    and restores the mtime. The folder's own mtime or a git HEAD play no part.

    A file changed less than RACY_NS ago could change again within the same timestamp tick
    unseen (git's "racy" files): then the identity is made unique, so the next build
    recomputes instead of trusting these stats."""
    h = hashlib.sha256(f"{repo.kind}\0{repo.name}\0{repo.ref}\n".encode())
    entries = walk(repo)
    if repo.meta_dir is not None:
        entries = _chain(entries, walk_tree(repo.meta_dir))
    racy_after = time.time_ns() - RACY_NS
    racy = False
    for e in entries:
        h.update(e.path.encode() + b"\0" + (e.skip or "").encode())
        if (st := e.st) is not None:
            h.update(b"\0%d\0%d\0%d\0%d" % (st.st_mode, st.st_size, st.st_mtime_ns,
                                               st.st_ctime_ns))
            racy = racy or st.st_ctime_ns > racy_after  # the kernel's clock, not settable
            if stat.S_ISLNK(st.st_mode):
                try:
                    h.update(b"\0" + os.fsencode(os.readlink(e.abspath)))
                except OSError:
                    h.update(b"\0?")
        h.update(b"\n")
    if racy:
        h.update(b"racy %d" % time.time_ns())
    return h.hexdigest()


def _chain(*parts: Iterator[Entry]) -> Iterator[Entry]:
    for i, part in enumerate(parts):
        for e in part:
            yield Entry(f"{i}:{e.path}", e.abspath, e.skip, e.st, e.escaped)


def license_texts(repo: Repo) -> list[str]:
    """Texts of the repository's license files: top level for a folder; the metadata's
    License-File entries (or LICENSE* in its .dist-info) for a distribution. Read through
    safeio (regular files only, at most 200 kB each); symlinks to license files are followed."""
    from corpus.github.licenses import is_license_file

    candidates: list[str] = []
    if repo.kind == "dir":
        try:
            with os.scandir(repo.root) as it:
                candidates = sorted(e.path for e in it if is_license_file(e.name))
        except OSError:
            return []
    else:
        assert repo.meta_dir is not None
        meta = repo.meta_dir
        for lf in SafeDistribution(meta).metadata.get_all("License-File") or []:
            for c in (os.path.join(meta, "licenses", lf), os.path.join(meta, lf)):
                if os.path.isfile(c):  # stat only; read_small opens it safely
                    candidates.append(c)
                    break
        if not candidates:
            candidates = [str(p) for p in sorted(
                Path(folder, n) for folder, _, names in os.walk(meta) for n in names
                if is_license_file(n))]
    texts = []
    for path in candidates:
        data = read_small(path, 200_000)
        if data is not None:
            texts.append(data.decode("utf-8", "replace"))
    return texts
