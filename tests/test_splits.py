"""One split rule (corpus/splits.py) for `corpus push`, `corpus shard --format parquet` and
`corpus shard --format tokens`: on real code, the three outputs hold out the same validation and
test documents, for a preset and for explicit fractions; no document is in two splits, every
input row is in one; the input's partitioning and the number of workers change nothing; bad
options are one `error:` line, from every command and from a pipeline config."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
import typing
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from corpus import config_check, stage_options
from corpus.errors import ConfigError
from corpus.extract.duckdb_job import ExtractJob, ExtractOptions
from corpus.github.build import GithubTablesJob, GithubTablesOptions
from corpus.io import DatasetDir
from corpus.keys import validation_mask
from corpus.publish.shards import ParquetShardOptions
from corpus.splits import (
    PRESETS,
    SPLITS,
    TEST,
    TRAIN,
    VALIDATION,
    Preset,
    SplitRule,
    assign,
    rule_of,
)
from corpus.tokens.dataset import open_tokens
from corpus.tokens.shards import TokenShardOptions
from tests.conftest import DISTS, QUERIES, ROOT

#: More installed distributions than DISTS, files of 64 B to 6 KiB: about 2,600 documents of
#: real code in 7 MB, enough for PolyCoder's 0.1 % validation split to hold a few.
MORE = [*DISTS, "dask", "distributed", "datasets", "huggingface-hub", "pydantic", "hypothesis",
        "transformers", "numba", "matplotlib"]
RULES = {"polycoder": ["--splits", "polycoder"],
         "fractions": ["--valid-fraction", "0.03", "--test-fraction", "0.05"]}
SPLIT_FIELDS = ("valid_fraction", "test_fraction", "splits", "valid_from")


def corpus(*args: str) -> subprocess.CompletedProcess[str]:
    """The installed `corpus` command (the console script beside this Python), as a user runs
    it."""
    return subprocess.run([str(Path(sys.executable).with_name("corpus")), *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT, env=dict(os.environ),
                          timeout=600)


def _ids(files: list[Path]) -> list[str]:
    return sorted(pq.read_table(files, columns=["id"]).column("id").to_pylist()) if files else []


def hub_splits(folder: Path) -> dict[str, list[str]]:
    """Per split, the sorted ids of a Hub-layout folder's data/<split>-*.parquet."""
    found = {s: _ids(sorted((folder / "data").glob(f"{s}-*.parquet"))) for s in SPLITS}
    return {s: ids for s, ids in found.items() if ids}


def token_splits(folder: Path) -> dict[str, list[str]]:
    """Per split of a token shard folder's manifest, the ids of its <split>-NNNNN.docs.parquet."""
    m = json.loads((folder / "manifest.json").read_text())
    assert m["complete"] and m["rows_in"] == m["rows"] + m["removed"]
    for s, v in m["tokens"]["splits"].items():  # what training reads, the test split too
        assert sum(open_tokens(str(folder), s).sizes) == v["sequences"] > 0
    return {s: _ids([folder / f"{k}.docs.parquet" for k in v["shards"]])
            for s, v in m["tokens"]["splits"].items()}


