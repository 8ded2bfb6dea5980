"""Dataset directories: atomic writes, deterministic row groups, any fsspec URL, schemas."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from corpus import io, schema
from corpus.errors import InputError, SchemaError
from corpus.io import DatasetDir


@pytest.fixture
def docs(site_tables) -> pa.Table:
    return pq.read_table(site_tables / "contents.parquet").filter(
        pa.compute.invert(pq.read_table(site_tables / "contents.parquet").column("binary")))


def test_same_rows_same_bytes_whatever_the_batching(docs, tmp_path, monkeypatch):
    monkeypatch.setattr(io, "ROW_GROUP_BYTES", 200_000)
    d = DatasetDir(str(tmp_path))
    whole = d.write_parquet("a.parquet", docs, docs.schema, row_group_bytes=200_000)
    small = d.write_parquet("b.parquet", docs.to_batches(max_chunksize=7), docs.schema,
                            row_group_bytes=200_000)
    assert whole == small
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()
    meta = pq.read_metadata(tmp_path / "a.parquet")
    assert meta.num_row_groups > 3
    sizes = [sum(io.row_bytes(pq.ParquetFile(tmp_path / "a.parquet").read_row_group(i)))
             for i in range(meta.num_row_groups)]
    assert all(s >= 200_000 for s in sizes[:-1]), "every group but the last reaches the target"
    assert pq.read_table(tmp_path / "a.parquet").equals(docs)


def test_failed_write_leaves_nothing(tmp_path):
    d = DatasetDir(str(tmp_path))

    def broken():
        yield pa.record_batch({"x": [1, 2]})
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        d.write_parquet("p.parquet", broken(), pa.schema([("x", pa.int64())]))
    assert list(tmp_path.iterdir()) == []


def test_fsspec_urls(tmp_path):
    for url in ("memory://corpus-test/ds", f"file://{tmp_path}/ds"):
        d = DatasetDir(url)
        t = pa.table({"id": ["b", "a"], "n": [1, 2]})
        d.write_parquet("part-00001.parquet", t, t.schema)
        d.write_parquet("part-00000.parquet", t, t.schema)
        assert d.read_parquet("part-00000.parquet").equals(t)
        assert d.partition_keys() == ["part-00000", "part-00001"]
        d.write_manifest({"complete": False, "partitions": []})
        with pytest.raises(InputError, match="incomplete"):
            d.partition_keys()
        assert d.remove_temp_files() == 0


def test_unreadable_and_missing_files(tmp_path):
    (tmp_path / "part-00000.parquet").write_bytes(b"garbage")
    d = DatasetDir(str(tmp_path))
    with pytest.raises(InputError, match="cannot read Parquet file"):
        d.read_parquet("part-00000.parquet")
    with pytest.raises(InputError, match="missing Parquet file"):
        d.read_parquet("part-00009.parquet")
    with pytest.raises(InputError, match="no such dataset directory"):
        DatasetDir(str(tmp_path / "none")).partition_keys()


def test_schema_check_names_every_problem():
    s = pa.schema([("id", pa.string()), ("size", pa.string()), ("content", pa.large_string())])
    with pytest.raises(SchemaError) as e:
        schema.check(s, schema.RAW, "input x")
    msg = str(e.value)
    assert msg.startswith("input x:")
    assert "column 'size' is string, expected INT64" in msg
    for col in ("repo_name", "path", "copies", "license", "language"):
        assert f"missing column '{col}'" in msg
    assert "'id'" not in msg and "'content'" not in msg


def test_conform_orders_and_casts():
    t = pa.table({"extra": [1], "path": ["p"], "id": ["i"], "size": pa.array([3], pa.int32())})
    c = schema.conform(t, schema.RAW)
    assert c.column_names == ["id", "path", "size", "extra"]
    assert c.schema.field("size").type == pa.int64()
    assert c.schema.field("id").type == pa.large_string()


def test_reason_key():
    assert schema.reason_key("line_max=1200>1000") == "line_max"
    assert schema.reason_key("duplicate-of abc") == "duplicate-of"
    assert schema.reason_key("unreadable: Permission denied") == "unreadable"
