"""`corpus eval humaneval` (filled in by its own change)."""
