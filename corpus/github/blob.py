"""One file as GitHub's tables see it: git blob id, mode, and text content when it is text."""

from __future__ import annotations

import codecs
import hashlib
import os
import stat
from dataclasses import dataclass
from typing import BinaryIO

from corpus.github.names import escape
from corpus.github.safeio import Unreadable, open_regular, skip_reason

#: BigQuery's contents table keeps size but no content for files over 1 MiB.
MAX_CONTENT_BYTES = 1024 * 1024
#: Files larger than this are hashed in chunks instead of read whole.
READ_WHOLE_BYTES = 64 * 1024 * 1024
CHUNK = 4 * 1024 * 1024

MODE_FILE = 0o100644
MODE_EXECUTABLE = 0o100755
MODE_SYMLINK = 0o120000


def git_blob_id(data: bytes) -> str:
    """The sha1 `git hash-object` gives these bytes."""
    h = hashlib.sha1(b"blob %d\0" % len(data))
    h.update(data)
    return h.hexdigest()


@dataclass(frozen=True)
class Blob:
    id: str
    size: int
    content: str | None
    binary: bool
    mode: int
    symlink_target: str | None  # escaped when not UTF-8 (corpus.github.names); id: raw bytes


def _text(data: bytes) -> str | None:
    """Decoded text, or None when binary (not UTF-8, or has a NUL byte)."""
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def read_blob(path: str, max_content: int = MAX_CONTENT_BYTES) -> Blob:
    """Read one file (without following a symlink). Raises Unreadable for what is not a
    regular file or symlink (never opened: a FIFO would block) and for a file that changed
    while it was read, OSError when it cannot be read."""
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        target = os.readlink(path)
        data = os.fsencode(target)
        return Blob(git_blob_id(data), len(data), _text(data), _text(data) is None,
                    MODE_SYMLINK, escape(target))
    if reason := skip_reason(st.st_mode):
        raise Unreadable(reason)
    fd, st = open_regular(path)
    with os.fdopen(fd, "rb") as f:
        mode = MODE_EXECUTABLE if st.st_mode & stat.S_IXUSR else MODE_FILE
        if st.st_size > READ_WHOLE_BYTES:
            blob = _read_large(f, st.st_size, mode)
        else:
            data = f.read(st.st_size + 1)  # bounded: a file that keeps growing cannot keep us
            if len(data) != st.st_size:
                raise Unreadable("changed-while-read (size)")
            text = _text(data)
            content = text if text is not None and len(data) <= max_content else None
            blob = Blob(git_blob_id(data), len(data), content, text is None, mode, None)
        after = os.fstat(f.fileno())
    if (after.st_size, after.st_mtime_ns) != (st.st_size, st.st_mtime_ns):
        raise Unreadable("changed-while-read")
    return blob


def _read_large(f: BinaryIO, size: int, mode: int) -> Blob:
    """Hash and classify a big file in chunks; its content is never kept (it is over 1 MiB)."""
    h = hashlib.sha1(b"blob %d\0" % size)
    decoder = codecs.getincrementaldecoder("utf-8")()
    binary, n = False, 0
    while n <= size and (chunk := f.read(min(CHUNK, size + 1 - n))):
        h.update(chunk)
        n += len(chunk)
        if not binary:
            if b"\0" in chunk:
                binary = True
            else:
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError:
                    binary = True
    if not binary:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            binary = True
    if n != size:
        raise Unreadable("changed-while-read (size)")
    return Blob(h.hexdigest(), size, None, binary, mode, None)
