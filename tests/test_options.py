"""A stage command's options and its config keys have one definition: the Options dataclass.
Changing a bound there changes what `corpus dedup --ngram` and a config's `ngram` refuse, and
the help text and defaults of `corpus <stage> --help` are the dataclass's."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from corpus.cli_options import description, flag_of, table_of
from corpus.config_check import bounds, field_types
from corpus.contamination.stage import DecontamOptions
from corpus.dedup.near import MinHashOptions
from corpus.errors import ConfigError
from tests.conftest import ROOT, run_cli

#: MinHashOptions.ngram with an upper bound of 8 (the source says 16), another help text and
#: another default, patched before corpus.cli builds its commands from the dataclass
PATCHED = """
import sys
from corpus.dedup import near
near.MinHashOptions.__annotations__["ngram"] = (
    "Annotated[int, Field(ge=1, le=8, description='Tokens per patched shingle.')]")
near.MinHashOptions.__dataclass_fields__["ngram"].default = 7
from corpus.cli import main
main(sys.argv[1:])
"""

CONFIG = """
[pipeline]
output = "out"

[[stages]]
name = "near"
kind = "dedup"
input = "data"
method = "minhash"
ngram = {ngram}
"""


def corpus(*args: str, patched: bool) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-c", PATCHED] if patched else [sys.executable, "-m", "corpus"]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, cwd=ROOT, timeout=120)


def words(text: str) -> str:
    """Help text with click's line wrapping undone."""
    return " ".join(text.split())


@pytest.mark.parametrize("patched,bound,ngram", [(True, "in [1, 8]", 10),
                                                 (False, "in [1, 16]", 20)])
def test_option_and_config_key_refuse_by_the_same_bound(tmp_path, patched, bound, ngram):
    (tmp_path / "data").mkdir()
    config = tmp_path / "p.toml"
    config.write_text(CONFIG.format(ngram=ngram))
    cli = corpus("dedup", str(tmp_path / "data"), str(tmp_path / "o"), "--minhash",
                 "--ngram", str(ngram), patched=patched)
    run = corpus("run", str(config), patched=patched)
    expected = f"ngram: must be {bound}, got the integer {ngram}"
    for res in (cli, run):
        assert res.returncode == 1 and expected in res.stderr, res.stderr
        assert "Traceback" not in res.stderr
    assert not (tmp_path / "o").exists() and not (tmp_path / "out").exists()


def test_help_text_bounds_and_defaults_come_from_the_options():
    patched = words(corpus("dedup", "--help", patched=True).stdout)
    assert "--ngram INTEGER With --minhash: tokens per patched shingle. (in [1, 8]) " \
           "[default: 7]" in patched
    plain = words(corpus("dedup", "--help", patched=False).stdout)
    assert "--ngram INTEGER With --minhash: tokens per shingle. (in [1, 16]) [default: 5]" \
        in plain
    hints = field_types(MinHashOptions)
    for f in dataclasses.fields(MinHashOptions):  # every field: its flag, its words, its bound
        flag = flag_of(f.name, {"ranking": "rank", "license_preference": "prefer-license"})
        text = description(hints[f.name])
        assert flag in plain and text, f.name
        assert words(text[1:]) in plain, f.name  # its first letter may be lower-cased
        if b := bounds(hints[f.name]):
            assert f"({b})" in plain, f.name
    assert "[default: 256MiB]" in plain  # verify_memory: a size, shown as one
    decon = words(run_cli("decontaminate", "--help").stdout)
    assert f"{words(description(field_types(DecontamOptions)['ngram']))} (in [1, 30])" in decon
    assert "--benchmark NAME Built-in benchmarks (humaneval). Repeatable. " \
           "[default: humaneval]" in decon


def test_given_options_are_the_config_table():
    given = {"ngram": 3, "threshold": None, "ranking": ("size",), "license_preference": (),
             "verify_memory": "1MiB", "exact": True}
    assert table_of(MinHashOptions, given) == {"ngram": 3, "ranking": ["size"],
                                               "verify_memory": "1MiB"}
    assert table_of(DecontamOptions, {"benchmarks": ("a,b", "c")}, split=("benchmarks",)) == \
        {"benchmarks": ["a", "b", "c"]}


