"""docs/OVERFIT_CALIBRATION.md: how the robust-overfitting study's regime was chosen (`python -m
benchmarks.overfit --calibration`), each SAT candidate's curve against the calibration criteria.
"""

from __future__ import annotations

from collections import OrderedDict
import os
from typing import Any, Optional

from benchmarks import overfit_runs, runner
from benchmarks import templates_overfit as T
from benchmarks.results_common import overfit_config
from benchmarks.runner import REPO

OVERFIT_CALIBRATION = overfit_runs.CALIBRATION_RESULTS

CALIBRATION_PAGE = os.path.join(REPO, "docs", "OVERFIT_CALIBRATION.md")


def calibration_rows(path: str = OVERFIT_CALIBRATION) -> list[dict[str, Any]]:
    """The calibration's rows: the last one of each run name, in the order the names first appear."""
    rows: "OrderedDict[str, dict[str, Any]]" = OrderedDict()
    for row in runner.read_rows(path):
        rows[row["name"]] = row
    return list(rows.values())


def _planned_points(regime: dict[str, Any], row: dict[str, Any]) -> int:
    """Curve points the regime plans: one per pass, or one every `curve_every` steps."""
    if not regime.get("curve_every"):
        return int(regime["epochs"])
    batch = ((row.get("config") or {}).get("optim") or {}).get("batch_size") or 128
    steps = row.get("total_steps") or int(regime["epochs"]) * (int(regime["train_examples"]) // int(batch))
    return -(-steps // int(regime["curve_every"]))


def chosen_calibration(rows: list[dict[str, Any]]) -> Optional[dict[str, Any]]:
    return next((r for r in reversed(rows) if (r.get("regime") or {}).get("name") == overfit_runs.REGIME.name
                 and not r.get("stopped") and r.get("curves")), None)


def calibration_values(row: dict[str, Any]) -> dict[str, Any]:
    """One candidate against the calibration criteria: {"points": curve points run, "planned": curve
    points its regime plans (None without a length), "criteria": `overfit_runs.criteria` of its curve
    ({} without one), "outcome": "stopped" | "chosen" | "unfinished", "reason": why it was stopped,
    "checks": {"decline", "gap", "time"} -> met (the chosen regime only)}."""
    regime = row.get("regime") or {}
    c = overfit_runs.criteria(row.get("curves") or [], row.get("train_seconds")) if row.get("curves") else {}
    checks = {}
    if row.get("stopped"):
        outcome = "stopped"
    elif regime.get("name") == overfit_runs.REGIME.name and c:
        outcome = "chosen"
        checks = {"decline": c["decline_ok"], "gap": c["gap_ok"], "time": c.get("seconds_ok", True)}
    else:
        outcome = "unfinished"
    return {"points": len(row.get("curves") or []),
            "planned": _planned_points(regime, row) if regime.get("epochs") else None,
            "criteria": c, "outcome": outcome, "reason": row.get("stopped"), "checks": checks}


def _outcome_text(v: dict[str, Any]) -> str:
    if v["outcome"] == "stopped":
        return v["reason"]
    if v["outcome"] == "unfinished":
        return T.OVERFIT_CALIBRATION_UNFINISHED
    names = {"time": f"time (over {overfit_runs.MAX_SECONDS / 60:.0f} min)"}
    missed = [names.get(k, k) for k, ok in v["checks"].items() if not ok]
    return T.OVERFIT_CALIBRATION_CHOSEN.substitute(
        meets=", ".join(k for k, ok in v["checks"].items() if ok) or "none",
        misses=f"; misses {', '.join(missed)}" if missed else "")


def calibration_page(rows: list[dict[str, Any]], results_rel: str,
                     study_rows: list[dict[str, Any]] = ()) -> list[str]:
    """How the regime was chosen: each SAT candidate's curve against the calibration criteria
    (`calibration_values`), why it was stopped or that it was chosen, and SAT's time in the study."""
    if not rows:
        return []
    out = [*T.OVERFIT_CALIBRATION_HEAD.substitute(
        results_rel=results_rel, decline=f"{overfit_runs.MIN_DECLINE:g}", gap=f"{overfit_runs.MIN_GAP:g}").split("\n"),
        "| candidate | curve points | best test PGD-10 (point) | last test PGD-10 | decline | train − test, last "
        "| training | outcome |", "|---|---:|---:|---:|---:|---:|---:|---|"]
    for row in rows:
        regime = row.get("regime") or {}
        every = f", a point every {regime['curve_every']} steps" if regime.get("curve_every") else ""
        name = (f"{regime.get('arch', '?')}, {regime.get('train_examples', 0):,} images, "
                f"{regime.get('epochs', '?')} passes{every}")
        seconds = row.get("train_seconds")
        v = calibration_values(row)
        c = v["criteria"]
        if c:
            numbers = (f"{c['best_test_pgd']:.1f} ({c['best_test_pgd_epoch']}) | {c['last_test_pgd']:.1f} | "
                       f"{c['test_pgd_decline']:.1f} | {c['train_test_pgd_gap']:.1f}")
        else:
            numbers = "– | – | – | –"
        minutes = f"{seconds / 60:.0f} min" if seconds else "–"
        points = f"{v['points']} of {v['planned']}" if v["planned"] is not None else "–"
        out.append(f"| {name} | {points} | {numbers} | {minutes} | {_outcome_text(v)} |")
    sat = [r for r in study_rows if overfit_config(r) == "sat" and isinstance(r.get("train_seconds"), (int, float))
           and isinstance(r.get("train_cpu_seconds"), (int, float))]
    if sat:
        times = sorted(r["train_seconds"] / 60 for r in sat)
        cpu = max(100.0 * (1.0 - r["train_cpu_seconds"] / r["train_seconds"]) for r in sat)
        span = f"{times[0]:.0f}" if len(times) == 1 else f"{times[0]:.0f}–{times[-1]:.0f}"
        out += ["", T.OVERFIT_CALIBRATION_TIMES.substitute(times=span, n=len(times), cpu=f"{max(cpu, 0.0):.0f}")]
    return out + [""]
