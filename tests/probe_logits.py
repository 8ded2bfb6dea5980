"""Run under torchrun by tests/test_export.py: the logits of a training run's checkpoint as
`corpus train` holds it — its own setup (corpus.train.loop.setup: the DeepSpeed engine over
the run's model, the same ZeRO config and world size), `load_checkpoint`, then a forward pass
on the first validation batch. Rank 0 writes the batch and the logits to OUT.npz.

    torchrun --nproc_per_node 2 tests/probe_logits.py DATA MODEL DEEPSPEED RUN_DIR TAG OUT
"""

from __future__ import annotations

import os
import sys
import tempfile

os.environ.setdefault("DS_ACCELERATOR", "cpu")

import numpy as np
import torch

from corpus.train.data import TokenShards
from corpus.train.loop import CHECKPOINTS, TrainArgs, setup


def main(data: str, model: str, ds: str, run: str, tag: str, out: str) -> None:
    with tempfile.TemporaryDirectory() as scratch:  # setup writes its config there
        s = setup(TrainArgs(data, model, ds, scratch, verify=False))
        path, _ = s.engine.load_checkpoint(os.path.join(run, CHECKPOINTS), tag=tag)
        assert path is not None, f"no checkpoint {tag} in {run}"
        batch = next(iter(TokenShards(data, "validation", batch_size=4, shuffle=False,
                                      infinite=False, verify=False)))
        s.engine.eval()
        with torch.no_grad():
            logits = s.engine(input_ids=batch[:, :-1].to(s.engine.device)).logits.float()
        if s.rank == 0:
            np.savez(out, batch=batch.numpy(), logits=logits.cpu().numpy())
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main(*sys.argv[1:7])
