"""Failures of the Google Cloud calls, as one sentence a user can act on, within a bounded
time. Messages come from the server (never from headers or credentials) and are cut short."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from corpus.errors import CorpusError


class CloudError(CorpusError):
    """BigQuery or GCS refused or failed: one sentence, no traceback, no credentials."""


class CostError(CorpusError):
    """The dry run says the query would scan more than allowed."""


def explain(e: BaseException, what: str) -> CloudError:
    """One sentence for a failed call. Messages come from the server (never from headers or
    credentials); long ones are cut."""
    from google.api_core import exceptions as gx
    from google.auth import exceptions as ga

    cause = getattr(e, "cause", None)
    if isinstance(e, gx.RetryError) and isinstance(cause, ga.GoogleAuthError):
        e = cause  # retried until the deadline because no token could be had
    msg = getattr(e, "message", None) or str(e)
    msg = " ".join(str(msg).split())[:400]
    if isinstance(e, gx.Forbidden):
        return CloudError(f"{what}: permission denied (403): {msg}")
    if isinstance(e, gx.Unauthorized):
        return CloudError(f"{what}: the credentials were refused (401): {msg}")
    if isinstance(e, gx.BadRequest):
        return CloudError(f"{what}: BigQuery rejected it (400): {msg}")
    if isinstance(e, gx.NotFound):
        return CloudError(f"{what}: not found (404): {msg}")
    if isinstance(e, ga.GoogleAuthError):
        return CloudError(f"{what}: cannot obtain an access token with the credentials of "
                          "the environment (check GOOGLE_APPLICATION_CREDENTIALS or run "
                          "`gcloud auth application-default login`)")
    if isinstance(e, gx.RetryError | gx.DeadlineExceeded | ConnectionError | TimeoutError
                  | OSError):
        return CloudError(f"{what}: cannot reach the service within the deadline: {msg}")
    if isinstance(e, gx.GoogleAPICallError):
        return CloudError(f"{what}: {type(e).__name__}: {msg}")
    return CloudError(f"{what}: {type(e).__name__}: {msg}")


def guard(what: str, fn: Callable[[], Any]) -> Any:
    from google.api_core import exceptions as gx
    from google.auth import exceptions as ga

    try:
        return fn()
    except (gx.GoogleAPIError, ga.GoogleAuthError, ConnectionError, TimeoutError, OSError) as e:
        raise explain(e, what) from None


def within(seconds: float, what: str, fn: Callable[[], Any]) -> Any:
    """fn() or a CloudError after `seconds`: gcsfs retries an unreachable endpoint for over a
    minute with no deadline of its own. The call is left to finish in a daemon thread."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as e:  # handed to the caller
            box["error"] = e

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(seconds)
    if t.is_alive():
        raise CloudError(f"{what}: cannot reach the service within the deadline "
                         f"({seconds:g} s)")
    if "error" in box:
        if isinstance(box["error"], OSError | TimeoutError):
            raise CloudError(f"{what}: cannot reach the service: {box['error']}") from None
        raise box["error"]
    return box.get("value")


def job_exception(job: Any) -> BaseException:
    """The exception google-cloud-bigquery would raise for a failed job."""
    from google.api_core import exceptions as gx

    err = job.error_result or {}
    reason = err.get("reason", "")
    message = err.get("message", "job failed")
    status = {"accessDenied": 403, "notFound": 404, "invalidQuery": 400, "invalid": 400,
              "bytesBilledLimitExceeded": 400}.get(reason, 500)
    return gx.from_http_status(status, message)
