"""api: the HTTP entry point (FastAPI). It only translates HTTP to runtime calls."""
