"""`corpus eval perplexity` on real code of four languages (Python, TypeScript, C, C++: files of
installed distributions through PolyCoder's query): its numbers equal a plain transformers
loop (`model(ids, labels=ids).loss` over the same windows) for GPT-2 and GPT-NeoX, without and
with overlap; token shards give the numbers of their documents; `--split test` is the token
shards' test split; a token of probability 0 gives inf, said so; bad input is one `error:`
line."""

from __future__ import annotations

import json
import math
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from corpus.eval import documents as D
from corpus.eval.perplexity import PerplexityOptions, perplexity, run, windows
from corpus.splits import SplitRule
from tests.conftest import QUERIES, run_cli
from tests.eval_models import tiny_model_folder

#: Distributions whose files hold Python (click, idna), C and C++ (greenlet, markupsafe) and
#: TypeScript (bokeh's type declarations).
DISTS = ["click", "idna", "greenlet", "markupsafe", "bokeh"]
LANGUAGES = {"Python", "TypeScript", "C", "C++"}
CONTEXT = 64
#: the token shards' split options: a test split, no validation split
RULE = SplitRule(valid_fraction=0.0, test_fraction=0.3)
SPLIT_ARGS = ["--valid-fraction", "0", "--test-fraction", "0.3"]
EOT = "<|endoftext|>"


@pytest.fixture(scope="module")
def ml_docs(engine, tmp_path_factory) -> Path:
    """PolyCoder's query over DISTS' files (at most 8 kB each, for speed)."""
    from corpus.extract.duckdb_job import ExtractJob, ExtractOptions
    from corpus.github.build import GithubTablesJob, GithubTablesOptions
    from corpus.io import DatasetDir

    root = tmp_path_factory.mktemp("ppl")
    engine.run(GithubTablesJob(GithubTablesOptions(site_packages=True, include=DISTS),
                               DatasetDir(str(root / "tables"))))
    engine.run(ExtractJob(ExtractOptions(str(QUERIES / "github_multilang.sql"),
                                         str(root / "tables"), {"max_size": 8000},
                                         partition_bytes=1 << 20),
                          DatasetDir(str(root / "docs"))))
    return root / "docs"


@pytest.fixture(scope="module")
def ml_table(ml_docs) -> pa.Table:
    t = pq.read_table(sorted(ml_docs.glob("data/part-*.parquet")))
    counts = dict(zip(*np.unique(t.column("language").to_pylist(), return_counts=True),
                      strict=True))
    assert set(counts) >= LANGUAGES and min(counts[g] for g in LANGUAGES) >= 10, counts
    return t


@pytest.fixture(scope="module")
def ml_tokens(engine, ml_docs, tokenizer_dir, tmp_path_factory) -> Path:
    """ml_docs as token shards of the models' tokenizer, in small shards (documents cross shard
    boundaries), with a test split and no validation split."""
    from corpus.io import DatasetDir
    from corpus.tokens.shards import TokenShardJob, TokenShardOptions

    out = tmp_path_factory.mktemp("ppl-tokens")
    opts = TokenShardOptions(str(tokenizer_dir), seq_len=48, shard_bytes=8 << 10,
                             valid_fraction=RULE.valid_fraction,
                             test_fraction=RULE.test_fraction, seed=1)
    engine.run(TokenShardJob(opts, DatasetDir(str(ml_docs)), DatasetDir(str(out))))
    return out


