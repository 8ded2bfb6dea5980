"""Tokens: the BPE tokenizer trained on the corpus, and packed Arrow token shards."""
