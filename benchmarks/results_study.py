"""The end-point study's part of docs/RESULTS.md and docs/STUDY_RUNS.md (`python -m
benchmarks.study`): the summary over seeds, the generated verdicts, the measured step cost, the
hand-written reading, every run.
"""

from __future__ import annotations

from collections import OrderedDict
import json
import os
from typing import Any, Optional

from benchmarks import study
from benchmarks import templates_study as T
from benchmarks.results_common import ATTACK_COLUMNS, DATASET_NAMES, NOT_RUN, fmt, mean_sd, stats
from benchmarks.results_tables import budget_text
from benchmarks.runner import REPO

# The study's prototype (a bare tf.function loop, before rat_tf had the options; MNIST 30k x 5
# epochs, small CNN, Adam 1e-3, worst case over FGSM and PGD-20/50 on CE and the CW margin, 1,000
# test images). Quoted from the study's brief, for comparison only.
PROTOTYPE = [
    ("SAT", "0 / 1 / 2", "93.6 / 12.6 / 12.6", "75.4 / 12.6 / 12.6 (seeds 1, 2 collapsed)"),
    ("RAT (paper)", "0 / 1", "98.1 / 98.3", "61.2 / 64.8"),
    ("RAT, soft labels only beyond s > 1", "0", "97.3", "75.3"),
    ("half x'_e with hard labels, half RAT samples", "0 / 1", "96.9 / 96.4", "84.9 / 85.8"),
]

# Below this clean accuracy a run counts as not trained: a model collapsed to one class scores about
# 10-11% on both datasets. CIFAR-10's bar is lower because at the published budget (780 steps of a
# small CNN) even ST reaches only 60%.
TRAINED_CLEAN = {"mnist": 50.0, "cifar10": 20.0}


def study_summary(rows: dict[str, dict[str, Any]], dataset: str) -> "OrderedDict[str, dict[str, Any]]":
    """config -> {runs, trained, clean, worst, gap, cost} over the seeds that have a row."""
    out: "OrderedDict[str, dict[str, Any]]" = OrderedDict()
    for run in study.RUNS:
        if run.dataset != dataset:
            continue
        entry = out.setdefault(study.config_of(run.name), {"runs": []})
        if run.name in rows:
            entry["runs"].append(rows[run.name])
    for entry in out.values():
        runs = entry["runs"]
        entry["trained"] = [r for r in runs if r["clean"] >= TRAINED_CLEAN[dataset]]
        entry["clean"] = [r["clean"] for r in runs]
        entry["worst"] = [r["worst_case"] for r in runs]
        # Over trained seeds only: a collapsed model's gap is 0 and says nothing about soft labels.
        entry["gap"] = [r["attacks"]["pgd"] - r["worst_case"] for r in entry["trained"] if "pgd" in r["attacks"]]
        entry["cost"] = [r["seconds_per_1000_steps"] for r in runs if r.get("seconds_per_1000_steps")]
    return out


def best_grid_setting(summary: "OrderedDict[str, dict[str, Any]]") -> Optional[str]:
    """The grid setting without warm-up (`rat-e<e>-s<s0>`, not the candidate) of highest mean worst
    case among those with at least two finished seeds; None when there is none."""
    grid = {name: e for name, e in summary.items()
            if name.startswith("rat-e") and not name.endswith("-warm") and name != study.CANDIDATE
            and len(e["worst"]) >= 2}
    return max(grid, key=lambda name: stats(grid[name]["worst"])[0], default=None)


