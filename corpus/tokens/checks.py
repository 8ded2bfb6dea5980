"""What a code tokenizer is checked for, as chapter 10 of "Natural Language Processing with
Transformers" checks CodeParrot's: are Python's keywords single tokens, and how finely are
the words of held-out code cut (fertility: tokens per word; continued words: the share of
words cut into more than one token, Rust et al. 2021's two measures).

A word is a maximal run of word characters (`re`'s \\w: identifiers, keywords, numbers); a
token counts for every word its characters overlap, from the offsets of one encoding of the
whole document, so words are cut as they are in context ("Ġfor" is one token for "for").
"""

from __future__ import annotations

import keyword
import re
from typing import Any

import numpy as np

WORD = re.compile(r"\w+")


def keyword_coverage(tok: Any) -> dict[str, Any]:
    """Python's keywords (keyword.kwlist) that encode as one token after a space, as they
    mostly appear in code ("Ġfor"), and at the start of a line."""
    tok_for = _plain(tok)
    spaced = [k for k in keyword.kwlist
              if len(tok_for.encode(" " + k, add_special_tokens=False).ids) == 1]
    bare = [k for k in keyword.kwlist
            if len(tok_for.encode(k, add_special_tokens=False).ids) == 1]
    return {"keywords": len(keyword.kwlist), "single_after_space": len(spaced),
            "single_bare": len(bare),
            "split_after_space": [k for k in keyword.kwlist if k not in spaced]}


def word_stats(tok: Any, texts: list[str]) -> dict[str, Any] | None:
    """Fertility and the continued-word share over the words of `texts`; None without words."""
    tok_for = _plain(tok)
    per_word: list[np.ndarray] = []
    for text, enc in zip(texts, tok_for.encode_batch(texts, add_special_tokens=False),
                         strict=True):
        spans = np.array([(m.start(), m.end()) for m in WORD.finditer(text)], dtype=np.int64)
        if not len(spans):
            continue
        offs = np.array(enc.offsets, dtype=np.int64).reshape(-1, 2)
        offs = offs[offs[:, 1] > offs[:, 0]]
        # tokens overlapping word w: those starting before its end and ending after its start
        starts = np.sort(offs[:, 0])
        ends = np.sort(offs[:, 1])
        before_end = np.searchsorted(starts, spans[:, 1], side="left")
        ended_by_start = np.searchsorted(ends, spans[:, 0], side="right")
        per_word.append(before_end - ended_by_start)
    if not per_word:
        return None
    n = np.concatenate(per_word)
    return {"words": len(n), "fertility": round(float(n.mean()), 4),
            "continued_words": round(float((n > 1).mean()), 4)}


def _plain(tok: Any) -> Any:
    from corpus.tokens import bpe

    return bpe.for_documents(tok)
