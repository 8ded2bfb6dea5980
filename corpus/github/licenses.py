"""License of a repository as a lowercase SPDX key, the way GitHub's `licenses` table has it.

Two sources: a license text (LICENSE, COPYING, ...), matched by the phrases that define each
license; and Python package metadata (License-Expression, the License field, classifiers).
Returns None when unsure: a repository without a recognised license is left out of the
`licenses` table, as GitHub leaves it out, and reported.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from email.message import Message

# SPDX identifiers accepted as-is in a License field (lowercased). Not the whole SPDX list:
# the ones seen on PyPI and in GitHub's licenses table.
SPDX_IDS = {s.lower() for s in (
    "0BSD", "AFL-3.0", "AGPL-3.0", "AGPL-3.0-only", "AGPL-3.0-or-later", "Apache-1.1",
    "Apache-2.0", "Artistic-2.0", "BlueOak-1.0.0", "BSD-1-Clause", "BSD-2-Clause", "BSD-3-Clause",
    "BSD-3-Clause-Clear", "BSD-4-Clause", "BSL-1.0", "CC-BY-4.0", "CC-BY-SA-4.0", "CC0-1.0",
    "CDDL-1.0", "CNRI-Python", "ECL-2.0", "EPL-1.0", "EPL-2.0", "EUPL-1.1", "EUPL-1.2", "GPL-2.0",
    "GPL-2.0-only", "GPL-2.0-or-later", "GPL-3.0", "GPL-3.0-only", "GPL-3.0-or-later", "HPND",
    "ISC", "LGPL-2.0", "LGPL-2.0-only", "LGPL-2.0-or-later", "LGPL-2.1", "LGPL-2.1-only",
    "LGPL-2.1-or-later", "LGPL-3.0", "LGPL-3.0-only", "LGPL-3.0-or-later", "MIT", "MIT-0",
    "MIT-CMU", "MPL-1.1", "MPL-2.0", "MS-PL", "NCSA", "OFL-1.1", "OSL-3.0", "PostgreSQL",
    "PSF-2.0", "Python-2.0", "Unicode-3.0", "Unicode-DFS-2016", "Unlicense", "UPL-1.0", "WTFPL",
    "X11", "Zlib", "ZPL-2.1",
)}

# SPDX exception ids (after WITH) seen on PyPI, lowercased.
SPDX_EXCEPTIONS = {s.lower() for s in (
    "LLVM-exception", "Classpath-exception-2.0", "GCC-exception-3.1", "Linux-syscall-note",
    "OpenSSL-exception", "Autoconf-exception-3.0", "Bison-exception-2.2",
)}

# Free-text License fields people write, normalised (see _norm), to their SPDX key.
ALIASES = {
    "mit license": "mit", "the mit license": "mit", "mit licence": "mit", "expat": "mit",
    "apache 2": "apache-2.0", "apache 2 0": "apache-2.0", "apache license 2 0": "apache-2.0",
    "apache license version 2 0": "apache-2.0", "apache software license": "apache-2.0",
    "apache software license 2 0": "apache-2.0", "asl 2 0": "apache-2.0",
    "apache license v2": "apache-2.0", "apache v2": "apache-2.0", "apache2": "apache-2.0",
    "bsd 3 clause": "bsd-3-clause", "3 clause bsd": "bsd-3-clause", "new bsd": "bsd-3-clause",
    "new bsd license": "bsd-3-clause", "modified bsd": "bsd-3-clause",
    "bsd 3 clause license": "bsd-3-clause", "revised bsd license": "bsd-3-clause",
    "bsd 2 clause": "bsd-2-clause", "2 clause bsd": "bsd-2-clause",
    "simplified bsd": "bsd-2-clause", "freebsd": "bsd-2-clause",
    "mpl 2 0": "mpl-2.0", "mozilla public license 2 0": "mpl-2.0",
    "psf": "psf-2.0", "psf license": "psf-2.0", "python software foundation license": "psf-2.0",
    "isc license": "isc", "gplv3": "gpl-3.0", "gpl v3": "gpl-3.0", "gplv2": "gpl-2.0",
    "gpl v2": "gpl-2.0", "lgplv3": "lgpl-3.0", "lgplv2 1": "lgpl-2.1", "unlicense": "unlicense",
    "the unlicense": "unlicense", "zlib license": "zlib", "boost software license": "bsl-1.0",
}

# Trove classifiers (after "License :: ") that name exactly one license.
CLASSIFIERS = {
    "OSI Approved :: MIT License": "mit",
    "OSI Approved :: MIT No Attribution License (MIT-0)": "mit-0",
    "OSI Approved :: Apache Software License": "apache-2.0",
    "OSI Approved :: Mozilla Public License 2.0 (MPL 2.0)": "mpl-2.0",
    "OSI Approved :: ISC License (ISCL)": "isc",
    "OSI Approved :: Python Software Foundation License": "psf-2.0",
    "OSI Approved :: GNU General Public License v2 (GPLv2)": "gpl-2.0",
    "OSI Approved :: GNU General Public License v3 (GPLv3)": "gpl-3.0",
    "OSI Approved :: GNU General Public License v2 or later (GPLv2+)": "gpl-2.0-or-later",
    "OSI Approved :: GNU General Public License v3 or later (GPLv3+)": "gpl-3.0-or-later",
    "OSI Approved :: GNU Lesser General Public License v2 (LGPLv2)": "lgpl-2.0",
    "OSI Approved :: GNU Lesser General Public License v3 (LGPLv3)": "lgpl-3.0",
    "OSI Approved :: GNU Affero General Public License v3": "agpl-3.0",
    "OSI Approved :: The Unlicense (Unlicense)": "unlicense",
    "OSI Approved :: Boost Software License 1.0 (BSL-1.0)": "bsl-1.0",
    "OSI Approved :: Eclipse Public License 2.0 (EPL-2.0)": "epl-2.0",
    "OSI Approved :: Eclipse Public License 1.0 (EPL-1.0)": "epl-1.0",
    "OSI Approved :: zlib/libpng License": "zlib",
    "OSI Approved :: Historical Permission Notice and Disclaimer (HPND)": "hpnd",
    "OSI Approved :: Universal Permissive License (UPL)": "upl-1.0",
    "CC0 1.0 Universal (CC0 1.0) Public Domain Dedication": "cc0-1.0",
}


def _norm(text: str) -> str:
    """Lowercase words and numbers only: comment markers, punctuation and wrapping vanish."""
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def _has(text: str, phrase: str) -> int:
    """Position of a phrase in normalised text, or -1."""
    return text.find(_norm(phrase))


def _bsd(t: str, at: int) -> str:
    tail = t[at:at + 3000]
    if _has(tail, "all advertising materials mentioning") >= 0:
        return "bsd-4-clause"
    if _has(tail, "may be used to endorse or promote") >= 0 or _has(tail, "neither the name") >= 0:
        return "bsd-3-clause"
    return "bsd-2-clause"


def _gpl(t: str, at: int, key: str) -> str | None:
    tail = t[at:at + 1500]
    for version, suffix in (("version 3", "3.0"), ("version 2 1", "2.1"), ("version 2", "2.0")):
        if tail.find(version) >= 0:
            return f"{key}-{suffix}"
    return None


#: licenses whose defining phrase alone names them (normalised text)
PHRASES = {
    "gnu affero general public license": "agpl-3.0",
    "mozilla public license version 2 0": "mpl-2.0",
    "mozilla public license v 2 0": "mpl-2.0",
    "boost software license": "bsl-1.0",
    "this is free and unencumbered software released into the public domain": "unlicense",
    "cc0 1 0 universal": "cc0-1.0",
    "python software foundation license": "psf-2.0",
    # HPND and MIT-CMU share this grant word for word (only the disclaimer's names differ)
    "permission to use copy modify and distribute this software and its documentation for any "
    "purpose and without fee is hereby granted": "hpnd",
}


def _anchored(t: str) -> Iterable[tuple[int, str | None]]:
    """(position, key) for every license whose defining phrase occurs in normalised text t."""
    def at(phrase: str) -> int:
        return _has(t, phrase)

    for phrase in ("gnu lesser general public license", "gnu library general public license"):
        p = at(phrase)
        if p >= 0:
            yield p, _gpl(t, p, "lgpl")
    p = at("gnu general public license")
    if p >= 0:
        yield p, _gpl(t, p, "gpl")
    p = at("apache license")
    if p >= 0 and t.find("version 2 0", p, p + 400) >= 0:
        yield p, "apache-2.0"
    p = at("eclipse public license")
    if p >= 0:
        yield p, "epl-2.0" if t.find("2 0", p, p + 200) >= 0 else "epl-1.0"
    p = at("permission to use copy modify and or distribute this software for any purpose "
           "with or without fee is hereby granted")
    if p >= 0:
        cond = t.find(_norm("provided that the above copyright notice and this permission "
                            "notice appear in all copies"), p, p + 400)
        yield p, "isc" if cond >= 0 else "0bsd"
    p = at("permission is hereby granted free of charge to any person obtaining a copy")
    if p >= 0:
        cond = t.find(_norm("the above copyright notice and this permission notice shall be "
                            "included"), p, p + 1200)
        yield p, "mit" if cond >= 0 else "mit-0"
    p = at("redistribution and use in source and binary forms")
    if p >= 0:
        yield p, _bsd(t, p)
    p = at("altered source versions must be plainly marked as such")
    if p >= 0:
        start = t.rfind("this software is provided as is", max(0, p - 800), p)
        yield (start if start >= 0 else p), "zlib"
    for phrase, key in PHRASES.items():
        p = at(phrase)
        if p >= 0:
            yield p, key


def detect_text(text: str) -> str | None:
    """The license a text states first, as an SPDX key; None if no known license is found."""
    found = [(pos, key) for pos, key in _anchored(_norm(text)) if key]
    return min(found)[1] if found else None


def normalize_expression(expr: str) -> str | None:
    """Lowercase an SPDX expression, or map a free-text License field to one. None if unknown."""
    expr = expr.strip()
    if not expr or "\n" in expr or len(expr) > 200:
        return None  # a whole license text pasted into the field: let the text matcher decide
    tokens = re.split(r"\s+|([()])", expr)
    words = [t for t in tokens if t and t not in "()"]
    ops = {"and", "or", "with"}
    known = SPDX_IDS | SPDX_EXCEPTIONS | ops
    if words and all(w.lower() in known or w.startswith("LicenseRef-")
                     for w in words) and words[0].lower() not in ops | SPDX_EXCEPTIONS:
        return " ".join(
            w.lower() if w.lower() in known else w
            for w in (t for t in tokens if t)
        ).replace("( ", "(").replace(" )", ")")
    return ALIASES.get(_norm(expr))


def from_classifiers(classifiers: Sequence[str]) -> str | None:
    keys = []
    for c in classifiers:
        if c.startswith("License :: "):
            key = CLASSIFIERS.get(c[len("License :: "):])
            if key is None:
                return None  # an ambiguous classifier ("BSD License"): the text must decide
            if key not in keys:
                keys.append(key)
    return " or ".join(keys) if keys else None


def from_metadata(meta: Message, license_texts: Sequence[str]) -> tuple[str | None, str]:
    """(SPDX key or expression, where it came from) for an installed distribution."""
    expr = meta.get("License-Expression")
    if expr and (key := normalize_expression(expr)):
        return key, "License-Expression"
    field = meta.get("License")
    if field and (key := normalize_expression(field)):
        return key, "License"
    for text in license_texts:
        if key := detect_text(text):
            return key, "license file"
    if field and (key := detect_text(field)):
        return key, "License text"
    key = from_classifiers(meta.get_all("Classifier") or [])
    if key:
        return key, "classifier"
    return None, "none"


LICENSE_FILE = re.compile(r"^(licen[cs]e|copying|copyright|unlicense)([-._].*)?$", re.IGNORECASE)


def is_license_file(name: str) -> bool:
    return bool(LICENSE_FILE.match(name))
