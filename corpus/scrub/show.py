"""Document text fit to show people (report samples, excerpts in any summary): redacted whole,
then cut.

The order matters: a detector needs the whole finding (a key block needs its END line, a
connection string its host), so a text cut first can keep half a secret that no rule sees. And
a document removed *because* of a secret is shown only when the redaction here finds every kind
the stage found in it: a finding this redaction cannot reproduce (an option the stage had and
these options lack, a detector error) means no text at all, never raw text.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from corpus.scrub.redact import ScrubOptions, redact

LINES = 12
MAX_CHARS = 4000  # an excerpt of minified code is one huge line: cut it too
#: reasons of the scrub stage (corpus/scrub/stage.py) whose documents hold an unredacted secret
SECRET_REASON, ERROR_REASON = "contains-secret", "scrub-error"


def strongest(configs: Iterable[Mapping[str, Any]]) -> ScrubOptions:
    """Options that redact at least what every given scrub stage redacted (their manifests'
    `config["scrub"]`), with emails and IP addresses always on."""
    opts = ScrubOptions()
    for config in configs:
        used = config.get("scrub", config) or {}
        opts.private_ips |= bool(used.get("private_ips"))
        opts.high_entropy |= bool(used.get("high_entropy"))
    return opts


def secret_kinds(reason: str | None) -> set[str] | None:
    """The kinds a `contains-secret K1,K2` reason names (None for any other reason)."""
    if not reason or not reason.startswith(SECRET_REASON + " "):
        return None
    return {k for k in reason[len(SECRET_REASON) + 1:].split(",") if k}


def fit_to_show(text: str | None, path: str, opts: ScrubOptions, lines: int = LINES,
                reason: str | None = None, max_chars: int = MAX_CHARS) -> str | None:
    """The first `lines` lines of `text` after redacting all of it, at most `max_chars`
    characters; None when nothing may be shown: no text, a redaction error, a document the
    scrubber could not scrub (`scrub-error`), or one removed for secrets (`reason`) where this
    redaction does not find every kind the reason names."""
    if text is None or (reason or "").startswith(ERROR_REASON):
        return None
    try:
        clean, counts = redact(text, path or "", opts)
    except Exception:  # a detector error: the text is not known to be clean
        return None
    required = secret_kinds(reason)
    if required is not None and not (required and required <= set(counts)):
        return None
    head = "\n".join(clean.splitlines()[:lines])
    return head if len(head) <= max_chars else head[:max_chars] + " …"
