"""`corpus extract --engine duckdb`: run a BigQuery query template over a local TABLES folder.

Planning (on the client) checks everything before any work: the query parses, parameters bind,
tables exist with GitHub's columns, the result has the document columns. It counts the result
(without reading `content`) and splits it into partitions by ranges of the blob `id`, which is a
uniform sha1, so partitions come out about `partition_bytes` each. Each partition is then one
query on a worker, sorted, streamed into its Parquet file: never the whole result in memory, the
same partitions whatever the cluster, and a killed run resumes per partition.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Annotated, Any

import duckdb
import pyarrow as pa
from pydantic import Field

from corpus import duck, schema, tables
from corpus.config_check import Size
from corpus.errors import ConfigError, InputError
from corpus.extract import template, transpile
from corpus.io import DatasetDir
from corpus.stage import Job, write_documents

STAGE = "extract"
ID_SPACE = 16**40  # ids are 40-hex-digit sha1s
BATCH_ROWS = 2048


@dataclass
class ExtractOptions:
    query: str
    tables: str
    params: dict[str, Any] = field(default_factory=dict)
    partition_bytes: Annotated[Size, Field(description="duckdb: target content bytes per "
                                           "output partition.")] = 64 * 1024 * 1024


@dataclass(frozen=True)
class Plan:
    sql: str  # the DuckDB query, parameters bound
    rows: int
    content_bytes: int
    partitions: int
    scanned: dict[str, dict[str, int]]  # per table: rows, uncompressed bytes


def id_bounds(n: int) -> list[str]:
    """n-1 split points dividing the 40-hex-digit id space into n equal ranges."""
    return [format(i * ID_SPACE // n, "040x") for i in range(1, n)]


class ExtractJob(Job):
    stage = STAGE

    def __init__(self, opts: ExtractOptions, output: DatasetDir):
        if opts.partition_bytes <= 0:
            raise ConfigError("partition size must be positive")
        self.output = output
        self.opts = opts
        tpl = template.load(opts.query)
        self.values = template.bind(tpl, opts.params)
        tree = transpile.parse(tpl.sql, opts.query)
        self.located = tables.locate(opts.tables, transpile.tables(tree, opts.query))
        tables.check(self.located)
        self.sql = transpile.to_duckdb(tree, self.values, opts.query)
        self.input_hash = tables.tables_hash(opts.tables, self.located)
        self.config = {
            "engine": "duckdb", "query": opts.query,
            "query_sha256": hashlib.sha256(tpl.sql.encode()).hexdigest(),
            "params": self.values, "partition_bytes": opts.partition_bytes,
        }
        # where the tables are is not part of the fingerprint (their content hash is)
        self.input_url = opts.tables
        self.out_schema: pa.Schema | None = None
        self.plan_: Plan | None = None

    # --- planning, on the client ----------------------------------------------------------
    def connect(self, threads: int | None = None) -> duckdb.DuckDBPyConnection:
        con = duck.connect(threads=threads)
        for name, urls in self.located.items():
            con.execute(f"CREATE VIEW {name} AS SELECT * FROM {duck.parquet_scan(con, urls)}")
        return con

    def _ordered(self, extras: list[str]) -> str:
        cols = [c.name for c in schema.RAW] + extras
        return "SELECT " + ", ".join(f'q."{c}"' for c in cols) + f" FROM (\n{self.sql}\n) AS q"

    def plan(self) -> Plan:
        if self.plan_ is not None:
            return self.plan_
        con = self.connect()
        try:
            head = con.execute(f"SELECT * FROM ({self.sql}) AS q LIMIT 0").to_arrow_table()
        except duckdb.Error as e:
            raise ConfigError(f"query {self.opts.query} fails on DuckDB: {e}") from e
        schema.check(head.schema, schema.RAW, f"result of query {self.opts.query}")
        extras = [n for n in head.column_names if n not in {c.name for c in schema.RAW}]
        self.out_schema = schema.conform(head, schema.RAW + tuple(
            schema.Column(n, schema.STRING) for n in extras
            if pa.types.is_string(head.schema.field(n).type))).schema
        self.sql_ordered = self._ordered(extras)
        rows, nbytes = con.execute(
            f"SELECT count(*), coalesce(sum(q.size), 0) FROM ({self.sql}) AS q").fetchone()
        con.close()
        n = max(1, min(rows, math.ceil(nbytes / self.opts.partition_bytes)))
        self.plan_ = Plan(self.sql, int(rows), int(nbytes), n, tables.stats(self.located))
        return self.plan_

    def partitions(self, results: Mapping[str, Any] | None = None) -> list[str]:
        return [f"part-{i:05d}" for i in range(self.plan().partitions)]

    def expected_rows_in(self) -> int:
        return self.plan().rows

    def partition_sql(self, i: int) -> str:
        bounds = id_bounds(self.plan().partitions)
        conds = []
        if i > 0:
            conds.append(f"id >= '{bounds[i - 1]}'")
        if i < len(bounds):
            conds.append(f"(id < '{bounds[i]}'" + (" OR id IS NULL)" if i == 0 else ")"))
        where = " AND ".join(conds) or "TRUE"
        return (f"SELECT * FROM (\n{self.sql_ordered}\n) AS p WHERE {where}\n"
                "ORDER BY id, repo_name, path")

    # --- one partition, on a worker -------------------------------------------------------
    def run_partition(self, key: str) -> dict[str, Any]:
        i = int(key.split("-")[1])
        con = self.connect(threads=1)
        try:
            reader = con.execute(self.partition_sql(i)).to_arrow_reader(BATCH_ROWS)
        except duckdb.IOException as e:
            raise InputError(f"extract {key}: cannot read the tables: {e}") from e
        assert self.out_schema is not None
        try:
            rec = write_documents(self.output, key, reader, self.out_schema)
        finally:
            con.close()
        return rec


def describe(job: ExtractJob) -> dict[str, Any]:
    """What --dry-run prints: the transpiled SQL and the estimate, nothing written."""
    p = job.plan()
    return {"sql": p.sql, "rows": p.rows, "content_bytes": p.content_bytes,
            "partitions": p.partitions, "tables_scanned": p.scanned,
            "params": job.values, "options": asdict(job.opts)}


# --- the stage's declaration (corpus/registry.py) ---------------------------------------------
KIND = "extract"
OPTIONS = ExtractOptions
READS = tuple(dict.fromkeys(c.name for c in (*schema.FILES, *schema.CONTENTS)))
WRITES = tuple(c.name for c in schema.RAW)


def make_job(opts: ExtractOptions, input: DatasetDir, out: DatasetDir) -> ExtractJob:
    """The input (a TABLES folder) is the query's `tables`."""
    return ExtractJob(replace(opts, tables=input.url), out)
