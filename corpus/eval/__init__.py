"""Judging the model a corpus trains: per-language perplexity (perplexity.py) and HumanEval
pass@k (humaneval.py: sampling, sandboxed execution, the unbiased estimator)."""
