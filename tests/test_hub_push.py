"""`corpus push` against the stdlib Hub stand-in (tests/hub_server.py: no local Hub server
exists on any registry) with the real huggingface_hub and datasets clients, on a dataset of
real installed code that went through extraction and CodeParrot's filters."""

from __future__ import annotations

import json
import logging
import os
import time
import urllib.request
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from corpus.extract.duckdb_job import ExtractJob, ExtractOptions
from corpus.io import DatasetDir
from corpus.publish.card import HUB_LICENSES, size_category
from corpus.publish.layout import LayoutOptions, build
from corpus.splits import SplitRule
from tests.conftest import HUB_TOKEN, QUERIES, free_port, run_cli

pytestmark = pytest.mark.slow
KEYS = ["repo_name", "path", "content"]


@pytest.fixture(scope="module")
def filtered(engine, site_tables, tmp_path_factory) -> Path:
    """Extraction (2 partitions) then CodeParrot's filters: a manifest chain with reasons."""
    root = tmp_path_factory.mktemp("push")
    engine.run(ExtractJob(ExtractOptions(str(QUERIES / "github_python.sql"), str(site_tables),
                                         partition_bytes=4 << 20),
                          DatasetDir(str(root / "raw"))))
    r = run_cli("filter", str(root / "raw"), str(root / "filtered"), "--pipeline",
                "pipelines/codeparrot.toml", "--workers", "1")
    assert r.returncode == 0, r.stderr
    return root / "filtered"


def documents(d: Path) -> pa.Table:
    return pq.read_table(sorted(d.glob("data/part-*.parquet")))


def keyset(t) -> set[tuple]:
    cols = [t[c] if isinstance(t, dict) else t.column(c).to_pylist() for c in KEYS]
    return set(zip(*cols, strict=True))


def no_token(*texts: str) -> None:
    for text in texts:
        assert HUB_TOKEN not in text


def test_push_then_load_dataset_gives_the_same_rows(hub, filtered, tmp_path):
    import datasets
    from huggingface_hub import DatasetCard

    r = run_cli("push", str(filtered), "--repo-id", "corpus-tests/python", "--valid-fraction",
                "0.2", "--shard-size", "1MB")
    assert r.returncode == 0, r.stderr
    no_token(r.stdout, r.stderr)
    src = documents(filtered)
    train = datasets.load_dataset("corpus-tests/python", split="train")
    valid = datasets.load_dataset("corpus-tests/python", split="validation")
    assert train.num_rows + valid.num_rows == src.num_rows > 200
    assert keyset(train.to_dict()) | keyset(valid.to_dict()) == keyset(src)
    assert not keyset(train.to_dict()) & keyset(valid.to_dict())
    assert 0.1 < valid.num_rows / src.num_rows < 0.3
    assert set(train.column_names) == set(src.column_names)
    streamed = datasets.load_dataset("corpus-tests/python", split="train", streaming=True)
    assert keyset({c: [row[c] for row in streamed] for c in KEYS}) == keyset(train.to_dict())
    # shards: Hub names, about 1 MB of content each
    files = [f for _, f in hub.requests if "/resolve/" in f and f.endswith(".parquet")]
    names = sorted({f.rsplit("/", 1)[-1] for f in files})
    n = len([x for x in names if x.startswith("train-")])
    assert n > 1 and f"train-00000-of-{n:05d}.parquet" in names

    card = DatasetCard.load("corpus-tests/python", repo_type="dataset")
    meta = card.data.to_dict()
    licenses = set(src.column("license").to_pylist())
    assert set(meta["license"]) == ({x for x in licenses if x in HUB_LICENSES}
                                    | ({"other"} if licenses - HUB_LICENSES else set()))
    assert meta["size_categories"] == [size_category(src.num_rows)]
    assert {s["split"] for s in meta["configs"][0]["data_files"]} == {"train", "validation"}
    splits = {s["name"]: s["num_examples"] for s in meta["dataset_info"]["splits"]}
    assert splits == {"train": train.num_rows, "validation": valid.num_rows}
    manifest = json.loads((filtered / "manifest.json").read_text())
    assert "### extract" in card.content and "### filter" in card.content
    for reason, c in manifest["reasons"].items():
        assert f"| {reason} | {c['rows']:,} |" in card.content
    assert f"{manifest['rows_in']:,} rows in, {manifest['rows']:,} kept" in card.content


