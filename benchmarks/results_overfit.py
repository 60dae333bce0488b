"""The robust-overfitting study's pages (benchmarks/overfit.py): its section at the head of
docs/RESULTS.md (the table over seeds, the generated verdicts, the comparison beyond the paper, the
gap-curve PNG), the README's first table, and docs/OVERFIT_CALIBRATION.md.

benchmarks/make_results.py calls these; the prose is in benchmarks/results_templates.py.
"""

from __future__ import annotations

from collections import OrderedDict
import json
import os
import sys
from typing import Any, Optional

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import overfit  # noqa: E402
import reproduce  # noqa: E402
from results_common import LABELS, mean_sd, separation  # noqa: E402
import results_templates as T  # noqa: E402

REPO = reproduce.REPO

OVERFIT_RESULTS = os.path.join(REPO, "benchmarks", "results", "overfit.jsonl")
OVERFIT_FIGURE = os.path.join(REPO, "docs", "fig_overfit_gap.png")
OVERFIT_LABELS = {"rat-e0.5": "RAT with e = 0.5 end points",
                  "rat-m1-e0.5-s1": "RAT with m = 1, e = 0.5, soft labels beyond s = 1",
                  "sat-awp": "SAT+AWP", "rat-awp": "RAT+AWP", "trades-awp": "TRADES+AWP"}
# The AWP configurations and the configuration each perturbs.
AWP_BASES = {"sat-awp": "sat", "rat-awp": "rat", "trades-awp": "trades"}

# The paper's scale, for the regime's description: CIFAR-10's 50,000 training images, WRN-34-10's
# parameters (`rat_tf.architectures.build("wrn-34-10", (32, 32, 3), 10).count_params()`) and its
# 80,000 steps; and the study's architectures' parameters, counted the same way.
PAPER_TRAIN_IMAGES = 50_000
PAPER_PARAMETERS = 46_182_906
PAPER_STEPS = 80_000
PARAMETERS = {"wrn-10-2": 304_634}


def overfit_rows(path: str = OVERFIT_RESULTS) -> list[dict[str, Any]]:
    """The study's rows (the last one of each run name), calibration and stopped runs left out."""
    rows: "OrderedDict[str, dict[str, Any]]" = OrderedDict()
    for row in reproduce.read_rows(path):
        if not row.get("calibration") and not row.get("stopped"):
            rows.pop(row["name"], None)
            rows[row["name"]] = row
    return list(rows.values())


def _overfit_config(row: dict[str, Any]) -> str:
    return row.get("config_name") or row["method"]


def overfit_summary(rows: list[dict[str, Any]]) -> "OrderedDict[str, dict[str, Any]]":
    """config -> lists over its seeds (None values left out): best / last clean, pgd, autoattack,
    worst; PGD minus AutoAttack per checkpoint; the last epoch's train - test PGD gap; best epochs.
    SAT first, then RAT, then the other configs in the file's order."""
    out: "OrderedDict[str, dict[str, Any]]" = OrderedDict((c, None) for c in ("sat", "rat"))
    for row in rows:
        entry = out.get(_overfit_config(row)) or {"runs": []}
        entry["runs"].append(row)
        out[_overfit_config(row)] = entry
    summary: "OrderedDict[str, dict[str, Any]]" = OrderedDict()
    for config, entry in out.items():
        if entry is None:
            continue
        runs = entry["runs"]
        e: dict[str, Any] = {"runs": runs}
        for point in ("best", "last"):
            for key in ("clean", "pgd", "autoattack", "worst"):
                e[f"{point}_{key}"] = [r[point][key] for r in runs if r.get(point, {}).get(key) is not None]
            e[f"{point}_pgd_aa"] = [r[point]["pgd"] - r[point]["autoattack"] for r in runs
                                    if r.get(point, {}).get("pgd") is not None
                                    and r[point].get("autoattack") is not None]
        e["gap"] = [r["curves"][-1]["train_pgd"] - r["curves"][-1]["test_pgd"] for r in runs if r.get("curves")]
        e["last_train_pgd"] = [r["curves"][-1]["train_pgd"] for r in runs if r.get("curves")]
        e["last_test_pgd"] = [r["curves"][-1]["test_pgd"] for r in runs if r.get("curves")]
        e["drop"] = [r["best"]["autoattack"] - r["last"]["autoattack"] for r in runs
                     if r.get("best", {}).get("autoattack") is not None
                     and r.get("last", {}).get("autoattack") is not None]
        e["best_epoch"] = [r["best_epoch"] for r in runs if r.get("best_epoch") is not None]
        summary[config] = e
    return summary




