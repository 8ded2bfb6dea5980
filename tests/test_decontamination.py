"""`corpus decontaminate` on real code with HumanEval content planted into copies of real
files (re-indented, inside other code, lightly edited), against a plain-Python reference."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from corpus.contamination.benchmarks import from_jsonl, humaneval
from corpus.contamination.match import Matcher, normalize
from corpus.contamination.stage import DecontaminateJob, DecontamOptions
from corpus.errors import InputError
from corpus.io import DatasetDir
from tests.conftest import run_cli

PROBLEMS = {s.task: s for s in humaneval() if s.part == "solution"}
PROMPTS = {s.task: s for s in humaneval() if s.part == "prompt"}
DOCSTRINGS = {s.task: s for s in humaneval() if s.part == "docstring"}


@pytest.fixture(scope="module")
def real(python_docs) -> Path:
    return python_docs


def reindent(code: str, r: random.Random) -> str:
    """Other whitespace, same code: indentation doubled, blank lines, trailing spaces."""
    return "\n\n".join("  " * 2 + line.replace("    ", "\t") + " " * r.randint(0, 3)
                       for line in code.splitlines())


def edit_tokens(code: str) -> str:
    """One keyword changed: no longer a substring, still mostly the same n-grams."""
    assert "return " in code
    return code.replace("return ", "yield ", 1)


@pytest.fixture(scope="module")
def planted(real, tmp_path_factory) -> tuple[Path, dict[tuple[str, str], str]]:
    """Copies of real files with benchmark content inside: (repo, path) -> how."""
    out = tmp_path_factory.mktemp("dc-planted")
    r = random.Random(5)
    long_solutions = [t for t, s in PROBLEMS.items() if len(normalize(s.text)) >= 200
                      and len(normalize(DOCSTRINGS[t].text)) >= 60]
    how: dict[tuple[str, str], str] = {}
    for part in sorted(real.glob("data/part-*.parquet")):
        t = pq.read_table(part)
        contents = t.column("content").to_pylist()
        keys = list(zip(t.column("repo_name").to_pylist(), t.column("path").to_pylist(),
                        strict=True))
        for j in range(0, len(contents), 25):
            task = r.choice(long_solutions)
            kind = ["solution", "prompt", "edited", "docstring"][(j // 25) % 4]
            text = {"solution": reindent(PROMPTS[task].text + PROBLEMS[task].text, r),
                    "prompt": PROMPTS[task].text,
                    "edited": edit_tokens(PROBLEMS[task].text),
                    # the docstring under another name and body
                    "docstring": f'def helper(a, b=None):\n    """{DOCSTRINGS[task].text}"""'
                                 "\n    return a\n"}[kind]
            lines = contents[j].split("\n")
            at = r.randint(0, len(lines))
            contents[j] = "\n".join([*lines[:at], text, *lines[at:]])
            how[keys[j]] = f"{kind} {task}"
        idx = t.schema.get_field_index("content")
        pq.write_table(t.set_column(idx, "content", pa.array(contents, pa.large_string())),
                       out / part.name)
    return out, how


def run(engine, src: Path, out: Path, **kw) -> tuple[dict, dict[tuple[str, str], str]]:
    m = engine.run(DecontaminateJob(DatasetDir(str(src)), DatasetDir(str(out)),
                                    DecontamOptions(**kw)))
    removed = pq.read_table(out / "removed").to_pylist() if (out / "removed").exists() else []
    return m, {(x["repo_name"], x["path"]): x["reason"] for x in removed}


def test_real_files_are_clean(engine, real, tmp_path):
    m, removed = run(engine, real, tmp_path / "o", ngram=5)
    assert removed == {} and m["rows"] == m["rows_in"] > 500


def test_exactly_the_planted_files_are_dropped(engine, planted, tmp_path):
    src, how = planted
    m, removed = run(engine, src, tmp_path / "exact")
    expected = {k for k, v in how.items() if not v.startswith("edited")}
    assert set(removed) == expected
    for k in expected:
        assert how[k].split()[1] in removed[k] and removed[k].startswith("contaminated "
                                                                         "humaneval")
    assert m["rows"] + m["removed"] == m["rows_in"]
    # the n-gram option also catches the edited copies (no longer substrings)
    _, fuzzy = run(engine, src, tmp_path / "fuzzy", ngram=5, ngram_threshold=0.7)
    assert set(fuzzy) == set(how)
    for k, v in how.items():
        if v.startswith("edited"):
            assert "n-grams" in fuzzy[k] and v.split()[1] in fuzzy[k]


def test_matches_plain_python_reference(planted):
    src, _ = planted
    t = pq.read_table(sorted(src.glob("part-*.parquet")), columns=["content"])
    snippets = [s for s in humaneval() if len(normalize(s.text)) >= 40]
    got = Matcher(humaneval()).reasons(t.column("content"))
    for text, reason in zip(t.column("content").to_pylist(), got, strict=True):
        norm = normalize(text)
        assert (reason is not None) == any(normalize(s.text) in norm for s in snippets)


def test_benchmark_file_and_errors(engine, real, tmp_path):
    t = pq.read_table(sorted(real.glob("data/part-*.parquet"))[0])
    victim = t.column("content")[3].as_py()
    lines = [ln for ln in victim.splitlines() if len(ln.strip()) > 10][:6]
    bench = tmp_path / "mine.jsonl"
    bench.write_text(json.dumps({"task_id": "mine/1", "solution": "\n".join(lines)}) + "\n")
    assert from_jsonl(str(bench))[0].task == "mine/1"
    r = run_cli("decontaminate", str(real), str(tmp_path / "o"), "--benchmark-file",
                str(bench), "--workers", "1")
    assert r.returncode == 0, r.stderr
    removed = pq.read_table(tmp_path / "o" / "removed").to_pylist()
    assert any(x["reason"] == "contaminated mine mine/1 (solution)" for x in removed)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "def f(): pass  # long enough to be matched at all"}\n{oops\n')
    with pytest.raises(InputError, match=r"bad.jsonl line 2 is not JSON"):
        from_jsonl(str(bad))
    r = run_cli("decontaminate", str(real), str(tmp_path / "o2"), "--benchmark", "nope")
    assert r.returncode == 1 and 'unknown benchmark "nope"' in r.stderr


def test_documents_without_tokens_anywhere_in_a_batch():
    # files with no tokens (empty, only punctuation) at the end of a batch have no shingles:
    # their counts must be 0, not an index past the last shingle
    solution = PROMPTS["HumanEval/0"].text + PROBLEMS["HumanEval/0"].text
    texts = ["", solution, "   \n", solution + "\n# copied", "", "(){}", ""]
    got = Matcher(humaneval()).reasons(pa.array(texts, pa.large_string()))
    assert [g is not None for g in got] == [False, True, False, True, False, False, False]
