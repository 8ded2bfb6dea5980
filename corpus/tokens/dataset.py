"""A token shard folder as its manifest describes it, checked before anything trains on it:
the manifest is a finished `shard-tokens` one, every file has the promised dtype, row length,
sequence count and sha256, and the tokenizer (when given) is the one the shards were made with."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from corpus.errors import InputError
from corpus.io import DatasetDir
from corpus.tokens import bpe
from corpus.tokens import format as fmt


@dataclass
class TokenDataset:
    url: str
    split: str
    meta: dict[str, Any]  # the manifest's "tokens" section
    specs: list[fmt.ShardSpec]
    fingerprint: str
    _readers: dict[int, fmt.ShardReader] = field(default_factory=dict, repr=False)

    @property
    def sizes(self) -> tuple[int, ...]:
        return tuple(s.sequences for s in self.specs)

    @property
    def seq_len(self) -> int:
        return int(self.meta["seq_len"])

    def reader(self, i: int) -> fmt.ShardReader:
        if i not in self._readers:
            self._readers[i] = fmt.ShardReader(DatasetDir(self.url).fs, self.specs[i])
        return self._readers[i]

    def __getstate__(self) -> dict[str, Any]:  # readers (memory maps) stay in their process
        return {**self.__dict__, "_readers": {}}


def open_tokens(url: str, split: str = "train", tokenizer: str | None = None,
                verify: bool = True) -> TokenDataset:
    d = DatasetDir(url)
    m = d.manifest()
    if m is None or "tokens" not in m:
        raise InputError(f"{url} is not a token shard folder (no manifest.json with a tokens "
                         "section: make one with `corpus shard IN OUT --format tokens`)")
    if not m.get("complete"):
        raise InputError(f"{url} is incomplete: re-run `corpus shard` to finish it")
    t = m["tokens"]
    if t.get("format") != fmt.FORMAT:
        raise InputError(f"{url}: token format {t.get('format')!r}, expected {fmt.FORMAT!r}")
    if t.get("dtype") not in fmt.DTYPES:
        raise InputError(f"{url}: the manifest's dtype {t.get('dtype')!r} is not one of "
                         f"{', '.join(fmt.DTYPES)}")
    if tokenizer is not None:
        got = hashlib.sha256(bpe.tokenizer_text(tokenizer).encode()).hexdigest()
        if got != t["tokenizer_sha256"]:
            raise InputError(f"tokenizer {tokenizer} (sha256 {got[:12]}…) is not the one "
                             f"{url} was made with ({t['tokenizer_sha256'][:12]}…)")
    if split not in t["splits"]:
        raise InputError(f"{url} has no {split!r} split (it has: {', '.join(t['splits'])})")
    records = {p["key"]: p for p in m["partitions"]}
    specs = []
    for key in t["splits"][split]["shards"]:
        r = records[key]
        path = d.join(r["file"])
        name = f"{url.rstrip('/')}/{r['file']}"
        if not d.fs.exists(path):
            raise InputError(f"token shard {name} is missing")
        if d.fs.size(path) != r["bytes"]:
            raise InputError(f"token shard {name} is {d.fs.size(path):,} bytes, the manifest "
                             f"says {r['bytes']:,}: the file was changed or truncated")
        if verify and fmt.sha256_of(d.fs, path) != r["sha256"]:
            raise InputError(f"token shard {name} does not match its manifest checksum "
                             "(sha256): the file was changed or corrupted")
        specs.append(fmt.ShardSpec(path, name, int(r["sequences"]), r["sha256"], t["dtype"],
                                   int(t["row_len"])))
    return TokenDataset(url, split, t, specs, m["fingerprint"])
