"""Connecting to Dask: the local cluster corpus starts by default, and a check that an address
given with --scheduler really is a Dask scheduler before anything waits on it."""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from typing import Any

from corpus.errors import InputError


def probe_scheduler(address: str, timeout: float) -> None:
    """Ask `address` who it is, within `timeout` seconds: anything but a Dask scheduler (an
    HTTP server, a closed port) is one clear error instead of a handshake that never ends."""
    from distributed.comm import connect

    async def identity() -> Any:
        comm = await connect(address, timeout=timeout)
        try:
            await comm.write({"op": "identity", "reply": True})
            return await comm.read()
        finally:
            comm.abort()

    try:
        reply = asyncio.run(asyncio.wait_for(identity(), timeout))
    except TimeoutError:
        reply = "no answer within the timeout"
    except (OSError, ValueError) as e:
        reply = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    except Exception as e:  # a peer speaking another protocol: whatever the decoder raised
        reply = f"{type(e).__name__}"
    if not (isinstance(reply, dict) and reply.get("type") == "Scheduler"):
        why = reply if isinstance(reply, str) else "another kind of server answered"
        raise InputError(f"no Dask scheduler at {address} ({why}; waited at most "
                         f"{timeout:.0f} s): check --scheduler / DASK_SCHEDULER_ADDRESS")


def local_cluster(n: int, dashboard: str | None) -> Any:
    """A LocalCluster whose worker processes ignore SIGINT: Ctrl-C reaches the whole process
    group, and the command (not every worker, each with a traceback) handles it."""
    import warnings

    from distributed import LocalCluster

    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
    try:
        with warnings.catch_warnings():  # port 8787 taken: distributed picks another
            warnings.filterwarnings("ignore", message="Port .* is already in use")
            return LocalCluster(
                n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                # a task's failure reaches the user once, as the command's error line
                dashboard_address=dashboard, silence_logs=logging.CRITICAL,
            )
    finally:
        if main:
            signal.signal(signal.SIGINT, previous)