@pytest.fixture(scope="module")
def models(tokenizer_dir, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("ppl-models")
    return {a: tiny_model_folder(tokenizer_dir, root / a, a, context=CONTEXT, seed=1)
            for a in ("gpt2", "gpt_neox")}


@pytest.fixture(scope="module")
def subset(ml_table, tmp_path_factory) -> Path:
    """Five small documents per language as a folder of one Parquet file; one of them holds a
    literal end-of-text marker (text, not a document boundary)."""
    t = ml_table.filter(pc.less(ml_table.column("size"), 3000)).sort_by("id")
    langs = np.asarray(t.column("language").to_pylist(), dtype=object)
    rows = np.concatenate([np.flatnonzero(langs == g)[:5] for g in sorted(LANGUAGES)])
    t = t.take(pa.array(rows))
    content = t.column("content").to_pylist()
    content[0] += f"\n# a literal {EOT} inside a file\n"
    t = t.set_column(t.column_names.index("content"), "content",
                     pa.array(content, pa.large_string()))
    out = tmp_path_factory.mktemp("ppl-subset")
    pq.write_table(t, out / "part-00000.parquet")
    return out


def reference(model_dir: Path, texts: list[str], context: int, stride: int,
              ) -> list[tuple[float, int]]:
    """(summed NLL, scored tokens) per text: Hugging Face's strided-perplexity loop, with the
    transformers tokenizer of the folder, `<|endoftext|>` first."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(model_dir, local_files_only=True).float().eval()
    out = []
    for text in texts:
        ids = torch.tensor([[tok.eos_token_id, *tok(text, add_special_tokens=False).input_ids]])
        assert (ids[0, 1:] != tok.eos_token_id).all()  # a literal marker stays text
        length, nll, n, prev_end = ids.shape[1], 0.0, 0, 0
        for begin in range(0, length, stride):
            end = min(begin + context, length)
            x = ids[:, begin:end]
            y = x.clone()
            y[:, :-(end - prev_end)] = -100
            k = int((y[:, 1:] != -100).sum())
            if k:
                with torch.no_grad():
                    nll += float(model(x, labels=y).loss) * k
                n += k
            prev_end = end
            if end == length:
                break
        out.append((nll, n))
    return out


def test_windows_score_each_token_once():
    """S < C: every token but the leading separator scored exactly once, each (after the first
    window) with at least C - S tokens before it; S = C: all but each window's first."""
    for length in [1, 2, 63, 64, 65, 129, 1000]:
        for stride in [1, 7, 32, 63, 64]:
            w = windows(length, 64, stride)
            counts = np.zeros(length, int)
            for begin, end, first in w:
                assert begin < first < end <= begin + 64
                assert begin == 0 or first - begin >= 64 - stride
                counts[first:end] += 1
            expect = np.ones(length, int)
            expect[0] = 0
            if stride == 64:
                expect[::64] = 0
            assert (counts == expect).all(), (length, stride)
    assert perplexity(800.0) == perplexity(math.inf) == math.inf
    with pytest.raises(Exception, match="--stride must be in"):
        windows(10, 64, 65)


def by_group(result: dict) -> dict[str, dict]:
    return {g["group"]: g for g in result["groups"]}


@pytest.mark.parametrize("stride", [CONTEXT, 24], ids=["no-overlap", "stride-24"])
@pytest.mark.parametrize("arch", ["gpt2", "gpt_neox"])
def test_perplexity_equals_a_transformers_loop(models, subset, arch, stride):
    t = pq.read_table(subset / "part-00000.parquet")
    ref = reference(models[arch], t.column("content").to_pylist(), CONTEXT, stride)
    r = run(PerplexityOptions(str(models[arch]), str(subset), split="all", by="language",
                              stride=stride, batch=5, device="cpu"))
    assert r["context"] == CONTEXT and r["stride"] == stride and r["source"] == "documents"
    langs = np.asarray(t.column("language").to_pylist(), dtype=object)
    got = by_group(r)
    assert set(got) == LANGUAGES
    for g in LANGUAGES:
        nll = sum(ref[i][0] for i in np.flatnonzero(langs == g))
        n = sum(ref[i][1] for i in np.flatnonzero(langs == g))
        assert got[g]["documents"] == 5 and got[g]["tokens"] == n
        assert got[g]["loss"] == pytest.approx(nll / n, rel=1e-4)
        assert got[g]["perplexity"] == pytest.approx(math.exp(nll / n), rel=1e-4)
    total = sum(x[1] for x in ref)
    assert r["all"]["tokens"] == total
    assert r["all"]["loss"] == pytest.approx(sum(x[0] for x in ref) / total, rel=1e-4)


def test_test_split_is_the_token_shards_test_split(ml_docs, ml_tokens, tokenizer_dir, models):
    tok = D.model_tokenizer(str(models["gpt2"]))
    a = D.from_dataset(str(ml_docs), tok, "test", "none", RULE, None)
    b = D.from_tokens(str(ml_tokens), tok, "test", "none", None)
    index = pq.read_table(sorted(ml_tokens.glob("test-*.docs.parquet")))
    key = ["id", "repo_name", "path"]
    assert sorted(index.select(key).to_pylist(), key=str) == \
        sorted(a.table.select(key).to_pylist(), key=str)
    assert a.table.select(key).equals(b.table.select(key))  # and in the same order
    assert len(a.tokens) > 50
    assert all(np.array_equal(x, y) for x, y in zip(a.tokens, b.tokens, strict=True))


@pytest.mark.parametrize("by", ["language", "extension"])
def test_token_shards_give_the_numbers_of_their_documents(ml_docs, ml_tokens, models, by):
    common = {"split": "test", "by": by, "max_docs": 4, "batch": 8, "device": "cpu"}
    a = run(PerplexityOptions(str(models["gpt2"]), str(ml_docs), rule=RULE, **common))
    b = run(PerplexityOptions(str(models["gpt2"]), str(ml_tokens), **common))
    assert (a["source"], b["source"]) == ("documents", "tokens")
    assert a["groups"] == b["groups"]
    if by == "language":
        assert {g["group"] for g in a["groups"]} == LANGUAGES
    assert all(g["documents"] <= 4 for g in a["groups"])


def impossible_token_model(base: Path, out: Path, token: int) -> Path:
    """The gpt2 folder with an untied output layer under which `token` has a logit of -inf
    at every position (the final layer norm gives every position the same unit vector)."""
    import torch
    from transformers import AutoModelForCausalLM, GPT2LMHeadModel

    m = AutoModelForCausalLM.from_pretrained(base, local_files_only=True)
    m.config.tie_word_embeddings = False
    crafted = GPT2LMHeadModel(m.config)
    crafted.transformer.load_state_dict(m.transformer.state_dict())
    with torch.no_grad():
        crafted.transformer.ln_f.weight.zero_()
        crafted.transformer.ln_f.bias.zero_()
        crafted.transformer.ln_f.bias[0] = 1.0
        crafted.lm_head.weight.normal_()
        crafted.lm_head.weight[token] = 0.0
        crafted.lm_head.weight[token, 0] = -math.inf
    crafted.save_pretrained(out)
    for f in base.iterdir():
        if "token" in f.name:
            shutil.copy(f, out / f.name)
    return out


def test_a_token_of_probability_zero_gives_inf(models, subset, tmp_path):
    tok = D.model_tokenizer(str(models["gpt2"]))
    docs = D.from_dataset(str(subset), tok, "all", "language", SplitRule(), None)
    groups = docs.groups
    # a token scored in TypeScript only (never at a window's first position)
    scored = {g: set() for g in LANGUAGES}
    for g, x in zip(groups, docs.tokens, strict=True):
        scored[g] |= set(x[np.arange(len(x)) % CONTEXT != 0].tolist())
    others = set().union(*(scored[g] for g in LANGUAGES - {"TypeScript"}))
    token = min(scored["TypeScript"] - others)
    folder = impossible_token_model(models["gpt2"], tmp_path / "crafted", token)
    from corpus.cli import cli

    res = CliRunner().invoke(cli, ["eval", "perplexity", str(folder), "--data", str(subset),
                                   "--split", "all", "--quiet", "--json"])
    assert res.exit_code == 0, res.output
    r = json.loads(res.output)
    got = by_group(r)
    assert got["TypeScript"]["loss"] == got["TypeScript"]["perplexity"] == "inf"
    assert r["all"]["perplexity"] == "inf"
    for g in LANGUAGES - {"TypeScript"}:
        assert math.isfinite(got[g]["loss"]) and math.isfinite(got[g]["perplexity"])
    table = CliRunner().invoke(cli, ["eval", "perplexity", str(folder), "--data", str(subset),
                                     "--split", "all", "--quiet"])
    assert table.exit_code == 0 and "inf: a scored token has probability 0" in table.output
    assert "TypeScript" in table.output


def test_the_command_prints_json_and_a_bar(models, subset):
    r = run_cli("eval", "perplexity", str(models["gpt_neox"]), "--data", str(subset),
                "--split", "all", "--by", "extension", "--stride", "32", "--max-docs", "2",
                "--json")
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout)
    assert out["stride"] == 32 and out["architecture"] == "gpt_neox"
    assert {g["group"] for g in out["groups"]} >= {".py", ".ts", ".h", ".cpp"}
    assert out["tokens_per_s"] > 0 and "perplexity" in r.stderr and "tokens" in r.stderr


