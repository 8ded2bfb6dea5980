"""Benchmark: the vectorized filter stage against the per-document baseline.

Side by side on the same real documents (every text file of PolyCoder's languages in this
environment's site-packages), with CodeParrot's rules (pipelines/codeparrot.toml):
  baseline   corpus/filters/reference.py: the published definitions one document at a time,
             the way CodeParrot's preprocessing.py computes them (np.mean over a list of
             characters for alpha_frac, loops over lines), then its first-failing-rule decision
  corpus     corpus/filters/stage.py apply_rules: the same metrics over the Arrow buffers
Both on one core, in this process, timed in CPU seconds and interleaved. Checks that every
decision is identical, then prints docs/s, MB/s and the ratio. Target: corpus >= 20x.

    .venv/bin/python bench/filters.py [--summary FILE]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _summary
from _corpus import ROOT, documents

from corpus import pipeline
from corpus.filters import reference as ref
from corpus.filters import rules as rl
from corpus.filters.stage import apply_rules


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    _summary.add_option(ap)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="corpus-bench-"))
    try:
        _, table = documents(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    spec = pipeline.stage_of(pipeline.load(str(ROOT / "pipelines" / "codeparrot.toml"),
                                           files=False),
                             "filter").options
    rules, seed = rl.parse(spec["rules"], "bench"), spec["seed"]
    contents = table.column("content").to_pylist()
    ids = table.column("id").to_pylist()
    mb = sum(len(c.encode()) for c in contents) / 1e6
    n = len(contents)

    apply_rules(table, rules, seed)  # warm up: lookup tables and the heap, once per process
    # interleave: the baseline in thirds, a corpus run before each, so that a drift in the
    # speed of this shared machine hits both sides alike
    thirds = [range(i * n // 3, (i + 1) * n // 3) for i in range(3)]
    t_corpus, t_base, expected = float("inf"), 0.0, []
    for part in thirds:
        for _ in range(2):
            t0 = time.process_time()
            kept, removed = apply_rules(table, rules, seed)
            t_corpus = min(t_corpus, time.process_time() - t0)
        t0 = time.process_time()
        expected += [ref.decide(ref.metrics(contents[i]), rules, seed, ids[i]) for i in part]
        t_base += time.process_time() - t0

    got = dict(zip(zip(removed.column("repo_name").to_pylist(),
                       removed.column("path").to_pylist(), strict=True),
                   removed.column("reason").to_pylist(), strict=True))
    want = {(r, p): e for r, p, e in zip(table.column("repo_name").to_pylist(),
                                         table.column("path").to_pylist(), expected,
                                         strict=True) if e is not None}
    same = got == want and kept.num_rows + removed.num_rows == n
    print(f"{n:,} documents, {mb:.1f} MB; rules: {', '.join(r.describe() for r in rules)}")
    print(f"decisions identical: {same} ({len(want):,} removed)")
    print(f"{'run':<40}{'seconds':>9}{'docs/s':>11}{'MB/s':>9}{'ratio':>8}")
    for label, t in (("baseline: per document (reference.py)", t_base),
                     ("corpus: vectorized (best of 6)", t_corpus)):
        print(f"{label:<40}{t:>9.3f}{n / t:>11,.0f}{mb / t:>9.1f}{t_base / t:>8.1f}")
    _summary.write(args.summary, [_summary.row(
        "filters", "CodeParrot filters, MB/s (CPU, 1 core)"
        + ("" if same else " (DECISIONS DIFFER)"), mb / t_corpus, mb / t_base,
        "per-document Python (CodeParrot preprocessing.py)", "MB/s", ">= 20x")])
    if not same:
        sys.exit("decisions differ")


if __name__ == "__main__":
    main()
