"""`corpus report` over a small real pipeline run: every section is there, the funnel says what
the manifests say, the figures are embedded, and the page renders in headless Chromium with no
console error."""

from __future__ import annotations

import base64
import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest

from corpus.report.render import SECTIONS
from tests.conftest import QUERIES, run_cli

CONFIG = """
[pipeline]
output = "{out}"

[[stages]]
name = "tables"
kind = "github-tables"
site_packages = true
include = ["requests", "urllib3", "idna", "click", "pip"]

[[stages]]
name = "raw"
kind = "extract"
input = "tables"
query = "{queries}/github_python.sql"
partition_bytes = "4MiB"

[[stages]]
name = "filtered"
kind = "filter"
input = "raw"
rules = [{{ rule = "line_max", max = 1000 }}, {{ rule = "line_mean", max = 100 }},
         {{ rule = "alpha_frac", min = 0.25 }}, {{ rule = "config_or_test", probability = 0.7 }},
         {{ rule = "assignments", min = 5 }}]

[[stages]]
name = "deduped"
kind = "dedup"
input = "filtered"
method = "exact"

[[stages]]
name = "near"
kind = "dedup"
input = "deduped"
method = "minhash"
threshold = 0.7

[[stages]]
name = "scrubbed"
kind = "scrub"
input = "near"

[[stages]]
name = "tokenizer"
kind = "tokenizer"
input = "scrubbed"
vocab_size = 600
sample_docs = 150

[[stages]]
name = "tokens"
kind = "shard"
input = "scrubbed"
format = "tokens"
tokenizer = "tokenizer"
seq_len = 64
"""


class Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.sections: list[str] = []
        self.images: list[str] = []
        self.links: list[str] = []
        self.funnel: dict[tuple[str, str], str] = {}
        self._cell: tuple[str, str] | None = None
        self._section: str | None = None
        self.text: dict[str, list[str]] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "section":
            self._section = a["id"]
            self.sections.append(a["id"] or "")
        if tag == "img":
            self.images.append(a["src"] or "")
        if tag in ("a", "link", "script"):
            self.links.append(a.get("href") or a.get("src") or "")
        if tag == "td" and "data-stage" in a:
            self._cell = (a["data-stage"] or "", a["data-field"] or "")

    def handle_data(self, data: str) -> None:
        if self._cell:
            self.funnel[self._cell] = data
            self._cell = None
        if self._section:
            self.text.setdefault(self._section, []).append(data)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("report-run") / "run"
    config = out.parent / "small.toml"
    config.write_text(CONFIG.format(out=out, queries=QUERIES))
    r = run_cli("run", str(config), "--workers", "2", "--quiet", timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return out, r.stdout


@pytest.mark.slow
def test_run_writes_the_report_and_it_matches_the_manifests(run_dir):
    out, stdout = run_dir
    assert f"report: {out / 'report.html'}" in stdout
    page = Page()
    page.feed((out / "report.html").read_text())
    assert page.sections == list(SECTIONS)
    for stage in ("tables", "raw", "filtered", "deduped", "near", "scrubbed", "tokens"):
        m = json.loads((out / stage / "manifest.json").read_text())
        for field in ("rows_in", "rows", "removed"):
            assert page.funnel[(stage, field)].replace(",", "") == str(m[field]), (stage, field)
    assert len(page.images) >= 10  # funnel ×2, reasons, 4 metrics + tokens, breakdowns, …
    for src in page.images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert all(link.startswith("#") for link in page.links)  # nothing to fetch
    filtered = json.loads((out / "filtered" / "manifest.json").read_text())
    reasons = " ".join(page.text["reasons"])
    for reason, c in filtered["reasons"].items():
        assert reason in reasons and f"{c['rows']:,}" in reasons
    scrub = json.loads((out / "scrubbed" / "manifest.json").read_text())
    secrets = " ".join(page.text["secrets"])
    for kind, n in scrub["secrets"].items():
        assert kind in secrets and f"{n:,}" in secrets
    samples = " ".join(page.text["samples"])
    assert "alpha_frac" in samples or "config_or_test" in samples
    assert not re.search(r"[\w.+-]+@[A-Za-z][\w-]*\.[A-Za-z]{2,}\b", samples)  # scrubbed
    assert "No training in this run." in " ".join(page.text["training"])
    check_timings(out, " ".join(page.text["timings"]))


def check_timings(out: Path, shown: str) -> None:
    """Per stage: the seconds of its manifest, the content bytes of its input, per worker."""
    from corpus.report.collect import stages_of
    from corpus.report.timings import timings

    rows = {t["name"]: t for t in timings(stages_of(str(out)))}
    assert {"raw", "filtered", "scrubbed", "tokens"} <= set(rows)
    assert abs(sum(t["share"] for t in rows.values()) - 1) < 1e-9
    for name in ("filtered", "scrubbed", "tokens"):
        m = json.loads((out / name / "manifest.json").read_text())
        source = json.loads((out / name / m["input"] / "manifest.json").read_text())
        t = rows[name]
        assert t["seconds"] == m["timings"]["run_seconds"] > 0
        assert t["bytes_read"] == source["content_bytes"] > 0
        assert t["workers"] == 2
        assert t["mb_s_core"] == pytest.approx(source["content_bytes"] / t["seconds"] / 2 / 1e6)
        assert name in shown and f"{t['mb_s_core']:,.3g}" in shown


@pytest.mark.slow
def test_report_command_and_bad_input(run_dir, tmp_path):
    out, _ = run_dir
    r = run_cli("report", str(out), "--out", str(tmp_path / "r.html"))
    assert r.returncode == 0 and (tmp_path / "r.html").stat().st_size > 10_000
    r = run_cli("report", str(tmp_path / "nothing-here"))
    assert r.returncode == 1 and "no such run folder" in r.stderr and "Traceback" not in r.stderr


def _browser() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return None
    return shutil.which("chromium")


@pytest.mark.slow
@pytest.mark.skipif(_browser() is None, reason="needs Debian's chromium and playwright "
                    "(make test installs both where it can)")
def test_report_renders_in_headless_chromium(run_dir, tmp_path):
    from playwright.sync_api import sync_playwright

    out, _ = run_dir
    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_browser(), args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}")
                if m.type in ("error", "warning") else None)
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        page.on("requestfailed", lambda r: problems.append(f"failed request: {r.url}"))
        page.goto((out / "report.html").as_uri())
        page.wait_for_load_state("load")
        images = page.evaluate(
            "Array.from(document.images).map(i => i.complete && i.naturalWidth > 0)")
        height = page.evaluate("document.body.scrollHeight")
        shot = tmp_path / "report.png"
        page.screenshot(path=str(shot), full_page=True)
        browser.close()
    assert problems == []
    assert images and all(images)
    assert height > 3000  # every section laid out, not an empty page
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000


