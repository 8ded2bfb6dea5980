"""`corpus dedup IN OUT --exact`: one document per distinct content, chosen deterministically.

Three steps on the engine, moving only small columns:
1. summarize (per partition): xxh3_128 of each content (or of the content without ASCII
   whitespace, with --ignore-whitespace; or of its "variables", with --variables) into
   `_work/keys/<part>.parquet`, beside id, repo_name, path, the partition and row numbers and
   the ranking values. Never `content`.
2. plan (one task): DuckDB groups the keys by hash (out of core) and, in every group of two or
   more, keeps the smallest (ranking..., id, repo_name, path); the others become
   `_work/decisions.parquet` rows: (partition, position, keeper).
3. apply (per partition): drop the decided rows, with reason `duplicate-of <id> (<repo>:<path>)`
   of their keeper, and write the `hash` column (hex) on the kept ones.

The keeper depends only on the documents, never on how they are partitioned or on the workers.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field
from typing import Annotated, Any

import numpy as np
import pyarrow as pa
import xxhash
from pydantic import Field

from corpus import duck, schema
from corpus import text as tx
from corpus.dedup import ranking as rk
from corpus.dedup.ranking import Ranking
from corpus.errors import ConfigError
from corpus.io import DatasetDir
from corpus.stage import WORK_DIR, MapJob, removed_rows, write_documents
from corpus.steps import GlobalStep, MapStep, Step

STAGE = "dedup-exact"
KEYS_DIR = f"{WORK_DIR}/keys"
DECISIONS = f"{WORK_DIR}/decisions.parquet"



@dataclass
class ExactOptions:
    ignore_whitespace: Annotated[bool, Field(description="Hash the content with all ASCII "
                                             "whitespace removed.")] = False
    variables: Annotated[bool, Field(description=(
        "Hash the content's variables: the text split on non-word characters and joined "
        "by single spaces (GPT-Code-Clippy's dedup), so files differing only in "
        "punctuation, whitespace or layout collapse."))] = False
    ranking: Annotated[list[Ranking], Field(description="Keeper preference before the "
                                            "smallest id, in order: 'copies desc', 'size', "
                                            "'license'.")] = field(default_factory=list)
    license_preference: Annotated[list[str], Field(description="With ranking 'license': "
                                                   "preferred licenses, most preferred first; "
                                                   "others after, alphabetically.")] = \
        field(default_factory=list)


def content_hashes(content: pa.Array | pa.ChunkedArray, ignore_whitespace: bool,
                   variables: bool = False) -> pa.Array:
    """xxh3_128 digest (16 bytes, big-endian) of every document (of its normal form, with
    ignore_whitespace or variables); null for null content. One compiled hash call per
    document over a zero-copy view of each Arrow chunk."""
    chunks = content.chunks if isinstance(content, pa.ChunkedArray) else [content]
    h = xxhash.xxh3_128_digest
    digests: list[bytes | None] = []
    for chunk in chunks:
        t = tx.text_of(chunk)
        if ignore_whitespace:
            t = tx.strip_space(t)
        elif variables:
            t = tx.variables(t)
        view = memoryview(t.data)
        digests += [h(view[s:e]) if ok else None for s, e, ok in
                    zip(t.starts.tolist(), t.ends.tolist(), t.valid.tolist(), strict=True)]
    return pa.array(digests, pa.binary(16))


def hex_of(digests: pa.Array) -> pa.Array:
    """Lowercase hex strings of fixed-size binary values, vectorized."""
    n, width = len(digests), digests.type.byte_width
    raw = np.frombuffer(digests.buffers()[1], dtype=np.uint8)[
        digests.offset * width:(digests.offset + n) * width].reshape(n, width)
    digits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    chars = np.empty((n, 2 * width), dtype=np.uint8)
    chars[:, 0::2], chars[:, 1::2] = digits[raw >> 4], digits[raw & 15]
    offsets = np.arange(0, (n + 1) * 2 * width, 2 * width, dtype=np.int64)
    validity = digests.buffers()[0] if digests.null_count else None
    if validity is not None and digests.offset:
        validity = pa.array(digests.is_valid().to_numpy(zero_copy_only=False)).buffers()[1]
    return pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets),
                                            pa.py_buffer(chars.tobytes()), validity)


DECISIONS_SCHEMA = pa.schema([
    ("part", pa.int32()), ("pos", pa.int32()), ("kept_id", pa.large_string()),
    ("kept_repo", pa.large_string()), ("kept_path", pa.large_string())])


def decisions_sql(con: Any, keys: str) -> str:
    """The rows to drop, from a relation of keys: in each group of equal hashes, all but the
    smallest (ranking..., id, repo_name, path, part, pos)."""
    columns = con.execute(f"SELECT * FROM {keys} LIMIT 0").to_arrow_table().column_names
    ranks = [c for c in columns if re.fullmatch(r"r\d+[ab]", c)]
    ranks.sort(key=lambda c: (int(c[1:-1]), c[-1]))
    order = ", ".join([*ranks, "id", "repo_name", "path", "part", "pos"])
    return f"""
        WITH k AS (SELECT * FROM {keys} WHERE hash IS NOT NULL),
        dup AS (SELECT hash FROM k GROUP BY hash HAVING count(*) > 1),
        cand AS (SELECT k.* FROM k SEMI JOIN dup USING (hash)),
        keeper AS (
            SELECT hash, arg_min(struct_pack(part := part, pos := pos, id := id,
                                             repo_name := repo_name, path := path),
                                 struct_pack({order})) AS kp
            FROM cand GROUP BY hash)
        SELECT c.part, c.pos, kp.id AS kept_id, kp.repo_name AS kept_repo,
               kp.path AS kept_path
        FROM cand c JOIN keeper USING (hash)
        WHERE NOT (c.part = kp.part AND c.pos = kp.pos)
        ORDER BY c.part, c.pos"""


class ExactDedupJob(MapJob):
    stage = STAGE
    requires = (schema.Column("id", schema.STRING), schema.Column("repo_name", schema.STRING),
                schema.Column("path", schema.STRING), schema.Column("content", schema.STRING))

    def __init__(self, opts: ExactOptions, input: DatasetDir, output: DatasetDir):
        rk.check(opts.ranking)
        if opts.ignore_whitespace and opts.variables:
            raise ConfigError("choose one of --ignore-whitespace and --variables (variables "
                              "already ignore whitespace)")
        self.opts = opts
        self.requires = self.requires + rk.required(opts.ranking)
        super().__init__(input, output, {
            "method": "exact", "ignore_whitespace": opts.ignore_whitespace,
            "variables": opts.variables,
            "ranking": opts.ranking, "license_preference": opts.license_preference})

    def steps(self) -> list[Step]:
        return [MapStep("summarize"), GlobalStep("plan")]

    # 1. per partition: hashes and keys -----------------------------------------------------
    def summarize(self, key: str) -> dict[str, Any]:
        cols = ["id", "repo_name", "path", "content",
                *rk.columns(self.opts.ranking)]
        t = self.input.read_parquet(self.input.part_file(key), columns=cols)
        keys = pa.table({
            "hash": content_hashes(t.column("content"), self.opts.ignore_whitespace,
                                   self.opts.variables),
            "id": t.column("id"), "repo_name": t.column("repo_name"), "path": t.column("path"),
            "part": pa.array(np.full(t.num_rows, self.keys.index(key), dtype=np.int32)),
            "pos": pa.array(np.arange(t.num_rows, dtype=np.int32)),
            **rk.rank_columns(t, self.opts.ranking, self.opts.license_preference),
        })
        rel = posixpath.join(KEYS_DIR, f"{key}.parquet")
        self.output.write_parquet(rel, keys, keys.schema, row_group_bytes=8 << 20)
        return {"rows": t.num_rows, "files": [rel]}

    # 2. once: which rows go ----------------------------------------------------------------
    def plan(self) -> dict[str, Any]:
        out = self.output
        con = duck.connect()
        scan = duck.parquet_scan(con, [f"{out.url.rstrip('/')}/{KEYS_DIR}/{k}.parquet"
                                       for k in self.keys])
        con.execute(f"CREATE VIEW keys AS SELECT * FROM {scan}")
        counted = [0]

        def count(batches):
            for b in batches:
                counted[0] += b.num_rows
                yield b

        reader = con.execute(decisions_sql(con, "keys")).to_arrow_reader(65536)
        out.write_parquet(DECISIONS, count(reader), DECISIONS_SCHEMA, row_group_bytes=1 << 20)
        groups = con.execute("SELECT count(*) FROM (SELECT hash FROM keys WHERE hash IS NOT "
                             "NULL GROUP BY hash HAVING count(*) > 1)").fetchone()[0]
        con.close()
        return {"duplicates": counted[0], "groups": int(groups)}

    # 3. per partition: apply ---------------------------------------------------------------
    def run_partition(self, key: str) -> dict[str, Any]:
        part = self.keys.index(key)
        table = self.input.read_parquet(self.input.part_file(key))
        hashes = self.output.read_parquet(posixpath.join(KEYS_DIR, f"{key}.parquet"),
                                          columns=["hash"]).column("hash").combine_chunks()
        dec = self.output.read_parquet(DECISIONS, filters=[("part", "=", part)])
        drop = np.zeros(table.num_rows, dtype=bool)
        rows = dec.column("pos").to_numpy()
        drop[rows] = True
        reasons = [f"duplicate-of {i} ({r}:{p})" for i, r, p in zip(
            dec.column("kept_id").to_pylist(), dec.column("kept_repo").to_pylist(),
            dec.column("kept_path").to_pylist(), strict=True)]
        hexes = hex_of(hashes)
        kept = table
        if "hash" in kept.column_names:
            kept = kept.set_column(kept.schema.get_field_index("hash"), "hash", hexes)
        else:
            kept = kept.append_column("hash", hexes)
        keep = pa.array(~drop)
        removed = removed_rows(table.take(pa.array(rows)), STAGE, reasons)
        return write_documents(self.output, key, kept.filter(keep), kept.schema, removed,
                               rows_in=table.num_rows)


# --- the stage's declaration (corpus/registry.py) ---------------------------------------------
KIND = "dedup"
OPTIONS = ExactOptions
READS = tuple(c.name for c in ExactDedupJob.requires)
WRITES: tuple[str, ...] = ()

make_job = ExactDedupJob  # (opts, input, output)
