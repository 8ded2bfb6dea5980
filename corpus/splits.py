"""The one split rule: which documents are train, validation and test, in every output.

`corpus shard --format tokens`, `corpus shard --format parquet` and `corpus push` all call
`assign` with the same options and defaults, so a document is in the same split everywhere: no
validation or test document of the token shards trains a model from the pushed dataset. The
split is decided per document from one hash of its id (the content's blob sha): copies of one
content never straddle splits, and no partitioning, batch size or worker count changes it.

With u = xxh3_64("split" NUL id) / 2^64 (corpus/keys.py row_hash, the rule token shards always
used, so existing validation sets do not move):
- u < valid_fraction: validation;
- valid_fraction <= u < valid_fraction + test_fraction: test;
- otherwise train.
With `valid_from` (a file of repo_name values), validation is every document of the listed
repositories instead; test keeps the same hash range among the others, so a test document stays
a test document whichever way validation is chosen.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from corpus.errors import ConfigError, InputError
from corpus.keys import row_hash

#: Split names, in code order: `assign` returns an index into this tuple. A split that gets no
#: document is absent from an output (no file, no manifest entry), in every format.
SPLITS = ("train", "validation", "test")
TRAIN, VALIDATION, TEST = range(3)
SALT = "split"

Fraction = Annotated[float, Field(ge=0, lt=1)]
Preset = Literal["default", "polycoder"]

#: The split fields of both shard formats, with their help (the same in each, tested).
ValidFraction = Annotated[Fraction, Field(description="Documents (by a hash of their id) in "
                                          "the validation split [default: 0.01].")]
TestFraction = Annotated[Fraction, Field(description="Documents (by the same hash) in the test "
                                         "split [default: 0].")]
SplitPreset = Annotated[Preset, Field(description="A preset: default (99/1/0 % train/"
                                      "validation/test) or polycoder (98.9/0.1/1 %). Not with "
                                      "the fractions.")]
ValidFrom = Annotated[str, Field(description="Validation = every document of these "
                                 "repositories (repo_name, one per line) instead of "
                                 "--valid-fraction.")]


@dataclass(frozen=True)
class SplitRule:
    """Fractions of documents (by id hash) held out; `valid_from` replaces the validation
    fraction by a list of repositories."""
    valid_fraction: float = 0.01
    test_fraction: float = 0.0
    valid_from: str | None = None  # file of repo_name values, one per line, # comments

    def check(self) -> None:
        for name, v in (("--valid-fraction", self.valid_fraction),
                        ("--test-fraction", self.test_fraction)):
            if not 0 <= v < 1:
                raise ConfigError(f"{name} must be in [0, 1), not {v:g}")
        total = self.valid_fraction + self.test_fraction
        if total >= 1:
            raise ConfigError(f"--valid-fraction {self.valid_fraction:g} and --test-fraction "
                              f"{self.test_fraction:g} sum to {total:g}: they must leave "
                              "documents for train (sum below 1)")

    def names(self) -> list[str]:
        """The splits this rule can put documents in."""
        held = [VALIDATION] if self.valid_from or self.valid_fraction > 0 else []
        return [SPLITS[c] for c in [TRAIN, *held, *([TEST] if self.test_fraction > 0 else [])]]

    def columns(self) -> list[str]:
        """The input columns `assign` reads."""
        by_id = self.test_fraction > 0 or (self.valid_fraction > 0 and not self.valid_from)
        return (["id"] if by_id else []) + (["repo_name"] if self.valid_from else [])

    def config(self, repos: set[str] | None) -> dict[str, Any]:
        """What an output's fingerprint records of the rule (keys only where they are not the
        old defaults, so outputs made before the test split existed keep their fingerprint)."""
        from corpus.manifest import digest

        out: dict[str, Any] = {"valid_fraction": self.valid_fraction}
        if self.test_fraction:
            out["test_fraction"] = self.test_fraction
        if repos is not None:
            out["valid_from"] = digest(sorted(repos))
        return out

    def describe(self) -> str:
        """The rule in words, for summaries and dataset cards."""
        valid = (f"validation: the repositories listed in {Path(self.valid_from).name}"
                 if self.valid_from else f"validation {self.valid_fraction:.4g}")
        return (f"{valid}, test {self.test_fraction:.4g} of the documents, by a hash of the "
                "document id (corpus/splits.py)")


PRESETS: dict[str, SplitRule] = {
    "default": SplitRule(0.01, 0.0),
    # PolyCoder (Xu, Alon, Neubig, Hellendoorn, "A Systematic Evaluation of Large Language
    # Models of Code", MAPS 2022, arXiv:2202.13169): 98.9 % train, 0.1 % validation, 1 % test
    "polycoder": SplitRule(0.001, 0.01),
}


def rule_of(splits: str | None = None, valid_fraction: float | None = None,
            test_fraction: float | None = None, valid_from: str | None = None) -> SplitRule:
    """The rule the options ask for: a preset, or fractions (those not given from the default
    preset). A preset with a fraction, or a validation fraction with a repository list, is
    ambiguous: refused."""
    if splits is not None and (valid_fraction is not None or test_fraction is not None):
        raise ConfigError("choose --splits PRESET or --valid-fraction/--test-fraction, not both")
    if splits is not None and splits not in PRESETS:
        raise ConfigError(f"--splits: unknown preset {splits!r} (one of {', '.join(PRESETS)})")
    if valid_from is not None and valid_fraction is not None:
        raise ConfigError("choose one of --valid-fraction and --valid-from")
    base = PRESETS[splits or "default"]
    rule = SplitRule(base.valid_fraction if valid_fraction is None else valid_fraction,
                     base.test_fraction if test_fraction is None else test_fraction, valid_from)
    rule.check()
    return rule


class SplitChoice:
    """The split options of a shard stage (its dataclass declares the four fields: the same
    names, types and defaults in both formats, tested)."""
    valid_fraction: float | None
    test_fraction: float | None
    splits: str | None
    valid_from: str | None

    def split_rule(self) -> SplitRule:
        return rule_of(self.splits, self.valid_fraction, self.test_fraction, self.valid_from)


def valid_repos(path: str) -> set[str]:
    """The repositories a `valid_from` file lists."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as e:
        raise InputError(f"cannot read --valid-from {path}: {e.strerror or e}") from e
    repos = {line.strip() for line in lines if line.strip() and not line.startswith("#")}
    if not repos:
        raise InputError(f"--valid-from {path} lists no repositories")
    return repos


