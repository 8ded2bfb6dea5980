"""One writer per output: an exclusive lock, taken before anything in the output is touched.

Local folders (and any POSIX filesystem): `fcntl.flock` on `DIR/.corpus-lock`, a file that also
names the holder (pid, host, start time, command) for the error a second writer gets. The kernel
drops the lock when its process dies, however it dies, so a dead holder's lock is simply taken
over; the file itself is never deleted (a deleted-and-recreated lock file would be a second,
independent lock).

gs://: a lock object created with the precondition `ifGenerationMatch=0` (exactly one creator
wins), holding the holder and a lease; the holder renews the lease in a background thread,
each renewal conditional on the generation it last wrote, so a holder that lost the lock (its
lease expired and someone took it over) finds out at its next renewal and stops at the next
checkpoint. An expired lease is taken over with a write conditional on the expired generation.
Other object stores get the same protocol without the precondition (best effort, said so).

Within one process a lock is re-entrant: `corpus run` holds its root's lock while each stage
takes its own output's.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from corpus.errors import CorpusError

LOCK_FILE = ".corpus-lock"
#: Seconds an object-store lease lasts without renewal; renewed every third of it.
LEASE_S = float(os.environ.get("CORPUS_LOCK_LEASE_S", "60"))


class LockError(CorpusError):
    """Another process is writing this output (or this process lost its lease)."""


def _holder() -> dict[str, Any]:
    argv = [os.path.basename(sys.argv[0] or "python"), *sys.argv[1:3]]
    return {"pid": os.getpid(), "host": socket.gethostname(),
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
            "command": " ".join(a[:80] for a in argv)}


def describe(holder: dict[str, Any] | None) -> str:
    if not holder:
        return "another process"
    return (f"pid {holder.get('pid')} on {holder.get('host')} since {holder.get('started')}"
            + (f" ({holder['command']})" if holder.get("command") else ""))


def _refused(url: str, holder: dict[str, Any] | None) -> LockError:
    return LockError(f"{url} is being written by {describe(holder)}: one writer at a time "
                     "(wait for it to finish, or stop it; its lock is released when it exits)")


class _LocalLock:
    def __init__(self, url: str, path: str):
        self.url, self.path = url, path
        self.fd: int | None = None

    def acquire(self) -> None:
        import fcntl

        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise _refused(self.url, self._read()) from None
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(_holder()).encode() + b"\n", 0)
        self.fd = fd

    def _read(self) -> dict[str, Any] | None:
        try:
            with open(self.path, "rb") as f:
                return json.loads(f.read() or b"null")
        except (OSError, ValueError):
            return None

    def check(self) -> None:
        """A local lock cannot be lost while its process lives."""

    def release(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self.fd, 0)
            os.close(self.fd)  # closing drops the flock
            self.fd = None


class _ObjectLock:
    """The lease protocol on an object store (conditional writes on gs://)."""

    def __init__(self, url: str, fs: Any, path: str):
        self.url, self.fs, self.path = url, fs, path
        self.gcs = "gcs" in ((fs.protocol,) if isinstance(fs.protocol, str) else fs.protocol)
        self.generation: str | None = None
        self.lost: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.holder = _holder()

    # one conditional write / read / delete each
    def _write(self, if_generation: str) -> str | None:
        """Write the lease when the object's generation is `if_generation` ("0": absent);
        return the new generation, or None when the precondition failed."""
        body = json.dumps({**self.holder, "expires": time.time() + LEASE_S}).encode()
        if not self.gcs:
            if if_generation == "0" and self.fs.exists(self.path):
                return None
            self.fs.pipe_file(self.path, body)
            return "1"
        bucket, key, _ = self.fs.split_path(self.path)
        try:
            out = self.fs.call("POST", f"{self.fs._location}/upload/storage/v1/b/{{}}/o", bucket,
                               uploadType="media", name=key, ifGenerationMatch=if_generation,
                               data=body, headers={"Content-Type": "application/octet-stream"},
                               json_out=True)
        except FileExistsError:  # HTTP 412: the precondition failed
            return None
        return str(out["generation"])

    def _read(self) -> tuple[str, dict[str, Any] | None] | None:
        """(generation, holder) of the lock object, None when there is none."""
        try:
            if not self.gcs:
                return "1", json.loads(self.fs.cat_file(self.path))
            bucket, key, _ = self.fs.split_path(self.path)
            meta = self.fs.call("GET", "b/{}/o/{}", bucket, key, json_out=True)
            gen = str(meta["generation"])
            _, data = self.fs.call("GET", "b/{}/o/{}", bucket, key, alt="media",
                                   generation=gen)
            return gen, json.loads(data)
        except FileNotFoundError:
            return None
        except ValueError:
            return "0", None

    def acquire(self) -> None:
        for _ in range(3):
            gen = self._write("0")
            if gen is None:
                found = self._read()
                if found is None:
                    continue  # released meanwhile: try again
                old_gen, holder = found
                if holder and float(holder.get("expires", 0)) > time.time():
                    raise _refused(self.url, holder)
                gen = self._write(old_gen)  # an expired lease: take it over, if still that one
                if gen is None:
                    continue
            self.generation = gen
            self._thread = threading.Thread(target=self._renew, daemon=True,
                                            name="corpus-lock-lease")
            self._thread.start()
            return
        raise _refused(self.url, (self._read() or ("", None))[1])

    def _renew(self) -> None:
        while not self._stop.wait(LEASE_S / 3):
            try:
                gen = self._write(self.generation or "0")
            except Exception:  # a network error: retry at the next tick, the lease runs on
                continue
            if gen is None:
                self.lost = f"lost the lock on {self.url}: its lease expired and another " \
                            "process took it over"
                return
            self.generation = gen

    def check(self) -> None:
        if self.lost:
            raise LockError(self.lost)

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self.generation is None or self.lost:
            return
        with contextlib.suppress(Exception):
            if self.gcs:
                bucket, key, _ = self.fs.split_path(self.path)
                self.fs.call("DELETE", "b/{}/o/{}", bucket, key,
                             ifGenerationMatch=self.generation)
            else:
                self.fs.rm_file(self.path)
        self.generation = None


_held: dict[str, tuple[Any, int]] = {}
_held_guard = threading.Lock()


def _make(url: str) -> Any:
    import fsspec

    fs, path = fsspec.core.url_to_fs(url)
    protocols = (fs.protocol,) if isinstance(fs.protocol, str) else fs.protocol
    lock_path = f"{path.rstrip('/')}/{LOCK_FILE}"
    if "file" in protocols or "local" in protocols:
        return _LocalLock(url, lock_path)
    return _ObjectLock(url, fs, lock_path)


@contextlib.contextmanager
def writer_lock(url: str) -> Iterator[Any]:
    """Hold the exclusive writer lock of the output at `url` (re-entrant in one process)."""
    key = _key(url)
    with _held_guard:
        held = _held.get(key)
        if held is not None:
            _held[key] = (held[0], held[1] + 1)
    if held is None:
        lock = _make(url)
        lock.acquire()
        with _held_guard:
            _held[key] = (lock, 1)
    try:
        yield _held[key][0]
    finally:
        with _held_guard:
            lock, n = _held[key]
            if n > 1:
                _held[key] = (lock, n - 1)
            else:
                del _held[key]
                lock.release()


def _key(url: str) -> str:
    return url.rstrip("/") if "://" in url else os.path.realpath(url)


__all__ = ["LOCK_FILE", "LockError", "describe", "writer_lock"]
