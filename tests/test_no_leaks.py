"""Planted secrets never leave the scrubber (issue 12, acceptance): secrets of every kind the
scrubber knows (bench/_planted.py: real formats, fresh random values on every run, never real
credentials), a PEM key at the very top of a file among them, planted into real code
(copies of the test environment's own .py files) in a few repositories, then the real CLI:
pipeline 1 (github-tables -> extract) into root A; pipeline 2 on A's extract (scrub first, then
filter, exact dedup, licenses, decontaminate, tokenizer, token shards) into root B; `corpus
report` and `corpus stats` on every output. No planted value may appear in any file under B
(raw bytes, and decoded: Parquet strings, the token shards decoded, the tokenizer's vocabulary,
which holds every merge's result), in either report, in any command's output or in any log;
in A only in `content` columns."""

from __future__ import annotations

import html
import os
import random
import re
import shutil
from pathlib import Path
from typing import Any

import click
import idna
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest
import requests
import rich
import urllib3

from bench._planted import GENERATORS, plant
from tests.conftest import QUERIES, run_cli

pytestmark = pytest.mark.slow

REPOS = {"alpha": click, "beta": rich, "gamma": urllib3, "delta": requests, "epsilon": idna}
FILES_PER_REPO = 5
COPIES = 2  # each kind planted this many times, in different files
MIT = Path(urllib3.__file__).parent.parent / "urllib3-2.8.0.dist-info/licenses/LICENSE.txt"

PIPELINE_1 = """
[pipeline]
output = "{root}"

[[stages]]
name = "tables"
kind = "github-tables"
sources = ["{src}"]

[[stages]]
name = "raw"
kind = "extract"
input = "tables"
query = "{queries}/github_python.sql"
"""

PIPELINE_2 = """
[pipeline]
output = "{root}"

[[stages]]
name = "scrubbed"
kind = "scrub"
input = "{raw}"
drop_files_with = ["PRIVATE_KEY"]

[[stages]]
name = "filtered"
kind = "filter"
input = "scrubbed"
rules = [{{ rule = "line_max", max = 1000 }}, {{ rule = "alpha_frac", min = 0.25 }},
         {{ rule = "config_or_test", probability = 0.7 }}]

[[stages]]
name = "deduped"
kind = "dedup"
input = "filtered"
method = "exact"

[[stages]]
name = "licensed"
kind = "licenses"
input = "deduped"

[[stages]]
name = "clean"
kind = "decontaminate"
input = "licensed"

[[stages]]
name = "tokenizer"
kind = "tokenizer"
input = "clean"
vocab_size = 400

[[stages]]
name = "tokens"
kind = "shard"
input = "clean"
format = "tokens"
tokenizer = "tokenizer"
seq_len = 64
valid_fraction = 0.1
"""


def real_files(module: Any, n: int) -> list[Path]:
    """The n largest-but-not-huge .py files of an installed package (2-60 KB: past the
    extraction query's 1 KiB minimum, under the filter's line limits)."""
    files = [p for p in sorted(Path(module.__file__).parent.rglob("*.py"))
             if 2_000 < p.stat().st_size < 60_000 and "__pycache__" not in p.parts]
    return sorted(files, key=lambda p: -p.stat().st_size)[:n]


def needles_of(kind: str, value: str) -> list[str]:
    """What must never be seen: the value; for a key block also every line of its body."""
    if kind == "private_key":
        return [value, *value.splitlines()[1:-1]]
    return [value]


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> dict[str, Any]:
    seed = int.from_bytes(os.urandom(4), "big")  # named in every failure message
    r = random.Random(seed)
    src = tmp_path_factory.mktemp("leaks") / "src"
    texts: dict[str, str] = {}  # "repo/relative path" -> text
    for repo, module in REPOS.items():
        (src / repo).mkdir(parents=True)
        shutil.copy(MIT, src / repo / "LICENSE")
        root = Path(module.__file__).parent
        for p in real_files(module, FILES_PER_REPO):
            texts[f"{repo}/{p.relative_to(root).as_posix()}"] = p.read_text(encoding="utf-8")
    names = list(texts)
    top, dup = names[0], names[-1]
    # key blocks get files of their own (those files are dropped): every other kind stays in
    # documents that go on, so each is seen redacted downstream
    keyed = r.sample(names[1:-1], COPIES)
    others = [n for n in names[1:] if n not in keyed]
    values: list[tuple[str, str]] = []
    for kind in GENERATORS:
        for name in (keyed if kind == "private_key" else r.sample(others, COPIES)):
            texts[name], v = plant(texts[name], kind, r)
            values.append((kind, v))
    # a key block at the very top of a file: the file is dropped for it, the report samples it
    _, gen, template = GENERATORS["private_key"]
    key_value = gen(r)
    texts[top] = template.format(v=key_value) + "\n" + texts[top]
    values.append(("private_key", key_value))
    # one file twice, in two repositories: exact dedup removes a document that held secrets
    texts[f"epsilon/copied/{dup.split('/', 1)[1]}"] = texts[dup]
    for name, text in texts.items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_text(text, encoding="utf-8")
    repo, path = top.split("/", 1)
    return {"seed": seed, "src": src, "values": values, "top": (repo, path),
            "needles": sorted({n for k, v in values for n in needles_of(k, v)})}


def parquet_strings(path: Path, skip: tuple[str, ...] = ()) -> str:
    """Every string cell of every string column of a Parquet file (but `skip`), joined."""
    t = pq.read_table(path)
    out = []
    for name, col in zip(t.column_names, t.columns, strict=True):
        strings = pa.types.is_string(col.type) or pa.types.is_large_string(col.type)
        if strings and name not in skip:
            out += [v for v in col.to_pylist() if v]
    return "\n".join(out)