def test_split_is_deterministic_across_partitionings(engine, site_tables, filtered, tmp_path):
    """--valid-fraction hashes the document id: the same documents whatever the partitioning;
    --valid-from takes exactly the listed repositories."""
    other = tmp_path / "one-partition"
    engine.run(ExtractJob(ExtractOptions(str(QUERIES / "github_python.sql"), str(site_tables),
                                         partition_bytes=1 << 40), DatasetDir(str(other))))
    raw = filtered.parent / "raw"
    assert len(list(other.glob("data/part-*"))) == 1 < len(list(raw.glob("data/part-*")))

    def valid_keys(url: str, folder: Path, **kw) -> set:
        layout = build(url, str(folder), LayoutOptions(SplitRule(**kw)))
        t = pq.read_table([folder / f for f in layout.splits["validation"]["files"]])
        return set(zip(t.column("repo_name").to_pylist(), t.column("path").to_pylist(),
                       strict=True))

    a = valid_keys(str(raw), tmp_path / "a", valid_fraction=0.3)
    b = valid_keys(str(other), tmp_path / "b", valid_fraction=0.3)
    assert a == b and 0.2 < len(a) / documents(raw).num_rows < 0.4
    repos = sorted(set(documents(raw).column("repo_name").to_pylist()))[:2]
    (tmp_path / "valid.txt").write_text("# held out\n" + "\n".join(repos) + "\n")
    c = valid_keys(str(raw), tmp_path / "c", valid_from=str(tmp_path / "valid.txt"))
    expected = {(r, p) for r, p in zip(documents(raw).column("repo_name").to_pylist(),
                                       documents(raw).column("path").to_pylist(),
                                       strict=True) if r in repos}
    assert c == expected and c


def test_repush_reuses_staging_and_keeps_the_repo_identical(hub, filtered, tmp_path):
    staging = tmp_path / "staging"
    args = ["push", str(filtered), "--repo-id", "corpus-tests/again", "--staging", str(staging)]
    first = run_cli(*args)
    assert first.returncode == 0, first.stderr
    files = {k: v for k, v in hub.repos["corpus-tests/again"].files.items()}
    stamp = {p: p.stat().st_mtime_ns for p in staging.rglob("*.parquet")}
    second = run_cli(*args)
    assert second.returncode == 0, second.stderr
    assert "reusing the staged layout" in second.stderr
    assert {p: p.stat().st_mtime_ns for p in staging.rglob("*.parquet")} == stamp
    assert hub.repos["corpus-tests/again"].files == files
    # a different split replaces the shards: no stale train shard is left behind (and the
    # deprecated --split-valid still works, saying so)
    third = run_cli(*args, "--split-valid", "0.5")
    assert third.returncode == 0, third.stderr
    assert "--split-valid is deprecated: use --valid-fraction" in third.stderr
    repo_files = set(hub.repos["corpus-tests/again"].files)
    assert {f for f in repo_files if f.startswith("data/")} == {
        str(p.relative_to(staging)) for p in (staging / "data").glob("*.parquet")}
    no_token(first.stderr, second.stderr, third.stderr, first.stdout)


def test_push_of_a_shard_folder_uploads_it_as_it_is(hub, filtered, tmp_path):
    """`corpus shard --format parquet` writes Hub layout and its card: the folder loads with
    datasets as it is, and push sends exactly its README.md and data/ (no re-sharding)."""
    import datasets

    out = tmp_path / "pq"
    split = ["--valid-fraction", "0.1", "--test-fraction", "0.1"]
    r = run_cli("shard", str(filtered), str(out), "--format", "parquet", "--shard-size", "1MB",
                *split, "--workers", "1", "--quiet")
    assert r.returncode == 0, r.stderr
    local = datasets.load_dataset(str(out))  # the card's configs name each split's files
    assert set(local) == {"train", "validation", "test"}
    assert sum(d.num_rows for d in local.values()) == documents(filtered).num_rows
    for s in local:
        assert sorted(local[s]["id"]) == sorted(pq.read_table(sorted(
            (out / "data").glob(f"{s}-*.parquet"))).column("id").to_pylist())

    r = run_cli("push", str(out), "--repo-id", "corpus-tests/sharded", *split)
    assert r.returncode == 0, r.stderr
    assert "as it is" in r.stderr
    sent = hub.repos["corpus-tests/sharded"].files
    want = {str(p.relative_to(out)): p.read_bytes()
            for p in [out / "README.md", *(out / "data").glob("*.parquet")]}
    assert {k: v for k, v in sent.items() if k != ".gitattributes"} == want
    pushed = datasets.load_dataset("corpus-tests/sharded")
    assert {s: sorted(d["id"]) for s, d in pushed.items()} == {
        s: sorted(d["id"]) for s, d in local.items()}

    # other split or shard options would need new shards: refused, in one line
    for extra in (["--valid-fraction", "0.2"], ["--shard-size", "2MB"]):
        r = run_cli("push", str(out), "--repo-id", "corpus-tests/sharded", *extra)
        assert r.returncode == 1 and "push uploads it as it is" in r.stderr, r.stderr
        assert r.stderr.strip().splitlines()[-1].startswith("error:")
    no_token(r.stdout, r.stderr)


