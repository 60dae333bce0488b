"""What the result pages share: the methods' names, the attack columns and AutoAttack's cascade
(read from the library: `rat_tf.evaluation.report.COLUMNS` and `rat_tf.evaluation.suite.VERSIONS`),
number formats, mean ± sd over seeds, how two sets of seeds compare, and the reproduction's rows
grouped by budget.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Optional

from rat_tf.evaluation.report import COLUMNS
from rat_tf.evaluation.suite import VERSIONS

# The report titles of the attacks (the suite's registry) and of AutoAttack's cascade.
ATTACK_TITLES = OrderedDict((key, title) for key, title in COLUMNS if key not in ("clean", "worst_case"))
# (key, column title); PGD's title gets its number of steps.
ATTACK_COLUMNS = [(k, "PGD-{pgd}" if k == "pgd" else title) for k, title in ATTACK_TITLES.items()]
AUTOATTACK_PRESET = "cpu-autoattack"   # AutoAttack's standard version plus FGSM, PGD-20, CW-inf (reproduce)
CASCADE = VERSIONS["standard"].attacks   # AutoAttack's attacks, in cascade order

LABELS = {"st": "ST", "sat": "SAT", "sat_ars": "SAT+ARS", "rat": "RAT", "trades": "TRADES",
          "avmixup": "AVmixup", "adt": "ADT"}

DATASET_NAMES = OrderedDict([("mnist", "MNIST"), ("cifar10", "CIFAR-10")])

NOT_RUN = "not yet run"

LARGE_GAP = 10.0   # PGD-CE minus worst case, points, above which PGD-CE overstates robustness


def fmt(value: Optional[float], digits: int = 1) -> str:
    """An accuracy or a difference in points: one decimal (1,000 test images resolve 0.1 points)."""
    return "–" if value is None else f"{value:.{digits}f}"


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


PRESET_ORDER = ["issue", "cpu", "cpu-quick"]   # largest budget first


def group_rows(rows: list[dict[str, Any]]) -> "OrderedDict[str, dict[str, dict[str, Any]]]":
    """preset -> name -> latest row; presets ordered by budget, largest first."""
    groups: dict[str, dict[str, dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row.get("preset", "unknown"), {})[row["name"]] = row   # a later row of the same name wins
    def rank(label):
        base = label.split()[0]
        # A re-evaluation of a preset's models on a larger budget (e.g. 'cpu --eval_examples=1000')
        # is the larger budget once it covers every model of that preset: it goes first then.
        complete = label != base and base in groups and set(groups[base]) <= set(groups[label])
        return (PRESET_ORDER.index(base) if base in PRESET_ORDER else len(PRESET_ORDER), not complete, label)
    order = sorted(groups, key=rank)
    return OrderedDict((k, groups[k]) for k in order)


def reevaluation_of(label: str, groups: "OrderedDict[str, dict[str, dict[str, Any]]]") -> Optional[str]:
    """The preset whose trained models a section re-evaluates (same train ids), or None."""
    base = label.split()[0]
    if label == base or base not in groups:
        return None
    rows, base_rows = groups[label], groups[base]
    same = all(name in base_rows and base_rows[name].get("train_id") == row.get("train_id")
               for name, row in rows.items())
    return base if same else None


def full_evaluation(groups: "OrderedDict[str, dict[str, dict[str, Any]]]") -> Optional[str]:
    """The section that re-evaluated every model of the published budget on 1,000+ images, if any.

    group_rows puts such a complete re-evaluation first, ahead of the published budget itself.
    """
    first = next(iter(groups), None)
    if (first is None or first == "cpu" or first.split()[0] != "cpu" or "cpu" not in groups
            or min(r.get("budget", {}).get("eval", {}).get("eval_examples", 0) for r in groups[first].values()) < 1000):
        return None
    return first


def overfit_config(row: dict[str, Any]) -> str:
    return row.get("config_name") or row["method"]
