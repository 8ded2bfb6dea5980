"""License detection on the real license files and metadata of installed distributions."""

from __future__ import annotations

from importlib.metadata import distribution, distributions
from pathlib import Path

import pytest

from corpus.github import licenses as L


def license_files(dist) -> list[Path]:
    base = Path(dist.locate_file(""))
    found = []
    for f in dist.files or []:
        p = Path(dist.locate_file(f))
        if L.is_license_file(p.name) and ".dist-info" in str(f) and p.is_file():
            found.append(p)
    assert base.exists()
    return found


def single_key_dists():
    """Installed distributions that declare exactly one SPDX id, with their license files."""
    out = []
    for d in distributions():
        expr = d.metadata.get("License-Expression")
        if expr and " " not in expr.strip():
            files = license_files(d)
            if len(files) == 1:
                out.append((d.metadata["Name"], expr.lower(), files[0]))
    return out


#: Packages whose single license file cannot give their declared key, and why.
AMBIGUOUS = {
    # its LICENSE states Apache-2.0 (newer contributions) before BSD-3-Clause (older ones)
    "python-dateutil": ("bsd-3-clause", "apache-2.0"),
    # HPND and MIT-CMU have the same grant; Pillow declares MIT-CMU, its text reads as HPND
    "pillow": ("mit-cmu", "hpnd"),
}


def test_text_detection_agrees_with_declared_expressions():
    cases = single_key_dists()
    assert len(cases) >= 5, "the test environment should hold packages with License-Expression"
    wrong = []
    for name, declared, path in cases:
        found = L.detect_text(path.read_text(errors="replace"))
        if AMBIGUOUS.get(name.lower(), (declared, declared)) != (declared, found):
            wrong.append((name, declared, found))
    assert not wrong, f"text detection disagrees with the metadata: {wrong}"


@pytest.mark.parametrize("name,key", [
    ("requests", "apache-2.0"), ("urllib3", "mit"), ("idna", "bsd-3-clause"),
    ("certifi", "mpl-2.0"), ("click", "bsd-3-clause"), ("charset-normalizer", "mit"),
    ("pip", "mit"), ("rich", "mit"),
])
def test_license_files_of_known_packages(name, key):
    files = license_files(distribution(name))
    assert files, f"{name} ships no license file"
    assert L.detect_text(files[0].read_text(errors="replace")) == key


def test_expressions_and_free_text():
    assert L.normalize_expression("MIT") == "mit"
    assert L.normalize_expression("Apache-2.0 OR BSD-2-Clause") == "apache-2.0 or bsd-2-clause"
    assert L.normalize_expression("(MIT OR Apache-2.0) AND Zlib") == "(mit or apache-2.0) and zlib"
    assert L.normalize_expression("Apache 2.0") == "apache-2.0"
    assert L.normalize_expression("BSD-2-Clause AND Apache-2.0 WITH LLVM-exception") == \
        "bsd-2-clause and apache-2.0 with llvm-exception"  # llvmlite's
    assert L.normalize_expression("LLVM-exception") is None  # an exception is not a license
    assert L.normalize_expression("new BSD License") == "bsd-3-clause"
    assert L.normalize_expression("BSD") is None  # which BSD? the text must say
    assert L.normalize_expression("Proprietary") is None
    assert L.normalize_expression("MIT License\n\nPermission is hereby granted...") is None


def test_classifiers():
    mit = "License :: OSI Approved :: MIT License"
    apache = "License :: OSI Approved :: Apache Software License"
    assert L.from_classifiers([mit]) == "mit"
    assert L.from_classifiers([apache, mit]) == "apache-2.0 or mit"
    assert L.from_classifiers(["License :: OSI Approved :: BSD License"]) is None
    assert L.from_classifiers(["Programming Language :: Python"]) is None


def test_bsd_variants_and_mit0_from_their_defining_clauses():
    bsd = ("Redistribution and use in source and binary forms, with or without modification, "
           "are permitted provided that the following conditions are met:")
    endorse = "Neither the name of the copyright holder nor the names of its contributors may " \
              "be used to endorse or promote products derived from this software."
    assert L.detect_text(bsd) == "bsd-2-clause"
    assert L.detect_text(bsd + "\n" + endorse) == "bsd-3-clause"
    grant = ("Permission is hereby granted, free of charge, to any person obtaining a copy of "
             "this software")
    assert L.detect_text(grant) == "mit-0"
    assert L.detect_text(grant + " ... The above copyright notice and this permission notice "
                         "shall be included in all copies") == "mit"
    assert L.detect_text("no license here") is None
    assert L.detect_text("") is None


def test_detected_licenses_parse_and_get_the_declared_verdict():
    """What detection yields for every installed distribution is a value the license stage
    reads, and the stage judges it as it judges the License-Expression the package declares."""
    from corpus.licenses.policy import DEFAULT_ALLOW, LicenseOptions, Policy, normalize

    policies = [Policy.of(LicenseOptions(allow=allow)) for allow in (
        list(DEFAULT_ALLOW), ["mit"], ["apache-2.0"], ["bsd-3-clause", "bsd-2-clause"],
        ["mpl-2.0", "mit"])]
    detected, differ = 0, []
    for d in distributions():
        texts = [p.read_text(errors="replace") for p in license_files(d)]
        key, _ = L.from_metadata(d.metadata, texts)
        if key is None:
            continue
        detected += 1
        assert normalize(key) is not None, (d.metadata["Name"], key)
        declared = d.metadata.get("License-Expression")
        if declared and normalize(declared):
            for p in policies:
                if p.decide(key)[0] != p.decide(declared)[0]:
                    differ.append((d.metadata["Name"], declared, key, sorted(p.allow)))
    assert detected >= 10
    assert not differ, f"detection changes the stage's verdict: {differ}"