def test_push_model_folder_then_from_pretrained(hub, tmp_path):
    """--type model: a transformers folder (made here, nothing fetched by name) goes to a model
    repository; downloaded back from the Hub stand-in it loads with the same weights."""
    import torch
    from huggingface_hub import snapshot_download
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=300))
    folder = tmp_path / "model"
    model.save_pretrained(folder)
    (folder / "README.md").write_text("---\nlibrary_name: transformers\n---\n# tiny\n")
    r = run_cli("push", str(folder), "--type", "model", "--repo-id", "corpus-tests/tiny-gpt2")
    assert r.returncode == 0, r.stderr
    no_token(r.stdout, r.stderr)
    assert "corpus-tests/tiny-gpt2" not in hub.repos  # a model repository, not a dataset
    sent = set(hub.models["corpus-tests/tiny-gpt2"].files)
    assert {"config.json", "model.safetensors", "README.md"} <= sent
    back = snapshot_download("corpus-tests/tiny-gpt2", cache_dir=str(tmp_path / "cache"))
    loaded = GPT2LMHeadModel.from_pretrained(back)
    ids = torch.arange(12).reshape(2, 6)
    with torch.no_grad():
        assert torch.equal(loaded(ids).logits, model.eval()(ids).logits)

    (folder / "model.safetensors").unlink()
    for args, expect in ((["--type", "model"], "has no model.safetensors"),
                         (["--type", "model", "--valid-fraction", "0.1"], "--type dataset only"),
                         (["--type", "model", "--staging", "x"], "--type dataset only")):
        r = run_cli("push", str(folder), "--repo-id", "corpus-tests/tiny-gpt2", *args)
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 1 and expect in lines[-1] and lines[-1].startswith("error:"), \
            r.stderr
        assert "Traceback" not in r.stderr


@pytest.mark.parametrize("case", ["bad-token", "forbidden", "unreachable", "both-splits",
                                  "preset-and-fraction", "missing-input", "bad-repo-id"])
def test_failures_are_one_clear_sentence(hub, filtered, tmp_path, case):
    env, repo, extra, src = {}, "corpus-tests/errors", [], str(filtered)
    expect, code = "", 1
    if case == "bad-token":
        env["HF_TOKEN"], expect = "hf_wrong", "not logged in to the Hugging Face Hub"
    elif case == "forbidden":
        repo, expect = "not-mine/data", "may not create or write not-mine/data (403)"
    elif case == "unreachable":
        env["HF_ENDPOINT"] = f"http://127.0.0.1:{free_port()}"
        extra, expect = ["--deadline", "3"], "cannot reach the Hugging Face Hub"
    elif case == "both-splits":
        extra, expect = ["--valid-fraction", "0.1", "--valid-from", "x"], "choose one of"
    elif case == "preset-and-fraction":
        extra, expect = ["--splits", "polycoder", "--test-fraction", "0.1"], "not both"
    elif case == "missing-input":
        src, expect = str(tmp_path / "nothing-here"), "no such dataset directory"
    elif case == "bad-repo-id":
        repo, expect = "just-a-name", "--repo-id must be ORG/NAME"
    t0 = time.monotonic()
    r = run_cli("push", src, "--repo-id", repo, *extra, env=env, timeout=120)
    assert time.monotonic() - t0 < 60
    assert r.returncode == code, r.stderr
    assert expect in r.stderr and "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert lines[-1].startswith("error:") and sum(x.startswith("error:") for x in lines) == 1
    no_token(r.stdout, r.stderr)


def test_token_never_in_logs(hub, filtered, tmp_path, caplog, capsys):
    """In-process, every logger at DEBUG (huggingface_hub logs its requests there)."""
    from corpus.publish.push import PushOptions, push

    caplog.set_level(logging.DEBUG)
    push(str(filtered), PushOptions("corpus-tests/logged"), say=print)
    out = capsys.readouterr()
    assert "corpus-tests/logged" in caplog.text + out.out  # the capture did see the push
    no_token(caplog.text, out.out, out.err)


@pytest.mark.skipif(not os.environ.get("CORPUS_REAL_HUB_TOKEN"),
                    reason="opt-in: set CORPUS_REAL_HUB_TOKEN (and CORPUS_REAL_HUB_REPO)")
def test_real_hub_smoke(filtered, tmp_path):
    """Against huggingface.co, only when asked for (never in CI): push and read back."""
    try:
        urllib.request.urlopen("https://huggingface.co/api/whoami-v2", timeout=5)
    except urllib.error.HTTPError:
        pass  # reachable (401 without a token)
    except OSError:
        pytest.skip("huggingface.co is not reachable")
    repo = os.environ.get("CORPUS_REAL_HUB_REPO", "")
    if "/" not in repo:
        pytest.skip("set CORPUS_REAL_HUB_REPO=USER/NAME (it will be written)")
    env = {"HF_ENDPOINT": "https://huggingface.co", "HF_HUB_DISABLE_XET": "",
           "HF_TOKEN": os.environ["CORPUS_REAL_HUB_TOKEN"], "HF_HOME": str(tmp_path / "hf")}
    r = run_cli("push", str(filtered), "--repo-id", repo, "--private", env=env, timeout=600)
    assert r.returncode == 0, r.stderr
    assert os.environ["CORPUS_REAL_HUB_TOKEN"] not in r.stdout + r.stderr
