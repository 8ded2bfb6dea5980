"""`corpus scrub` on real code with planted secrets of every kind (bench/_planted.py: real
formats, seeded, never real credentials): recall, no planted value anywhere in the output or
the logs, few clean files altered, drops with reasons."""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bench._planted import GENERATORS, plant
from corpus.io import DatasetDir
from corpus.scrub.redact import ScrubOptions, redact
from corpus.scrub.stage import ScrubJob
from tests.conftest import run_cli

KINDS = list(GENERATORS)


@pytest.fixture(scope="module")
def real(python_docs) -> Path:
    return python_docs


@pytest.fixture(scope="module")
def planted(real, tmp_path_factory) -> tuple[Path, dict[str, list[str]]]:
    """Every other real file gets one planted secret (kinds in turn); values by kind."""
    out = tmp_path_factory.mktemp("planted")
    r = random.Random(11)
    values: dict[str, list[str]] = {k: [] for k in KINDS}
    i = 0
    for part in sorted(real.glob("part-*.parquet")):
        t = pq.read_table(part)
        contents = t.column("content").to_pylist()
        for j in range(0, len(contents), 2):
            kind = KINDS[i % len(KINDS)]
            contents[j], v = plant(contents[j], kind, r)
            values[kind].append(v)
            i += 1
        idx = t.schema.get_field_index("content")
        pq.write_table(t.set_column(idx, "content", pa.array(contents, pa.large_string())),
                       out / part.name)
    return out, values


def test_recall_on_planted_secrets_and_no_value_anywhere(engine, planted, tmp_path, caplog):
    src, values = planted
    caplog.set_level(logging.DEBUG)
    out = tmp_path / "scrubbed"
    engine.run(ScrubJob(DatasetDir(str(src)), DatasetDir(str(out)), ScrubOptions()))
    texts = "\n".join(pq.read_table(sorted(out.glob("part-*.parquet"))).column("content")
                      .to_pylist())
    everything = b"".join(p.read_bytes() for p in out.rglob("*") if p.is_file())
    found = {k: sum(v not in texts for v in vs) for k, vs in values.items()}
    recall = sum(found.values()) / sum(len(v) for v in values.values())
    totals = {k: len(v) for k, v in values.items()}
    assert recall >= 0.95, [(k, found[k], totals[k]) for k in KINDS if found[k] < totals[k]]
    assert all(found[k] == len(values[k]) for k in KINDS), found  # every kind, every value
    for vs in values.values():
        for v in vs:
            assert v.encode() not in everything and v not in caplog.text
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["rows"] == manifest["rows_in"]
    for kind in {GENERATORS[k][0] for k in KINDS}:
        assert manifest["secrets"].get(kind, 0) > 0, kind


def test_clean_real_files_are_left_alone(real):
    """≤ 1 % of real files altered by anything but real email / IP addresses."""
    t = pq.read_table(sorted(real.glob("part-*.parquet")), columns=["path", "content"])
    altered, n = [], 0
    for path, text in zip(t.column("path").to_pylist(), t.column("content").to_pylist(),
                          strict=True):
        n += 1
        _, counts = redact(text, path, ScrubOptions())
        if set(counts) - {"EMAIL", "IP_ADDRESS"}:
            altered.append(path)
    assert n > 500 and len(altered) / n <= 0.01, altered


@pytest.mark.parametrize("text, kept", [
    ("version = '1.2.3.4'", True), ('ip = "10.0.0.1"', True), ("see 192.0.2.15", True),
    ('user = "ops@example.com"', True), ('h = "d41d8cd98f00b204e9800998ecf8427e"', True),
    ('u = "123e4567-e89b-12d3-a456-426614174000"', True),
    ("password = os.environ['DB_PASSWORD']", True), ('ip = "8.8.8.8"', False),
    ('url = "mysql://root:hunter2pw@10.1.1.1/db"', False),
    ('dns = "2001:4860:4860::8888"', False), ('doc = "2001:db8::1"', True),
    ('t = "12:30:45"', True),
    ('"sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"', True),
    ('vector = "SGVsbG8gV29ybGQhIFRoaXMgaXMgYSB0ZXN0IHZlY3Rvcg=="', True),
    ('uri = "postgresql://postgres:postgres@localhost/db"', True),
    ('_START = b"-----BEGIN OPENSSH PRIVATE KEY-----"\nx = f(a, b)\n'
     '_END = b"-----END OPENSSH PRIVATE KEY-----"', True),  # markers in code, not a key
    ('k = "-----BEGIN RSA PRIVATE KEY-----\\nMIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf'
     '\\n-----END RSA PRIVATE KEY-----"', False)])  # a one-line key with \n escapes
def test_not_secrets_by_rule(text, kept):
    out, _ = redact(text, "x.py", ScrubOptions())
    assert (out == text) == kept, out


def test_strings_stay_strings_and_same_value_same_placeholder():
    value = "AKIA" + "Q" * 16
    text = f'a = "{value}"\nb = \'{value}\'  # {value}\n'
    out, counts = redact(text, "x.py", ScrubOptions())
    assert out == 'a = "<AWS_ACCESS_KEY>"\nb = \'<AWS_ACCESS_KEY>\'  # <AWS_ACCESS_KEY>\n'
    assert counts == {"AWS_ACCESS_KEY": 3}
    compile(out, "x.py", "exec")


def test_drop_files_with_and_errors_are_dropped(real, planted, tmp_path, monkeypatch):
    src, values = planted
    r = run_cli("scrub", str(src), str(tmp_path / "o"), "--drop-files-with", "PRIVATE_KEY",
                "--workers", "1")
    assert r.returncode == 0, r.stderr
    removed = pq.read_table(tmp_path / "o" / "removed").to_pylist()
    assert len(removed) == len(values["private_key"])
    assert {x["reason"] for x in removed} == {"contains-secret PRIVATE_KEY"}
    for v in values["private_key"]:
        assert v.splitlines()[3] not in r.stdout + r.stderr
    # a detector error drops the document, naming only the error type
    import corpus.scrub.stage as st

    def boom(text, filename, opts):
        raise ValueError(text[:50])

    monkeypatch.setattr(st, "redact", boom)
    job = ScrubJob(DatasetDir(str(real)), DatasetDir(str(tmp_path / "x")), ScrubOptions())
    t = pq.read_table(sorted(real.glob("part-*.parquet"))[0])
    kept, dropped = job.map(t)
    assert kept.num_rows == 0 and dropped.num_rows == t.num_rows
    assert set(dropped.column("reason").to_pylist()) == {"scrub-error ValueError"}
