"""The robust-overfitting study's section at the head of docs/RESULTS.md (`python -m
benchmarks.overfit`): the table over seeds, the generated verdicts, the comparison beyond the paper,
AWP, the gap-curve PNG and the paragraph on the calibration.

`benchmarks/make_results.py` calls these; the prose is in benchmarks/templates_overfit.py.
"""

from __future__ import annotations

from collections import OrderedDict
import json
import os
import statistics
from typing import Any, Optional

from benchmarks import overfit_runs, runner
from benchmarks import templates_overfit as T
from benchmarks.results_calibration import CALIBRATION_PAGE, chosen_calibration
from benchmarks.results_common import LABELS, mean_sd, overfit_config, separation
from benchmarks.runner import REPO
from rat_tf.files import atomic_write

OVERFIT_RESULTS = overfit_runs.RESULTS
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
    for row in runner.read_rows(path):
        if not row.get("calibration") and not row.get("stopped"):
            rows.pop(row["name"], None)
            rows[row["name"]] = row
    return list(rows.values())


def overfit_summary(rows: list[dict[str, Any]]) -> "OrderedDict[str, dict[str, Any]]":
    """config -> lists over its seeds (None values left out): best / last clean, pgd, autoattack,
    worst; PGD minus AutoAttack per checkpoint; the last epoch's train - test PGD gap; best epochs.
    SAT first, then RAT, then the other configs in the file's order."""
    out: "OrderedDict[str, dict[str, Any]]" = OrderedDict((c, None) for c in ("sat", "rat"))
    for row in rows:
        entry = out.get(overfit_config(row)) or {"runs": []}
        entry["runs"].append(row)
        out[overfit_config(row)] = entry
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


def overfit_awp_values(summary: "OrderedDict[str, dict[str, Any]]") -> dict[str, Any]:
    """AWP against the seed spread: {"pair": {"last": separation, "best": separation} of RAT+AWP
    against SAT+AWP under AutoAttack (None without both), "drops": [{"config", "base", "separation"}]:
    each AWP configuration's best-to-last AutoAttack drop against its plain configuration's}."""
    rat, sat = summary.get("rat-awp"), summary.get("sat-awp")
    pair = None
    if rat and sat and rat["last_autoattack"] and sat["last_autoattack"]:
        pair = {point: separation(rat[f"{point}_autoattack"], sat[f"{point}_autoattack"]) for point in ("last", "best")}
    drops = [{"config": config, "base": base, "separation": separation(summary[config]["drop"], summary[base]["drop"])}
             for config, base in AWP_BASES.items()
             if summary.get(config) and summary.get(base) and summary[config]["drop"]]
    return {"pair": pair, "drops": drops}


def overfit_awp(summary: "OrderedDict[str, dict[str, Any]]") -> list[str]:
    """AWP's lines (`overfit_awp_values`); empty without AWP rows."""
    v = overfit_awp_values(summary)
    lines = []
    if v["pair"]:
        rat, sat = summary["rat-awp"], summary["sat-awp"]
        for point in ("last", "best"):
            x = v["pair"][point]
            lines.append(T.OVERFIT_AWP_PAIR.substitute(
                checkpoint=point, rat=mean_sd(rat[f"{point}_autoattack"]), sat=mean_sd(sat[f"{point}_autoattack"]),
                difference=f"{x['difference']:+.1f}" if "difference" in x else "–",
                outcome=_outcome(T.OVERFIT_OUTCOMES, x)))
    for d in v["drops"]:
        e, b = summary[d["config"]], summary[d["base"]]
        lines.append(T.OVERFIT_AWP_DROP.substitute(
            label=OVERFIT_LABELS[d["config"]], base=LABELS.get(d["base"], d["base"]), awp=mean_sd(e["drop"]),
            plain=mean_sd(b["drop"]), outcome=_outcome(T.OVERFIT_AWP_DROP_OUTCOMES, d["separation"])))
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


def regime_length(regime: dict[str, Any], rows: list[dict[str, Any]]) -> str:
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
        arch=regime.get("arch", "?"), length=regime_length(regime, rows),
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

# The step-cost measurements, in order: a configuration's ratio comes from the first entry that has it
# (each file's ratios are against the SAT step timed in the same process). An entry may be a group of
# repeated runs: then the ratio is the median over the runs of the group that have it.
_RESULTS = os.path.join(REPO, "benchmarks", "results")
OVERFIT_STEP_COST = (os.path.join(_RESULTS, "step_cost_overfit.json"),
                     tuple(os.path.join(_RESULTS, f"step_cost_awp{run}.json")
                           for run in ("", "_run1", "_run3", "_run4")))