def verdict_values(cand: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    """The candidate's and the baseline's worst-case statistics and the outcome of comparing them.

    "beats" / "loses" when the seed ranges do not overlap (the candidate's worst seed above the
    baseline's best, or its best below the baseline's worst), with at least two seeds on each side;
    "overlap" when they do; "too_few" with fewer than two seeds on a side.
    """
    c_mean, _, c_low, c_high = stats(cand["worst"])
    b_mean, _, b_low, b_high = stats(base["worst"])
    if len(cand["worst"]) < 2 or len(base["worst"]) < 2:
        outcome = "too_few"
    elif c_low > b_high:
        outcome = "beats"
    elif c_high < b_low:
        outcome = "loses"
    else:
        outcome = "overlap"
    return {"outcome": outcome, "n_candidate": len(cand["worst"]), "n_base": len(base["worst"]),
            "mean_candidate": c_mean, "mean_base": b_mean, "difference": c_mean - b_mean,
            "low_candidate": c_low, "high_candidate": c_high, "low_base": b_low, "high_base": b_high}


def study_verdict(summary: "OrderedDict[str, dict[str, Any]]", candidate: str, baselines: list[str]) -> list[str]:
    """Whether `candidate` beats each baseline under the worst case by more than the seed spread
    (see `verdict_values`)."""
    cand = summary.get(candidate)
    if not cand or not cand["worst"]:
        return [T.VERDICT_NO_CANDIDATE.substitute(candidate=candidate)]
    out = []
    for base in baselines:
        b = summary.get(base)
        if not b or not b["worst"]:
            out.append(T.VERDICT_NO_BASELINE.substitute(candidate=candidate, base=base))
            continue
        v = verdict_values(cand, b)
        one = {k: f"{x:.1f}" for k, x in v.items() if k.startswith(("low_", "high_", "mean_"))}
        out.append(T.VERDICT.substitute(
            candidate=candidate, base=base, n_candidate=v["n_candidate"], n_base=v["n_base"],
            difference=f"{v['difference']:+.1f}", outcome=T.VERDICT_OUTCOMES[v["outcome"]].substitute(one),
            clean_candidate=mean_sd(cand["clean"]), clean_base=mean_sd(b["clean"]), **one))
    return out


STEP_COST = os.path.join(REPO, "benchmarks", "results", "step_cost_study.json")

# step_cost.py names its input sizes after the datasets, shorter: "cifar" is CIFAR-10's 32x32x3.
STEP_COST_SIZE = {"mnist": "mnist", "cifar10": "cifar"}


def _step_ratios(dataset: str, path: str = STEP_COST) -> dict[str, float]:
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as f:
        return json.load(f)["over_sat"].get(STEP_COST_SIZE[dataset], {})


def _step_cost_key(config: str) -> str:
    """Study config -> the step_cost.py method with its training step: 'rat-e0.5-s1-warm' -> 'rat_e0.5'."""
    base = config[:-len("-warm")] if config.endswith("-warm") else config
    if base.startswith("rat-e"):
        return "rat_" + base.split("-")[1]
    return base


def measured_cost_values(measured: dict[str, Any]) -> dict[str, Any]:
    """What benchmarks/step_cost.py's JSON says: the command, device and settings, the 1-minute load
    average at its start and end ("load"; None when not recorded), "busy" (True: other jobs shared
    the cores, a load of 1 or more at the start; None without a load) and the ratios over SAT's step
    per input size ("ratios": size -> method -> ratio)."""
    load = measured.get("load_average") or None
    return {**{k: measured[k] for k in ("command", "device", "cpu_count", "batch_size", "num_steps", "num_samples")},
            # the benchmark's own threads come after the first reading
            "load": load, "busy": None if load is None else load[0] >= 1, "ratios": measured["over_sat"]}


MEASURED_SIZES = {"mnist": "MNIST size (28x28x1)", "cifar": "CIFAR-10 size (32x32x3)"}


def measured_cost(path: str = STEP_COST) -> list[str]:
    """The in-process step-cost ratios of benchmarks/step_cost.py (each input size it ran), if measured."""
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        v = measured_cost_values(json.load(f))
    load = v["load"]
    busy = (T.LOAD_NOT_RECORDED if load is None else
            (T.LOAD_BUSY if v["busy"] else T.LOAD_IDLE).substitute(start=f"{load[0]:g}", end=f"{load[1]:g}"))
    per_size = "; ".join(f"{MEASURED_SIZES.get(size, size)}: " + ", ".join(f"{m} {r:.3f}x" for m, r in ratios.items())
                         for size, ratios in v["ratios"].items())
    fields = {k: v[k] for k in ("command", "device", "cpu_count", "batch_size", "num_steps", "num_samples")}
    return ["", T.MEASURED_COST.substitute(fields, busy=busy, per_size=per_size)]


def study_reading(finished: set[str]) -> list[str]:
    if not T.STUDY_READING:
        return []
    lines = [T.STUDY_READING_HEAD, ""]
    if finished != set(T.STUDY_READING_RUNS):
        lines += [T.STUDY_READING_STALE.substitute(runs=", ".join(T.STUDY_READING_RUNS)), ""]
    return lines + [*T.STUDY_READING, ""]


def study_head(results_rel: str) -> list[str]:
    """The study's title, what it varies, and its budget."""
    evaluation = {k: study.EVAL[k] for k in study.EVAL}
    mnist = budget_text({"epochs": study.BUDGETS["mnist"]["mnist_epochs"],
                         "max_train_examples": study.BUDGETS["mnist"]["max_train_examples"], "eval": evaluation},
                        "MNIST")
    bars = " / ".join(f"{v:.0f}% ({DATASET_NAMES[d]})" for d, v in TRAINED_CLEAN.items())
    cifar_epochs = f"{study.BUDGETS['cifar10']['cifar_epochs']:g}"
    return T.STUDY_HEAD.substitute(results_rel=results_rel, warmup=study.WARMUP, mnist_budget=mnist,
                                   cifar_epochs=cifar_epochs, trained_bars=bars).split("\n")


def study_summary_table(summary: "OrderedDict[str, dict[str, Any]]", dataset: str) -> list[str]:
    sat_cost = summary.get("sat", {}).get("cost") or summary.get("sat-warm", {}).get("cost")
    sat_cost_mean = stats(sat_cost)[0] if sat_cost else None
    step_ratios = _step_ratios(dataset)
    lines = ["| config | seeds done | trained | clean | worst case | PGD − worst | cost vs SAT |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for config, e in summary.items():
        if not e["runs"]:
            lines.append(f"| {config} | 0 | | {NOT_RUN} | | | |")
            continue
        measured = step_ratios.get(_step_cost_key(config))
        cost = (f"{measured:.2f}x" if measured is not None
                else f"~{stats(e['cost'])[0] / sat_cost_mean:.2f}x" if e["cost"] and sat_cost_mean else "–")
        lines.append(f"| {config} | {len(e['runs'])} | {len(e['trained'])}/{len(e['runs'])} | "
                     f"{mean_sd(e['clean'])} | **{mean_sd(e['worst'])}** | {mean_sd(e['gap'])} | {cost} |")
    return lines


def study_verdicts(summary: "OrderedDict[str, dict[str, Any]]") -> list[str]:
    verdicts = [(study.CANDIDATE, ["sat-warm", "sat", "rat"]),
                (f"{study.CANDIDATE}-warm", ["sat-warm", "rat-warm", study.CANDIDATE]),
                ("rat-warm", ["sat-warm", "rat"])]
    grid_best = best_grid_setting(summary)
    if grid_best:
        verdicts.append((grid_best, ["sat-warm", "sat", "rat", study.CANDIDATE]))
    lines = []
    for candidate, baselines in verdicts:
        if candidate in summary:   # the configs this dataset runs
            lines += study_verdict(summary, candidate, [b for b in baselines if b in summary])
    return lines


STUDY_RUN_ATTACKS = ("pgd", "apgd_t", "square")   # the study's every-run columns (the rows hold every attack)


def study_runs_table(rows: dict[str, dict[str, Any]], dataset: str) -> list[str]:
    """One line per run: clean, every attack, the worst case and the training curve (whole percent)."""
    runs = [run for run in study.RUNS if run.dataset == dataset and run.name in rows]
    keys = [k for k in STUDY_RUN_ATTACKS if any(k in rows[run.name]["attacks"] for run in runs)]
    titles = dict(ATTACK_COLUMNS)
    lines = [T.STUDY_EVERY_RUN, "", T.STUDY_CURVES_NOTE, "",
             "| run | clean | " + " | ".join(titles[k].format(pgd=study.EVAL["pgd_steps"]) for k in keys) +
             " | **worst** | training accuracy per Keras epoch |", "|---|" + "---:|" * (len(keys) + 2) + "---|"]
    for run in runs:
        row = rows[run.name]
        curve = " ".join(f"{100 * c[1]:.0f}" for c in row.get("train_curve") or [])
        lines.append(f"| {run.name} | {fmt(row['clean'], 1)} | " +
                     " | ".join(fmt(row["attacks"].get(k), 1) for k in keys) +
                     f" | **{fmt(row['worst_case'], 1)}** | {curve} |")
    return lines


def study_dataset_section(rows: dict[str, dict[str, Any]], dataset: str, inline_runs: bool = True) -> list[str]:
    """One dataset of the study: summary, verdict, best setting, reading (MNIST), every run (or, with
    `inline_runs` False, a link to the page that has them, `study_runs_page`)."""
    summary = study_summary(rows, dataset)
    title = dataset.upper() if dataset == "mnist" else "CIFAR-10"
    if not any(e["runs"] for e in summary.values()):
        return [T.STUDY_NO_DATASET_RUN.substitute(dataset=dataset), ""]
    lines = [T.STUDY_SUMMARY.substitute(dataset=title), "", T.STUDY_SUMMARY_NOTE, "",
             *study_summary_table(summary, dataset)]
    if dataset == "mnist":
        lines += measured_cost()
    lines += ["", T.STUDY_VERDICT, "", *study_verdicts(summary), ""]
    done = [e for e in summary.values() if e["runs"]]
    best = max(done, key=lambda e: stats(e["worst"])[0])
    best_name = next(k for k, v in summary.items() if v is best)
    lines += [T.STUDY_BEST.substitute(config=best_name, worst=mean_sd(best["worst"])), ""]
    if dataset == "mnist":
        lines += study_reading(set(rows))
    if not inline_runs:
        return lines + [T.STUDY_RUNS_LINK.substitute(page=os.path.basename(STUDY_RUNS_PAGE)), ""]
    return lines + [*study_runs_table(rows, dataset), ""]


STUDY_RUNS_PAGE = os.path.join(REPO, "docs", "STUDY_RUNS.md")


def study_runs_page(rows_all: list[dict[str, Any]], results_rel: str) -> list[str]:
    """The study's every-run tables, one per dataset (their own page, to keep RESULTS.md short)."""
    rows = {r["name"]: r for r in rows_all}
    lines = [T.STUDY_RUNS_HEAD.substitute(results_rel=results_rel), ""]
    for dataset in ("mnist", "cifar10"):
        if any(run.dataset == dataset and run.name in rows for run in study.RUNS):
            lines += [f"## {'MNIST' if dataset == 'mnist' else 'CIFAR-10'}", "", *study_runs_table(rows, dataset), ""]
    return lines


def study_section(rows_all: list[dict[str, Any]], results_rel: str, inline_runs: bool = True) -> list[str]:
    rows = {r["name"]: r for r in rows_all}   # a later row of the same name wins
    lines = study_head(results_rel)
    if not rows:
        lines += [T.STUDY_NO_RUN, ""]
    for dataset in ("mnist", "cifar10"):
        lines += study_dataset_section(rows, dataset, inline_runs)
    lines += [*T.PROTOTYPE_HEAD.split("\n"), "| method | seeds | clean | worst case |", "|---|---|---|---|",
              *[f"| {a} | {b} | {c} | {d} |" for a, b, c, d in PROTOTYPE], ""]
    return lines + [T.STUDY_CONTINUE, ""]
