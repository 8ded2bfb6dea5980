"""File, folder and symlink-target names that are not UTF-8, made storable without loss.

On Linux a name is any bytes; Python hands an undecodable one over with surrogate escapes
(PEP 383), which Arrow cannot store. Such a name is kept, written by this rule: every byte that
is not part of valid UTF-8 becomes `\\xHH` (two lowercase hex digits) and every backslash
becomes `\\\\`; the rest is the name's UTF-8 text. `unescape` inverts it. Names that are valid
UTF-8 (nearly all) are left exactly as they are, and the stage counts the escaped ones in its
manifest (`notes`), so a reader knows which rule applies.
"""

from __future__ import annotations

import os
import re

_ESCAPE = re.compile(rb"\\\\|\\x([0-9a-f]{2})")


def needs_escape(name: str) -> bool:
    """True for a name holding surrogate escapes (bytes that are not UTF-8)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def escape(name: str) -> str:
    """The storable form of a name from the OS (see the module docstring)."""
    if not needs_escape(name):
        return name
    raw = os.fsencode(name).replace(b"\\", b"\\\\")
    return raw.decode("utf-8", "backslashreplace")


def unescape(text: str) -> bytes:
    """The original bytes of an escaped name."""
    return _ESCAPE.sub(lambda m: bytes([int(m[1], 16)]) if m[1] else b"\\",
                       text.encode("utf-8"))
