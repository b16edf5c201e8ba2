"""Benchmarks: programs that print figures (`make bench`), never timed tests."""
