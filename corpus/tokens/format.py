"""The token shard file: Arrow IPC, one column `input_ids: fixed_size_list<uint16|uint32>[row]`.

A row holds `seq_len + 1` tokens, so a model with a context of `seq_len` is trained on
x = row[:-1], y = row[1:] without losing a target. Record batches of BATCH_ROWS rows; the schema
metadata repeats what the manifest says (seq_len, dtype, eos id, tokenizer hash) so a file on
its own is still self-describing. Readers memory-map local files (zero-copy numpy views per
record batch) and read other filesystems through fsspec.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc

from corpus.errors import InputError

FORMAT = "corpus-tokens/1"
COLUMN = "input_ids"
BATCH_ROWS = 1024
DTYPES = {"uint16": np.uint16, "uint32": np.uint32}


def dtype_for(vocab_size: int) -> str:
    """uint16 when every id fits, else uint32."""
    return "uint16" if vocab_size <= 2**16 else "uint32"


def arrow_schema(dtype: str, row_len: int, meta: dict[str, str]) -> pa.Schema:
    t = pa.list_(pa.from_numpy_dtype(DTYPES[dtype]), row_len)
    return pa.schema([pa.field(COLUMN, t, nullable=False)], metadata=meta)


def encode_shard(rows: np.ndarray, dtype: str, meta: dict[str, str]) -> bytes:
    """The IPC file bytes of a [n, row_len] array."""
    n, row_len = rows.shape
    schema = arrow_schema(dtype, row_len, meta)
    flat = np.ascontiguousarray(rows, dtype=DTYPES[dtype]).reshape(-1)
    sink = io.BytesIO()
    with ipc.new_file(sink, schema) as w:
        for start in range(0, n, BATCH_ROWS):
            part = flat[start * row_len:min(n, start + BATCH_ROWS) * row_len]
            col = pa.FixedSizeListArray.from_arrays(pa.array(part), row_len)
            w.write_batch(pa.record_batch([col], schema=schema))
    return sink.getvalue()


def sha256_of(fs: Any, path: str, chunk: int = 8 << 20) -> str:
    h = hashlib.sha256()
    with fs.open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def is_local(fs: Any) -> bool:
    return "file" in ((fs.protocol,) if isinstance(fs.protocol, str) else fs.protocol)


@dataclass
class ShardSpec:
    """What the manifest promises about one file."""
    path: str  # full path on `fs`
    name: str  # as written in the manifest, for messages
    sequences: int
    sha256: str | None
    dtype: str
    row_len: int


class ShardReader:
    """Random access to the rows of one shard file; checks it against its manifest entry."""

    def __init__(self, fs: Any, spec: ShardSpec):
        self.spec = spec
        local = is_local(fs)
        try:
            source = pa.memory_map(spec.path, "r") if local else fs.open(spec.path, "rb")
            self._reader = ipc.open_file(source)
        except FileNotFoundError as e:
            raise InputError(f"token shard {spec.name} is missing") from e
        except (OSError, pa.ArrowException) as e:
            raise InputError(f"token shard {spec.name} is not an Arrow IPC file: {e}") from e
        field = self._reader.schema.field(COLUMN) if COLUMN in self._reader.schema.names \
            else None
        want = pa.list_(pa.from_numpy_dtype(DTYPES[spec.dtype]), spec.row_len)
        if field is None or field.type != want:
            got = field.type if field is not None else f"no column {COLUMN!r}"
            raise InputError(f"token shard {spec.name} holds {got}, the manifest says {want}")
        n_batches = -(-spec.sequences // BATCH_ROWS)
        if self._reader.num_record_batches != n_batches:
            raise InputError(f"token shard {spec.name} holds {self._reader.num_record_batches} "
                             f"record batches, the manifest's {spec.sequences} sequences make "
                             f"{n_batches}")
        self._views: list[np.ndarray | None] = [None] * n_batches
        self._starts = np.minimum(np.arange(n_batches + 1, dtype=np.int64) * BATCH_ROWS,
                                  spec.sequences)

    def _view(self, i: int) -> np.ndarray:
        col = self._reader.get_record_batch(i).column(0)
        if len(col) != self._starts[i + 1] - self._starts[i]:
            raise InputError(f"token shard {self.spec.name}: record batch {i} holds {len(col)} "
                             "rows, not what the manifest's sequence count implies")
        return col.values.to_numpy(zero_copy_only=True)[
            col.offset * self.spec.row_len:(col.offset + len(col)) * self.spec.row_len
        ].reshape(-1, self.spec.row_len)

    def __len__(self) -> int:
        return int(self._starts[-1])

    def rows(self, index: np.ndarray) -> np.ndarray:
        """Rows at these positions, as a new [len(index), row_len] array."""
        batch = np.searchsorted(self._starts, index, side="right") - 1
        out = np.empty((len(index), self.spec.row_len), DTYPES[self.spec.dtype])
        for b in np.unique(batch):
            if self._views[b] is None:
                self._views[b] = self._view(int(b))
            sel = batch == b
            out[sel] = self._views[b][index[sel] - self._starts[b]]
        return out
