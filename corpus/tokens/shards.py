"""`corpus shard IN OUT --format tokens`: packed fixed-length token sequences for training.

Three steps on the engine; only small columns move between workers:
1. tokenize (per input partition, in parallel): encode every document with the corpus's BPE,
   give it a split (corpus/splits.py: the rule of every output, by a hash of its id) and a
   shuffle key (a seeded hash of id, repo, path), sort by (split, key) and keep
   `_work/tokens/<part>.parquet`.
2. plan (once): from the (split, key, n_tokens) columns alone, the global document order of each
   split (by key: shards are not sorted by repository), each document's offset in the split's
   token stream (documents joined by the end-of-text token), and each output shard's token range,
   with the row range it needs from every tokenized partition (a contiguous one, because both
   are sorted by the same key).
3. pack (per output shard): read those ranges, join, cut rows of seq_len + 1 tokens, write
   `<split>-NNNNN.arrow` (corpus/tokens/format.py; split train, validation or test) and
   `<split>-NNNNN.docs.parquet`, the documents that start in it (id, repo_name, path, start,
   n_tokens) in stream order. A split without documents has no shards and no manifest entry.

The last row of a split is padded with end-of-text tokens; the manifest says how many tokens
each shard really holds. Documents without content are removed with a reason.
"""

from __future__ import annotations

import functools
import hashlib
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import Field

from corpus import schema
from corpus.config_check import Size
from corpus.errors import ConfigError, InputError
from corpus.io import DatasetDir
from corpus.keys import row_hash
from corpus.splits import (
    SPLITS,
    VALIDATION,
    SplitChoice,
    SplitPreset,
    SplitRule,
    TestFraction,
    ValidFraction,
    ValidFrom,
    assign,
    empty_notes,
    valid_repos,
)
from corpus.stage import WORK_DIR, MapJob, reason_counts, removed_rows
from corpus.steps import GlobalStep, MapStep, Step
from corpus.tokens import bpe
from corpus.tokens import encoder as encoding
from corpus.tokens import format as fmt

STAGE = "shard-tokens"
TOKENS_DIR = f"{WORK_DIR}/tokens"
PLAN = f"{WORK_DIR}/plan.json"
REMOVED_WORK = f"{WORK_DIR}/removed"


@dataclass
class TokenShardOptions(SplitChoice):
    tokenizer: Annotated[str, Field(description="The tokenizer folder (corpus tokenizer "
                                    "train), or its tokenizer.json.")]
    seq_len: Annotated[int, Field(ge=1, description="Model context; each row holds seq_len + 1 "
                                  "tokens.")] = 1024
    shard_bytes: Size = 256 * 1024 * 1024  # target size of one shard file
    #: documents (by id hash) in the validation split; None: the preset's (default 0.01)
    valid_fraction: ValidFraction | None = None
    seed: Annotated[int, Field(description="Document order before packing.")] = 0
    test_fraction: TestFraction | None = None  # None: the preset's (default 0)
    splits: SplitPreset | None = None  # a preset of both fractions (corpus/splits.py)
    valid_from: ValidFrom | None = None  # validation = these repositories (one per line)
    encoder: Annotated[Literal["auto", "tokenizers"], Field(description=(
        "auto: tiktoken where it gives the tokenizer's exact ids (else tokenizers); "
        "tokenizers: always the tokenizers library (the same ids, slower)"))] = "auto"

    def check(self) -> None:
        if self.seq_len < 1:
            raise ConfigError("--seq-len must be at least 1")
        self.split_rule()
        if self.shard_bytes < 1:
            raise ConfigError("--shard-size must be positive")


@functools.lru_cache(maxsize=4)
def encoder_of(tokenizer_json: str, dtype: str, choice: str = "auto") -> encoding.Encoder:
    """The exact fast encoder of a tokenizer, built once per worker process; choice
    "tiktoken": the job's own build chose it (the workers skip its check)."""
    return encoding.build(tokenizer_json, fmt.DTYPES[dtype], fast=choice != "tokenizers",
                          checked=choice == "tiktoken")


def shard_key(split: str, index: int) -> str:
    return f"{split}-{index:05d}"


