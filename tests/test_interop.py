"""Every output folder is a Hugging Face dataset folder that the usual readers read exactly:
a stage's documents (`data/`) and removed rows (`removed/`), token shards, Hub Parquet shards;
an output of the old layout is refused until `corpus migrate` converts it. Real data: the
venv's own packages, filtered by CodeParrot's rules (some files kept, some removed)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from corpus import pipeline
from corpus.errors import InputError
from corpus.filters.stage import FilterJob, FilterOptions
from corpus.io import DatasetDir
from tests.conftest import ROOT, run_cli

RULES = pipeline.stage_of(pipeline.load(str(ROOT / "pipelines" / "codeparrot.toml"),
                                        files=False), "filter").options


@pytest.fixture(scope="module")
def stage(engine, python_docs, tmp_path_factory) -> Path:
    """A filter stage's output: documents kept and documents removed."""
    out = tmp_path_factory.mktemp("interop") / "filtered"
    m = engine.run(FilterJob(pipeline._options(FilterOptions, RULES, "test"),
                             DatasetDir(str(python_docs)), DatasetDir(str(out))))
    assert m["rows"] > 100 and m["removed"] > 10
    return out


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """`datasets` with no network and a cache of its own."""
    import datasets

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True)
    return tmp_path / "hf-cache"


def truth(folder: Path, sub: str) -> list[str]:
    """The ids of a stage's files under `sub`, read file by file (what every reader must see)."""
    return [i for p in sorted((folder / sub).glob("*.parquet"))
            for i in pq.read_table(p, columns=["id"]).column("id").to_pylist()]


def same(got: list[str], want: list[str]) -> None:
    assert len(got) == len(want) and set(got) == set(want)


def test_datasets_loads_documents_and_removed(stage, offline):
    import datasets

    kept, removed = truth(stage, "data"), truth(stage, "removed")
    m = json.loads((stage / "manifest.json").read_text())
    assert len(kept) == m["rows"] and len(removed) == m["removed"]
    docs = datasets.load_dataset(str(stage), cache_dir=str(offline))
    assert list(docs) == ["train"]
    same(docs["train"]["id"], kept)
    streamed = datasets.load_dataset(str(stage), streaming=True, cache_dir=str(offline))
    same([r["id"] for r in streamed["train"]], kept)
    gone = datasets.load_dataset(str(stage), "removed", cache_dir=str(offline))
    same(gone["train"]["id"], removed)
    assert set(gone["train"].column_names) >= {"id", "reason", "stage"}
    card = (stage / "README.md").read_text()
    assert "### filter" in card and f"{m['rows_in']:,} rows in, {m['rows']:,} kept" in card
    for reason, c in m["reasons"].items():
        assert f"| {reason} | {c['rows']:,} |" in card


def test_parquet_readers_on_data_read_exactly_the_documents(stage):
    import dask.dataframe as dd
    import duckdb
    import pandas as pd
    import polars as pl
    import pyarrow.dataset as ds

    kept, removed = truth(stage, "data"), truth(stage, "removed")
    data, rm = stage / "data", stage / "removed"
    for sub, want in ((data, kept), (rm, removed)):
        same(pd.read_parquet(sub, columns=["id"])["id"].tolist(), want)
        same(ds.dataset(sub).to_table(columns=["id"]).column("id").to_pylist(), want)
        same(pq.read_table(sub, columns=["id"]).column("id").to_pylist(), want)
        same(pl.read_parquet(sub / "*.parquet", columns=["id"])["id"].to_list(), want)
        same(dd.read_parquet(str(sub), columns=["id"])["id"].compute().tolist(), want)
        same([r[0] for r in duckdb.sql(f"SELECT id FROM read_parquet('{sub}/*.parquet')")
              .fetchall()], want)
    same(pl.read_parquet(data, columns=["id"])["id"].to_list(), kept)  # a folder, too


