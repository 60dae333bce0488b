"""Benchmarks and result runners on the public rat_tf library (run as python -m benchmarks.NAME)."""
