"""0-row partitions through every stage kind (issue 12, finding 6): real documents with empty
partitions among them give the same output as without them, every row accounted for; a
dataset of 0 rows in all finishes with 0 kept, or, where nothing can be made of it (tokenizer,
token shards), fails with one `error:` line."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from corpus.contamination.stage import DecontaminateJob, DecontamOptions
from corpus.dedup.exact import ExactDedupJob, ExactOptions
from corpus.dedup.near import MinHashDedupJob, MinHashOptions
from corpus.filters.stage import FilterJob, FilterOptions
from corpus.io import DatasetDir
from corpus.licenses.policy import LicenseOptions
from corpus.licenses.stage import LicenseFilterJob
from corpus.scrub.redact import ScrubOptions
from corpus.scrub.stage import ScrubJob
from corpus.tokens import bpe
from corpus.tokens.shards import TokenShardJob, TokenShardOptions
from corpus.tokens.tokenizer_job import train
from tests.conftest import run_cli

#: 0-row partitions: before the first real one ('-' sorts before '.') and between two others
EMPTY_KEYS = ("part-00000-empty", "part-00001-empty")

RULES = [{"rule": "line_max", "max": 1000}, {"rule": "alpha_frac", "min": 0.25},
         {"rule": "config_or_test", "probability": 0.7}]

#: stage kind -> the job over (input, output); each is the stage as a pipeline runs it
JOBS: dict[str, Callable[[DatasetDir, DatasetDir], Any]] = {
    "filter": lambda i, o: FilterJob(FilterOptions(rules=RULES), i, o),
    "dedup-exact": lambda i, o: ExactDedupJob(ExactOptions(), i, o),
    "dedup-minhash": lambda i, o: MinHashDedupJob(
        MinHashOptions(threshold=0.7, verify=True, verify_memory=64 << 10), i, o),
    "licenses": lambda i, o: LicenseFilterJob(LicenseOptions(), i, o),
    "scrub": lambda i, o: ScrubJob(i, o, ScrubOptions(drop_files_with=["PRIVATE_KEY"])),
    "decontaminate": lambda i, o: DecontaminateJob(i, o, DecontamOptions()),
}


def copy_parts(src: Path, out: Path) -> Path:
    """The partitions of src as a plain folder (no manifest: its keys are its files)."""
    out.mkdir(parents=True)
    for p in sorted(src.glob("data/part-*.parquet")):
        shutil.copy(p, out / p.name)
    return out


@pytest.fixture(scope="module")
def plain(python_docs, tmp_path_factory) -> Path:
    return copy_parts(python_docs, tmp_path_factory.mktemp("plain") / "docs")


@pytest.fixture(scope="module")
def with_empty(python_docs, tmp_path_factory) -> Path:
    """The same documents plus two 0-row partitions of the same schema."""
    out = copy_parts(python_docs, tmp_path_factory.mktemp("with-empty") / "docs")
    first = pq.read_table(sorted(python_docs.glob("data/part-*.parquet"))[0])
    for key in EMPTY_KEYS:
        pq.write_table(first.slice(0, 0), out / f"{key}.parquet")
    return out


@pytest.fixture(scope="module")
def all_empty(python_docs, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("all-empty") / "docs"
    out.mkdir()
    first = pq.read_table(sorted(python_docs.glob("data/part-*.parquet"))[0])
    for key in EMPTY_KEYS:
        pq.write_table(first.slice(0, 0), out / f"{key}.parquet")
    return out


def rows_of(d: Path) -> int:
    return sum(pq.read_metadata(p).num_rows for p in d.glob("*.parquet"))


def kept_keys(out: Path) -> list[tuple[str, str, str]]:
    m = json.loads((out / "manifest.json").read_text())
    t = [pq.read_table(out / "data" / f"{p['key']}.parquet", columns=["id", "repo_name", "path"])
         for p in m["partitions"]]
    return [tuple(r.values()) for x in t for r in x.to_pylist()]


def removed_reasons(out: Path) -> list[tuple[str, str, str]]:
    files = sorted((out / "removed").glob("*.parquet"))
    rows = pq.read_table(files).to_pylist() if files else []
    return sorted((r["id"], r["path"], r["reason"]) for r in rows)


@pytest.mark.parametrize("kind", list(JOBS))
def test_empty_partitions_change_nothing(engine, plain, with_empty, tmp_path, kind):
    base = engine.run(JOBS[kind](DatasetDir(str(plain)), DatasetDir(str(tmp_path / "base"))))
    out = tmp_path / "out"
    m = engine.run(JOBS[kind](DatasetDir(str(with_empty)), DatasetDir(str(out))))
    assert m["rows_in"] == rows_of(with_empty) == base["rows_in"]
    assert m["rows"] + m["removed"] == m["rows_in"]
    assert (m["rows"], m["removed"], m["reasons"]) == (base["rows"], base["removed"],
                                                       base["reasons"])
    parts = {p["key"]: p for p in m["partitions"]}
    schema = pq.read_schema(tmp_path / "base" / "data" / f"{base['partitions'][0]['key']}.parquet")
    for key in EMPTY_KEYS:
        assert (parts[key]["rows_in"], parts[key]["rows"], parts[key]["removed"]) == (0, 0, 0)
        written = pq.read_table(out / "data" / f"{key}.parquet")
        assert written.num_rows == 0 and written.schema == schema, key
    assert kept_keys(out) == kept_keys(tmp_path / "base")
    assert removed_reasons(out) == removed_reasons(tmp_path / "base")


def test_tokenizer_and_token_shards_with_an_empty_partition(engine, plain, with_empty,
                                                            tmp_path):
    opts = bpe.TokenizerOptions(vocab_size=600, sample_docs=200)
    base = train(str(plain), str(tmp_path / "tok-base"), opts, engine=engine)["tokenizer"]
    rep = train(str(with_empty), str(tmp_path / "tok"), bpe.TokenizerOptions(**vars(opts)),
                engine=engine)["tokenizer"]
    assert (rep["trained_docs"], rep["heldout_docs"]) == (base["trained_docs"],
                                                          base["heldout_docs"]) != (0, 0)
    assert bpe.load(str(tmp_path / "tok")).get_vocab() == \
        bpe.load(str(tmp_path / "tok-base")).get_vocab()

    def shards(src: Path, out: Path) -> dict[str, Any]:
        topts = TokenShardOptions(str(tmp_path / "tok-base"), seq_len=64, shard_bytes=1 << 18,
                                  valid_fraction=0.05)
        return engine.run(TokenShardJob(topts, DatasetDir(str(src)), DatasetDir(str(out))))

    b = shards(plain, tmp_path / "tokens-base")
    m = shards(with_empty, tmp_path / "tokens")
    assert m["rows_in"] == rows_of(with_empty) == m["rows"] + m["removed"]
    assert [(p["key"], p["sha256"]) for p in m["partitions"]] == \
        [(p["key"], p["sha256"]) for p in b["partitions"]]  # byte-identical shards


@pytest.mark.parametrize("kind", list(JOBS))
def test_a_dataset_of_zero_rows_finishes_with_zero_kept(engine, all_empty, tmp_path, kind):
    out = tmp_path / "out"
    m = engine.run(JOBS[kind](DatasetDir(str(all_empty)), DatasetDir(str(out))))
    assert (m["rows_in"], m["rows"], m["removed"]) == (0, 0, 0)
    assert m["complete"] and [p["key"] for p in m["partitions"]] == list(EMPTY_KEYS)
    assert all(pq.read_metadata(out / "data" / f"{k}.parquet").num_rows == 0 for k in EMPTY_KEYS)


def one_error_line(r: Any) -> str:
    lines = [x for x in r.stderr.splitlines() if x.strip() and not x.startswith("dask:")]
    assert r.returncode == 1 and len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    return lines[0]


def test_zero_rows_for_the_tokenizer_and_token_shards_is_one_error_line(all_empty, tmp_path,
                                                                        tokenizer_dir):
    r = run_cli("tokenizer", "train", str(all_empty), str(tmp_path / "tok"),
                "--vocab-size", "300")
    assert "no documents" in one_error_line(r)
    r = run_cli("shard", str(all_empty), str(tmp_path / "tokens"), "--format", "tokens",
                "--tokenizer", str(tokenizer_dir), "--workers", "1")
    assert "no documents" in one_error_line(r)
