"""What the results pages share: the methods' names, mean ± sd over seeds, how two sets of seeds
compare (benchmarks/make_results.py and benchmarks/results_overfit.py)."""

from __future__ import annotations

from typing import Any

LABELS = {"st": "ST", "sat": "SAT", "sat_ars": "SAT+ARS", "rat": "RAT", "trades": "TRADES",
          "avmixup": "AVmixup", "adt": "ADT"}


def stats(values: list[float]) -> tuple[float, float, float, float]:
    """mean, sample standard deviation (0 for one value), min, max."""
    mean = sum(values) / len(values)
    sd = (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5 if len(values) > 1 else 0.0
    return mean, sd, min(values), max(values)


def mean_sd(values: list[float]) -> str:
    """'12.3 ± 0.4' over several values, '12.3' for one, '–' for none."""
    if not values:
        return "–"
    mean, sd, _, _ = stats(values)
    return f"{mean:.1f} ± {sd:.1f}" if len(values) > 1 else f"{mean:.1f}"


def separation(a: list[float], b: list[float]) -> dict[str, Any]:
    """How two sets of seeds compare: "above" (a's lowest above b's highest), "below", "overlap",
    "too_few" (fewer than two seeds on a side) or "missing" (no number on a side)."""
    if not a or not b:
        return {"outcome": "missing", "n_a": len(a), "n_b": len(b)}
    (mean_a, _, low_a, high_a), (mean_b, _, low_b, high_b) = stats(a), stats(b)
    outcome = ("too_few" if len(a) < 2 or len(b) < 2 else "above" if low_a > high_b else "below" if high_a < low_b
               else "overlap")
    return {"outcome": outcome, "n_a": len(a), "n_b": len(b), "difference": mean_a - mean_b,
            "low_a": low_a, "high_a": high_a, "low_b": low_b, "high_b": high_b}