@pytest.fixture(scope="module")
def other_model(engine, ml_docs, tmp_path_factory) -> Path:
    """A model folder with a tokenizer of its own (trained on ml_docs)."""
    from corpus.tokens import bpe
    from corpus.tokens.tokenizer_job import train

    root = tmp_path_factory.mktemp("ppl-other")
    train(str(ml_docs), str(root / "tok"), bpe.TokenizerOptions(vocab_size=400, sample_docs=100),
          engine=engine)
    return tiny_model_folder(root / "tok", root / "model", context=CONTEXT)


def test_bad_input_is_one_error_line(models, ml_docs, ml_tokens, subset, other_model,
                                     tmp_path):
    bare = tmp_path / "no-tokenizer"
    bare.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(models["gpt2"] / name, bare / name)
    no_lang = tmp_path / "no-language"
    no_lang.mkdir()
    t = pq.read_table(subset / "part-00000.parquet")
    pq.write_table(t.drop_columns(["language"]), no_lang / "part-00000.parquet")
    gpt2 = str(models["gpt2"])
    cases = {
        "has no tokenizer": [str(bare), "--data", str(subset), "--split", "all"],
        "made with another tokenizer": [str(other_model), "--data", str(ml_tokens)],
        "is in the 'test' split": [gpt2, "--data", str(ml_docs)],  # the default rule: no test
        "is in the 'validation' split": [gpt2, "--data", str(subset), "--split", "validation",
                                         "--valid-fraction", "0"],
        "the shards have: train, test": [gpt2, "--data", str(ml_tokens), "--split",
                                         "validation"],
        "has no `language` column": [gpt2, "--data", str(no_lang), "--split", "all"],
        "--stride must be in [1, 64]": [gpt2, "--data", str(subset), "--split", "all",
                                        "--stride", "65"],
        "its splits were fixed": [gpt2, "--data", str(ml_tokens), *SPLIT_ARGS],
        "not a Hugging Face model folder": [str(tmp_path), "--data", str(subset)],
    }
    with ThreadPoolExecutor(2) as pool:
        results = dict(zip(cases, pool.map(
            lambda args: run_cli("eval", "perplexity", *args, "--quiet"), cases.values()),
            strict=True))
    for want, r in results.items():
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 1 and len(lines) == 1, (want, r.stderr[-2000:])
        assert lines[0].startswith("error: ") and want in lines[0], (want, lines)
        assert "Traceback" not in r.stderr + r.stdout
