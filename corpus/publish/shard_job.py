"""Hub-layout Parquet shards, `data/<split>-00000-of-000NN.parquet`, as an engine job.

Three steps, like token shards (corpus/tokens/shards.py); only small columns move:
1. scan (per input partition, in parallel): each document's split (corpus/splits.py, the rule
   of every output) and its content length in bytes, kept as `_work/scan/<part>.parquet`;
2. plan (once), over those two columns alone: each split's documents in input order, cut into
   shards that end at the first document where the shard holds `shard_bytes` of content; per
   shard, the row range it takes from every input partition;
3. write (per shard): read only the row groups holding those rows, keep the rows of the shard's
   split, write the shard atomically under its final Hub name (the plan knows the count).

A shard depends only on the documents and their order, never on the input's partitioning, on
batch sizes or on workers, so a resumed run and a repartitioned input give the same bytes.
Every input row is written to exactly one shard (rows in = rows written; nothing is removed).
The finished folder carries its dataset card (README.md, corpus/publish/card.py), so
`datasets.load_dataset(folder)` gives its splits and `corpus push` uploads it as it is.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from corpus import manifest as mf
from corpus import schema
from corpus.errors import ConfigError, InputError, InvariantError, SchemaError
from corpus.io import DatasetDir
from corpus.publish import card as cards
from corpus.publish.split import LayoutOptions
from corpus.splits import SPLITS, VALIDATION, assign, valid_repos
from corpus.stage import WORK_DIR, DocumentStats, MapJob
from corpus.steps import GlobalStep, MapStep, Step

STAGE = "shard-parquet"
FORMAT = "hub-parquet/2"  # 2: the test split, the dataset card
SCAN_DIR = f"{WORK_DIR}/scan"
PLAN = f"{WORK_DIR}/plan.json"
DATA_DIR = "data"
#: The summary older readers (corpus report, pipeline tests) take from the folder.
STATE = "_layout.json"
SCAN_BATCH = 4096


def shard_name(split: str, index: int, count: int) -> str:
    """The Hub's convention: train-00000-of-00003."""
    return f"{split}-{index:05d}-of-{count:05d}"


def shard_bounds(lengths: np.ndarray, target: int) -> list[tuple[int, int]]:
    """(start, end) of each shard over documents of these lengths: a shard ends at the first
    document where its content reaches `target`; the last one takes what is left."""
    cum = np.cumsum(lengths, dtype=np.int64)
    bounds: list[tuple[int, int]] = []
    start, reach = 0, target
    while start < len(lengths):
        end = min(int(np.searchsorted(cum, reach, side="left")) + 1, len(lengths))
        bounds.append((start, end))
        start, reach = end, int(cum[end - 1]) + target
    return bounds


