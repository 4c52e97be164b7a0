"""Benchmarks: `python -m emotion.bench <name>` writes JSON, each figure a ratio to a baseline
measured in the same run."""
