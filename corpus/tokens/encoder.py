"""The token-shard stage's encoder: a `tiktoken` encoding built from the trained BPE's own
vocabulary and split rule where that gives exactly the ids of `tokenizers`, `tokenizers`
otherwise (with the reason, said once by the stage).

Why it is exact for the BPE `corpus tokenizer train` writes: both split the text with GPT-2's
rule, then merge byte pairs inside each piece. `tokenizers` applies the merges in the order of
its merge list; `tiktoken` merges the adjacent pair whose joined bytes have the lowest rank. With
the rank of a token = its id, and ids given in merge order (how the trainer numbers them), the
two pick the same pair whenever the pair is the merge that made the token; `exact_spec` checks
every condition that rests on (the model's options, no normalizer, the split rule, the added
tokens, ids in merge order, every token rebuilt by its own merges), and tests/test_encoder.py
compares the ids on real code of several languages. Special-token text in a document stays
text in both (`encode_ordinary`, `encode_special_tokens`).

Both encode on the calling thread only: the stage's parallelism is its partitions, one per
worker, so threads x workers <= cores. (`tokenizers` would start a pool of one thread per core
in every worker; it is told not to for each call, TOKENIZERS_PARALLELISM, so the BPE trainer
of the tokenizer stage keeps its pool.)
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from corpus.tokens import bpe

#: GPT-2's split rule (`tokenizers`' ByteLevel with use_regex, tiktoken's r50k), as tiktoken
#: spells it
GPT2_SPLIT = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
#: documents per call of `tokenizers`' batch encoder
BATCH = 512
PARALLELISM = "TOKENIZERS_PARALLELISM"


@cache
def byte_of_char() -> dict[str, int]:
    """GPT-2's byte-level alphabet, reversed: the character a token string uses for each byte."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
                 *range(ord("®"), ord("ÿ") + 1)]
    chars = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in chars:
            chars[b] = chr(256 + extra)
            extra += 1
    return {c: b for b, c in chars.items()}


def token_bytes(token: str) -> bytes | None:
    """The bytes of a byte-level token string; None if it is not one."""
    table = byte_of_char()
    try:
        return bytes(table[c] for c in token)
    except KeyError:
        return None


def _pre_tokenizer_ok(pre: dict[str, Any] | None) -> bool:
    if pre is not None and pre.get("type") == "Sequence" and len(pre["pretokenizers"]) == 1:
        pre = pre["pretokenizers"][0]
    return bool(pre) and pre.get("type") == "ByteLevel" and pre.get("use_regex", True) \
        and not pre.get("add_prefix_space", True)


def exact_spec(spec: dict[str, Any]) -> tuple[dict[bytes, int], dict[str, int]] | str:
    """(ranks, special tokens) of a tiktoken encoding with `tokenizers`' ids for this
    tokenizer.json, or why there is none."""
    model = spec.get("model") or {}
    if model.get("type") != "BPE":
        return f"the model is {model.get('type')}, not BPE"
    for option in ("dropout", "continuing_subword_prefix", "end_of_word_suffix"):
        if model.get(option):
            return f"the BPE has {option}"
    if model.get("byte_fallback"):
        return "the BPE has byte_fallback"
    if spec.get("normalizer") is not None:
        return "the tokenizer has a normalizer"
    if not _pre_tokenizer_ok(spec.get("pre_tokenizer")):
        return "the pre-tokenizer is not GPT-2's byte-level split"
    added = spec.get("added_tokens") or []
    if any(not t.get("special") for t in added):
        return "the tokenizer has added tokens that are not special"
    special = {t["content"]: t["id"] for t in added}
    ranks: dict[bytes, int] = {}
    for token, i in model["vocab"].items():
        if token in special and special[token] == i:
            continue
        b = token_bytes(token)
        if b is None:
            return f"vocabulary entry {token!r} is not byte-level"
        ranks[b] = i
    if len(ranks) != len(set(ranks.values())):
        return "two vocabulary entries have one id"
    if sum(len(b) == 1 for b in ranks) != 256:
        return "the vocabulary lacks some of the 256 bytes"
    return _merges_in_order(model, ranks) or (ranks, special)


def _merges_in_order(model: dict[str, Any], ranks: dict[bytes, int]) -> str | None:
    """Why the merges do not number their tokens in merge order (None when they do)."""
    vocab = model["vocab"]
    last = max(i for b, i in ranks.items() if len(b) == 1)
    made: set[str] = set()
    for merge in model.get("merges") or []:
        a, b = merge.split(" ", 1) if isinstance(merge, str) else merge
        token = a + b
        if token in made:
            return f"two merges make {token!r}"
        made.add(token)
        i = vocab.get(token)
        if i is None or i <= last:
            return f"merge {a!r} + {b!r} is not numbered after the merges before it"
        last = i
    if len(made) + 256 != len(ranks):
        return "some vocabulary entries are made by no merge"
    return None


