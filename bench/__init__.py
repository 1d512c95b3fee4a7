"""Benchmarks: `make bench` runs `python -m bench` (bench/__main__.py)."""
