"""Opening the files of a source tree without ever hanging on one.

A source folder is not ours: it may hold a FIFO (open() blocks until a writer comes), a socket,
a device, a file that is replaced, grows or vanishes while we read it. Everything that reads a
repository's files goes through here: only regular files are opened, with O_NONBLOCK (a FIFO
swapped in between the check and the open cannot block) and, for tree entries, O_NOFOLLOW
(symlinks are recorded, never followed); the opened descriptor is checked again with fstat.
"""

from __future__ import annotations

import errno
import os
import stat

#: File types that are never opened, by the name their skip reason gives them.
SPECIAL_KINDS = {stat.S_IFIFO: "fifo", stat.S_IFSOCK: "socket", stat.S_IFBLK: "block-device",
                 stat.S_IFCHR: "char-device", stat.S_IFDIR: "directory"}
_FLAGS = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)


class Unreadable(Exception):
    """A listed file that cannot be part of the tables; `reason` is its removed/ reason."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def special_kind(mode: int) -> str | None:
    """'fifo', 'socket', 'block-device', 'char-device', 'directory', 'other'; None for a regular
    file or a symlink (the two kinds the tables hold)."""
    if stat.S_ISREG(mode) or stat.S_ISLNK(mode):
        return None
    return SPECIAL_KINDS.get(stat.S_IFMT(mode), "other")


def skip_reason(mode: int) -> str | None:
    """The removed/ reason of an entry of this mode (lstat), None when it is read."""
    kind = special_kind(mode)
    if kind is None:
        return None
    return "not-a-file directory" if kind == "directory" else f"special-file {kind}"


def os_reason(e: OSError) -> str:
    """The removed/ reason of a file the OS would not let us list, stat or read."""
    if isinstance(e, FileNotFoundError):
        return "missing"  # listed, then gone before it was read
    if e.errno == errno.ELOOP:
        return "changed-while-read (became a symlink)"
    return f"unreadable: {e.strerror or e}"


def open_regular(path: str, follow: bool = False) -> tuple[int, os.stat_result]:
    """A read-only descriptor of a regular file and its fstat. Raises Unreadable when the path
    is (now) something else, OSError when it cannot be opened. follow: allow a symlink."""
    flags = _FLAGS if follow else _FLAGS | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise Unreadable(skip_reason(st.st_mode) or "special-file other")
    except BaseException:
        os.close(fd)
        raise
    return fd, st


def read_small(path: str, limit: int | None = None) -> bytes | None:
    """The first `limit` bytes (all when None) of a metadata file (license text, METADATA,
    RECORD, .git/HEAD), following symlinks; None when it is missing, not a regular file or
    unreadable: these files only inform, their absence is not an error."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return None
        fd, st = open_regular(path, follow=True)
    except (OSError, Unreadable):
        return None
    with os.fdopen(fd, "rb") as f:
        # bounded by the size seen at open (+1), so a file that keeps growing cannot keep us
        want = st.st_size + 1 if limit is None else min(limit, st.st_size + 1)
        try:
            return f.read(want)
        except OSError:
            return None
