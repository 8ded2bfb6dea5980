"""The documents `corpus eval perplexity` scores, as token arrays, from either input:

- a dataset directory (Parquet with `content`): the split by corpus/splits.py's one rule, with
  the options `corpus shard` takes, so `--split test` holds exactly the documents of the token
  shards' test split; encoded with the model's tokenizer as the corpus encodes documents (a
  literal "<|endoftext|>" in a file is text);
- a token shard folder of the model's tokenizer: each document's tokens cut back out of its
  split's stream by its `.docs.parquet` index (start, n_tokens).

Either way a document is the separator + its tokens, documents without content are left out
(as the token shards leave them out), and the documents are put in one order, by a hash of
(id, repo_name, path): the same documents give the same batches and the same numbers from
both inputs. `--max-docs N` keeps the N first of each group in that order.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from corpus.errors import ConfigError, InputError
from corpus.io import DatasetDir
from corpus.keys import row_hash
from corpus.splits import SPLITS, SplitRule, assign, valid_repos
from corpus.tokens import bpe

KEY = ["id", "repo_name", "path"]
SALT = "eval"
GROUPINGS = ("language", "extension", "none")
NO_GROUP = "(none)"  # a document without a language (or a path without an extension)


@dataclass
class ModelTokenizer:
    json: str  # the tokenizer.json text (what decides the ids is compared with the shards')
    tokenizer: Any  # tokenizers.Tokenizer, encoding documents as the corpus does
    eos_id: int


def model_tokenizer(folder: str) -> ModelTokenizer:
    """The tokenizer of a model folder: its tokenizer.json, or the fast tokenizer transformers
    makes of its vocab.json and merges.txt."""
    from tokenizers import Tokenizer

    f = Path(folder) / bpe.FILE
    missing = InputError(f"{folder} has no tokenizer (no {bpe.FILE}, nor vocab.json and "
                         "merges.txt): the documents cannot be encoded")
    if f.is_file():
        text = f.read_text(encoding="utf-8")
    elif (Path(folder) / "vocab.json").is_file() and (Path(folder) / "merges.txt").is_file():
        try:
            from transformers import AutoTokenizer

            text = str(AutoTokenizer.from_pretrained(folder, local_files_only=True)
                       .backend_tokenizer.to_str())
        except (OSError, ValueError, AttributeError, TypeError):
            raise missing from None
    else:
        raise missing
    try:
        tok = bpe.for_documents(Tokenizer.from_str(text))
    except Exception as e:  # tokenizers raises plain Exception subclasses
        raise InputError(f"cannot load the tokenizer of {folder}: {e}") from None
    eos = tok.token_to_id(bpe.EOT)
    if eos is None:
        conf = Path(folder) / "config.json"
        eos = json.loads(conf.read_text()).get("eos_token_id") if conf.is_file() else None
    if not isinstance(eos, int):
        raise InputError(f"the tokenizer of {folder} has no {bpe.EOT} token and its config "
                         "no eos_token_id: no document separator")
    return ModelTokenizer(text, tok, eos)


@dataclass
class Documents:
    """The documents to score, in the canonical order; `tokens[i]` begins with the separator."""
    table: pa.Table  # id, repo_name, path, group
    tokens: list[np.ndarray]
    source: str  # "documents" or "tokens"

    @property
    def groups(self) -> np.ndarray:
        return np.asarray(self.table.column("group").to_pylist(), dtype=object)


def group_column(t: pa.Table, by: str, where: str) -> pa.Array:
    """Each document's group: its language, its path's extension (lowercase, with the dot), or
    one group `all`."""
    if by == "none":
        return pa.array(["all"] * t.num_rows, pa.large_string())
    if by == "extension":
        found = pc.extract_regex(t.column("path"), r"(?P<e>\.[^./]+)$")
        ext = pc.utf8_lower(pc.struct_field(found, "e"))
        return pc.fill_null(ext.cast(pa.large_string()), NO_GROUP)
    if by != "language":
        raise ConfigError(f"--by {by!r}: one of {', '.join(GROUPINGS)}")
    if "language" not in t.column_names:
        raise InputError(f"{where} has no `language` column (--by language): use --by "
                         "extension or --by none")
    return pc.fill_null(t.column("language").cast(pa.large_string()), NO_GROUP)


def canonical(t: pa.Table, max_docs: int | None) -> pa.Table:
    """The documents in the canonical order (by the hash of id, repo_name, path), at most
    `max_docs` of each group (the first in that order)."""
    h = row_hash(t, KEY, SALT)
    order = np.lexsort((np.arange(t.num_rows), h))
    t = t.take(pa.array(order))
    if max_docs is None:
        return t
    groups = np.asarray(t.column("group").to_pylist(), dtype=object)
    keep = np.zeros(t.num_rows, bool)
    for g in set(groups.tolist()):
        keep[np.flatnonzero(groups == g)[:max_docs]] = True
    return t.filter(pa.array(keep))


def digest(t: pa.Table) -> str:
    """The identity of a set of evaluated documents: their (id, repo, path) in canonical order."""
    h = hashlib.sha256()
    for row in zip(*(t.column(c).to_pylist() for c in KEY), strict=True):
        h.update(json.dumps(row).encode() + b"\n")
    return h.hexdigest()


def _no_documents(where: str, split: str, hint: str) -> InputError:
    return InputError(f"no document of {where} is in the {split!r} split{hint}")


# --- a dataset directory -----------------------------------------------------------------
def from_dataset(url: str, tok: ModelTokenizer, split: str, by: str, rule: SplitRule,
                 max_docs: int | None) -> Documents:
    d = DatasetDir(url)
    keys = d.partition_keys()
    if not keys:
        raise InputError(f"{url} holds no documents (no partition)")
    names = d.parquet_metadata(d.part_file(keys[0])).schema.to_arrow_schema().names
    missing = [c for c in [*KEY, "content"] if c not in names]
    if missing:
        raise InputError(f"{url} has no {', '.join(f'`{c}`' for c in missing)} column: not a "
                         "dataset directory of documents (docs/datasets.md)")
    extra = [c for c in ("language",) if c in names and by == "language"]
    repos = valid_repos(rule.valid_from) if rule.valid_from else None
    kept: list[pa.Table] = []
    for key in keys:
        t = d.read_parquet(d.part_file(key), columns=[*KEY, "content", *extra])
        size = pc.fill_null(pc.binary_length(t.column("content")), 0)
        t = t.filter(pc.greater(size, 0))  # as the token shards: no empty documents
        if split != "all":
            t = t.filter(pa.array(assign(t, rule, repos) == SPLITS.index(split)))
        kept.append(t.append_column("group", group_column(t, by, url)).drop_columns(extra))
        if max_docs is not None:  # keep in memory only the documents that can still be chosen
            kept = [canonical(pa.concat_tables(kept), max_docs)]
    t = canonical(pa.concat_tables(kept), max_docs)
    if t.num_rows == 0:
        hint = "" if split == "all" else (
            f" ({rule.describe()}): give the split options `corpus shard` was given "
            "(--test-fraction, --splits polycoder, …), or --split all")
        raise _no_documents(url, split, hint)
    encode = getattr(tok.tokenizer, "encode_batch_fast", tok.tokenizer.encode_batch)
    texts = t.column("content").to_pylist()
    tokens = []
    for s in range(0, len(texts), 256):
        for e in encode(texts[s:s + 256], add_special_tokens=False):
            tokens.append(np.asarray([tok.eos_id, *e.ids], np.int64))
    return Documents(t.select([*KEY, "group"]), tokens, "documents")


# --- a token shard folder ----------------------------------------------------------------
def is_token_folder(url: str) -> bool:
    m = DatasetDir(url).manifest()
    return m is not None and "tokens" in m


def from_tokens(url: str, tok: ModelTokenizer, split: str, by: str,
                max_docs: int | None) -> Documents:
    from corpus.tokens.dataset import open_tokens
    from corpus.train.prepare import tokenizer_identity

    d = DatasetDir(url)
    m = d.manifest() or {}
    meta = m.get("tokens") or {}
    shards_tok = d.join(meta.get("tokenizer") or bpe.FILE)
    if not d.fs.exists(shards_tok):
        raise InputError(f"{url} has no {bpe.FILE} (the tokenizer its shards were made with)")
    with d.fs.open(shards_tok, "rb") as f:
        theirs = f.read().decode("utf-8")
    if tokenizer_identity(theirs) != tokenizer_identity(tok.json):
        n, mine = (len((json.loads(x).get("model") or {}).get("vocab") or {})
                   for x in (theirs, tok.json))
        raise InputError(f"the token shards {url} were made with another tokenizer ({n:,} "
                         f"tokens) than the model's ({mine:,} tokens): evaluate their "
                         "documents (--data the dataset directory) or re-shard them with the "
                         "model's tokenizer")
    names = list(meta.get("splits") or {}) if split == "all" else [split]
    if split != "all" and split not in (meta.get("splits") or {}):
        present = ", ".join(s for s in SPLITS if s in (meta.get("splits") or {}))
        raise _no_documents(url, split, f" (the shards have: {present}; a split that got no "
                            "document has no shards)")
    indexes, streams = [], []
    for name in names:
        ds = open_tokens(url, name)
        records = {p["key"]: p for p in m["partitions"]}
        offset = 0
        for i, key in enumerate(meta["splits"][name]["shards"]):
            idx = d.read_parquet(records[key].get("index") or f"{key}.docs.parquet",
                                 columns=[*KEY, "start", "n_tokens"])
            at = idx.column_names.index("start")
            idx = idx.set_column(at, "start", pc.add(idx.column("start"), offset))
            indexes.append(idx.append_column("stream", pa.array(
                np.full(idx.num_rows, len(streams), np.int64))))
            offset += ds.specs[i].sequences * ds.specs[i].row_len
        streams.append(ds)
    t = pa.concat_tables(indexes)
    if by == "language":
        t = t.append_column("language", _languages(t, url, m))
    t = canonical(t.append_column("group", group_column(t, by, url)), max_docs)
    tokens = [_cut(streams[s], g, n, tok.eos_id, url) for s, g, n in zip(
        t.column("stream").to_pylist(), t.column("start").to_pylist(),
        t.column("n_tokens").to_pylist(), strict=True)]
    return Documents(t.select([*KEY, "group"]), tokens, "tokens")


def _languages(index: pa.Table, url: str, manifest: dict[str, Any]) -> pa.Array:
    """Each indexed document's language, read from the dataset the shards were made from (the
    index holds id, repo_name, path only)."""
    from corpus.manifest import resolve_url

    src = resolve_url(manifest.get("input"), url)
    hint = "use --by extension or --by none, or evaluate that dataset directory with --data"
    if not src or not DatasetDir(src).exists():
        raise InputError(f"--by language over token shards reads each document's language from "
                         f"the dataset they were made from ({src}), which is not there: {hint}")
    d = DatasetDir(src)
    wanted = pc.unique(index.column("id").cast(pa.large_string()))
    parts = []
    for key in d.partition_keys():
        if "language" not in d.parquet_metadata(d.part_file(key)).schema.to_arrow_schema().names:
            raise InputError(f"{src} (the token shards' input) has no `language` column: {hint}")
        t = d.read_parquet(d.part_file(key), columns=[*KEY, "language"])
        parts.append(t.filter(pc.is_in(t.column("id").cast(pa.large_string()), wanted)))
    def keyed(t: pa.Table) -> dict[str, pa.ChunkedArray]:
        return {c: t.column(c).cast(pa.large_string()) for c in KEY}

    t = pa.concat_tables(parts)
    langs = pa.table({**keyed(t), "language": t.column("language").cast(pa.large_string())}) \
        .group_by(KEY).aggregate([("language", "min")])
    rows = pa.table({**keyed(index), "_row": pa.array(np.arange(index.num_rows))})
    joined = rows.join(langs, KEY, join_type="inner").sort_by("_row")
    if joined.num_rows != index.num_rows:
        raise InputError(f"{src} no longer holds every document of the token shards {url}: "
                         f"re-shard it, or {hint}")
    return joined.column("language_min").cast(pa.large_string())


def _cut(ds: Any, start: int, n: int, eos: int, url: str) -> np.ndarray:
    """Tokens start..start+n of a split's stream (the concatenated rows of its shards), after
    the separator; the token after them must be the separator the index promises."""
    row_len = ds.specs[0].row_len
    bounds = np.cumsum([0] + [s.sequences * row_len for s in ds.specs])
    out = [np.asarray([eos], np.int64)]
    pos, end = start, start + n + 1
    while pos < end:
        i = int(np.searchsorted(bounds, pos, side="right") - 1)
        if i >= len(ds.specs):
            raise InputError(f"{url}: a document of the index runs past its split's shards")
        lo, hi = pos - bounds[i], min(end, bounds[i + 1]) - bounds[i]
        rows = ds.reader(i).rows(np.arange(lo // row_len, -(-hi // row_len))).reshape(-1)
        out.append(rows[lo - (lo // row_len) * row_len:hi - (lo // row_len) * row_len]
                   .astype(np.int64))
        pos = bounds[i] + hi
    tokens = np.concatenate(out)
    if tokens[-1] != eos:
        raise InputError(f"{url}: the index does not match the shards (no separator after a "
                         "document): re-shard")
    return tokens[:-1]


def open_documents(url: str, tok: ModelTokenizer, split: str, by: str, rule: SplitRule | None,
                   max_docs: int | None) -> Documents:
    """The documents of `url`, whichever kind of folder it is. `rule` None: the default rule
    (token shards carry their own; asking one of them is refused)."""
    if is_token_folder(url):
        if rule is not None:
            raise ConfigError(f"{url} is a token shard folder: its splits were fixed when it "
                              "was made (no --splits / --valid-fraction / --test-fraction / "
                              "--valid-from)")
        return from_tokens(url, tok, split, by, max_docs)
    return from_dataset(url, tok, split, by, rule or SplitRule(), max_docs)