def overfit_values(summary: "OrderedDict[str, dict[str, Any]]") -> Optional[dict[str, dict[str, Any]]]:
    """RAT against SAT: the train-test gap, AutoAttack at the best and last checkpoints, and the
    PGD - AutoAttack gap at both (see `separation`); None without both configs."""
    rat, sat = summary.get("rat"), summary.get("sat")
    if not (rat and sat):
        return None
    return {"gap": separation(rat["gap"], sat["gap"]),
            **{f"{p}_autoattack": separation(rat[f"{p}_autoattack"], sat[f"{p}_autoattack"]) for p in ("best", "last")},
            **{f"{p}_pgd_aa": separation(rat[f"{p}_pgd_aa"], sat[f"{p}_pgd_aa"]) for p in ("best", "last")}}


def _outcome(templates: dict[str, "T.T"], v: dict[str, Any]) -> str:
    return templates[v["outcome"]].substitute(
        {k: (f"{x:.1f}" if k.startswith(("low_", "high_", "difference")) else x) for k, x in v.items()})


def overfit_verdicts(summary: "OrderedDict[str, dict[str, Any]]") -> list[str]:
    v = overfit_values(summary)
    if v is None:
        return [T.OVERFIT_NO_PAIR]
    rat, sat = summary["rat"], summary["sat"]

    def diff(x):
        return f"{x['difference']:+.1f}" if "difference" in x else "–"
    lines = [T.OVERFIT_GAP.substitute(
        rat=mean_sd(rat["gap"]), sat=mean_sd(sat["gap"]), difference=diff(v["gap"]),
        outcome=_outcome(T.OVERFIT_GAP_OUTCOMES, v["gap"]), moved=T.OVERFIT_MOVED[what_moved(rat, sat)],
        **{f"{split}_{c}": mean_sd(e[f"last_{split}_pgd"]) for split in ("train", "test")
           for c, e in (("rat", rat), ("sat", sat))})]
    for point in ("last", "best"):
        x = v[f"{point}_autoattack"]
        lines.append(T.OVERFIT_AA.substitute(checkpoint=point, rat=mean_sd(rat[f"{point}_autoattack"]),
                                             sat=mean_sd(sat[f"{point}_autoattack"]), difference=diff(x),
                                             outcome=_outcome(T.OVERFIT_OUTCOMES, x)))
    for point in ("last", "best"):
        lines.append(T.OVERFIT_PGD_AA.substitute(checkpoint=point, rat=mean_sd(rat[f"{point}_pgd_aa"]),
                                                 sat=mean_sd(sat[f"{point}_pgd_aa"]),
                                                 outcome=_outcome(T.OVERFIT_OUTCOMES, v[f"{point}_pgd_aa"])))
    return lines


def what_moved(rat: dict[str, Any], sat: dict[str, Any]) -> str:
    """Why RAT's train − test gap differs from SAT's (a key of `OVERFIT_MOVED`), from the means."""
    def mean(values):
        return sum(values) / len(values) if values else float("nan")
    if not mean(rat["gap"]) < mean(sat["gap"]):
        return "wider"
    return "test_up" if mean(rat["last_test_pgd"]) > mean(sat["last_test_pgd"]) else "train_down"


def overfit_awp(summary: "OrderedDict[str, dict[str, Any]]") -> list[str]:
    """AWP's lines: RAT+AWP against SAT+AWP at both checkpoints, and each AWP configuration's
    best-to-last AutoAttack drop against its plain configuration's (empty without AWP rows)."""
    lines = []
    rat, sat = summary.get("rat-awp"), summary.get("sat-awp")
    if rat and sat and rat["last_autoattack"] and sat["last_autoattack"]:
        for point in ("last", "best"):
            x = separation(rat[f"{point}_autoattack"], sat[f"{point}_autoattack"])
            lines.append(T.OVERFIT_AWP_PAIR.substitute(
                checkpoint=point, rat=mean_sd(rat[f"{point}_autoattack"]), sat=mean_sd(sat[f"{point}_autoattack"]),
                difference=f"{x['difference']:+.1f}" if "difference" in x else "–",
                outcome=_outcome(T.OVERFIT_OUTCOMES, x)))
    for config, base in AWP_BASES.items():
        e, b = summary.get(config), summary.get(base)
        if not (e and b and e["drop"]):
            continue
        x = separation(e["drop"], b["drop"])
        lines.append(T.OVERFIT_AWP_DROP.substitute(
            label=OVERFIT_LABELS[config], base=LABELS.get(base, base), awp=mean_sd(e["drop"]),
            plain=mean_sd(b["drop"]), outcome=_outcome(T.OVERFIT_AWP_DROP_OUTCOMES, x)))
    return [T.OVERFIT_AWP_HEADING, "", *lines, ""] if lines else []


