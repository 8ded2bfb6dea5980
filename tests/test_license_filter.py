"""The license stage: each normalization and verdict rule, then the stage on real extracted
packages against a per-document reference, deny, and documents without a license."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from corpus import pipeline
from corpus.errors import ConfigError
from corpus.extract.duckdb_job import ExtractJob, ExtractOptions
from corpus.github.build import GithubTablesJob, GithubTablesOptions
from corpus.io import DatasetDir
from corpus.licenses.policy import (
    DEFAULT_ALLOW,
    LicenseOptions,
    Policy,
    decide_column,
    normalize,
    verdict,
)
from corpus.licenses.stage import pipeline_stage, run_licenses
from tests.conftest import QUERIES

# --- normalization -------------------------------------------------------------------------


@pytest.mark.parametrize("value,expected", [
    ("mit", "mit"), ("MIT", "mit"), (" MIT License ", "mit"), ("The MIT License", "mit"),
    ("Apache 2.0", "apache-2.0"), ("Apache License, Version 2.0", "apache-2.0"),
    ("Apache-2.0", "apache-2.0"), ("new BSD License", "bsd-3-clause"),
    ("MIT OR Apache-2.0", "mit or apache-2.0"),
    ("apache-2.0 or bsd-2-clause", "apache-2.0 or bsd-2-clause"),
    ("bsd-3-clause and 0bsd and mit and zlib and cc0-1.0",
     "bsd-3-clause and 0bsd and mit and zlib and cc0-1.0"),
    ("(MIT OR Apache-2.0) AND Zlib", "(mit or apache-2.0) and zlib"),
    ("MPL-2.0 AND (Apache-2.0 OR MIT)", "mpl-2.0 and (apache-2.0 or mit)"),
    ("mit-cmu", "mit-cmu"), ("hpnd", "hpnd"), ("psf-2.0", "psf-2.0"), ("MIT-0", "mit-0"),
    ("Apache-2.0 WITH LLVM-exception", "apache-2.0 with llvm-exception"),
    # GitHub's keys for the GPLs are SPDX's deprecated ids of the -only licenses
    ("gpl-3.0", "gpl-3.0-only"), ("GPL-2.0+", "gpl-2.0-or-later"),
    ("BSD", "bsd"), ("BSD License", "bsd"), ("bsd", "bsd"),
])
def test_normalize_variants(value, expected):
    assert normalize(value) == expected


@pytest.mark.parametrize("value", [
    "", "   ", "Proprietary", "other", "LicenseRef-acme", "MIT AND", "(MIT", "see LICENSE",
    "MIT License\n\nPermission is hereby granted, free of charge",
])
def test_normalize_refuses_what_it_cannot_read(value):
    assert normalize(value) is None


# --- verdicts ------------------------------------------------------------------------------

ALLOW = ["mit", "apache-2.0", "bsd-3-clause"]


def test_single_keys():
    assert verdict("mit", ALLOW) == (True, None)
    assert verdict("gpl-3.0-only", ALLOW) == (False, "license-not-allowed gpl-3.0-only")
    assert verdict("mit", ["MIT License"]) == (True, None), "the allow list is normalized too"
    assert verdict("gpl-3.0-only", ["gpl-3.0"]) == (True, None), "GitHub's key matches SPDX's"


def test_or_needs_one_allowed_alternative():
    assert verdict("mit or gpl-3.0-only", ALLOW) == (True, None)
    assert verdict("gpl-3.0-only or mit", ALLOW) == (True, None)
    assert verdict("gpl-3.0-only or agpl-3.0-only", ALLOW) == (
        False, "license-not-allowed gpl-3.0-only or agpl-3.0-only")


def test_and_needs_every_part_allowed():
    assert verdict("mit and apache-2.0", ALLOW) == (True, None)
    assert verdict("mit and gpl-3.0-only", ALLOW) == (
        False, "license-not-allowed mit and gpl-3.0-only")
    assert verdict("(mit or gpl-3.0-only) and apache-2.0", ALLOW) == (True, None)
    assert verdict("(mit or gpl-3.0-only) and mpl-2.0", ALLOW)[0] is False


def test_with_keeps_the_base_license_verdict():
    assert verdict("apache-2.0 with llvm-exception", ALLOW) == (True, None)
    assert verdict("gpl-2.0-only with classpath-exception-2.0", ALLOW) == (
        False, "license-not-allowed gpl-2.0-only with classpath-exception-2.0")
    assert verdict("gpl-2.0-only with classpath-exception-2.0", ["gpl-2.0"]) == (True, None)


def test_deny_wins_over_allow():
    assert verdict("mit", ALLOW, ["mit"]) == (False, "license-denied mit")
    assert verdict("mit and apache-2.0", ALLOW, ["apache-2.0"]) == (
        False, "license-denied mit and apache-2.0")
    # an OR still passes through an alternative that is allowed and not denied
    assert verdict("mit or apache-2.0", ALLOW, ["apache-2.0"]) == (True, None)
    assert verdict("mit or gpl-3.0-only", ALLOW, ["mit"]) == (
        False, "license-denied mit or gpl-3.0-only")


def test_ambiguous_bsd_is_denied_unless_allowed_by_name():
    assert verdict("bsd", DEFAULT_ALLOW) == (False, "license-not-allowed bsd")
    assert verdict("bsd", ["bsd-2-clause", "bsd-3-clause"])[0] is False
    assert verdict("bsd", ["bsd"]) == (True, None)
    assert verdict("mit or bsd", ["mit"]) == (True, None)
    assert Policy.of(LicenseOptions(allow=["mit", "BSD"])).decide("BSD License") == (True, None)


def test_policy_reasons_name_the_value():
    p = Policy.of(LicenseOptions())
    assert p.decide(None) == (False, "no-license")
    assert p.decide("  ") == (False, "no-license")
    assert p.decide("Proprietary") == (False, "license-unparsable Proprietary")
    long = "Copyright (c) ACME\n" + "All rights reserved. " * 20
    keep, reason = p.decide(long)
    assert not keep and reason.startswith("license-unparsable Copyright (c) ACME All rights")
    assert "\n" not in reason and len(reason) < 120
    assert Policy.of(LicenseOptions(keep_unlicensed=True)).decide(None) == (True, None)
    for key in DEFAULT_ALLOW:
        assert p.decide(key) == (True, None), key


@pytest.mark.parametrize("keys", [["mit or apache-2.0"], ["not-a-license"], ["MIT AND"],
                                  ["gpl-2.0 with classpath-exception-2.0"]])
def test_allow_and_deny_lists_hold_single_keys(keys):
    with pytest.raises(ConfigError, match="single SPDX license key"):
        Policy.of(LicenseOptions(allow=keys))
    with pytest.raises(ConfigError, match="deny"):
        Policy.of(LicenseOptions(deny=keys))


def test_column_decisions_equal_per_value_decisions():
    values = ["mit", None, "GPL-3.0", "", "mit", "BSD", "Proprietary", None, "MIT OR GPL-3.0"]
    p = Policy.of(LicenseOptions())
    for column in (pa.array(values, pa.string()),
                   pa.chunked_array([values[:4], values[4:]], pa.large_string())):
        keep, reasons = decide_column(column, p)
        assert [(bool(k), r) for k, r in zip(keep, reasons.to_pylist(), strict=True)] == [
            p.decide(v) for v in values]


# --- the stage on real packages ------------------------------------------------------------

#: Packages whose metadata gives compound and less common licenses (see test_licenses.py).
EXTRA_DISTS = ["urllib3", "certifi", "typing_extensions", "packaging", "structlog",
               "prometheus_client", "tqdm", "requests-oauthlib", "cryptography"]


def extract(engine, tables: Path, out: Path) -> Path:
    engine.run(ExtractJob(ExtractOptions(str(QUERIES / "github_python.sql"), str(tables),
                                         partition_bytes=1 << 20), DatasetDir(str(out))))
    return out


@pytest.fixture(scope="module")
def raw(engine, site_tables, tmp_path_factory) -> Path:
    """The Python files of the conftest DISTS (mit, apache-2.0, bsd-3-clause, mpl-2.0)."""
    return extract(engine, site_tables, tmp_path_factory.mktemp("lic") / "raw")


@pytest.fixture(scope="module")
def raw_compound(engine, tmp_path_factory) -> Path:
    """Python files of packages with compound expressions, psf-2.0 and isc."""
    root = tmp_path_factory.mktemp("lic-compound")
    engine.run(GithubTablesJob(GithubTablesOptions(site_packages=True, include=EXTRA_DISTS),
                               DatasetDir(str(root / "tables"))))
    return extract(engine, root / "tables", root / "raw")


def read(path: Path) -> pa.Table:
    """A dataset directory's documents (its data/ folder), or a bare folder's Parquet files."""
    return pq.read_table(sorted((path / "data").glob("*.parquet")) or
                         sorted(path.glob("*.parquet")))


def package(repo_name: str) -> str:
    """`pypi/requests@2.32.3` -> `requests`."""
    return repo_name.split("/", 1)[1].split("@", 1)[0]


def removed(path: Path) -> list[dict]:
    files = sorted((path / "removed").glob("*.parquet"))
    return pq.read_table(files).to_pylist() if files else []


def check_against_reference(src: Path, out: Path, opts: LicenseOptions) -> dict:
    """kept + removed = input, and each document's fate equals the per-document decision."""
    policy = Policy.of(opts)
    docs = read(src).to_pylist()
    expected = {(d["repo_name"], d["path"]): policy.decide(d["license"]) for d in docs}
    assert len(expected) == len(docs)
    kept = read(out)
    got = {(r["repo_name"], r["path"]): (False, r["reason"]) for r in removed(out)}
    for key in zip(kept.column("repo_name").to_pylist(), kept.column("path").to_pylist(),
                   strict=True):
        assert key not in got, f"{key} both kept and removed"
        got[key] = (True, None)
    assert got == expected
    licenses = {(d["repo_name"], d["path"]): d["license"] for d in docs}
    for key, (keep, reason) in got.items():
        if not keep and (licenses[key] or "").strip():
            assert reason.split(" ", 1)[1] in (normalize(licenses[key]), licenses[key].strip())
    assert kept.to_pylist() == [d for d in docs if expected[(d["repo_name"], d["path"])][0]]
    return {lic: {k for (r, p), (k, _) in got.items() if licenses[(r, p)] == lic}
            for lic in set(licenses.values())}