class TokenShardJob(MapJob):
    stage = STAGE
    requires = (schema.Column("id", schema.STRING), schema.Column("repo_name", schema.STRING),
                schema.Column("path", schema.STRING), schema.Column("content", schema.STRING))

    def __init__(self, opts: TokenShardOptions, input: DatasetDir, output: DatasetDir):
        opts.check()
        self.opts, self.rule = opts, opts.split_rule()
        self.repos = valid_repos(self.rule.valid_from) if self.rule.valid_from else None
        self.tokenizer_path = bpe.tokenizer_url(opts.tokenizer)  # a local path or a URL
        self.tokenizer_json = bpe.tokenizer_text(self.tokenizer_path)
        self.tokenizer_sha256 = hashlib.sha256(self.tokenizer_json.encode()).hexdigest()
        tok = bpe.load(self.tokenizer_path)
        self.eos_id = tok.token_to_id(bpe.EOT)
        if self.eos_id is None:
            raise ConfigError(f"tokenizer {self.tokenizer_path} has no {bpe.EOT} token")
        self.vocab_size = tok.get_vocab_size()
        self.dtype = fmt.dtype_for(self.vocab_size)
        chosen = encoder_of(self.tokenizer_json, self.dtype, opts.encoder)
        self.encoder, self.fallback_reason = chosen.name, chosen.fallback_reason
        self.row_len = opts.seq_len + 1
        super().__init__(input, output, {
            "format": fmt.FORMAT, "tokenizer_sha256": self.tokenizer_sha256,
            "seq_len": opts.seq_len, "shard_bytes": opts.shard_bytes,
            **self.rule.config(self.repos), "seed": opts.seed})
        if self.rows_in == 0:  # said here, before any work, rather than by the plan's worker
            raise InputError(f"{input.url} holds no documents to tokenize (0 rows)")

    def steps(self) -> list[Step]:
        return [MapStep("tokenize"), GlobalStep("plan")]

    def step_partitions(self) -> list[str]:
        """The tokenize step runs per input partition."""
        return self.keys

    def partitions(self, results: Mapping[str, Any]) -> list[str] | None:
        """The shards, once the plan step has decided them."""
        plan = results.get("plan")
        return None if plan is None else plan["shards"]

    # 1. per input partition ----------------------------------------------------------------
    def tokenize(self, key: str) -> dict[str, Any]:
        t = self.input.read_parquet(self.input.part_file(key),
                                    columns=["id", "repo_name", "path", "content"])
        size = pc.fill_null(pc.binary_length(t.column("content")), 0)
        empty = pc.equal(size, 0).to_numpy(zero_copy_only=False)
        files = []
        if empty.any():
            gone = t.filter(pa.array(empty))
            reasons = ["null-content" if c is None else "empty-content"
                       for c in gone.column("content").to_pylist()]
            rel = posixpath.join(REMOVED_WORK, f"{key}.parquet")
            rm = schema.conform(removed_rows(gone, STAGE, reasons), schema.REMOVED)
            self.output.write_parquet(rel, rm, rm.schema)
            files.append(rel)
            t = t.filter(pa.array(~empty))
        split = assign(t, self.rule, self.repos)
        order = row_hash(t, ["id", "repo_name", "path"], f"order-{self.opts.seed}")
        sort = np.lexsort((np.arange(t.num_rows), order, split))
        texts = t.column("content").to_pylist()  # encoded in (split, order) order: no take
        values, lengths = encoder_of(self.tokenizer_json, self.dtype, self.encoder).encode(
            [texts[i] for i in sort])
        del texts
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        work = pa.table({
            "split": pa.array(split[sort]), "order": pa.array(order[sort]),
            "n_tokens": pa.array(lengths),
            "id": t.column("id").take(sort), "repo_name": t.column("repo_name").take(sort),
            "path": t.column("path").take(sort),
            "tokens": pa.LargeListArray.from_arrays(pa.array(offsets), pa.array(values)),
        })
        rel = posixpath.join(TOKENS_DIR, f"{key}.parquet")
        self.output.write_parquet(rel, work, work.schema, row_group_bytes=4 << 20,
                                  compression="none")  # token ids barely compress
        files.append(rel)
        return {"rows": t.num_rows, "removed": int(empty.sum()), "tokens": int(lengths.sum()),
                "chars": int(pc.sum(size).as_py() or 0), "files": files}

    # 2. once -------------------------------------------------------------------------------
    def plan(self) -> dict[str, Any]:
        cols = {"split": [], "order": [], "n_tokens": [], "part": [], "row": []}
        for p, key in enumerate(self.keys):
            t = self.output.read_parquet(posixpath.join(TOKENS_DIR, f"{key}.parquet"),
                                         columns=["split", "order", "n_tokens"])
            for c in ("split", "order", "n_tokens"):
                cols[c].append(t.column(c).to_numpy())
            cols["part"].append(np.full(t.num_rows, p, np.int64))
            cols["row"].append(np.arange(t.num_rows, dtype=np.int64))
        a = {c: np.concatenate(v) if v else np.zeros(0, np.int64) for c, v in cols.items()}
        itemsize = np.dtype(fmt.DTYPES[self.dtype]).itemsize
        per_shard = max(1, self.opts.shard_bytes // (self.row_len * itemsize))
        shards: list[dict[str, Any]] = []
        for s, split in enumerate(SPLITS):
            sel = np.flatnonzero(a["split"] == s)
            sel = sel[np.lexsort((a["row"][sel], a["part"][sel], a["order"][sel]))]
            shards += self._split_plan(split, a, sel, per_shard)
        if not shards:
            raise ConfigError(f"{self.input.url}: no document has content to tokenize")
        if self.repos is not None and not (a["split"] == VALIDATION).any():
            raise ConfigError(f"the validation split came out empty: none of the repositories "
                              f"listed in {self.rule.valid_from} is in {self.input.url}")
        removed = [k for k in self.keys if self.output.exists(
            posixpath.join(REMOVED_WORK, f"{k}.parquet"))]
        shards[-1]["removed_from"] = removed
        self.output.write_json(PLAN, {"shards": shards})
        return {"shards": [s["key"] for s in shards], "documents": len(a["order"]),
                "tokens": int(a["n_tokens"].sum())}

    def _split_plan(self, split: str, a: dict[str, np.ndarray], sel: np.ndarray,
                    per_shard: int) -> list[dict[str, Any]]:
        if not len(sel):
            return []
        lengths = a["n_tokens"][sel] + 1  # each document, then end-of-text
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        total = int(lengths.sum())
        n_rows = -(-total // self.row_len)
        out = []
        for i, first_row in enumerate(range(0, n_rows, per_shard)):
            s = first_row * self.row_len
            e = min(first_row + per_shard, n_rows) * self.row_len
            first = int(np.searchsorted(starts, s, side="right") - 1)
            last = int(np.searchsorted(starts, min(e, total), side="left") - 1)
            docs = sel[first:last + 1]
            ranges = {}
            for p in np.unique(a["part"][docs]):
                rows = a["row"][docs][a["part"][docs] == p]
                ranges[self.keys[int(p)]] = [int(rows.min()), int(rows.max()) + 1]
            out.append({
                "key": shard_key(split, i), "split": split, "token_start": s, "token_end": e,
                "tokens": min(e, total) - s, "first_doc_start": int(starts[first]),
                "ranges": ranges,
                "docs_starting": int(((starts >= s) & (starts < e)).sum()),
            })
        return out

    # 3. per output shard -------------------------------------------------------------------
    def run_partition(self, key: str) -> dict[str, Any]:
        plan = next(s for s in self.output.read_json(PLAN)["shards"] if s["key"] == key)
        docs, stream = self._read_ranges(plan["ranges"])
        n = docs.column("n_tokens").to_numpy()
        off = plan["token_start"] - plan["first_doc_start"]
        rows = stream[off:off + plan["tokens"]]
        if len(rows) < plan["token_end"] - plan["token_start"]:  # the split's padded last row
            rows = np.concatenate([rows, np.full(plan["token_end"] - plan["token_start"]
                                                 - len(rows), self.eos_id, stream.dtype)])
        del stream
        meta = {"format": fmt.FORMAT, "seq_len": str(self.opts.seq_len),
                "eos_id": str(self.eos_id), "dtype": self.dtype,
                "tokenizer_sha256": self.tokenizer_sha256, "split": plan["split"]}
        data = fmt.encode_shard(rows.reshape(-1, self.row_len), self.dtype, meta)
        arrow_rel = f"{key}.arrow"
        self.output._atomic(arrow_rel, lambda f: f.write(data))
        local_starts = np.concatenate([[0], np.cumsum(n + 1)[:-1]]) - off
        starting = local_starts >= 0
        index = pa.table({
            "id": docs.column("id").filter(pa.array(starting)),
            "repo_name": docs.column("repo_name").filter(pa.array(starting)),
            "path": docs.column("path").filter(pa.array(starting)),
            "start": pa.array(local_starts[starting]), "n_tokens": pa.array(n[starting]),
        })
        index_rel = f"{key}.docs.parquet"
        self.output.write_parquet(index_rel, index, index.schema)
        files = [arrow_rel, index_rel]
        removed = self._removed(plan.get("removed_from", []))
        if removed.num_rows:
            self.output.write_parquet(self.output.removed_file(key), removed, removed.schema)
            files.append(self.output.removed_file(key))
        if index.num_rows != plan["docs_starting"]:
            raise AssertionError(f"{key}: {index.num_rows} documents start here, planned "
                                 f"{plan['docs_starting']}")
        return {
            "split": plan["split"], "file": arrow_rel, "index": index_rel,
            "sequences": len(rows) // self.row_len, "tokens": plan["tokens"],
            "padding": len(rows) - plan["tokens"],
            "sha256": hashlib.sha256(data).hexdigest(),
            "rows_in": index.num_rows + removed.num_rows, "rows": index.num_rows,
            "removed": removed.num_rows, "bytes": len(data), "reasons": reason_counts(removed),
            "files": files,
        }

    def _read_ranges(self, ranges: dict[str, list[int]]) -> tuple[pa.Table, np.ndarray]:
        """The planned rows of every tokenized partition in the split's stream order (without
        their tokens), and their tokens joined: each document, then end-of-text. The tokens
        are copied once, straight into the stream (a `take` of the list column cost 4x)."""
        parts, flats, starts = [], [], []
        for key in self.keys:
            if key not in ranges:
                continue
            lo, hi = ranges[key]
            with self.output.fs.open(self.output.join(TOKENS_DIR, f"{key}.parquet"), "rb") as f:
                pf = pq.ParquetFile(f)
                bounds = np.cumsum([0] + [pf.metadata.row_group(g).num_rows
                                          for g in range(pf.num_row_groups)])
                groups = [g for g in range(pf.num_row_groups)
                          if bounds[g] < hi and bounds[g + 1] > lo]
                t = pf.read_row_groups(groups).slice(lo - bounds[groups[0]], hi - lo)
            tokens = t.column("tokens").combine_chunks()
            flats.append(tokens.values.to_numpy())
            starts.append(tokens.offsets.to_numpy()[:-1] - tokens.offsets[0].as_py())
            parts.append(t.drop_columns(["tokens"])
                         .append_column("part", pa.array(np.full(t.num_rows, len(flats) - 1)))
                         .append_column("row", pa.array(np.arange(lo, hi, dtype=np.int64))))
        t = pa.concat_tables(parts)
        part, n = t.column("part").to_numpy(), t.column("n_tokens").to_numpy()
        sort = np.lexsort((t.column("row").to_numpy(), part, t.column("order").to_numpy()))
        stream = np.empty(int(n.sum()) + len(n), flats[0].dtype)
        pos = 0
        for k, s, m in zip(part[sort].tolist(), np.concatenate(starts)[sort].tolist(),
                           n[sort].tolist(), strict=True):  # one slice copy per document
            stream[pos:pos + m] = flats[k][s:s + m]
            stream[pos + m] = self.eos_id
            pos += m + 1
        return t.take(pa.array(sort)), stream

    def _removed(self, keys: list[str]) -> pa.Table:
        tables = [self.output.read_parquet(posixpath.join(REMOVED_WORK, f"{k}.parquet"))
                  for k in keys]
        return pa.concat_tables(tables) if tables else schema.empty(schema.REMOVED)

    # after every shard ---------------------------------------------------------------------
    def finish(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        """The training-facing part of the manifest, and a copy of the tokenizer."""
        self.output._atomic(bpe.FILE, lambda f: f.write(self.tokenizer_json.encode()))
        splits: dict[str, Any] = {}
        for r in records:
            s = splits.setdefault(r["split"], {"shards": [], "sequences": 0, "tokens": 0,
                                               "documents": 0})
            s["shards"].append(r["key"])
            s["sequences"] += r["sequences"]
            s["tokens"] += r["tokens"]
            s["documents"] += r["rows"]
        return {"tokens": {
            "format": fmt.FORMAT, "seq_len": self.opts.seq_len, "row_len": self.row_len,
            "dtype": self.dtype, "eos_id": self.eos_id, "vocab_size": self.vocab_size,
            "tokenizer_sha256": self.tokenizer_sha256, "tokenizer": bpe.FILE,
            "encoder": self.encoder, "encoder_fallback": self.fallback_reason,
            "seed": self.opts.seed, "valid_fraction": self.rule.valid_fraction,
            "test_fraction": self.rule.test_fraction, "valid_from": self.rule.valid_from,
            "splits": splits}}


def describe(manifest: dict[str, Any]) -> str:
    t = manifest["tokens"]
    parts = [f"{name}: {s['sequences']:,} sequences of {t['seq_len']} tokens "
             f"({s['tokens']:,} tokens, {s['documents']:,} documents, {len(s['shards'])} "
             f"shard{'s' if len(s['shards']) != 1 else ''})"
             for name, s in t["splits"].items()]
    asked = SplitRule(t.get("valid_fraction", 0.0), t.get("test_fraction", 0.0),
                      t.get("valid_from"))
    encoded = "" if "encoder" not in t else "; encoded with tiktoken (the tokenizer's exact " \
        "ids)" if t["encoder"] == "tiktoken" else f"; encoded with tokenizers, the slower " \
        f"path: {t['encoder_fallback']}"
    return "; ".join(parts + empty_notes(asked, t["splits"])) \
        + f"; {t['dtype']}, vocabulary {t['vocab_size']:,}" + encoded


# --- the stage's declaration (corpus/registry.py) ---------------------------------------------
KIND = "shard"
OPTIONS = TokenShardOptions
READS = tuple(c.name for c in TokenShardJob.requires)
WRITES = ("tokens",)


def make_job(opts: TokenShardOptions, input: DatasetDir, out: DatasetDir) -> TokenShardJob:
    return TokenShardJob(opts, input, out)
