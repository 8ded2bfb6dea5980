"""`corpus dedup IN OUT --minhash`: near-duplicate removal, out of core and deterministic.

Steps on the engine (only small columns move between them, never `content`):
1. summarize (per partition): shingles -> MinHash signatures (datasketch-identical) -> one
   hash per LSH band; writes the band rows, the documents' keys and their signatures.
2. candidates (once, DuckDB, spills to disk): documents get a global order (ranking, id,
   repo_name, path), the keeper order; band collisions become candidate edges: each bucket
   linked as a star on its first document, or, when verifying, as all its pairs (buckets of up
   to `max_bucket` documents).
   With --verify, summarize also writes every document's exact shingle set (sorted hashes).
3. resolve (once): with verify, the exact Jaccard of every candidate pair, partition pair by
   partition pair, keeping those at or above the threshold (memory: the candidates' shingle
   sets of the partitions in use, within `verify_memory`, at least two partitions); then
   connected components by min-label propagation over the edges streamed from disk (8 bytes
   per document plus one batch of edges); a component's keeper is its first document in the
   global order.
4. apply (per partition): drop the others (`near-duplicate-of <id> (<repo>:<path>) J~0.93`, the
   Jaccard estimated from signatures), and give every kept document its `cluster_id`.
"""

from __future__ import annotations

import itertools
import posixpath
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from corpus import duck, schema
from corpus.dedup import kernels
from corpus.dedup import minhash as mh
from corpus.dedup.exact import RANKABLE, _rank_columns
from corpus.dedup.shingles import shingles
from corpus.errors import ConfigError
from corpus.filters import text as tx
from corpus.filters.stage import slices
from corpus.io import DatasetDir
from corpus.malloc import retain_freed_memory
from corpus.stage import WORK_DIR, MapJob, removed_rows, write_documents

STAGE = "dedup-minhash"
SLICE_BYTES = 4 << 20
EDGE_BATCH = 1 << 20


@dataclass
class MinHashOptions:
    ngram: int = 5  # tokens per shingle
    num_perm: int = 256
    threshold: float = 0.85  # Jaccard at or above which documents are near-duplicates
    bands: int | None = None  # default: from the threshold (see minhash.optimal_param)
    rows: int | None = None
    seed: int = 42
    verify: bool = False  # exact Jaccard of every candidate pair before linking it
    max_bucket: int = 200  # larger LSH buckets are linked as stars, never all pairs
    verify_memory: int = 2 << 30  # bytes of shingle sets verification keeps in memory
    ranking: list[str] = field(default_factory=list)  # keeper preference before smallest id
    license_preference: list[str] = field(default_factory=list)


def work(name: str, key: str | None = None) -> str:
    return posixpath.join(WORK_DIR, name, f"{key}.parquet") if key else \
        posixpath.join(WORK_DIR, f"{name}.parquet")