def overfit_beyond_values(summary: "OrderedDict[str, dict[str, Any]]",
                          step_cost_path: str | tuple = OVERFIT_STEP_COST) -> Optional[dict[str, Any]]:
    """Each regional configuration's last checkpoint against SAT's best (early stopping on validation
    PGD-10) under AutoAttack (`separation` of the seeds), its step cost over SAT's (None when not
    measured) and whether it qualifies: above SAT's best by more than the seed spread at no more than
    MAX_STEP_COST times SAT's step. None when no configuration has an AutoAttack number yet.

    Returns {"arch": the timed architecture, "configs": [{"config", "label", "last", "sat_best",
    "separation", "step_cost", "qualifies"}], "winners": [labels of those that qualify]}.
    """
    sat = summary.get("sat")
    ratios: dict[str, float] = {}
    arch = None
    for entry in [step_cost_path] if isinstance(step_cost_path, str) else step_cost_path:
        runs: dict[str, list[float]] = {}
        for path in [entry] if isinstance(entry, str) else entry:
            if not os.path.exists(path):
                continue
            with open(path, encoding="utf-8") as f:
                measured = json.load(f)
            if arch not in (None, measured.get("arch", "small_cnn")):
                continue  # timed on another architecture: not comparable
            arch = measured.get("arch", "small_cnn")
            for key, ratio in measured["over_sat"].get("cifar", {}).items():
                runs.setdefault(key, []).append(ratio)
        ratios = {**{key: statistics.median(r) for key, r in runs.items()}, **ratios}
    arch = arch or "?"
    configs = []
    for config, key in REGIONAL.items():
        e = summary.get(config)
        if not (sat and e and e["last_autoattack"]):  # a configuration with no AutoAttack number yet
            continue
        x = separation(e["last_autoattack"], sat["best_autoattack"])
        ratio = ratios.get(key)
        configs.append({"config": config, "label": OVERFIT_LABELS.get(config, LABELS.get(config, config)),
                        "last": e["last_autoattack"], "sat_best": sat["best_autoattack"], "separation": x,
                        "step_cost": ratio,
                        "qualifies": x["outcome"] == "above" and ratio is not None and ratio <= MAX_STEP_COST})
    if not configs:
        return None
    return {"arch": arch, "configs": configs, "winners": [c["label"] for c in configs if c["qualifies"]]}


def overfit_beyond(summary: "OrderedDict[str, dict[str, Any]]",
                   step_cost_path: str | tuple = OVERFIT_STEP_COST) -> list[str]:
    """The lines of `overfit_beyond_values`: one per configuration, then the answer (empty without any)."""
    v = overfit_beyond_values(summary, step_cost_path)
    if v is None:
        return []
    lines = []
    for c in v["configs"]:
        x, ratio = c["separation"], c["step_cost"]
        cost = T.OVERFIT_COST.substitute(ratio=f"{ratio:.3f}") if ratio else T.OVERFIT_NO_COST
        lines.append(T.OVERFIT_BEYOND.substitute(
            label=c["label"], last=mean_sd(c["last"]),
            difference=f"{x['difference']:+.1f}" if "difference" in x else "–",
            outcome=_outcome(T.OVERFIT_BEYOND_OUTCOMES, x), cost=cost))
    sat_best = v["configs"][0]["sat_best"]
    intro = T.OVERFIT_BEYOND_INTRO.substitute(best=mean_sd(sat_best), low=f"{min(sat_best):.1f}",
                                              high=f"{max(sat_best):.1f}", limit=f"{MAX_STEP_COST:g}",
                                              arch=v["arch"])
    answer = (T.OVERFIT_BEYOND_YES.substitute(configs=", ".join(v["winners"]), limit=f"{MAX_STEP_COST:g}")
              if v["winners"] else T.OVERFIT_BEYOND_NO.substitute(limit=f"{MAX_STEP_COST:g}"))
    return [T.OVERFIT_BEYOND_HEADING, "", intro, "", *lines, "", answer, ""]


def calibration_link(rows: list[dict[str, Any]], page: str = CALIBRATION_PAGE) -> list[str]:
    """The results page's paragraph on the calibration: the chosen regime's numbers, a link to the rest."""
    chosen = chosen_calibration(rows)
    if chosen is None:
        return []
    c = overfit_runs.criteria(chosen["curves"], chosen.get("train_seconds"))
    return [T.OVERFIT_CALIBRATION_LINK.substitute(
        n=len(rows), best=f"{c['best_test_pgd']:.1f}", last=f"{c['last_test_pgd']:.1f}",
        decline=f"{c['test_pgd_decline']:.1f}", min_decline=f"{overfit_runs.MIN_DECLINE:g}",
        gap=f"{c['train_test_pgd_gap']:.1f}", min_gap=f"{overfit_runs.MIN_GAP:g}",
        minutes=f"{chosen['train_seconds'] / 60:.0f}" if chosen.get("train_seconds") else "?",
        page=os.path.basename(page)), ""]


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
