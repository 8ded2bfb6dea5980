"""`corpus dedup IN OUT --minhash`: near-duplicate removal, out of core and deterministic.

Steps on the engine (only small columns move between them, never `content`):
1. summarize (per partition): shingles -> MinHash signatures (datasketch-identical) -> one
   hash per LSH band; writes the band rows, the documents' keys and their signatures.
2. candidates (once, DuckDB, spills to disk): a global keeper order (ranking, id, repo_name,
   path); band collisions become candidate edges (a star on a bucket's first document, or all
   pairs when verifying, buckets of up to `max_bucket`). With --verify, summarize also writes
   each exact shingle set, and candidates cuts them into groups of half `verify_memory`.
3. scatter (per partition, with --verify): each group's shingle sets to the group's folder.
4. resolve (once): with --verify, the exact Jaccard of every candidate pair, two groups in
   memory at a time, keeping those at or above the threshold; then connected components by
   min-label propagation over the edges streamed from disk (8 bytes per document plus one
   batch of edges); a component's keeper is its first document in the global order.
5. apply (per partition): drop the others (`near-duplicate-of <id> (<repo>:<path>) J~0.93`, the
   Jaccard estimated from signatures), and give every kept document its `cluster_id`.
"""

from __future__ import annotations

import itertools
import posixpath
from dataclasses import dataclass, field
from typing import Annotated, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import Field

from corpus import duck, schema
from corpus import text as tx
from corpus.config_check import Size
from corpus.dedup import kernels
from corpus.dedup import minhash as mh
from corpus.dedup import ranking as rk
from corpus.dedup.components import components
from corpus.dedup.ranking import Ranking
from corpus.dedup.sets import SetBlock
from corpus.dedup.shingles import shingles
from corpus.dedup.verify import EDGES, GROUPED, accepted_edges
from corpus.errors import ConfigError
from corpus.io import DatasetDir
from corpus.malloc import release_free_memory, retain_freed_memory
from corpus.stage import WORK_DIR, MapJob, removed_rows, write_documents
from corpus.steps import GlobalStep, MapStep, Step

STAGE = "dedup-minhash"
SLICE_BYTES = 4 << 20
EDGE_BATCH = 1 << 20
# DuckDB's memory for the LSH group-by and joins: past it, DuckDB spills to its temp directory
# (its default is 80 % of RAM, which is no bound at all on a shared worker)
LSH_MEMORY = "512MB"