def test_a_wrong_option_is_one_line_naming_the_flag_and_the_bound(tmp_path):
    res = run_cli("scrub", str(tmp_path), str(tmp_path / "o"), "--drop-files-with", "nonsense")
    assert res.returncode == 1 and 'drop_files_with #1: unknown kind "NONSENSE"' in res.stderr
    res = run_cli("dedup", str(tmp_path), str(tmp_path / "o"), "--exact", "--num-perm", "3")
    assert res.returncode == 2 and "--num-perm: not an option of --exact" in res.stderr
    res = run_cli("decontaminate", str(tmp_path), str(tmp_path / "o"), "--ngram-threshold", "2")
    assert res.returncode == 1 and "ngram_threshold: must be in (0, 1], got the number 2" \
        in res.stderr, res.stderr
    with pytest.raises(ConfigError, match="must be in"):
        from corpus.cli_options import build
        build(MinHashOptions, {"threshold": 1.5}, "x")


def _classes() -> dict[str, type]:
    from corpus.extract.duckdb_job import ExtractOptions
    from corpus.github.build import GithubTablesOptions
    from corpus.licenses.policy import LicenseOptions
    from corpus.publish.shards import ParquetShardOptions
    from corpus.scrub.redact import ScrubOptions
    from corpus.tokens.bpe import TokenizerOptions
    from corpus.tokens.shards import TokenShardOptions

    return {c.__name__: c for c in (ExtractOptions, GithubTablesOptions, LicenseOptions,
                                    ParquetShardOptions, ScrubOptions, TokenizerOptions,
                                    TokenShardOptions, DecontamOptions)}


#: (command, its Options class, fields that are arguments or differ per variant, flag renames)
GENERATED = [
    ("github-tables", "GithubTablesOptions", ("sources",),
     {"site_packages_dirs": "site-packages-dir"}),
    ("extract", "ExtractOptions", ("query", "tables", "params"),
     {"partition_bytes": "partition-size"}),
    ("licenses", "LicenseOptions", (), {}),
    ("scrub", "ScrubOptions", (), {}),
    ("decontaminate", "DecontamOptions", (),
     {"benchmarks": "benchmark", "benchmark_files": "benchmark-file"}),
    ("tokenizer train", "TokenizerOptions", (), {"heldout_fraction": "heldout"}),
    ("shard", "TokenShardOptions", ("shard_bytes",), {}),
    ("shard", "ParquetShardOptions", ("shard_bytes",), {}),
]


@pytest.mark.parametrize(("command", "cls", "skip", "rename"), GENERATED)
def test_every_stage_command_shows_its_options_fields(command, cls, skip, rename):
    """Each field of the stage's Options is a flag whose help is the field's description and
    whose bound is the field's bound: nothing restated by hand."""
    cls = _classes()[cls]
    text = words(run_cli(*command.split(), "--help").stdout)
    hints = field_types(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        desc = description(hints[f.name])
        assert desc, f"{cls.__name__}.{f.name} has no description"
        assert flag_of(f.name, rename) in text, f.name
        assert words(desc[1:]) in text, f.name
        if b := bounds(hints[f.name]):
            assert f"({b})" in text, f.name


def test_an_option_of_the_other_variant_or_out_of_bounds_is_refused(tmp_path):
    res = run_cli("shard", str(tmp_path), str(tmp_path / "o"), "--format", "parquet",
                  "--seq-len", "64")
    assert res.returncode == 2 and "--seq-len: not an option of --format parquet" \
        in res.stderr, res.stderr
    res = run_cli("tokenizer", "train", str(tmp_path), str(tmp_path / "o"), "--vocab-size",
                  "100")
    assert res.returncode == 1 and "vocab_size: must be in [257, 4294967296], got the " \
        "integer 100" in res.stderr, res.stderr
    assert not (tmp_path / "o").exists()