def overfit_table(summary: "OrderedDict[str, dict[str, Any]]") -> list[str]:
    out = ["| method | seeds | best epoch | clean, last | AutoAttack, best | AutoAttack, last | worst, best "
           "| worst, last | PGD − AutoAttack, last | train − test |", "|---|" + "---:|" * 9]
    for config, e in summary.items():
        epochs = "/".join(str(x) for x in e["best_epoch"]) or "–"
        out.append(f"| {OVERFIT_LABELS.get(config, LABELS.get(config, config))} | {len(e['runs'])} | {epochs} | "
                   f"{mean_sd(e['last_clean'])} | {mean_sd(e['best_autoattack'])} | "
                   f"**{mean_sd(e['last_autoattack'])}** | {mean_sd(e['best_worst'])} | "
                   f"{mean_sd(e['last_worst'])} | {mean_sd(e['last_pgd_aa'])} | {mean_sd(e['gap'])} |")
    return out


def mean_curves(runs: list[dict[str, Any]]) -> dict[str, list[tuple[int, float]]]:
    """train_pgd and test_pgd per curve point (keyed by training step when the curve has steps, else
    by epoch), mean over the runs that reached that point."""
    out = {}
    for key in ("train_pgd", "test_pgd"):
        by_epoch: dict[int, list[float]] = {}
        for r in runs:
            for point in r.get("curves") or []:
                if point.get(key) is not None:
                    by_epoch.setdefault(point.get("step") or point["epoch"], []).append(point[key])
        out[key] = [(epoch, sum(v) / len(v)) for epoch, v in sorted(by_epoch.items())]
    return out