class MinHashDedupJob(MapJob):
    stage = STAGE
    requires = (schema.Column("id", schema.STRING), schema.Column("repo_name", schema.STRING),
                schema.Column("path", schema.STRING), schema.Column("content", schema.STRING))

    def __init__(self, opts: MinHashOptions, input: DatasetDir, output: DatasetDir):
        if not 0 < opts.threshold <= 1:
            raise ConfigError("dedup --minhash: threshold must be in (0, 1]")
        if not 1 <= opts.ngram <= 16:
            raise ConfigError("dedup --minhash: ngram must be between 1 and 16")
        if (opts.bands is None) != (opts.rows is None):
            raise ConfigError("dedup --minhash: give both --bands and --rows, or neither")
        if opts.bands is None:
            opts.bands, opts.rows = (mh.verify_param if opts.verify else mh.optimal_param)(
                opts.threshold, opts.num_perm)
        if opts.bands * opts.rows > opts.num_perm:
            raise ConfigError(f"dedup --minhash: {opts.bands} bands x {opts.rows} rows need "
                              f"{opts.bands * opts.rows} permutations, more than {opts.num_perm}")
        for spec in opts.ranking:
            if spec.partition(" ")[0] not in RANKABLE:
                raise ConfigError(f"dedup: cannot rank by {spec!r}")
        self.opts = opts
        self.results: dict[str, Any] = {}
        self.requires = self.requires + tuple(
            schema.Column(s.partition(" ")[0], schema.STRING if s.startswith("license")
                          else schema.INT64) for s in opts.ranking)
        super().__init__(input, output, {"method": "minhash", **vars(opts)})

    def steps(self) -> list[tuple[str, str]]:
        return [("map", "summarize"), ("global", "candidates"), ("global", "resolve")]

    # 1. signatures and bands -----------------------------------------------------------------
    def summarize(self, key: str) -> dict[str, Any]:
        retain_freed_memory()
        o, part = self.opts, self.keys.index(key)
        cols = ["id", "repo_name", "path", "content",
                *{s.partition(" ")[0] for s in o.ranking}]
        t = self.input.read_parquet(self.input.part_file(key), columns=cols)
        content = t.column("content").combine_chunks()
        sigs, counts, sets = [], [], []
        nbytes = pc.fill_null(pc.binary_length(content), 0).to_numpy(zero_copy_only=False)
        cuts = slices(nbytes, SLICE_BYTES)
        for a, b in itertools.pairwise(cuts):
            sh = shingles(tx.text_of(content.slice(a, b - a)), o.ngram)
            sigs.append(mh.signatures(sh, o.num_perm, o.seed))
            counts.append(sh.counts)
            if o.verify:
                sets.append(kernels.sorted_sets(sh.hashes, sh.starts, sh.counts))
        sig = np.concatenate(sigs) if sigs else np.zeros((0, o.num_perm), np.uint32)
        count = np.concatenate(counts) if counts else np.zeros(0, np.int64)
        pos = np.arange(t.num_rows, dtype=np.int32)
        has = np.flatnonzero(count > 0)
        bh = mh.band_hashes(sig[has], o.bands, o.rows)
        bands = pa.table({
            "band": pa.array(np.tile(np.arange(o.bands, dtype=np.int16), len(has))),
            "bhash": pa.array(bh.ravel()),
            "part": pa.array(np.full(bh.size, part, dtype=np.int32)),
            "pos": pa.array(np.repeat(pos[has], o.bands)),
        })
        docs = pa.table({"part": pa.array(np.full(t.num_rows, part, dtype=np.int32)),
                         "pos": pa.array(pos), "id": t.column("id"),
                         "repo_name": t.column("repo_name"), "path": t.column("path"),
                         "shingles": pa.array(count.astype(np.int64)),
                         **_rank_columns(t, _exact_opts(o))})
        width = 4 * o.num_perm
        sigcol = pa.FixedSizeBinaryArray.from_buffers(pa.binary(width), t.num_rows,
                                                      [None, pa.py_buffer(sig.tobytes())])
        tables = [("bands", bands), ("docs", docs),
                  ("sigs", pa.table({"pos": pa.array(pos), "sig": sigcol}))]
        if o.verify:  # exact shingle sets, sorted: what verification compares
            values = np.concatenate([v for v, _ in sets]) if sets else np.zeros(0, np.uint64)
            lens = np.concatenate([np.diff(off) for _, off in sets]) if sets else \
                np.zeros(0, np.int64)
            offsets = np.zeros(t.num_rows + 1, dtype=np.int64)
            np.cumsum(lens, out=offsets[1:])
            tables.append(("sets", pa.table({"pos": pa.array(pos), "shingles": pa.LargeListArray
                                             .from_arrays(pa.array(offsets),
                                                          pa.array(values, pa.uint64()))})))
        files = []
        for name, table in tables:  # hashes do not compress: store sigs and sets plain
            self.output.write_parquet(work(name, key), table, table.schema,
                                      row_group_bytes=8 << 20,
                                      compression="none" if name in ("sigs", "sets") else "zstd")
            files.append(work(name, key))
        return {"rows": t.num_rows, "no_shingles": int((count == 0).sum()), "files": files}

    # 2. candidate edges ---------------------------------------------------------------------
    def _scan(self, con: Any, name: str) -> str:
        base = self.output.url.rstrip("/")
        return duck.parquet_scan(con, [f"{base}/{work(name, k)}" for k in self.keys])

    def candidates(self) -> dict[str, Any]:
        o, out = self.opts, self.output
        con = duck.connect()
        docs = self._scan(con, "docs")
        ranks = [c for c in con.execute(f"SELECT * FROM {docs} LIMIT 0").to_arrow_table()
                 .column_names if c[:1] == "r" and c[1:2].isdigit()]
        ranks.sort(key=lambda c: (int(c[1:-1]), c[-1]))
        order = ", ".join([*ranks, "id", "repo_name", "path", "part", "pos"])
        con.execute(f"""CREATE TABLE ord AS SELECT part, pos,
                        (row_number() OVER (ORDER BY {order}) - 1)::BIGINT AS g
                        FROM {docs}""")
        n_docs = con.execute("SELECT count(*) FROM ord").fetchone()[0]
        out.write_parquet(work("order"), con.execute(
            "SELECT part, pos, g FROM ord ORDER BY part, pos").to_arrow_reader(1 << 16),
            pa.schema([("part", pa.int32()), ("pos", pa.int32()), ("g", pa.int64())]))
        con.execute(f"""CREATE TABLE m AS
            WITH b AS (SELECT band, bhash, g FROM {self._scan(con, 'bands')} JOIN ord
                       USING (part, pos)),
            k AS (SELECT band, bhash, min(g) AS head, count(*) AS size FROM b
                  GROUP BY band, bhash HAVING count(*) > 1)
            SELECT b.band, b.bhash, b.g, k.head, k.size FROM b JOIN k USING (band, bhash)""")
        star = "SELECT head AS u, g AS v FROM m WHERE g <> head"
        pairs = star
        if o.verify:
            pairs = f"""{star} UNION ALL
                SELECT x.g AS u, y.g AS v FROM m x JOIN m y USING (band, bhash)
                WHERE x.g < y.g AND x.size <= {int(o.max_bucket)} AND x.g <> x.head"""
        edges = f"""SELECT e.u, e.v, ou.part AS pu, ou.pos AS qu, ov.part AS pv, ov.pos AS qv
                    FROM (SELECT DISTINCT u, v FROM ({pairs})) e
                    JOIN ord ou ON ou.g = e.u JOIN ord ov ON ov.g = e.v
                    ORDER BY pu, pv, u, v"""
        count = [0]

        def counted(batches):
            for b in batches:
                count[0] += b.num_rows
                yield b

        out.write_parquet(work("edges"), counted(con.execute(edges).to_arrow_reader(1 << 16)),
                          EDGES, row_group_bytes=4 << 20)
        buckets = con.execute("SELECT count(DISTINCT (band, bhash)) FROM m").fetchone()[0]
        con.close()
        return {"documents": int(n_docs), "buckets": int(buckets), "candidate_pairs": count[0],
                "bands": o.bands, "rows": o.rows}

    # 4. verify, components, decisions ---------------------------------------------------------
    def resolve(self) -> dict[str, Any]:
        o, out = self.opts, self.output
        order = out.read_parquet(work("order"))
        n_docs = order.num_rows
        stats: dict[str, Any] = {}
        edges_file = work("edges")
        if o.verify:
            edges_file = work("verified")
            stats.update(self._verify(edges_file))
        labels = components(n_docs, lambda: self._edge_batches(edges_file))
        stats.update(self._decide(labels, order))
        return stats

    def _edge_batches(self, rel: str):
        with self.output.fs.open(self.output.join(rel), "rb") as f:
            for batch in pq.ParquetFile(f).iter_batches(EDGE_BATCH, columns=["u", "v"]):
                yield batch.column(0).to_numpy(), batch.column(1).to_numpy()

    def _verify(self, rel: str) -> dict[str, Any]:
        """Exact Jaccard of each candidate pair, partition pair by partition pair (two
        partitions' shingle sets in memory at a time); keep the pairs at the threshold."""
        o, out = self.opts, self.output
        cache: dict[int, SetBlock] = {}
        wanted = self._candidate_positions()

        def sets(part: int) -> SetBlock:
            if part not in cache:
                block = SetBlock.read(out, work("sets", self.keys[part]), wanted[part])
                while cache and sum(b.nbytes for b in cache.values()) + block.nbytes > \
                        o.verify_memory and len(cache) >= 2:
                    cache.pop(next(iter(cache)))  # the oldest partition's sets
                cache[part] = block
            return cache[part]

        def accepted():
            checked = kept = 0
            with out.fs.open(out.join(work("edges")), "rb") as f:
                for batch in pq.ParquetFile(f).iter_batches(EDGE_BATCH):
                    c = {n: batch.column(n).to_numpy() for n in batch.schema.names}
                    keep = np.zeros(batch.num_rows, dtype=bool)
                    blocks = np.flatnonzero(np.r_[True, (c["pu"][1:] != c["pu"][:-1])
                                                  | (c["pv"][1:] != c["pv"][:-1])])
                    for s, e in zip(blocks, np.r_[blocks[1:], batch.num_rows], strict=True):
                        left, right = sets(int(c["pu"][s])), sets(int(c["pv"][s]))
                        both = left.concat(right)
                        j = kernels.jaccards(both.values, both.offsets, left.index(c["qu"][s:e]),
                                             len(left) + right.index(c["qv"][s:e]))
                        keep[s:e] = j >= o.threshold
                    checked += batch.num_rows
                    kept += int(keep.sum())
                    yield pa.RecordBatch.from_arrays(
                        [pa.array(c[n][keep]) for n in EDGES.names], schema=EDGES)
            counts.update(verified_pairs=checked, accepted_pairs=kept)

        counts: dict[str, int] = {}
        out.write_parquet(rel, accepted(), EDGES, row_group_bytes=4 << 20)
        return counts

    def _candidate_positions(self) -> dict[int, np.ndarray]:
        """Per partition, the sorted positions of documents in some candidate pair."""
        e = self.output.read_parquet(work("edges"), columns=["pu", "qu", "pv", "qv"])
        parts = np.concatenate([e.column("pu").to_numpy(), e.column("pv").to_numpy()])
        pos = np.concatenate([e.column("qu").to_numpy(), e.column("qv").to_numpy()])
        return {p: np.unique(pos[parts == p]) for p in range(len(self.keys))}

    def _decide(self, labels: np.ndarray, order: pa.Table) -> dict[str, Any]:
        """Decisions for every document of a cluster of two or more, vectorized: the keeper's
        keys by a sorted lookup, the estimated Jaccard from both signatures."""
        out = self.output
        g = order.column("g").to_numpy()
        sizes = np.bincount(labels, minlength=len(labels))
        member = sizes[labels[g]] > 1  # rows of `order` in a cluster of 2+
        parts, pos, gm = (order.column("part").to_numpy()[member],
                          order.column("pos").to_numpy()[member], g[member])
        docs, sigs = [], []
        for p in range(len(self.keys)):  # members' keys and signatures, partition order
            sel = pa.array(pos[parts == p])
            if len(sel):
                docs.append(out.read_parquet(work("docs", self.keys[p]),
                                             columns=["id", "repo_name", "path"]).take(sel))
                s = out.read_parquet(work("sigs", self.keys[p])).column("sig").combine_chunks()
                width = s.type.byte_width // 4
                sigs.append(np.frombuffer(s.buffers()[1], dtype=np.uint32)
                            .reshape(-1, width)[sel.to_numpy()])
        if docs:
            keys = pa.concat_tables(docs)
            sig = np.concatenate(sigs)
        else:
            keys, sig = pa.table({"id": [], "repo_name": [], "path": []}), np.zeros((0, 1))
        # member rows are now in (part, pos) order, which is how `order` is sorted
        by_g = np.argsort(gm)
        keeper_row = by_g[np.searchsorted(gm[by_g], labels[gm])]
        take = pa.array(keeper_row)
        jaccard = (sig == sig[keeper_row]).mean(axis=1) if len(sig) else np.zeros(0)
        removed = keeper_row != np.arange(len(gm))
        table = pa.table({"part": pa.array(parts.astype(np.int32)),
                          "pos": pa.array(pos.astype(np.int32)), "removed": pa.array(removed),
                          "cluster_id": keys.column("id").take(take),
                          "kept_repo": keys.column("repo_name").take(take),
                          "kept_path": keys.column("path").take(take),
                          "jaccard": pa.array(jaccard, pa.float32())})
        out.write_parquet(work("decisions"), table, table.schema, row_group_bytes=1 << 20)
        clusters = sizes[sizes > 1]
        return {"clusters": len(clusters), "clustered_documents": int(clusters.sum()),
                "removed": int(removed.sum()),
                "largest_cluster": int(clusters.max()) if len(clusters) else 0,
                "cluster_sizes": {str(k): int(v) for k, v in
                                  zip(*np.unique(clusters, return_counts=True), strict=True)}}

    # 5. apply --------------------------------------------------------------------------------
    def run_partition(self, key: str) -> dict[str, Any]:
        part = self.keys.index(key)
        table = self.input.read_parquet(self.input.part_file(key))
        dec = self.output.read_parquet(work("decisions"), filters=[("part", "=", part)])
        pos = dec.column("pos").to_numpy()
        removed = dec.column("removed").to_numpy(zero_copy_only=False)
        in_cluster = np.zeros(table.num_rows, dtype=bool)
        in_cluster[pos] = True
        cluster = pc.replace_with_mask(
            table.column("id").combine_chunks().cast(pa.large_string()), pa.array(in_cluster),
            dec.column("cluster_id").combine_chunks().cast(pa.large_string()))
        kept = table.drop_columns([c for c in ("cluster_id",) if c in table.column_names])
        kept = kept.append_column("cluster_id", cluster)
        drop = np.zeros(table.num_rows, dtype=bool)
        drop[pos[removed]] = True
        r = dec.filter(pa.array(removed))
        reasons = [f"near-duplicate-of {i} ({rp}:{pp}) J~{j:.3f}" for i, rp, pp, j in zip(
            r.column("cluster_id").to_pylist(), r.column("kept_repo").to_pylist(),
            r.column("kept_path").to_pylist(), r.column("jaccard").to_pylist(), strict=True)]
        gone = removed_rows(table.take(pa.array(pos[removed])), STAGE, reasons)
        return write_documents(self.output, key, kept.filter(pa.array(~drop)), kept.schema,
                               gone, rows_in=table.num_rows)


