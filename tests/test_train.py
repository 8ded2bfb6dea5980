"""The DeepSpeed entrypoint on CPU (gloo), 2 processes: the loss goes down, and a run stopped at
step 10 and resumed from its checkpoint (under another launcher) continues exactly as an
uninterrupted run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, free_port, run_cli

MODEL = "pipelines/train/tiny.toml"
ZERO2 = "pipelines/train/zero2.json"


def _losses(run: Path) -> dict[int, float]:
    events = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    return {e["step"]: e["loss"] for e in events if e["event"] == "train"}


def _events(run: Path, kind: str) -> list[dict]:
    return [e for line in (run / "log.jsonl").read_text().splitlines()
            if (e := json.loads(line))["event"] == kind]


def _common(tokens: Path, out: Path, max_steps: int) -> list[str]:
    return ["--data", str(tokens), "--model", MODEL, "--deepspeed", ZERO2, "--out", str(out),
            "--max-steps", str(max_steps), "--steps", "40", "--micro-batch", "2",
            "--global-batch", "4"]


@pytest.mark.slow
def test_two_ranks_resume_exactly(token_shards, tmp_path):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    r = run_cli("train", *_common(token_shards, straight, 20), "--nproc-per-node", "2",
                timeout=400)
    assert r.returncode == 0, r.stderr[-3000:]
    full = _losses(straight)
    assert sorted(full) == list(range(1, 21))
    first, last = sum(full[s] for s in range(1, 6)) / 5, sum(full[s] for s in range(16, 21)) / 5
    assert last < first - 0.5, full  # the loss goes down
    start = _events(straight, "start")[0]
    assert (start["world_size"], start["zero"], start["device"]) == (2, 2, "cpu")
    evals = _events(straight, "eval")
    assert evals and evals[-1]["step"] == 20 and evals[-1]["perplexity"] > 1
    assert "train: loss" in r.stdout and "validation loss" in r.stdout

    # steps 1-10 under the deepspeed launcher, then 11-20 under torchrun
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [str(Path(sys.executable).parent / "deepspeed"), "--num_gpus", "2", "--master_port",
           str(free_port()), "--module", "corpus.train", *_common(token_shards, resumed, 10)]
    p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=400)
    assert p.returncode == 0, p.stderr[-3000:]
    assert (resumed / "checkpoints" / "latest").read_text().strip() == "step10"
    r = run_cli("train", *_common(token_shards, resumed, 20), "--nproc-per-node", "2",
                timeout=400)
    assert r.returncode == 0, r.stderr[-3000:]
    assert _events(resumed, "resume")[0]["step"] == 10
    again = _losses(resumed)
    assert sorted(again) == list(range(1, 21))
    for step in range(11, 21):
        assert again[step] == pytest.approx(full[step], rel=1e-5, abs=1e-6), step
    assert _events(resumed, "eval")[-1]["val_loss"] == pytest.approx(
        evals[-1]["val_loss"], rel=1e-5)


@pytest.mark.slow
def test_bad_configs_are_one_line_errors(token_shards, tmp_path):
    long_model = tmp_path / "short-context.toml"
    long_model.write_text((ROOT / MODEL).read_text().replace("n_positions = 256",
                                                             "n_positions = 32"))
    r = run_cli("train", "--data", str(token_shards), "--model", str(long_model),
                "--deepspeed", ZERO2, "--out", str(tmp_path / "run"))
    assert r.returncode == 1 and "n_positions" in r.stderr and "Traceback" not in r.stderr
    ds = tmp_path / "with-optimizer.json"
    ds.write_text(json.dumps({**json.loads((ROOT / ZERO2).read_text()),
                              "optimizer": {"type": "AdamW"}}))
    r = run_cli("train", "--data", str(token_shards), "--model", MODEL, "--deepspeed", str(ds),
                "--out", str(tmp_path / "run"))
    assert r.returncode == 1 and "leave out `optimizer`" in r.stderr