def run(engine, src: Path, out: Path, opts: LicenseOptions) -> dict:
    manifest = run_licenses(engine, str(src), str(out), opts)
    assert manifest["rows_in"] == manifest["rows"] + manifest["removed"]
    return manifest


def test_default_keeps_every_permissive_package(engine, raw, tmp_path):
    manifest = run(engine, raw, tmp_path / "out", LicenseOptions())
    fates = check_against_reference(raw, tmp_path / "out", LicenseOptions())
    assert set(fates) == {"mit", "apache-2.0", "bsd-3-clause", "mpl-2.0"}
    assert all(f == {True} for f in fates.values())
    assert manifest["removed"] == 0 and manifest["rows"] > 200


def test_allow_list_drops_the_rest_with_their_license(engine, raw, tmp_path):
    opts = LicenseOptions(allow=["mit"])
    manifest = run(engine, raw, tmp_path / "out", opts)
    fates = check_against_reference(raw, tmp_path / "out", opts)
    assert fates == {"mit": {True}, "apache-2.0": {False}, "bsd-3-clause": {False},
                     "mpl-2.0": {False}}
    reasons = {package(r["repo_name"]): r["reason"] for r in removed(tmp_path / "out")}
    assert reasons["requests"] == "license-not-allowed apache-2.0"
    assert reasons["idna"] == "license-not-allowed bsd-3-clause"
    assert reasons["certifi"] == "license-not-allowed mpl-2.0"
    assert set(manifest["reasons"]) == {"license-not-allowed"}
    assert set(manifest["licenses"]) == {"mit"}


