"""Benchmark: characters per token of the corpus's own BPE against one trained on prose.

Same vocabulary size (8192 and 32768), same byte-level BPE recipe (corpus.tokens.bpe.build),
same held-back documents, in one run:
  code      `corpus tokenizer train` (corpus.tokens.tokenizer_job.train) on real code
            documents (every text file of PolyCoder's languages in site-packages,
            `--sample-docs` of them by id hash);
            it holds back 2 % of the documents (by id hash) and reports chars/token on them, for
            itself and for the prose tokenizer (compare=)
  prose     the same recipe trained on the prose of this environment: the long descriptions in
            the installed distributions' METADATA and the *.txt / *.rst / *.md files under
            site-packages that are mostly prose (> 70 % letters and white space); 2 % of those
            texts (by a hash of their name) are held back too
Each tokenizer is measured on both held-back sets: a code tokenizer should need fewer tokens
for code (more characters per token) than a general-text one of the same size.

    .venv/bin/python bench/tokenizer.py [--work DIR] [--sample-docs 3000] [--summary FILE]
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import re
import shutil
import site
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

import xxhash

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _summary
from _corpus import documents

from corpus.tokens import bpe
from corpus.tokens.tokenizer_job import train

VOCABS = (8192, 32768)
HELDOUT = 0.02
PROSE_SUFFIXES = (".txt", ".rst", ".md")
NOT_PROSE = re.compile(r"[^\W\d_]|\s")  # what it removes is letters and white space


def site_dirs() -> list[str]:
    """This environment's site-packages and the base interpreter's (where pip's tools live)."""
    base = sysconfig.get_paths(vars={"base": sys.base_prefix, "platbase": sys.base_prefix})
    return [d for d in dict.fromkeys([*site.getsitepackages(), base["purelib"]])
            if Path(d).is_dir()]


def is_prose(text: str) -> bool:
    return len(text) >= 200 and len(NOT_PROSE.sub("", text)) < 0.3 * len(text)


def prose(dirs: list[str]) -> dict[str, list[tuple[str, str]]]:
    """(name, text) of every distinct prose text, by source."""
    seen: set[bytes] = set()
    found: dict[str, list[tuple[str, str]]] = {"METADATA": [], **{s: [] for s in PROSE_SUFFIXES}}

    def add(source: str, name: str, text: str) -> None:
        digest = hashlib.sha1(text.encode()).digest()
        if is_prose(text) and digest not in seen:
            seen.add(digest)
            found[source].append((name, text))

    for dist in importlib.metadata.distributions(path=dirs):
        meta = dist.metadata
        text = meta.get_payload() or meta.get("Description") or ""  # type: ignore[attr-defined]
        add("METADATA", f"{meta['Name']} METADATA", text if isinstance(text, str) else "")
    for d in dirs:
        for f in sorted(Path(d).rglob("*")):
            if f.suffix.lower() in PROSE_SUFFIXES and f.is_file():
                try:
                    text = f.read_text(encoding="utf-8")
                except (OSError, UnicodeDecodeError):
                    continue
                add(f.suffix.lower(), str(f.relative_to(d)), text)
    return found


def split(texts: list[tuple[str, str]]) -> tuple[list[str], list[str]]:
    """(training texts, held-back texts): held back by a hash of the name."""
    cut = int(HELDOUT * 2**64)
    train, held = [], []
    for name, text in texts:
        (held if xxhash.xxh3_64_intdigest(name.encode()) < cut else train).append(text)
    return train, held


def mb(texts: list[str]) -> float:
    return sum(len(t.encode()) for t in texts) / 1e6


def top_folders(found: dict[str, list[tuple[str, str]]], n: int = 3) -> str:
    """Where most of the prose files came from (their top-level folder), by MB."""
    by: dict[str, float] = {}
    for source, texts in found.items():
        for name, text in texts:
            top = "METADATA" if source == "METADATA" else name.split("/")[0]
            by[top] = by.get(top, 0.0) + len(text.encode()) / 1e6
    return ", ".join(f"{k} {v:.1f} MB" for k, v in sorted(by.items(), key=lambda kv: -kv[1])[:n])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", help="keep the documents and tokenizers here (default: temporary)")
    ap.add_argument("--sample-docs", type=int, default=3000,
                    help="code documents to train on (by id hash)")
    _summary.add_option(ap)
    args = ap.parse_args()
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="corpus-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    try:
        docs, table = documents(work)
        n_docs = table.num_rows
        del table
        dirs = site_dirs()
        found = prose(dirs)
        every = [x for texts in found.values() for x in texts]
        prose_train, prose_held = split(every)
        for vocab in VOCABS:
            tok, trainer = bpe.build(vocab)
            t0 = time.perf_counter()
            tok.train_from_iterator(prose_train, trainer=trainer)
            prose_s = time.perf_counter() - t0
            prose_file = work / f"prose-{vocab}" / bpe.FILE
            prose_file.parent.mkdir(parents=True, exist_ok=True)
            tok.save(str(prose_file))
            code_dir = work / f"code-{vocab}"
            t0 = time.perf_counter()
            report = train(str(docs), str(code_dir),
                           bpe.TokenizerOptions(vocab_size=vocab, sample_docs=args.sample_docs),
                           compare=str(prose_file), overwrite=True)["tokenizer"]
            code_s = time.perf_counter() - t0
            code_tok = bpe.load(str(code_dir))
            rows.append(("code (corpus tokenizer train)", vocab, report["trained_chars"] / 1e6,
                         report["chars_per_token"], bpe.chars_per_token(code_tok, prose_held),
                         code_s))
            rows.append(("prose (general text)", vocab, sum(map(len, prose_train)) / 1e6,
                         report["compare"]["chars_per_token"],
                         bpe.chars_per_token(tok, prose_held), prose_s))
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)

    sources = ", ".join(f"{s} {len(t):,} texts {mb([x for _, x in t]):.1f} MB"
                        for s, t in found.items())
    print(f"code: {n_docs:,} documents; held back {report['heldout_docs']:,} (2 % by id hash), "
          f"trained on {report['trained_docs']:,} (--sample-docs {args.sample_docs:,})")
    print(f"prose: {len(every):,} distinct texts, {mb([t for _, t in every]):.1f} MB "
          f"({sources}) from {len(dirs)} site-packages folder(s); held back "
          f"{len(prose_held):,} texts ({mb(prose_held):.2f} MB), trained on "
          f"{len(prose_train):,} ({mb(prose_train):.1f} MB); most from: {top_folders(found)}")
    print(f"{'tokenizer':<32}{'vocab':>7}{'M chars':>12}{'chars/token':>13}{'chars/token':>13}"
          f"{'train s':>9}")
    print(f"{'':<32}{'':>7}{'trained':>12}{'held code':>13}{'held prose':>13}")
    for name, vocab, trained, code_cpt, prose_cpt, secs in rows:
        print(f"{name:<32}{vocab:>7,}{trained:>12.1f}{code_cpt:>13.2f}{prose_cpt:>13.2f}"
              f"{secs:>9.1f}")
    headline = []
    for vocab in VOCABS:
        code, other = (r for r in rows if r[1] == vocab)
        headline.append(_summary.row(
            "tokenizer", f"chars/token on held-back code, vocab {vocab:,}", code[3], other[3],
            "the same BPE trained on prose (site-packages docs)", "chars/token", "> 1x"))
        print(f"vocab {vocab:,}: held-back code takes the prose tokenizer "
              f"{code[3] / other[3]:.2f}x the tokens of the code one (code: "
              f"{1 - other[3] / code[3]:.0%} fewer); held-back prose takes the code tokenizer "
              f"{other[4] / code[4]:.2f}x the tokens of the prose one")
    print("train s: prose = train_from_iterator alone; code = tokenizer_job.train end to end "
          "(reads the Parquet, splits by id hash, trains, measures both tokenizers on held-back "
          "code)")
    _summary.write(args.summary, headline)


if __name__ == "__main__":
    main()