def draw_overfit_gap(summary: "OrderedDict[str, dict[str, Any]]", path: str = OVERFIT_FIGURE) -> Optional[str]:
    """Writes the train and test PGD-10 curves of SAT and RAT (mean over seeds) as a PNG, atomically;
    returns the path, None when neither has a curve."""
    curves = {config: mean_curves(summary[config]["runs"]) for config in ("sat", "rat") if config in summary}
    curves = {c: v for c, v in curves.items() if v["train_pgd"]}
    if not curves:
        return None
    import matplotlib  # noqa: PLC0415
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    from rat_tf.files import atomic_write  # noqa: PLC0415

    fig, ax = plt.subplots(figsize=(6.0, 3.4), dpi=110)
    for (config, v), colour in zip(curves.items(), ("tab:blue", "tab:red")):
        for key, style, what in (("train_pgd", "-", "train"), ("test_pgd", "--", "test")):
            ax.plot([e for e, _ in v[key]], [a for _, a in v[key]], style, color=colour,
                    label=f"{LABELS[config]} {what}")
    by_step = all(p.get("step") for c in curves for r in summary[c]["runs"] for p in r.get("curves") or [])
    ax.set_xlabel("training step" if by_step else "epoch")
    ax.set_ylabel("PGD-10 accuracy (%)")
    ax.set_title("Robust overfitting: train vs test PGD-10 (mean over seeds)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format="png"), mode="wb")
    plt.close(fig)
    return path


def _regime_length(regime: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    """'300 passes (900 steps of 128, a curve point every 45 steps)' or '80 epochs'."""
    if not regime.get("curve_every"):
        return f"{regime.get('epochs', '?')} epochs"
    steps = next((r["total_steps"] for r in rows if r.get("total_steps")), None)
    return T.OVERFIT_LENGTH.substitute(passes=regime.get("epochs", "?"), every=regime["curve_every"],
                                       steps=f"{steps:,}" if steps else "?")


def _span(values: list[str]) -> str:
    """'a' or 'a–b' for the lowest and highest of sorted values; '?' for none."""
    return "?" if not values else values[0] if values[0] == values[-1] else f"{values[0]}–{values[-1]}"


def _percent(part: Optional[float], whole: float) -> str:
    return "?" if not part else f"{100 * part / whole:.1g}"


def _regime_text(rows: list[dict[str, Any]]) -> str:
    regime = next((r["regime"] for r in rows if r.get("regime")), None)
    if not regime:
        return ""
    steps = next((r["total_steps"] for r in rows if r.get("total_steps")), None)
    sat = [r for r in rows if (r.get("config_name") or r.get("method")) == "sat" and r.get("best_epoch")
           and r.get("curves")]
    best_steps = sorted({e["step"] for r in sat for e in r["curves"] if e["epoch"] == r["best_epoch"]})
    best_clean = sorted(r["best"]["clean"] for r in sat if r.get("best", {}).get("clean") is not None)
    decay = next((r["lr_boundaries"][0] for r in rows if r.get("lr_boundaries")), "?")
    return T.OVERFIT_REGIME.substitute(
        arch=regime.get("arch", "?"), length=_regime_length(regime, rows),
        train_examples=f"{regime.get('train_examples', 0):,}",
        data=_percent(regime.get("train_examples"), PAPER_TRAIN_IMAGES),
        params=_percent(PARAMETERS.get(regime.get("arch")), PAPER_PARAMETERS), steps=_percent(steps, PAPER_STEPS),
        sat_best_steps=_span([str(v) for v in best_steps]), sat_best_clean=_span([f"{v:.0f}" for v in best_clean]),
        decay=decay)


# The configurations of the "beyond the paper" comparison (those that sample the adversarial
# region, and those with adversarial weight perturbation), and their names in benchmarks/step_cost.py.
REGIONAL = {"rat": "rat", "rat-e0.5": "rat_e0.5", "sat_ars": "sat_ars", "avmixup": "avmixup",
            "rat-m1-e0.5-s1": "rat_m1_e0.5_s1", "sat-awp": "sat_awp", "rat-awp": "rat_awp",
            "trades-awp": "trades_awp"}
MAX_STEP_COST = 1.15
OVERFIT_STEP_COST = os.path.join(REPO, "benchmarks", "results", "step_cost_overfit.json")


def overfit_beyond(summary: "OrderedDict[str, dict[str, Any]]", step_cost_path: str = OVERFIT_STEP_COST) -> list[str]:
    """Each regional configuration's last checkpoint against SAT's best (early stopping on validation
    PGD-10) under AutoAttack, and its step cost over SAT's; then the answer: which (if any) beats it by
    more than the seed spread at no more than MAX_STEP_COST times SAT's step."""
    sat = summary.get("sat")
    ratios: dict[str, float] = {}
    arch = "?"
    if os.path.exists(step_cost_path):
        with open(step_cost_path, encoding="utf-8") as f:
            measured = json.load(f)
        ratios, arch = measured["over_sat"].get("cifar", {}), measured.get("arch", "small_cnn")
    lines, winners = [], []
    for config, key in REGIONAL.items():
        e = summary.get(config)
        if not (sat and e and e["last_autoattack"]):  # a configuration with no AutoAttack number yet
            continue
        x = separation(e["last_autoattack"], sat["best_autoattack"])
        ratio = ratios.get(key)
        cost = T.OVERFIT_COST.substitute(ratio=f"{ratio:.3f}", arch=arch) if ratio else T.OVERFIT_NO_COST
        label = OVERFIT_LABELS.get(config, LABELS.get(config, config))
        lines.append(T.OVERFIT_BEYOND.substitute(
            label=label, last=mean_sd(e["last_autoattack"]), best=mean_sd(sat["best_autoattack"]),
            difference=f"{x['difference']:+.1f}" if "difference" in x else "–",
            outcome=_outcome(T.OVERFIT_BEYOND_OUTCOMES, x), cost=cost))
        if x["outcome"] == "above" and ratio is not None and ratio <= MAX_STEP_COST:
            winners.append(label)
    if not lines:
        return []
    answer = (T.OVERFIT_BEYOND_YES.substitute(configs=", ".join(winners), limit=f"{MAX_STEP_COST:g}") if winners
              else T.OVERFIT_BEYOND_NO.substitute(limit=f"{MAX_STEP_COST:g}"))
    return [T.OVERFIT_BEYOND_HEADING, "", *lines, "", answer, ""]


OVERFIT_CALIBRATION = overfit.CALIBRATION_RESULTS
CALIBRATION_PAGE = os.path.join(REPO, "docs", "OVERFIT_CALIBRATION.md")


def calibration_rows(path: str = OVERFIT_CALIBRATION) -> list[dict[str, Any]]:
    """The calibration's rows: the last one of each run name, in the order the names first appear."""
    rows: "OrderedDict[str, dict[str, Any]]" = OrderedDict()
    for row in reproduce.read_rows(path):
        rows[row["name"]] = row
    return list(rows.values())


def _planned_points(regime: dict[str, Any], row: dict[str, Any]) -> int:
    """Curve points the regime plans: one per pass, or one every `curve_every` steps."""
    if not regime.get("curve_every"):
        return int(regime["epochs"])
    batch = ((row.get("config") or {}).get("optim") or {}).get("batch_size") or 128
    steps = row.get("total_steps") or int(regime["epochs"]) * (int(regime["train_examples"]) // int(batch))
    return -(-steps // int(regime["curve_every"]))


def _chosen_calibration(rows: list[dict[str, Any]]) -> Optional[dict[str, Any]]:
    return next((r for r in reversed(rows) if (r.get("regime") or {}).get("name") == overfit.REGIME.name
                 and not r.get("stopped") and r.get("curves")), None)


def calibration_link(rows: list[dict[str, Any]], page: str = CALIBRATION_PAGE) -> list[str]:
    """The results page's paragraph on the calibration: the chosen regime's numbers, a link to the rest."""
    chosen = _chosen_calibration(rows)
    if chosen is None:
        return []
    c = overfit.criteria(chosen["curves"], chosen.get("train_seconds"))
    return [T.OVERFIT_CALIBRATION_LINK.substitute(
        n=len(rows), best=f"{c['best_test_pgd']:.1f}", last=f"{c['last_test_pgd']:.1f}",
        decline=f"{c['test_pgd_decline']:.1f}", min_decline=f"{overfit.MIN_DECLINE:g}",
        gap=f"{c['train_test_pgd_gap']:.1f}", min_gap=f"{overfit.MIN_GAP:g}",
        minutes=f"{chosen['train_seconds'] / 60:.0f}" if chosen.get("train_seconds") else "?",
        page=os.path.basename(page)), ""]


def calibration_page(rows: list[dict[str, Any]], results_rel: str,
                     study_rows: list[dict[str, Any]] = ()) -> list[str]:
    """How the regime was chosen: each SAT candidate's curve against the calibration criteria
    (benchmarks/overfit.py), why it was stopped or that it was chosen, and SAT's time in the study."""
    if not rows:
        return []
    out = [*T.OVERFIT_CALIBRATION_HEAD.substitute(
        results_rel=results_rel, decline=f"{overfit.MIN_DECLINE:g}", gap=f"{overfit.MIN_GAP:g}").split("\n"),
        "| candidate | curve points | best test PGD-10 (point) | last test PGD-10 | decline | train − test, last "
        "| training | outcome |", "|---|---:|---:|---:|---:|---:|---:|---|"]
    for row in rows:
        regime = row.get("regime") or {}
        every = f", a point every {regime['curve_every']} steps" if regime.get("curve_every") else ""
        name = (f"{regime.get('arch', '?')}, {regime.get('train_examples', 0):,} images, "
                f"{regime.get('epochs', '?')} passes{every}")
        seconds = row.get("train_seconds")
        c = overfit.criteria(row.get("curves") or [], seconds) if row.get("curves") else {}
        if row.get("stopped"):
            outcome = row["stopped"]
        elif regime.get("name") == overfit.REGIME.name and c:
            checks = {"decline": c["decline_ok"], "gap": c["gap_ok"],
                      f"time (over {overfit.MAX_SECONDS / 60:.0f} min)": c.get("seconds_ok", True)}
            missed = [k for k, ok in checks.items() if not ok]
            outcome = T.OVERFIT_CALIBRATION_CHOSEN.substitute(
                meets=", ".join(k.split(" ")[0] for k, ok in checks.items() if ok) or "none",
                misses=f"; misses {', '.join(missed)}" if missed else "")
        else:
            outcome = T.OVERFIT_CALIBRATION_UNFINISHED
        if c:
            numbers = (f"{c['best_test_pgd']:.1f} ({c['best_test_pgd_epoch']}) | {c['last_test_pgd']:.1f} | "
                       f"{c['test_pgd_decline']:.1f} | {c['train_test_pgd_gap']:.1f}")
        else:
            numbers = "– | – | – | –"
        minutes = f"{seconds / 60:.0f} min" if seconds else "–"
        points = f"{len(row.get('curves') or [])} of {_planned_points(regime, row)}" if regime.get("epochs") else "–"
        out.append(f"| {name} | {points} | {numbers} | {minutes} | {outcome} |")
    sat = [r for r in study_rows if _overfit_config(r) == "sat" and isinstance(r.get("train_seconds"), (int, float))
           and isinstance(r.get("train_cpu_seconds"), (int, float))]
    if sat:
        times = sorted(r["train_seconds"] / 60 for r in sat)
        cpu = max(100.0 * (1.0 - r["train_cpu_seconds"] / r["train_seconds"]) for r in sat)
        span = f"{times[0]:.0f}" if len(times) == 1 else f"{times[0]:.0f}–{times[-1]:.0f}"
        out += ["", T.OVERFIT_CALIBRATION_TIMES.substitute(times=span, n=len(times), cpu=f"{max(cpu, 0.0):.0f}")]
    return out + [""]


def overfit_section(rows: list[dict[str, Any]], results_rel: str, figure: Optional[str],
                    docs: str = os.path.join(REPO, "docs"), calibration: list[dict[str, Any]] = ()) -> list[str]:
    """The study's head, the table over seeds, the verdicts, the gap figure (path relative to docs/)
    and a paragraph on the calibration that chose the regime (its own page has every candidate)."""
    summary = overfit_summary(rows)
    lines = [*T.OVERFIT_HEAD.substitute(results_rel=results_rel, regime=_regime_text(rows)).split("\n"),
             *overfit_table(summary), "", T.OVERFIT_VERDICT, "", *overfit_verdicts(summary), "",
             *overfit_awp(summary), *overfit_beyond(summary)]
    if figure:
        lines += [T.OVERFIT_FIGURE.substitute(path=os.path.relpath(figure, docs)), "", T.OVERFIT_FIGURE_NOTE, ""]
    lines += calibration_link(list(calibration))
    return lines + [T.OUTSIDE_REGIME, ""]


def readme_overfit(rows: list[dict[str, Any]]) -> list[str]:
    """The README's first table when the study has rows: AutoAttack and the worst case, best and last."""
    if not rows:
        return []
    summary = overfit_summary(rows)
    regime = next((r["regime"] for r in rows if r.get("regime")), {})
    regime_text = (f"{regime.get('arch')}, {regime.get('train_examples', 0):,} images, {_regime_length(regime, rows)}"
                   if regime else "the study's regime")
    out = [T.README_OVERFIT_INTRO.substitute(regime=regime_text), "",
           "| method | seeds | AutoAttack, best | AutoAttack, last | worst case (AA+), last | train − test |",
           "|---|---:|---:|---:|---:|---:|"]
    for config, e in summary.items():
        out.append(f"| {OVERFIT_LABELS.get(config, LABELS.get(config, config))} | {len(e['runs'])} | "
                   f"{mean_sd(e['best_autoattack'])} | **{mean_sd(e['last_autoattack'])}** | "
                   f"{mean_sd(e['last_worst'])} | {mean_sd(e['gap'])} |")
    v = overfit_values(summary)
    if v is not None:
        rat, sat = summary["rat"], summary["sat"]
        out += ["", T.README_OVERFIT_VERDICT.substitute(
            gap_rat=mean_sd(rat["gap"]), gap_sat=mean_sd(sat["gap"]), moved=T.OVERFIT_MOVED[what_moved(rat, sat)],
            gap_word=T.README_OVERFIT_GAP_WORDS[v["gap"]["outcome"]],
            **{f"{p}_{c}": mean_sd(summary[c][f"{p}_autoattack"]) for p in ("last", "best") for c in ("rat", "sat")},
            **{f"{p}_word": T.README_OVERFIT_WORDS[v[f"{p}_autoattack"]["outcome"]] for p in ("last", "best")})]
    return out + ["", T.README_OUTSIDE_REGIME, ""]