def test_deny_wins_on_real_data(engine, raw, tmp_path):
    opts = LicenseOptions(allow=[*DEFAULT_ALLOW], deny=["mpl-2.0", "Apache 2.0"])
    run(engine, raw, tmp_path / "out", opts)
    fates = check_against_reference(raw, tmp_path / "out", opts)
    assert fates["mpl-2.0"] == fates["apache-2.0"] == {False}
    assert fates["mit"] == fates["bsd-3-clause"] == {True}
    assert {r["reason"] for r in removed(tmp_path / "out")} == {
        "license-denied mpl-2.0", "license-denied apache-2.0"}


def test_compound_expressions_on_real_data(engine, raw_compound, tmp_path):
    for name, opts in {"default": LicenseOptions(),
                       "mit": LicenseOptions(allow=["mit", "apache-2.0"]),
                       "nompl": LicenseOptions(deny=["mpl-2.0"])}.items():
        out = tmp_path / name
        run(engine, raw_compound, out, opts)
        fates = check_against_reference(raw_compound, out, opts)
        if name == "default":
            assert {"psf-2.0", "isc", "apache-2.0 or bsd-2-clause", "mit or apache-2.0",
                    "apache-2.0 and bsd-2-clause", "mpl-2.0 and mit"} <= set(fates)
            assert all(f == {True} for f in fates.values())
        elif name == "mit":
            assert fates["mit or apache-2.0"] == fates["apache-2.0 or bsd-2-clause"] == {True}
            assert fates["apache-2.0 and bsd-2-clause"] == fates["mpl-2.0 and mit"] == {False}
            assert fates["psf-2.0"] == fates["isc"] == {False}
        else:
            assert fates["mpl-2.0 and mit"] == fates["mpl-2.0"] == {False}
            assert fates["psf-2.0"] == {True}