def _rebuilt(spec: dict[str, Any], ranks: dict[bytes, int]) -> str | None:
    """Why some token is not what `tokenizers`' merges make of its own bytes (tiktoken takes a
    piece that is a whole token as that token). Every token goes through the BPE model alone
    (no normalizer, split or added tokens), in one batch."""
    if spec["model"].get("ignore_merges"):
        return None  # tokenizers takes a whole-token piece as that token too
    from tokenizers import Tokenizer

    model_only = {**spec, "normalizer": None, "pre_tokenizer": None, "post_processor": None,
                  "decoder": None, "added_tokens": [], "truncation": None, "padding": None}
    tok = Tokenizer.from_str(json.dumps(model_only))
    chars = {b: c for c, b in byte_of_char().items()}
    multi = [(b, i) for b, i in ranks.items() if len(b) > 1]
    words = [["".join(chars[x] for x in b)] for b, _ in multi]
    for (b, i), e in zip(multi, tok.encode_batch(words, is_pretokenized=True,
                                                  add_special_tokens=False), strict=True):
        if e.ids != [i]:
            return f"the merges split token {i} ({b!r}) into {len(e.ids)}"
    return None


@dataclass
class Encoder:
    """`encode(texts)` -> (token ids of every text, one after another; length of each)."""
    name: str
    encode: Callable[[Sequence[str]], tuple[np.ndarray, np.ndarray]]
    #: why the exact fast encoder could not be used (None when it is)
    fallback_reason: str | None = None


def build(tokenizer_json: str, dtype: Any = np.uint32, fast: bool = True,
          checked: bool = False) -> Encoder:
    """The fastest exact encoder of this tokenizer.json (for documents: special-token text
    stays text), with ids of `dtype`; fast=False: `tokenizers` itself. checked=True: an
    earlier `build` of the same file chose tiktoken, so the token-by-token check (about half
    a second for 32k tokens) is not done again (a stage's workers)."""
    from tokenizers import Tokenizer

    spec = json.loads(tokenizer_json)
    tok = bpe.for_documents(Tokenizer.from_str(tokenizer_json))
    exact = exact_spec(spec) if fast else "asked for (--encoder tokenizers)"
    if not isinstance(exact, str) and not checked:
        exact = _rebuilt(spec, exact[0]) or exact
    if not isinstance(exact, str):
        try:
            import tiktoken
        except ImportError:
            exact = "tiktoken is not installed"
        else:
            ranks, special = exact
            enc = tiktoken.Encoding("corpus", pat_str=GPT2_SPLIT, mergeable_ranks=ranks,
                                    special_tokens=special)
            return Encoder("tiktoken", lambda texts: _tiktoken(enc, texts, dtype))
    return Encoder("tokenizers", lambda texts: _tokenizers(tok, texts, dtype), exact)


def _tiktoken(enc: Any, texts: Sequence[str], dtype: Any) -> tuple[np.ndarray, np.ndarray]:
    pieces = [enc.encode_to_numpy(t, allowed_special=set(), disallowed_special=())
              for t in texts]
    return _joined(pieces, dtype)


def _tokenizers(tok: Any, texts: Sequence[str], dtype: Any) -> tuple[np.ndarray, np.ndarray]:
    # no offsets: a third faster than encode_batch, the same ids
    encode = getattr(tok, "encode_batch_fast", tok.encode_batch)
    pieces = []
    before = os.environ.get(PARALLELISM)
    os.environ[PARALLELISM] = "false"  # read by tokenizers at each call: this thread only
    try:
        for start in range(0, len(texts), BATCH):
            pieces += [np.asarray(e.ids, np.uint32) for e in encode(
                list(texts[start:start + BATCH]), add_special_tokens=False)]
    finally:
        if before is None:
            os.environ.pop(PARALLELISM, None)
        else:
            os.environ[PARALLELISM] = before
    return _joined(pieces, dtype)


def _joined(pieces: list[np.ndarray], dtype: Any) -> tuple[np.ndarray, np.ndarray]:
    lengths = np.fromiter((len(p) for p in pieces), np.int64, len(pieces))
    values = np.concatenate(pieces).astype(dtype, copy=False) if pieces else \
        np.zeros(0, dtype)
    return values, lengths
