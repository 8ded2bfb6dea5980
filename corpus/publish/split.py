"""What a Hub layout is made with (Parquet shards and `corpus push`): the split rule, which is
corpus/splits.py's, the one every output uses, and the target shard size."""

from __future__ import annotations

from dataclasses import dataclass, field

from corpus.errors import ConfigError
from corpus.splits import SplitRule

#: content bytes per shard (target): `--shard-size 500MB`, the default of both commands
SHARD_BYTES = 500 * 10**6


@dataclass
class LayoutOptions:
    rule: SplitRule = field(default_factory=SplitRule)
    shard_bytes: int = SHARD_BYTES

    def check(self) -> None:
        self.rule.check()
        if self.shard_bytes <= 0:
            raise ConfigError("--shard-size must be positive")