# --- samples are redacted whole, then cut (issue 12, finding 1) ---------------------------
@pytest.fixture(scope="module")
def key_run(engine, python_docs, tmp_path_factory) -> tuple[Path, list[str]]:
    """A run folder whose scrub stage dropped real files with an RSA key at their very top
    (`drop_files_with = ["PRIVATE_KEY"]`): the key is longer than a sample's lines."""
    import random

    import pyarrow as pa
    import pyarrow.parquet as pq

    from bench._planted import _rsa_block
    from corpus.io import DatasetDir
    from corpus.scrub.redact import ScrubOptions
    from corpus.scrub.stage import ScrubJob

    run = tmp_path_factory.mktemp("key-run") / "run"
    (run / "raw").mkdir(parents=True)
    r = random.Random()
    keys = []
    for n, part in enumerate(sorted(python_docs.glob("data/part-*.parquet"))):
        t = pq.read_table(part)
        contents = t.column("content").to_pylist()
        if n == 0:
            for j in range(3):
                keys.append(_rsa_block(r))
                contents[j] = f'KEY = """{keys[-1]}"""\n' + contents[j]
        t = t.set_column(t.schema.get_field_index("content"), "content",
                         pa.array(contents, pa.large_string()))
        pq.write_table(t, run / "raw" / part.name)
    engine.run(ScrubJob(DatasetDir(str(run / "raw")), DatasetDir(str(run / "scrubbed")),
                        ScrubOptions(drop_files_with=["PRIVATE_KEY"])))
    return run, keys


def test_samples_of_files_removed_for_a_key_show_no_line_of_it(key_run):
    from corpus.report.collect import SAMPLE_LINES
    from corpus.report.render import write

    run, keys = key_run
    assert all(len(k.splitlines()) > SAMPLE_LINES for k in keys)  # a cut would end inside it
    page = write(str(run)).read_text()
    body = [line for k in keys for line in k.splitlines()[1:-1]]
    assert not [line for line in body if line[:16] in page]
    parsed = Page()
    parsed.feed(page)
    samples = " ".join(parsed.text["samples"])
    assert "contains-secret PRIVATE_KEY" in samples and "KEY = \"\"\"<PRIVATE_KEY>" in samples