@dataclass
class SetBlock:
    """The shingle sets of one partition's candidates: set i is values[offsets[i]:...]."""
    pos: np.ndarray
    values: np.ndarray
    offsets: np.ndarray

    @classmethod
    def read(cls, out: DatasetDir, rel: str, positions: np.ndarray) -> SetBlock:
        t = out.read_parquet(rel).take(pa.array(positions))
        flat = t.column("shingles").combine_chunks()
        return cls(t.column("pos").to_numpy(), flat.values.to_numpy(),
                   flat.offsets.to_numpy().astype(np.int64))

    @property
    def nbytes(self) -> int:
        return self.values.nbytes + self.offsets.nbytes + self.pos.nbytes

    def __len__(self) -> int:
        return len(self.pos)

    def index(self, positions: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.pos, positions)

    def concat(self, other: SetBlock) -> SetBlock:
        return SetBlock(np.r_[self.pos, other.pos], np.r_[self.values, other.values],
                        np.r_[self.offsets[:-1], other.offsets + self.offsets[-1]])


EDGES = pa.schema([("u", pa.int64()), ("v", pa.int64()), ("pu", pa.int32()),
                   ("qu", pa.int32()), ("pv", pa.int32()), ("qv", pa.int32())])


def _exact_opts(o: MinHashOptions) -> Any:
    from corpus.dedup.exact import ExactOptions

    return ExactOptions(ranking=o.ranking, license_preference=o.license_preference)


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Jaccard of two sorted arrays of distinct values."""
    if not len(a) and not len(b):
        return 0.0
    if len(a) > len(b):
        a, b = b, a
    idx = np.searchsorted(b, a)
    inter = int((b[np.minimum(idx, len(b) - 1)] == a).sum()) if len(b) else 0
    return inter / (len(a) + len(b) - inter)


def components(n: int, edge_batches) -> np.ndarray:
    """Label of every node: the smallest node of its connected component. Min-label hooking
    plus pointer jumping, repeated over the edges (read again each pass) until no label
    changes; memory is one int64 per node plus one batch of edges."""
    labels = np.arange(n, dtype=np.int64)
    changed = True
    while changed:
        changed = False
        for u, v in edge_batches():
            lu, lv = labels[u], labels[v]
            lo, hi = np.minimum(lu, lv), np.maximum(lu, lv)
            diff = lo != hi
            if diff.any():
                changed = True
                np.minimum.at(labels, hi[diff], lo[diff])
                while True:  # compress: every node points straight at its root
                    nxt = labels[labels]
                    if np.array_equal(nxt, labels):
                        break
                    labels = nxt
    return labels
