"""detect-secrets' high-entropy string plugins (`--high-entropy`, off by default: on real code
they flag digests in tests and lock files, base64 test vectors and fixtures; bench/scrub.py
measures it), run over every line with detect-secrets' own false-positive filters.

The provider formats are the catalog's rules (catalog.py, engine.py) and secret-named
assignments are assignments.py: detect-secrets' regex and keyword plugins are not run.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

Span = tuple[str, int, int]


@cache
def _entropy_plugins() -> list[Any]:
    from detect_secrets.settings import default_settings, get_plugins

    with default_settings():
        return [p for p in get_plugins() if type(p).__name__.endswith("HighEntropyString")]


def _line_secrets(plugin: Any, line: str, filename: str) -> list[Any]:
    """detect-secrets' scan of one line by one plugin, with its false-positive filters; call
    it inside `default_settings()` (entered once per document: entering it busts caches)."""
    from detect_secrets.core.scan import _is_filtered_out, _scan_line
    from detect_secrets.util.code_snippet import get_code_snippet

    context = get_code_snippet(lines=[line], line_number=1)
    return [s for s in _scan_line(plugin=plugin, filename=filename, line=line,
                                  line_number=1, context=context, enable_eager_search=False)
            if not _is_filtered_out(required_filter_parameters=["context"], filename=filename,
                                    secret=s.secret_value, plugin=plugin, line=line,
                                    context=context)]


def entropy_secrets(text: str, filename: str) -> list[Span]:
    """High-entropy quoted strings (base64 and hex), as `<SECRET>`."""
    from detect_secrets.settings import default_settings

    spans: list[Span] = []
    plugins = _entropy_plugins()
    with default_settings():
        start = 0
        for line in text.split("\n"):
            for plugin in plugins:
                for s in _line_secrets(plugin, line, filename):
                    if s.secret_value and len(s.secret_value) >= 8:
                        spans += [("SECRET", start + v.start(), start + v.end())
                                  for v in re.finditer(re.escape(s.secret_value), line)]
            start += len(line) + 1
    return spans
