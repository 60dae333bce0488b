"""Robustness evaluation: attack suites with per-example worst case, sweeps, gaps, self-checks, reports."""
