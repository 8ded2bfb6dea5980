"""The HumanEval sampler (corpus/eval/generate.py) draws from the distribution transformers'
`do_sample` draws from (its own temperature and top-p warpers, computed here independently),
never a token outside the nucleus, and row by row as its seed alone decides: the same draws
alone, in a batch, and in a batch where another row's nucleus forces a sort of the whole
vocabulary. The stop check that decodes a window of each row sees a stop the step the
whole-text check sees it."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from corpus.eval import generate  # noqa: E402

VOCAB = 300
DRAWS = 40_000


def logits(seed: int, spread: float) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(VOCAB, generator=g) * spread


def reference(scores: torch.Tensor, temperature: float, top_p: float) -> np.ndarray:
    """do_sample's distribution: transformers' TemperatureLogitsWarper then TopPLogitsWarper."""
    from transformers import TemperatureLogitsWarper, TopPLogitsWarper

    s = TemperatureLogitsWarper(temperature)(None, scores[None].clone())
    if top_p < 1.0:
        s = TopPLogitsWarper(top_p)(None, s)
    return torch.softmax(s, dim=-1)[0].double().numpy()


def draw(scores: torch.Tensor, seeds: list[int], temperature: float, top_p: float,
         steps: int = 1) -> torch.Tensor:
    """Each row's tokens over `steps` steps (rows of `scores` are the rows of a batch)."""
    sampler, _ = generate._hooks()
    s = sampler(seeds, temperature, top_p, steps, "cpu")
    out = []
    for _ in range(steps):
        masked = s(None, scores.clone())
        assert bool((torch.isfinite(masked).sum(-1) == 1).all())  # exactly one token left
        out.append(masked.argmax(-1))
    return torch.stack(out, 1)


@pytest.mark.parametrize(("temperature", "top_p", "spread"),
                         [(0.2, 0.95, 1.0), (0.8, 0.95, 3.0), (1.0, 1.0, 2.0), (0.8, 0.5, 1.0)])
def test_the_distribution_is_do_samples(temperature, top_p, spread):
    scores = logits(7, spread)
    want = reference(scores, temperature, top_p)
    tokens = draw(scores.expand(DRAWS, VOCAB), list(range(DRAWS)), temperature, top_p)[:, 0]
    got = np.bincount(tokens.numpy(), minlength=VOCAB) / DRAWS
    assert not got[want == 0].any()  # never outside the nucleus
    # total variation against the exact distribution, well inside what 40,000 draws allow
    support = int((want > 0).sum())
    assert 0.5 * np.abs(got - want).sum() < 1.5 * np.sqrt(support / DRAWS), (support,)
    # and each token's frequency within 5 standard errors of its probability
    se = np.sqrt(want * (1 - want) / DRAWS)
    assert (np.abs(got - want) <= 5 * se + 1e-12).all()


def test_a_row_depends_on_its_seed_alone():
    narrow, flat = logits(1, 4.0), logits(2, 0.01)  # flat: a nucleus of ~all 300 tokens
    alone = draw(narrow[None], [11], 0.8, 0.95, steps=50)
    beside = draw(torch.stack([logits(3, 1.0), narrow]), [5, 11], 0.8, 0.95, steps=50)[1:]
    sorted_ = draw(torch.stack([flat, narrow, flat]), [6, 11, 7], 0.8, 0.95, steps=50)[1:2]
    assert torch.equal(alone, beside) and torch.equal(alone, sorted_)
    other = draw(narrow[None], [12], 0.8, 0.95, steps=50)
    assert not torch.equal(alone, other)


def test_the_window_sees_a_stop_the_step_the_whole_text_does(tokenizer_dir):
    """Random streams of real tokens: the windowed check stops each row the same step as a
    check that decodes the row's whole generated text."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    from corpus.tokens import bpe

    tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_file(
        str(bpe.tokenizer_file(str(tokenizer_dir)))))
    # texts of fragments that make stop sequences, whole or split across tokens, among code
    frags = ["\n", "\n\n", " ", "de", "f", "def", "#", "@", "cl", "ass", "class", "i", "if",
             "pr", "int", "print", "x = 1", "return y", "    ", "(a, b)", ":", "é"]
    rng = np.random.default_rng(0)
    rows, steps, start = 64, 80, 3
    ids = []
    for _ in range(rows):
        text = "".join(rng.choice(frags, 200))
        ids.append(tok(text, add_special_tokens=False).input_ids[:start + steps])
    ids = torch.tensor(ids)
    _, stopper = generate._hooks()
    windowed = stopper(tok, start, rows)
    whole: list[int | None] = [None] * rows
    for step in range(1, steps + 1):
        done = windowed(ids[:, :start + step], None).tolist()
        for r in range(rows):
            text = tok.decode(ids[r, start:start + step], skip_special_tokens=True)
            if whole[r] is None and any(s in text for s in generate.STOPS):
                whole[r] = step
            assert done[r] == (whole[r] is not None), (r, step)
    steps_seen = {w for w in whole if w is not None}
    assert len(steps_seen) > 10  # the streams did stop, at many different steps