@dataclass
class MinHashOptions:
    ngram: Annotated[int, Field(ge=1, le=16, description="Tokens per shingle.")] = 5
    num_perm: Annotated[int, Field(ge=1, le=4096,
                                   description="Permutations (signature length).")] = 256
    threshold: Annotated[float, Field(gt=0, le=1, description="Jaccard at or above which "
                                      "documents are near-duplicates.")] = 0.85
    bands: Annotated[int, Field(ge=1, description="LSH bands (default: from the threshold, "
                                "see minhash.optimal_param).")] | None = None
    rows: Annotated[int, Field(ge=1, description="Rows per LSH band (default: from the "
                               "threshold).")] | None = None
    seed: Annotated[int, Field(ge=0, lt=2**32, description="Seed of the permutations "
                               "(np.random.RandomState's range).")] = 42
    verify: Annotated[bool, Field(description="Check every candidate pair's exact Jaccard "
                                  "before linking it.")] = False
    max_bucket: Annotated[int, Field(ge=1, description="Larger LSH buckets are linked as "
                                     "stars, never as all their pairs.")] = 200
    verify_memory: Annotated[Size, Field(description="Bytes of shingle sets verification "
                                         "holds at a time.")] = 256 << 20
    ranking: Annotated[list[Ranking], Field(description="Keeper preference before the "
                                            "smallest id, in order: 'copies desc', 'size', "
                                            "'license'.")] = field(default_factory=list)
    license_preference: Annotated[list[str], Field(description="With ranking 'license': "
                                                   "preferred licenses, most preferred "
                                                   "first.")] = field(default_factory=list)


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
        if opts.verify_memory <= 0:
            raise ConfigError("dedup --minhash: verify_memory must be a positive size")
        if (opts.bands is None) != (opts.rows is None):
            raise ConfigError("dedup --minhash: give both --bands and --rows, or neither")
        if opts.bands is None:
            opts.bands, opts.rows = (mh.verify_param if opts.verify else mh.optimal_param)(
                opts.threshold, opts.num_perm)
        if opts.bands * opts.rows > opts.num_perm:
            raise ConfigError(f"dedup --minhash: {opts.bands} bands x {opts.rows} rows need "
                              f"{opts.bands * opts.rows} permutations, more than {opts.num_perm}")
        rk.check(opts.ranking)
        self.opts = opts
        self.requires = self.requires + rk.required(opts.ranking)
        super().__init__(input, output, {"method": "minhash", **vars(opts)})

    def steps(self) -> list[Step]:
        verify = [MapStep("scatter", uses=("candidates",))] if self.opts.verify else []
        return [MapStep("summarize"), GlobalStep("candidates"), *verify,
                GlobalStep("resolve", uses=("candidates",))]

    def setup(self) -> None:
        """Once per worker: keep freed arrays in the heap (corpus/malloc.py)."""
        retain_freed_memory()

    # 1. signatures and bands -----------------------------------------------------------------
    def summarize(self, key: str) -> dict[str, Any]:
        o, part = self.opts, self.keys.index(key)
        cols = ["id", "repo_name", "path", "content",
                *rk.columns(o.ranking)]
        t = self.input.read_parquet(self.input.part_file(key), columns=cols)
        content = t.column("content").combine_chunks()
        sigs, counts, sets = [], [], []
        nbytes = pc.fill_null(pc.binary_length(content), 0).to_numpy(zero_copy_only=False)
        cuts = tx.slices(nbytes, SLICE_BYTES)
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
                         **rk.rank_columns(t, o.ranking, o.license_preference)})
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
        con = duck.connect(memory_limit=LSH_MEMORY)
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
                    ORDER BY u, v"""
        count = [0]

        def counted(batches):
            for b in batches:
                count[0] += b.num_rows
                yield b

        out.write_parquet(work("edges"), counted(con.execute(edges).to_arrow_reader(1 << 16)),
                          EDGES, row_group_bytes=4 << 20)
        buckets = con.execute("SELECT count(DISTINCT (band, bhash)) FROM m").fetchone()[0]
        info = {"documents": int(n_docs), "buckets": int(buckets), "candidate_pairs": count[0],
                "bands": o.bands, "rows": o.rows}
        if o.verify:
            info.update(self._assign_groups(con, int(n_docs)))
        con.close()
        return info

    def _assign_groups(self, con: Any, n_docs: int) -> dict[str, Any]:
        """Verification groups: the candidate documents in keeper order, cut into groups whose
        shingle sets take at most half of `verify_memory`, so that any two groups fit."""
        o, out = self.opts, self.output
        con.execute(f"CREATE VIEW edges AS SELECT * FROM {self._scan_one(con, work('edges'))}")
        sizes = con.execute(f"""
            WITH c AS (SELECT pu AS part, qu AS pos, u AS g FROM edges
                       UNION SELECT pv, qv, v FROM edges)
            SELECT c.g, d.shingles FROM c JOIN {self._scan(con, 'docs')} d USING (part, pos)
            ORDER BY c.g""").to_arrow_table()
        g = sizes.column("g").to_numpy()
        nbytes = 8 * sizes.column("shingles").to_numpy() + 64
        group = ((np.cumsum(nbytes) - nbytes) // max(1, o.verify_memory // 2)).astype(np.int32)
        n_groups = int(group.max()) + 1 if len(group) else 1
        capacity = np.bincount(group, weights=sizes.column("shingles").to_numpy(),
                               minlength=n_groups).astype(np.int64)
        con.register("grp", pa.table({"g": pa.array(g), "grp": pa.array(group)}))
        out.write_parquet(work("members"), con.execute(
            "SELECT pu AS part, qu AS pos, grp FROM edges JOIN grp ON grp.g = edges.u UNION "
            "SELECT pv, qv, grp FROM edges JOIN grp ON grp.g = edges.v ORDER BY part, pos"
        ).to_arrow_reader(1 << 16), pa.schema([("part", pa.int32()), ("pos", pa.int32()),
                                               ("grp", pa.int32())]))
        out.write_parquet(work("grouped"), con.execute(
            "SELECT edges.*, a.grp AS gu, b.grp AS gv FROM edges JOIN grp a ON a.g = edges.u "
            "JOIN grp b ON b.g = edges.v ORDER BY gu, gv, u, v"
        ).to_arrow_reader(1 << 16), GROUPED, row_group_bytes=1 << 20)
        return {"verify_groups": n_groups, "candidate_documents": len(g),
                "group_shingles": capacity.tolist()}

    def _scan_one(self, con: Any, rel: str) -> str:
        return duck.parquet_scan(con, [f"{self.output.url.rstrip('/')}/{rel}"])

    # 3. with --verify: each group's shingle sets, gathered from the partitions ---------------
    def scatter(self, key: str, results: dict[str, Any]) -> dict[str, Any]:
        part, out = self.keys.index(key), self.output
        if results["candidates"]["verify_groups"] == 1:
            return {"documents": 0, "files": []}  # one group: resolve reads the sets in place
        members = out.read_parquet(work("members"), filters=[("part", "=", part)])
        pos, grp = members.column("pos").to_numpy(), members.column("grp").to_numpy()
        sets = out.read_parquet(work("sets", key)).take(pa.array(pos))
        files = []
        for g in np.unique(grp).tolist():
            rel = posixpath.join(WORK_DIR, "groups", f"g{g:05d}", f"{key}.parquet")
            t = sets.filter(pa.array(grp == g))
            t = pa.table({"part": pa.array(np.full(t.num_rows, part, np.int32)),
                          "pos": t.column("pos"), "shingles": t.column("shingles")})
            out.write_parquet(rel, t, t.schema, compression="none")
            files.append(rel)
        return {"documents": len(pos), "files": files}

    # 4. verify, components, decisions ---------------------------------------------------------
    def resolve(self, results: dict[str, Any]) -> dict[str, Any]:
        o, out = self.opts, self.output
        order = out.read_parquet(work("order"))
        n_docs = order.num_rows
        stats: dict[str, Any] = {}
        edges_file = work("edges")
        if o.verify:
            edges_file = work("verified")
            stats.update(self._verify(edges_file, results["candidates"]))
        labels = components(n_docs, lambda: self._edge_batches(edges_file))
        stats.update(self._decide(labels, order))
        return stats

    def _edge_batches(self, rel: str):
        with self.output.fs.open(self.output.join(rel), "rb") as f:
            for batch in pq.ParquetFile(f).iter_batches(EDGE_BATCH, columns=["u", "v"]):
                yield batch.column(0).to_numpy(), batch.column(1).to_numpy()

    def _verify(self, rel: str, candidates: dict[str, Any]) -> dict[str, Any]:
        """Exact Jaccard of each candidate pair, keeping those at or above the threshold
        (corpus.dedup.verify), with each group's sets read from its folder."""
        o, out = self.opts, self.output
        n_groups = candidates["verify_groups"]
        counts = {"verified_pairs": 0, "accepted_pairs": 0}

        def load(g: int) -> SetBlock:
            capacity = candidates["group_shingles"][g]
            if n_groups == 1:
                block = SetBlock.read_members(out, self.keys, capacity)
            else:
                folder = posixpath.join(WORK_DIR, "groups", f"g{g:05d}")
                block = SetBlock.read(out, [posixpath.join(folder, posixpath.basename(p))
                                            for p in out.fs.ls(out.join(folder), detail=False)],
                                      capacity)
            release_free_memory()  # the Parquet tables it was read from
            return block

        def edges_of(gu: int) -> pa.Table:
            return out.read_parquet(work("grouped"), filters=[("gu", "=", gu)])

        out.write_parquet(rel, accepted_edges(n_groups, edges_of, load, o.threshold, counts),
                          EDGES, row_group_bytes=4 << 20)
        return counts

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


# the stage's declaration (corpus/registry.py)
KIND = "dedup"
OPTIONS = MinHashOptions
READS = tuple(c.name for c in MinHashDedupJob.requires)
WRITES = ("cluster_id",)

make_job = MinHashDedupJob  # (opts, input, output)