def shard_text(path: Path, tok: Any) -> str:
    ids = ipc.open_file(pa.OSFile(str(path))).read_all().column("input_ids")
    flat = pa.chunked_array([c.flatten() for c in ids.chunks]).to_numpy().tolist()
    return tok.decode(flat, skip_special_tokens=False)


def found(needles: list[str], where: str | bytes) -> list[str]:
    if isinstance(where, bytes):
        return [n for n in needles if n.encode() in where]
    return [n for n in needles if n in where]


@pytest.fixture(scope="module")
def runs(planted, tmp_path_factory) -> dict[str, Any]:
    base = planted["src"].parent
    logs = base / "logs"
    env = {"CORPUS_LOG_DIR": str(logs)}
    a, b = base / "A", base / "B"
    (base / "p1.toml").write_text(PIPELINE_1.format(root=a, src=planted["src"], queries=QUERIES))
    (base / "p2.toml").write_text(PIPELINE_2.format(root=b, raw=a / "raw"))
    outputs: dict[str, Any] = {}
    for name, args in (("run A", ["run", str(base / "p1.toml")]),
                       ("run B", ["run", str(base / "p2.toml")]),
                       ("report A", ["report", str(a)]), ("report B", ["report", str(b)])):
        extra = ["--workers", "2"] if args[0] == "run" else []
        r = run_cli(*args, *extra, env=env, timeout=900)
        assert r.returncode == 0, (name, planted["seed"], r.stderr[-3000:])
        outputs[name] = r
    for root in (a, b):
        for m in sorted(root.glob("*/manifest.json")):
            r = run_cli("stats", str(m.parent), env=env)
            assert r.returncode == 0, (m.parent, r.stderr[-2000:])
            outputs[f"stats {m.parent}"] = r
    return {"A": a, "B": b, "logs": logs, "outputs": outputs}


def test_the_search_would_see_a_leak(planted, runs):
    """Every planted value is in A's extracted content (the needles are real), each kind was
    found by the scrubber, and the file with the key at its top was dropped for it."""
    import json

    needles, a, b = planted["needles"], runs["A"], runs["B"]
    content = "\n".join(parquet_strings(p) for p in sorted((a / "raw").glob("data/part-*.parquet")))
    assert found(needles, content) == needles, planted["seed"]
    scrub = json.loads((b / "scrubbed" / "manifest.json").read_text())
    assert {GENERATORS[k][0] for k in GENERATORS} <= set(scrub["secrets"]) | {"PRIVATE_KEY"}
    removed = pq.read_table(b / "scrubbed" / "removed").to_pylist()
    repo, name = planted["top"]
    top = [x for x in removed if x["path"] == name and x["repo_name"].endswith(repo)]
    assert [x["reason"] for x in top] == ["contains-secret PRIVATE_KEY"], removed
    page = html.unescape((b / "report.html").read_text())
    # the report samples two files per reason (their first lines, where a key planted further
    # down is not): files dropped for a key are shown redacted, none withheld; the one with
    # the key at its top starts with `<PRIVATE_KEY>` (checked over every sample)
    assert "contains-secret PRIVATE_KEY" in page and "(not shown" not in page
    from corpus.report.collect import samples, stages_of

    every = samples(stages_of(str(b)), per_reason=10_000)  # the top-key file among them
    shown = [x for x in every if x["path"] == name and x["repo_name"].endswith(repo)]
    assert len(shown) == 1 and not shown[0]["withheld"], shown
    assert shown[0]["head"].startswith('KEY = """<PRIVATE_KEY>"""'), shown[0]["head"][:200]


def test_no_planted_value_in_any_file_under_b(planted, runs):
    from tokenizers import Tokenizer

    needles, b = planted["needles"], runs["B"]
    files = [p for p in sorted(b.rglob("*")) if p.is_file()]
    assert any(p.suffix == ".arrow" for p in files) and (b / "report.html") in files
    for p in files:
        assert not found(needles, p.read_bytes()), (p, planted["seed"])
        if p.suffix == ".parquet":
            assert not found(needles, parquet_strings(p)), (p, planted["seed"])
        if p.suffix == ".html":
            assert not found(needles, html.unescape(p.read_text())), (p, planted["seed"])
    tok = Tokenizer.from_file(str(b / "tokenizer" / "tokenizer.json"))
    vocab = [tok.decode([i]) for i in range(tok.get_vocab_size())]
    assert not [n for n in needles if any(n in v for v in vocab)], planted["seed"]
    stream = "".join(shard_text(p, tok) for p in sorted((b / "tokens").glob("*.arrow")))
    kinds = "|".join(GENERATORS[k][0] for k in GENERATORS)
    assert re.search(f"<(?:{kinds})>", stream), "the placeholders went on into the shards"
    assert not found(needles, stream), planted["seed"]


def test_no_planted_value_in_any_output_or_log(planted, runs):
    needles = planted["needles"]
    for name, r in runs["outputs"].items():
        assert not found(needles, r.stdout + r.stderr), (name, planted["seed"])
    for p in sorted(runs["logs"].rglob("*")) if runs["logs"].exists() else []:
        if p.is_file():
            assert not found(needles, p.read_bytes()), (p, planted["seed"])


def test_in_a_planted_values_are_only_in_content(planted, runs):
    needles, a = planted["needles"], runs["A"]
    for p in sorted(a.rglob("*")):
        if not p.is_file():
            continue
        if p.suffix == ".parquet":  # content holds them; no other column may
            assert not found(needles, parquet_strings(p, skip=("content",))), p
        else:  # manifests, pipeline.json, report.html, …
            assert not found(needles, p.read_bytes()), (p, planted["seed"])