@pytest.fixture(scope="module")
def docs(engine, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("splits")
    tables = DatasetDir(str(root / "tables"))
    engine.run(GithubTablesJob(GithubTablesOptions(site_packages=True, include=MORE), tables))
    engine.run(ExtractJob(ExtractOptions(str(QUERIES / "github_python.sql"), tables.url,
                                         params={"min_size": 64, "max_size": 6144},
                                         partition_bytes=2 << 20),
                          DatasetDir(str(root / "docs"))))
    return root / "docs"


def documents(d: Path) -> pa.Table:
    return pq.read_table(sorted(d.glob("data/part-*.parquet")))


@pytest.fixture(scope="module")
def one_partition(docs, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("splits-one") / "docs"
    out.mkdir()
    pq.write_table(documents(docs), out / "part-00000.parquet")
    return out


@pytest.fixture(scope="module")
def tok(engine, docs, tmp_path_factory) -> Path:
    from corpus.tokens import bpe
    from corpus.tokens.tokenizer_job import train

    out = tmp_path_factory.mktemp("splits-tok")
    train(str(docs), str(out), bpe.TokenizerOptions(vocab_size=1024, sample_docs=300),
          engine=engine)
    return out


@pytest.fixture(scope="module")
def outputs(hub, tok, tmp_path_factory):
    """make(rule, input, workers): {"push", "parquet", "tokens"} -> split -> sorted ids, each
    output made once by the CLI (push: its --staging layout, sent to the Hub stand-in)."""
    root = tmp_path_factory.mktemp("split-outputs")
    made: dict[tuple[str, str, int], dict[str, dict[str, list[str]]]] = {}

    def make(rule: str, src: Path, workers: int) -> dict[str, dict[str, list[str]]]:
        key = (rule, str(src), workers)
        if key not in made:
            n, args = len(made), RULES[rule]
            run = ["--workers", str(workers), "--quiet"]
            for r in (corpus("shard", src, root / f"pq{n}", "--format", "parquet",
                             "--shard-size", "1MB", *args, *run),
                      corpus("shard", src, root / f"tok{n}", "--format", "tokens", "--tokenizer",
                             tok, "--seq-len", "64", *args, *run),
                      corpus("push", src, "--repo-id", f"corpus-tests/splits-{n}", "--staging",
                             root / f"stage{n}", "--shard-size", "1MB", *args)):
                assert r.returncode == 0, r.stderr
            made[key] = {"push": hub_splits(root / f"stage{n}"),
                         "parquet": hub_splits(root / f"pq{n}"),
                         "tokens": token_splits(root / f"tok{n}")}
        return made[key]

    return make


@pytest.mark.slow
@pytest.mark.parametrize("rule", list(RULES))
def test_push_and_both_shard_formats_hold_out_the_same_documents(rule, docs, outputs):
    src = documents(docs)
    code = assign(src, rule_of(*_cli_rule(RULES[rule])))
    ids = np.asarray(src.column("id").to_pylist(), dtype=object)
    want = {s: sorted(ids[code == c]) for c, s in enumerate(SPLITS)}
    assert want["validation"] and want["test"], f"{rule}: the corpus is too small for the rule"
    got = outputs(rule, docs, 2)
    assert got["push"] == got["parquet"] == got["tokens"] == want
    sets = {s: set(v) for s, v in want.items()}
    assert not (sets["train"] & sets["validation"] or sets["train"] & sets["test"]
                or sets["validation"] & sets["test"])  # copies of a content share a split
    for name, splits in got.items():  # every input row in exactly one split
        assert sum(len(v) for v in splits.values()) == src.num_rows, name


@pytest.mark.slow
def test_partitions_and_workers_change_nothing(docs, one_partition, outputs):
    assert len(list(docs.glob("data/part-*.parquet"))) > 2
    assert outputs("fractions", one_partition, 1) == outputs("fractions", docs, 2)


def _cli_rule(args: list[str]) -> tuple[str | None, float | None, float | None]:
    """(splits, valid_fraction, test_fraction) of RULES' flags."""
    opts = dict(zip(args[::2], args[1::2], strict=True))
    f = {k: float(opts[k]) if k in opts else None for k in ("--valid-fraction", "--test-fraction")}
    return opts.get("--splits"), f["--valid-fraction"], f["--test-fraction"]


BAD = {"sum-of-fractions": (["--valid-fraction", "0.6", "--test-fraction", "0.5"],
                            "sum to 1.1: they must leave documents for train"),
       "preset-and-fraction": (["--splits", "polycoder", "--test-fraction", "0.1"], "not both"),
       "fraction-and-list": (["--valid-fraction", "0.1", "--valid-from", "repos.txt"],
                             "choose one of --valid-fraction and --valid-from")}


@pytest.mark.parametrize("command", ["parquet", "tokens", "push"])
@pytest.mark.parametrize("case", list(BAD))
def test_bad_split_options_are_one_error_line(command, case, tmp_path):
    src = tmp_path / "in"  # refused before the input is read
    head = {"parquet": ["shard", src, tmp_path / "o", "--format", "parquet"],
            "tokens": ["shard", src, tmp_path / "o", "--format", "tokens", "--tokenizer", "t"],
            "push": ["push", src, "--repo-id", "corpus-tests/never"]}[command]
    args, expect = BAD[case]
    r = corpus(*head, *args)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 1 and len(lines) == 1 and lines[0].startswith("error:"), r.stderr
    assert expect in lines[0]
    assert not (tmp_path / "o").exists()


def test_pipeline_stage_options_are_checked_the_same_way(tmp_path):
    for fmt, extra in (("parquet", {}), ("tokens", {"tokenizer": "tok"})):
        where = 'stage "s" (shard)'
        ok = stage_options.parse("shard", {"format": fmt, "splits": "polycoder", **extra},
                                 where, files=False)
        assert ok.split_rule() == PRESETS["polycoder"]
        for table, expect in (({"splits": "polycoder", "valid_fraction": 0.1}, "not both"),
                              ({"valid_fraction": 0.5, "test_fraction": 0.5}, "sum to 1"),
                              ({"splits": "pollycoder"}, 'splits: expected one of "default"'),
                              ({"valid_from": str(tmp_path / "none.txt")}, "does not exist")):
            with pytest.raises(ConfigError, match=re.escape(f'{where}, format "{fmt}": ')
                               + f".*{re.escape(expect)}"):
                stage_options.parse("shard", {"format": fmt, **extra, **table}, where)


def test_the_rule_and_its_presets():
    assert SplitRule() == PRESETS["default"] == SplitRule(0.01, 0.0)
    assert PRESETS["polycoder"] == SplitRule(0.001, 0.01)  # 98.9 / 0.1 / 1 %
    assert typing.get_args(Preset) == tuple(PRESETS)
    assert rule_of() == SplitRule() and rule_of(test_fraction=0.02) == SplitRule(0.01, 0.02)
    ids = [f"{i:040x}" for i in range(20_000)]
    t = pa.table({"id": ids, "repo_name": [f"r/{i % 50}" for i in range(20_000)]})
    for v, te in ((0.01, 0.0), (0.001, 0.01), (0.2, 0.3)):
        code = assign(t, SplitRule(v, te))
        # validation is what token shards always held out (existing splits do not move)
        assert np.array_equal(code == VALIDATION, validation_mask(t, v))
        frac = np.bincount(code, minlength=3) / len(ids)
        assert abs(frac[VALIDATION] - v) < 0.01 and abs(frac[TEST] - te) < 0.01
        assert np.array_equal(assign(t.slice(5000), SplitRule(v, te)), code[5000:])
    repos = {"r/3", "r/7"}
    code = assign(t, SplitRule(0.001, 0.01, valid_from="listed.txt"), repos)
    listed = np.isin(t.column("repo_name").to_pylist(), sorted(repos))
    assert (code[listed] == VALIDATION).all() and not (code[~listed] == VALIDATION).any()
    # the test split is the same hash range with or without the repository list
    plain = assign(t, PRESETS["polycoder"])
    assert np.array_equal(code[~listed] == TEST, plain[~listed] == TEST)
    assert set(np.unique(code[~listed])) == {TRAIN, TEST}


def test_both_shard_formats_take_the_same_split_options():
    """The same names, types, bounds and defaults in both option dataclasses."""
    for cls in (ParquetShardOptions, TokenShardOptions):
        fields = {f.name: f for f in dataclasses.fields(cls)}
        assert all(fields[n].default is None for n in SPLIT_FIELDS), cls
    a = config_check.field_types(ParquetShardOptions)
    b = config_check.field_types(TokenShardOptions)
    assert {n: a[n] for n in SPLIT_FIELDS} == {n: b[n] for n in SPLIT_FIELDS}


def test_the_three_commands_take_the_same_split_flags():
    from corpus.cli import cli

    def flags(cmd: str) -> dict[str, tuple]:
        return {p.name: (tuple(p.opts), repr(p.type), p.default)
                for p in cli.commands[cmd].params if p.name in SPLIT_FIELDS}

    assert set(flags("shard")) == set(SPLIT_FIELDS) and flags("shard") == flags("push")
