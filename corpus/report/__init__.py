"""`corpus report RUN_DIR`: one self-contained HTML page about a pipeline run."""