class HubShardJob(MapJob):
    """Steps scan and plan, then one output partition per shard (key: its Hub name)."""

    stage = STAGE

    def __init__(self, input: DatasetDir, output: DatasetDir, opts: LayoutOptions):
        opts.check()
        self.opts, self.rule = opts, opts.rule
        self.repos = valid_repos(self.rule.valid_from) if self.rule.valid_from else None
        self.requires = tuple(schema.Column(c, schema.STRING)
                              for c in self._scan_columns())
        self.out_schema: pa.Schema | None = None
        super().__init__(input, output, {"format": FORMAT, "shard_bytes": opts.shard_bytes,
                                         **self.rule.config(self.repos)})
        self.fingerprint = mf.fingerprint(self.stage, self.config, self.input_hash)
        if not self.rows_in:  # decided here, from the footers, before any work
            raise InputError(f"{input.url} holds no documents: no shards to write")

    def check_input(self) -> int:
        """Required columns, one schema for every partition (footers only), and as many rows
        as the input's manifest lists; returns the row count."""
        rows = 0
        for key in self.keys:
            meta = self.input.parquet_metadata(self.input.part_file(key))
            got = meta.schema.to_arrow_schema().remove_metadata()
            where = f"input {self.input.url} partition {key}"
            schema.check(got, self.requires, where)
            if self.out_schema is None:
                self.out_schema = got
            elif got.names != self.out_schema.names:
                raise SchemaError(f"{where} has columns {', '.join(got.names)}; the first "
                                  f"partition has {', '.join(self.out_schema.names)}")
            rows += meta.num_rows
        listed = (self.input.manifest() or {}).get("rows")
        if listed is not None and listed != rows:
            raise InvariantError(f"{self.input.url}: the manifest lists {listed} rows, the "
                                 f"files hold {rows}")
        return rows

    def steps(self) -> list[Step]:
        return [MapStep("scan"), GlobalStep("plan")]

    def step_partitions(self) -> list[str]:
        """The scan runs per input partition."""
        return self.keys

    def partitions(self, results: Mapping[str, Any]) -> list[str] | None:
        """The shards, once the plan step has decided them."""
        plan = results.get("plan")
        return None if plan is None else plan["shards"]

    # 1. per input partition ----------------------------------------------------------------
    def scan(self, key: str) -> dict[str, Any]:
        flags, lengths = [np.zeros(0, np.uint8)], [np.zeros(0, np.int64)]
        with self.input.fs.open(self.input.join(self.input.part_file(key)), "rb") as f:
            for b in pq.ParquetFile(f).iter_batches(SCAN_BATCH, columns=self._scan_columns()):
                flags.append(assign(b, self.rule, self.repos))
                lengths.append(pc.fill_null(pc.binary_length(b.column("content")), 0)
                               .to_numpy(zero_copy_only=False).astype(np.int64))
        t = pa.table({"split": np.concatenate(flags), "length": np.concatenate(lengths)})
        rel = posixpath.join(SCAN_DIR, f"{key}.parquet")
        self.output.write_parquet(rel, t, t.schema)
        return {"rows": t.num_rows, "files": [rel]}

    def _scan_columns(self) -> list[str]:
        return [*self.rule.columns(), "content"]

    def _flags(self, key: str) -> np.ndarray:
        rel = posixpath.join(SCAN_DIR, f"{key}.parquet")
        return self.output.read_parquet(rel, columns=["split"]).column("split").to_numpy()

    # 2. once -------------------------------------------------------------------------------
    def plan(self) -> dict[str, Any]:
        flags, lengths = [], []
        for key in self.keys:
            t = self.output.read_parquet(posixpath.join(SCAN_DIR, f"{key}.parquet"))
            flags.append(t.column("split").to_numpy())
            lengths.append(t.column("length").to_numpy())
        sizes = np.array([len(f) for f in flags], np.int64)
        offsets = np.concatenate([[0], np.cumsum(sizes)])
        flag, length = np.concatenate(flags), np.concatenate(lengths)
        shards: list[dict[str, Any]] = []
        if self.repos is not None and not (flag == VALIDATION).any():
            raise ConfigError(f"the validation split came out empty: none of the repositories "
                              f"listed in {self.rule.valid_from} is in {self.input.url}")
        for code, split in enumerate(SPLITS):
            sel = np.flatnonzero(flag == code)  # the split's documents, in input order
            bounds = shard_bounds(length[sel], self.opts.shard_bytes)
            for i, (lo, hi) in enumerate(bounds):
                docs = sel[lo:hi]
                shards.append({"key": shard_name(split, i, len(bounds)), "split": split,
                               "code": code, "rows": len(docs),
                               "content_bytes": int(length[docs].sum()),
                               "ranges": self._ranges(docs, offsets)})
        self.output.write_json(PLAN, {"shards": shards})
        return {"shards": [s["key"] for s in shards], "documents": int(sizes.sum()),
                "content_bytes": int(length.sum())}

    def _ranges(self, docs: np.ndarray, offsets: np.ndarray) -> dict[str, list[int]]:
        """Per input partition holding some of these (sorted, global) rows: [first, last + 1)
        in that partition's own rows."""
        part = np.searchsorted(offsets, docs, side="right") - 1
        cuts = np.flatnonzero(np.diff(part)) + 1
        out = {}
        for a, b in zip(np.r_[0, cuts], np.r_[cuts, len(docs)], strict=True):
            p = int(part[a])
            out[self.keys[p]] = [int(docs[a] - offsets[p]), int(docs[b - 1] - offsets[p]) + 1]
        return out

    # 3. per shard --------------------------------------------------------------------------
    def run_partition(self, key: str) -> dict[str, Any]:
        plan = next(s for s in self.output.read_json(PLAN)["shards"] if s["key"] == key)
        rel = posixpath.join(DATA_DIR, f"{key}.parquet")
        stats = DocumentStats()
        assert self.out_schema is not None
        nbytes = self.output.write_parquet(rel, stats.watch(self._rows(plan)), self.out_schema)
        if (stats.rows, stats.content_bytes) != (plan["rows"], plan["content_bytes"]):
            raise InvariantError(f"{self.output.url}/{rel}: wrote {stats.rows} documents, "
                                 f"{stats.content_bytes} bytes of content; the plan says "
                                 f"{plan['rows']}, {plan['content_bytes']}")
        return {"split": plan["split"], "file": rel, "rows_in": stats.rows, "rows": stats.rows,
                "removed": 0, "bytes": nbytes, "content_bytes": stats.content_bytes,
                "reasons": {}, "languages": dict(stats.languages),
                "licenses": dict(stats.licenses), "files": [rel]}

    def _rows(self, plan: dict[str, Any]) -> Iterator[pa.RecordBatch]:
        """The shard's documents, in input order: per input partition, only the row groups
        that hold its range, less the rows of the other split."""
        for key in self.keys:
            if key not in plan["ranges"]:
                continue
            lo, hi = plan["ranges"][key]
            keep = self._flags(key)[lo:hi] == plan["code"]
            with self.input.fs.open(self.input.join(self.input.part_file(key)), "rb") as f:
                pf = pq.ParquetFile(f)
                start = 0
                for g in range(pf.num_row_groups):
                    end = start + pf.metadata.row_group(g).num_rows
                    a, b = max(lo, start), min(hi, end)
                    if a < b:
                        t = pf.read_row_group(g).slice(a - start, b - a)
                        yield from t.filter(pa.array(keep[a - lo:b - lo])).to_batches()
                    start = end

    # after every shard ---------------------------------------------------------------------
    def finish(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        """Per split: its files, documents and content bytes (also in `_layout.json`)."""
        splits = self.write_state(records)
        name = posixpath.basename(self.output.path.rstrip("/"))
        card = cards.render(name, splits, self.input.url, mf.merge_counts(records, "licenses"),
                            mf.merge_counts(records, "languages"), self.rule.describe())
        text = card.encode()
        self.output._atomic(cards.FILE, lambda f: f.write(text))
        # "card": written here (the Hub's card), so the engine does not write its own
        return {"parquet": {"format": FORMAT, "splits": splits, "card": cards.FILE},
                "card": cards.FILE}

    def write_state(self, records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        splits: dict[str, dict[str, Any]] = {}
        for r in records:
            s = splits.setdefault(r["split"], {"files": [], "rows": 0, "content_bytes": 0})
            s["files"].append(r["file"])
            s["rows"] += r["rows"]
            s["content_bytes"] += r["content_bytes"]
        self.output.write_json(STATE, {"identity": self.fingerprint, "splits": splits,
                                       "rows_in": sum(r["rows"] for r in records)})
        return splits
