"""`corpus eval perplexity` (filled in by its own change)."""