def _cut(fraction: float) -> np.uint64:
    """The hash threshold of a fraction (the one corpus/keys.py validation_mask uses)."""
    return np.uint64(min(int(fraction * 2.0**64), 2**64 - 1)) if fraction > 0 else np.uint64(0)


def assign(table: pa.Table | pa.RecordBatch, rule: SplitRule,
           repos: set[str] | None = None) -> np.ndarray:
    """Each row's split, as a uint8 index into SPLITS (`repos`: the valid_from file's list,
    read once by the caller)."""
    code = np.full(table.num_rows, TRAIN, np.uint8)
    if "id" in rule.columns():
        u = row_hash(table, ["id"], SALT)
        lo, hi = _cut(rule.valid_fraction), _cut(rule.valid_fraction + rule.test_fraction)
        code[(u >= lo) & (u < hi)] = TEST
        if not rule.valid_from:
            code[u < lo] = VALIDATION
    if rule.valid_from:
        if repos is None:
            repos = valid_repos(rule.valid_from)
        listed = pc.is_in(table.column("repo_name"), pa.array(sorted(repos), pa.large_string()))
        code[pc.fill_null(listed, False).to_numpy(zero_copy_only=False)] = VALIDATION
    return code


def empty_notes(rule: SplitRule, present: Iterable[str]) -> list[str]:
    """What a summary says of each split the rule asked for that got no document."""
    present = set(present)
    notes = []
    if "validation" in rule.names() and "validation" not in present and not rule.valid_from:
        notes.append("validation: no document fell in it (raise --valid-fraction)")
    if "test" in rule.names() and "test" not in present:
        notes.append("test: no document fell in it (raise --test-fraction)")
    return notes


#: the split fields of every command that splits (shard, push, eval perplexity)
SPLIT_FIELDS = ("valid_fraction", "test_fraction", "splits", "valid_from")


def cli_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """The split flags, the same on `corpus shard` (both formats), `corpus push` and `corpus
    eval perplexity`, generated from the shard options' fields (their help and bounds): the
    command receives splits, valid_fraction, test_fraction, valid_from (None: not given)."""
    from corpus.cli_options import options_from
    from corpus.publish.shards import ParquetShardOptions

    return options_from(ParquetShardOptions, only=SPLIT_FIELDS, metavars={
        "valid_fraction": "F", "test_fraction": "F", "valid_from": "FILE"})(f)
