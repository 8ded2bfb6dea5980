"""Every failure as one line for the user, the whole story in a log file.

A stage's work runs on Dask workers; an exception there would reach the user as a remote
traceback. `on_worker` turns it, where it happens, into a `StageFailure` that names the stage
and the partition and carries the formatted traceback as text (so it pickles the same way
whatever the original exception held). The command line prints `error: <one line>` and writes
the traceback to a log file under `log_dir()`, whose path the line names. Both the line and the
log go through the scrubber first: an exception message may quote a document.
"""

from __future__ import annotations

import errno
import os
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from corpus.errors import CorpusError


class StageFailure(CorpusError):
    """An unexpected exception in a stage's work, with its traceback as text."""

    def __init__(self, message: str, details: str = ""):
        super().__init__(message)
        self.details = details

    def __reduce__(self) -> tuple[Any, ...]:
        return (StageFailure, (str(self), self.details))


class DiskFull(StageFailure):
    """ENOSPC, anywhere: the one failure a user fixes by freeing space."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (DiskFull, (str(self), self.details))


class Terminated(BaseException):  # like KeyboardInterrupt: not an Exception
    """SIGINT or SIGTERM, raised in the main thread so `with` blocks close the cluster and the
    locks."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0]}" if text else type(e).__name__


def is_disk_full(e: BaseException) -> bool:
    return isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT)


def on_worker(stage: str, key: str, phase: str, e: Exception, output: str) -> CorpusError:
    """What a worker raises instead of `e` (a CorpusError is already one line: kept)."""
    if isinstance(e, CorpusError):
        return e
    where = (f"{stage} ({phase})" if key == "-" else
             f"{stage} partition {key}" + (f" ({phase})" if phase != "partition" else ""))
    details = "".join(traceback.format_exception(e))
    if is_disk_full(e):
        name = getattr(e, "filename", None) or output
        return DiskFull(f"{where}: no space left on device writing {name}", details)
    return StageFailure(f"{where} failed: {first_line(e)}", details)


def log_dir() -> Path:
    """CORPUS_LOG_DIR, else $XDG_STATE_HOME/corpus/logs (~/.local/state/corpus/logs)."""
    if os.environ.get("CORPUS_LOG_DIR"):
        return Path(os.environ["CORPUS_LOG_DIR"])
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local",
                                                             "state")
    return Path(state) / "corpus" / "logs"


def redacted(text: str) -> str:
    """The text with every secret and email replaced (IP addresses stay: an error naming a
    scheduler or a host must still say which); never the raw text, even when the scrubber
    itself fails."""
    try:
        from corpus.scrub.redact import ScrubOptions, redact

        return redact(text, "error.log", ScrubOptions(ips=False))[0]
    except Exception:
        return "(not shown: the scrubber failed on this text)"


def write_log(e: BaseException) -> Path | None:
    """The full story of a failure, redacted, in a new log file; None when it cannot be
    written (a full disk): the one line is still printed."""
    details = getattr(e, "details", "") or "".join(traceback.format_exception(e))
    head = (f"corpus {' '.join(sys.argv[1:3])}\npid {os.getpid()}, "
            f"{time.strftime('%Y-%m-%d %H:%M:%S %z')}\n\n")
    try:
        folder = log_dir()
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"corpus-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}.log"
        path.write_text(redacted(head + details), encoding="utf-8")
        return path
    except OSError:
        return None


def one_line(e: BaseException) -> tuple[str, int]:
    """(message, exit status) for any exception that ends a command."""
    if isinstance(e, Terminated) and e.signum != signal.SIGINT:
        name = signal.Signals(e.signum).name
        return f"terminated by {name}; finished partitions are kept, re-run to resume", \
            128 + e.signum
    if isinstance(e, KeyboardInterrupt | Terminated):
        return "interrupted (SIGINT); finished partitions are kept, re-run to resume", 130
    if isinstance(e, StageFailure):
        message = str(e)
    elif isinstance(e, CorpusError):
        return redacted(str(e)), 1
    elif is_disk_full(e):
        name = getattr(e, "filename", None)
        message = "no space left on device" + (f" writing {name}" if name else "")
    else:
        message = f"unexpected {first_line(e)}"
    log = write_log(e)
    return redacted(message) + (f" (details: {log})" if log else ""), 1


def raise_on_signals() -> None:
    """SIGINT and SIGTERM raise Terminated in the main thread: `with` blocks close the cluster
    and release the locks (SIGTERM's default would exit silently and leave them to the kernel;
    a KeyboardInterrupt would make click print a blank line before our error)."""
    def handler(signum: int, frame: Any) -> None:
        raise Terminated(signum)

    import threading

    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            if signal.getsignal(sig) is not signal.SIG_IGN:  # nohup / a background job: kept
                signal.signal(sig, handler)
