"""Benchmarks (programs, not tests): run with `python -m bench.<name>`."""
