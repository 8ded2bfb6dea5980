"""Training on the corpus: the token stream (data.py) and the DeepSpeed entrypoint (loop.py).

Needs the `train` extra (torch, deepspeed, transformers): `pip install -e '.[train]'`.
"""