@pytest.fixture(scope="module")
def with_unlicensed(raw, tmp_path_factory) -> Path:
    """A real partition plus copies of a few of its rows without a license (null, empty)."""
    t = read(raw).slice(0, 300)
    extra = t.slice(0, 6)
    licenses = pa.array([None, None, "", " ", None, "Proprietary"], pa.large_string())
    extra = extra.set_column(extra.schema.get_field_index("license"), "license", licenses)
    paths = pa.array([f"unlicensed/{i}.py" for i in range(6)], pa.large_string())
    extra = extra.set_column(extra.schema.get_field_index("path"), "path", paths)
    out = tmp_path_factory.mktemp("unlicensed")
    pq.write_table(pa.concat_tables([t, extra]), out / "part-00000.parquet")
    return out


def test_unlicensed_dropped_by_default(engine, with_unlicensed, tmp_path):
    manifest = run(engine, with_unlicensed, tmp_path / "out", LicenseOptions())
    check_against_reference(with_unlicensed, tmp_path / "out", LicenseOptions())
    got = {r["path"]: r["reason"] for r in removed(tmp_path / "out")}
    assert got == {"unlicensed/0.py": "no-license", "unlicensed/1.py": "no-license",
                   "unlicensed/2.py": "no-license", "unlicensed/3.py": "no-license",
                   "unlicensed/4.py": "no-license",
                   "unlicensed/5.py": "license-unparsable Proprietary"}
    assert manifest["reasons"]["no-license"]["rows"] == 5


def test_keep_unlicensed(engine, with_unlicensed, tmp_path):
    opts = LicenseOptions(keep_unlicensed=True)
    run(engine, with_unlicensed, tmp_path / "out", opts)
    check_against_reference(with_unlicensed, tmp_path / "out", opts)
    kept = set(read(tmp_path / "out").column("path").to_pylist())
    assert {f"unlicensed/{i}.py" for i in range(5)} <= kept
    assert [r["path"] for r in removed(tmp_path / "out")] == ["unlicensed/5.py"]


def test_pipeline_kind_reads_the_toml_table(engine, raw, tmp_path):
    spec = pipeline.StageSpec("licenses", "licenses", None,
                              {"allow": ["mit", "bsd-3-clause"], "keep_unlicensed": False})
    manifest = pipeline_stage(engine, spec, str(raw), DatasetDir(str(tmp_path / "out")))
    assert set(manifest["licenses"]) == {"mit", "bsd-3-clause"}
    again = pipeline_stage(engine, spec, str(raw), DatasetDir(str(tmp_path / "out")),
                           replace_stale=True)
    assert again["complete"] and again["rows"] == manifest["rows"]
    bad = pipeline.StageSpec("licenses", "licenses", None, {"alow": ["mit"]})
    with pytest.raises(ConfigError, match="unknown option alow"):
        pipeline_stage(engine, bad, str(raw), DatasetDir(str(tmp_path / "bad")))
    with pytest.raises(ConfigError, match="needs `input`"):
        pipeline_stage(engine, spec, None, DatasetDir(str(tmp_path / "bad")))
