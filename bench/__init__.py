"""Benchmark scenarios (not tests): python -m bench <name>."""