def test_token_shards_load_by_their_card(token_shards, offline):
    import datasets

    m = json.loads((token_shards / "manifest.json").read_text())
    splits = m["tokens"]["splits"]
    assert len(splits) >= 2
    tokens = datasets.load_dataset(str(token_shards), cache_dir=str(offline))
    assert set(tokens) == set(splits)
    for name, s in splits.items():
        assert tokens[name].num_rows == s["sequences"]
        assert len(tokens[name][0]["input_ids"]) == m["tokens"]["row_len"]
        files = sorted(str(p) for p in token_shards.glob(f"{name}-*.arrow"))
        plain = datasets.load_dataset("arrow", data_files={name: files},
                                      cache_dir=str(offline))
        assert plain[name].num_rows == s["sequences"]
    card = (token_shards / "README.md").read_text()
    assert "### shard-tokens" in card and f"{m['rows']:,} kept" in card


def test_hub_shards_load_by_their_card(stage, tmp_path, offline):
    import datasets

    out = tmp_path / "pq"
    r = run_cli("shard", str(stage), str(out), "--format", "parquet", "--valid-fraction", "0.1",
                "--workers", "1", "--quiet")
    assert r.returncode == 0, r.stderr
    local = datasets.load_dataset(str(out), cache_dir=str(offline))
    assert set(local) == {"train", "validation"}
    for s in local:
        same(local[s]["id"], [i for p in sorted((out / "data").glob(f"{s}-*.parquet"))
                              for i in pq.read_table(p, columns=["id"]).column("id").to_pylist()])
    same([i for s in local for i in local[s]["id"]], truth(stage, "data"))


def to_old_layout(folder: Path) -> None:
    """What corpus wrote before the data/ folder: documents at the top, format 1, no card."""
    for p in (folder / "data").glob("*.parquet"):
        p.rename(folder / p.name)
    (folder / "data").rmdir()
    (folder / "README.md").unlink()
    m = json.loads((folder / "manifest.json").read_text())
    m["format"] = "corpus-dataset/1"
    m["files"] = {k.removeprefix("data/"): v for k, v in m["files"].items() if k != "README.md"}
    for p in m["partitions"]:
        p["files"] = [f.removeprefix("data/") for f in p["files"]]
    (folder / "manifest.json").write_text(json.dumps(m))


def test_old_layout_is_refused_then_migrated(stage, tmp_path, offline):
    import datasets

    root = tmp_path / "run"
    old = root / "filtered"
    shutil.copytree(stage, old)
    to_old_layout(old)
    before = json.loads((old / "manifest.json").read_text())
    run = ("--workers", "1", "--quiet")
    for args in (("stats", str(old)),  # read: as a whole, as an input, as an output to resume
                 ("licenses", str(old), str(tmp_path / "next"), *run),
                 ("licenses", str(stage), str(old), *run)):
        r = run_cli(*args)
        assert r.returncode == 1 and f"corpus migrate {old}" in r.stderr, (args, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1
    assert json.loads((old / "manifest.json").read_text()) == before  # untouched
    with pytest.raises(InputError, match="old corpus layout"):
        DatasetDir(str(old)).partition_keys()

    r = run_cli("migrate", str(root))  # a run root: every stage folder in it
    assert r.returncode == 0, r.stderr
    assert "filtered" in r.stdout
    after = json.loads((old / "manifest.json").read_text())
    assert after["format"] == "corpus-dataset/2"
    assert DatasetDir(str(old)).complete_manifest() is not None  # every listed file intact
    assert {p["key"] for p in after["partitions"]} == {p["key"] for p in before["partitions"]}
    from corpus.manifest import dataset_hash

    assert dataset_hash(after) == dataset_hash(before)  # later stages stay up to date
    same(datasets.load_dataset(str(old), cache_dir=str(offline))["train"]["id"],
         truth(stage, "data"))
    again = run_cli("migrate", str(old))  # idempotent
    assert again.returncode == 0 and "already" in again.stdout
    assert json.loads((old / "manifest.json").read_text()) == after
    assert pa.concat_tables([pq.read_table(p) for p in sorted((old / "data").glob("*"))]) \
        .num_rows == after["rows"]
