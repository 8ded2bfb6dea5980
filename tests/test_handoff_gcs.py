"""The training handoff with its output root on gs:// (the GCS emulator behind gcsfs, read and
written by the Dask workers): tokenizer → token shards → Parquet shards from the real Python
files give the same bytes as a local run, and a re-run is up to date from the manifests alone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from corpus import pipeline
from tests.cloud import gcs_fs, make_bucket
from tests.conftest import ROOT

STAGES = ("tokenizer", "tokens", "parquet")


def _config(tmp_path: Path, docs: Path) -> Path:
    cfg = tmp_path / "handoff.toml"
    cfg.write_text(f"""
[pipeline]
output = "{tmp_path / 'unused'}"

[[stages]]
name = "tokenizer"
kind = "tokenizer"
input = "{docs}"
vocab_size = 600
sample_docs = 300

[[stages]]
name = "tokens"
kind = "shard"
input = "{docs}"
format = "tokens"
tokenizer = "tokenizer"
seq_len = 64
shard_bytes = "256KiB"
valid_fraction = 0.05

[[stages]]
name = "parquet"
kind = "shard"
input = "{docs}"
format = "parquet"
shard_bytes = "256KB"
valid_fraction = 0.05
""")
    return cfg


def _local_files(root: Path, stage: str) -> dict[str, bytes]:
    d = root / stage
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*"))
            if p.is_file() and p.name not in ("manifest.json", ".corpus-lock")}


def _gcs_files(fs, root: str, stage: str) -> dict[str, bytes]:
    d = f"{root}/{stage}"
    return {p[len(d) + 1:]: fs.cat_file(p) for p in sorted(fs.find(d))
            if p.rsplit("/", 1)[-1] not in ("manifest.json", ".corpus-lock")}


@pytest.fixture(scope="module")
def runs(engine, python_docs, gcs, tmp_path_factory) -> tuple[Path, str]:
    tmp = tmp_path_factory.mktemp("handoff")
    p = pipeline.load(str(_config(tmp, python_docs)))
    bucket = make_bucket("corpus-handoff")
    pipeline.run(p, engine, output=str(tmp / "local"))
    pipeline.run(p, engine, output=f"gs://{bucket}/run")
    return tmp / "local", f"{bucket}/run"


def test_gs_root_gives_the_bytes_of_a_local_run(runs):
    local, remote = runs
    fs = gcs_fs()
    for stage in STAGES:
        want, got = _local_files(local, stage), _gcs_files(fs, remote, stage)
        assert got.keys() == want.keys(), stage
        for name in want:
            assert got[name] == want[name], f"{stage}/{name}"
        m = json.loads(fs.cat_file(f"{remote}/{stage}/manifest.json"))
        assert m["complete"] and m["fingerprint"] == json.loads(
            (local / stage / "manifest.json").read_text())["fingerprint"]
    assert "tokenizer.json" in _gcs_files(fs, remote, "tokenizer")
    tokens = json.loads(fs.cat_file(f"{remote}/tokens/manifest.json"))["tokens"]
    assert set(tokens["splits"]) == {"train", "validation"}
    assert len(tokens["splits"]["train"]["shards"]) > 1
    parquet = _gcs_files(fs, remote, "parquet")
    assert "README.md" in parquet and sum(n.startswith("data/train-") for n in parquet) > 1
    assert not [p for p in fs.find(remote) if "/_work/" in p or "/_done/" in p]


def test_a_rerun_on_gs_is_up_to_date(runs, engine, python_docs, tmp_path):
    _, remote = runs
    fs = gcs_fs()

    def generations() -> dict[str, str]:
        return {p: fs.info(p)["generation"] for stage in STAGES
                for p in fs.find(f"{remote}/{stage}") if not p.endswith(".corpus-lock")}

    before = generations()
    p = pipeline.load(str(_config(tmp_path, python_docs)))
    seen: dict[str, dict] = {}
    pipeline.run(p, engine, output=f"gs://{remote}",
                 on_stage=lambda spec, url, m: seen.update({spec.name: m}))
    assert generations() == before  # nothing rewritten, not even a manifest
    for stage in STAGES:
        assert len(seen[stage]["runs"]) == 1, stage  # the first run's record, no new one


@pytest.mark.slow
def test_train_reads_gs_shards_and_keeps_checkpoints_local(runs, engine, python_docs, tmp_path,
                                                           monkeypatch):
    """A train stage under the gs:// root: it streams the token shards from gs://, its run
    folder (checkpoints included) is local, and its log and config are copied to gs://."""
    from corpus.localdir import local_dir

    _, remote = runs
    monkeypatch.setenv("CORPUS_LOCAL_DIR", str(tmp_path / "local"))
    cfg = _config(tmp_path, python_docs)
    cfg.write_text(cfg.read_text() + f"""
[[stages]]
name = "train"
kind = "train"
input = "tokens"
model = "{ROOT / 'pipelines/train/tiny.toml'}"
deepspeed = "{ROOT / 'pipelines/train/zero2.json'}"
max_steps = 2
micro_batch = 2
""")
    seen: dict[str, dict] = {}
    pipeline.run(pipeline.load(str(cfg)), engine, output=f"gs://{remote}",
                 on_stage=lambda spec, url, m: seen.update({spec.name: m}))
    assert seen["train"]["steps"] == 2
    fs = gcs_fs()
    run = Path(local_dir(f"gs://{remote}/train"))
    assert run.is_relative_to(tmp_path / "local")
    assert (run / "checkpoints" / "latest").read_text().strip() == "step2"
    config = json.loads(fs.cat_file(f"{remote}/train/config.json"))
    assert config["args"]["data"] == f"gs://{remote}/tokens"
    events = [json.loads(line) for line in fs.cat_file(f"{remote}/train/log.jsonl").splitlines()]
    assert [e["step"] for e in events if e["event"] == "train"] == [1, 2]
    assert not fs.exists(f"{remote}/train/checkpoints")
