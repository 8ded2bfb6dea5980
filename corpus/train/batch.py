"""The global batch of a recipe held on any number of ranks: sequences per optimizer step =
micro-batch × gradient accumulation × world size, with the micro-batch the recipe's (the
published per-GPU size) or the largest divisor below it that makes the product exact.

So `codeparrot-small` (192 sequences: 12 per GPU × 16 GPUs) runs on 2 CPU ranks as 12 × 8
accumulation × 2, and takes the same optimizer steps it took on the GPUs.
"""

from __future__ import annotations

from dataclasses import dataclass

from corpus.errors import ConfigError


@dataclass(frozen=True)
class BatchPlan:
    micro_batch: int  # sequences per rank per forward pass
    grad_accum: int  # forward passes per optimizer step
    world_size: int
    seq_len: int  # tokens per sequence (the context the model is trained on)
    adjusted: str | None = None  # why the micro-batch is not the one asked for

    @property
    def sequences(self) -> int:
        return self.micro_batch * self.grad_accum * self.world_size

    @property
    def tokens(self) -> int:
        return self.sequences * self.seq_len

    def describe(self) -> str:
        line = (f"global batch {self.sequences:,} sequences × {self.seq_len:,} tokens = "
                f"{self.tokens:,} tokens per optimizer step: micro-batch {self.micro_batch} × "
                f"accumulation {self.grad_accum} × {self.world_size} "
                f"rank{'s' if self.world_size != 1 else ''}")
        return line + (f" ({self.adjusted})" if self.adjusted else "")


def plan(global_batch: int, world_size: int, seq_len: int, micro_batch: int | None = None,
         ) -> BatchPlan:
    """micro × accumulation × world = global_batch exactly, or a one-line ConfigError."""
    if world_size < 1:
        raise ConfigError(f"world size must be at least 1, not {world_size}")
    if global_batch % world_size:
        raise ConfigError(f"the recipe's global batch of {global_batch} sequences cannot be "
                          f"divided over {world_size} ranks: run on a number of ranks that "
                          f"divides it, or set another global_batch")
    per_rank = global_batch // world_size
    asked = micro_batch or min(per_rank, 8)
    micro = max(d for d in range(1, min(asked, per_rank) + 1) if per_rank % d == 0)
    adjusted = None
    if micro != asked:
        adjusted = (f"micro-batch {asked} does not divide the {per_rank} sequences of each "
                    f"rank; {micro} does")
    return BatchPlan(micro, per_rank // micro, world_size, seq_len, adjusted)


def fixed(micro_batch: int, grad_accum: int, world_size: int, seq_len: int) -> BatchPlan:
    """A recipe without a global batch: the DeepSpeed JSON's (or the flags') sizes as given."""
    return BatchPlan(micro_batch, grad_accum, world_size, seq_len)
