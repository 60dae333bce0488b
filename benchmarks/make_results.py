"""Writes docs/RESULTS.md (and the README's results table) from the result runners' JSON lines.

    python benchmarks/make_results.py [--results benchmarks/results/reproduce.jsonl] [--study_results ...]
        [--figures ...] [--overfit_results benchmarks/results/overfit.jsonl] [--out docs/RESULTS.md] [--readme ...]

Order of the page: the robust-overfitting study (benchmarks/overfit.py) when its file exists, then
the CPU-scale reproduction (benchmarks/reproduce.py): AutoAttack's standard version (`cpu-autoattack`
rows) when any row has it, then one section per budget, the largest first (a budget that another
supersedes is one line), the paper's tables with this repository's numbers next to the paper's, a
reading generated from the numbers; the Fig. 3-5 analogues; the study beyond the paper
(benchmarks/study.py). Rows of different budgets are never mixed in one table. The exact commands
are not repeated: every row holds its own (`commands`), and the page says so once.

The prose is in benchmarks/results_templates.py (templates with named fields), the
robust-overfitting study's section in benchmarks/results_overfit.py. This module computes the
values that fill the templates (the `*_values` functions return them as dicts, which the tests
check) and builds the tables. Each page section has its own function.
"""

from __future__ import annotations

import argparse
from collections import OrderedDict
import json
import os
import sys
from typing import Any, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import figures  # noqa: E402
import reproduce  # noqa: E402
from results_common import LABELS, mean_sd, stats  # noqa: E402
import results_overfit as O  # noqa: E402
import results_templates as T  # noqa: E402
import study  # noqa: E402

REPO = reproduce.REPO

# The paper's numbers (Song et al., AAAI 2022), copied from its text. CIFAR-10, eps 8/255,
# WRN-34-10, 80k SGD steps; PGD and CW-inf with K = 10, step 2/255; NAttack on 1,000 images.
PAPER_TABLE1_CIFAR10 = OrderedDict([
    # method: (Clean, FGSM, PGD, CW-inf, NAttack)
    ("st", (95.42, 12.91, 0.00, 0.00, 0.00)),
    ("sat", (86.92, 55.58, 47.74, 48.64, 47.20)),
    ("trades", (85.84, 59.23, 50.39, 51.02, 50.30)),
    ("avmixup", (92.40, 76.92, 62.19, 56.83, 58.00)),
    ("adt", (87.98, 58.25, 49.27, 50.38, 47.60)),
    ("rat", (93.17, 77.51, 70.57, 65.54, 69.70)),
])
PAPER_TABLE3 = OrderedDict([  # Clean, PGD, CW-inf (CIFAR-10)
    ("sat", (86.92, 47.74, 48.64)),
    ("sat_ars", (87.67, 52.59, 50.87)),
    ("rat", (93.17, 70.57, 65.34)),
])
PAPER_TABLE4 = OrderedDict([  # (beta_max, beta_min): Clean, PGD, CW-inf (CIFAR-10)
    (("1.0", "0.1"), (90.94, 70.57, 65.54)),
    (("1.0", "0.3"), (92.59, 64.87, 61.53)),
    (("1.0", "0.5"), (91.55, 62.86, 56.95)),
    (("0.8", "0.1"), (92.33, 66.44, 63.47)),
    (("0.6", "0.1"), (91.65, 62.93, 59.88)),
])
PAPER_MINUTES_PER_1000 = {"sat": 41.88, "rat": 47.95}

# The report titles of rat_tf.evaluation.suite.REGISTRY (a test keeps them equal; importing the
# registry here would import TensorFlow, seconds for a page of tables), plus AutoAttack's own key.
ATTACK_TITLES = OrderedDict([("fgsm", "FGSM"), ("pgd", "PGD"), ("cw", "CW-inf"), ("apgd_ce", "APGD-CE"),
                             ("apgd_dlr", "APGD-DLR"), ("apgd_t", "APGD-T"), ("fab", "FAB"), ("fab_t", "FAB-T"),
                             ("square", "Square"), ("nattack", "NAttack"), ("autoattack", "AutoAttack")])
# (key, column title); PGD's title gets its number of steps.
ATTACK_COLUMNS = [(k, "PGD-{pgd}" if k == "pgd" else title) for k, title in ATTACK_TITLES.items()]
AUTOATTACK_PRESET = "cpu-autoattack"   # AutoAttack's standard version plus FGSM, PGD-20, CW-inf (reproduce.py)
CASCADE = ("apgd_ce", "apgd_t", "fab_t", "square")   # AutoAttack's attacks, in cascade order
NOT_RUN = "not yet run"
LARGE_GAP = 10.0   # PGD-CE minus worst case, points, above which PGD-CE overstates robustness


DATASET_NAMES = OrderedDict([("mnist", "MNIST"), ("cifar10", "CIFAR-10")])


def fmt(value: Optional[float], digits: int = 1) -> str:
    """An accuracy or a difference in points: one decimal (1,000 test images resolve 0.1 points)."""
    return "–" if value is None else f"{value:.{digits}f}"


def budget_values(budget: dict[str, Any], dataset: str) -> dict[str, Any]:
    """The fields of `T.BUDGET` for one dataset's budget."""
    e = budget["eval"]
    warmup = budget.get("epsilon_warmup")
    return {
        "epochs": f"{budget['epochs']:g}", "dataset": dataset,
        "subset": (T.BUDGET_SUBSET.substitute(max_train_examples=f"{budget['max_train_examples']:,}")
                   if budget.get("max_train_examples") else T.BUDGET_ALL_IMAGES),
        "warmup": (T.BUDGET_WARMUP.substitute(warmup_text=warmup.replace("epochs", " epoch(s)"), warmup=warmup)
                   if warmup else ""),
        "eval_examples": f"{e['eval_examples']:,}", "pgd_steps": e["pgd_steps"], "cw_steps": e["cw_steps"],
        "apgd_steps": e["apgd_steps"], "apgd_targets": e["apgd_targets"],
        "square_queries": f"{e['square_queries']:,}", "nattack_iterations": e.get("nattack_iterations"),
        "nattack_population": e.get("nattack_population"), "nattack_examples": f"{e.get('nattack_examples', 0):,}",
        "fab_steps": e.get("fab_steps"), "fab_targets": e.get("fab_targets"),
    }


def budget_text(budget: dict[str, Any], dataset: str) -> str:
    """A budget in words; one with FAB-T's budget is AutoAttack's standard version (plus FGSM, PGD, CW-inf)."""
    template = T.BUDGET_AUTOATTACK if "fab_steps" in budget["eval"] else T.BUDGET
    return template.substitute(budget_values(budget, dataset))


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


def attack_keys(rows: dict[str, dict[str, Any]]) -> list[str]:
    """The ATTACK_COLUMNS keys that at least one of `rows` has, in column order."""
    return [k for k, _ in ATTACK_COLUMNS if any(k in r.get("attacks", {}) for r in rows.values())]


def attack_header(pgd_steps: int, keys: Optional[list[str]] = None) -> list[str]:
    return [label.format(pgd=pgd_steps) for k, label in ATTACK_COLUMNS if keys is None or k in keys]


def table1(rows: dict[str, dict[str, Any]], dataset: str, pgd_steps: int) -> list[str]:
    runs = [r for r in reproduce.RUNS if f"table1-{dataset}" in r.tables]
    keys = attack_keys(rows)
    head = ["model", "Clean", *attack_header(pgd_steps, keys), "**Worst case**", "PGD − worst", "train s", "eval s"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" + "---:|" * (len(head) - 1)]
    for run in runs:
        row = rows.get(run.name)
        label = LABELS[run.method]
        if row is None:
            out.append(f"| {label} | {NOT_RUN} |" + " |" * (len(head) - 2))
            continue
        a = row["attacks"]
        cells = [fmt(row["clean"]), *[fmt(a.get(k)) for k in keys], f"**{fmt(row['worst_case'])}**",
                 fmt(a["pgd"] - row["worst_case"]) if "pgd" in a else "–", f"{row['train_seconds']:.0f}",
                 f"{row['eval_seconds']:.0f}"]
        out.append(f"| {label} | " + " | ".join(cells) + " |")
    return out


def paper_table1() -> list[str]:
    out = ["| model (paper, CIFAR-10, WRN-34-10) | Clean | FGSM | PGD-10 | CW-inf | NAttack |",
           "|---|---:|---:|---:|---:|---:|"]
    for method, values in PAPER_TABLE1_CIFAR10.items():
        out.append(f"| {LABELS[method]} | " + " | ".join(fmt(v, 2) for v in values) + " |")
    return out


def table3(rows: dict[str, dict[str, Any]], pgd_steps: int) -> list[str]:
    out = [f"| model | Clean | PGD-{pgd_steps} | CW-inf | Worst case | paper Clean | paper PGD-10 | paper CW-inf |",
           "|---|---:|---:|---:|---:|---:|---:|---:|"]
    names = {"sat": "SAT", "sat_ars": "SAT+ARS", "rat": "SAT+ARS+DLS (RAT)"}
    for method, paper in PAPER_TABLE3.items():
        row = rows.get(f"mnist-{method}")
        ours = ([fmt(row["clean"]), fmt(row["attacks"].get("pgd")), fmt(row["attacks"].get("cw")),
                 fmt(row["worst_case"])] if row else [NOT_RUN, "", "", ""])
        out.append(f"| {names[method]} | " + " | ".join(ours + [fmt(v, 2) for v in paper]) + " |")
    return out


def table4(rows: dict[str, dict[str, Any]], pgd_steps: int) -> list[str]:
    out = [f"| beta_max | beta_min | Clean | PGD-{pgd_steps} | CW-inf | Worst case | paper Clean | paper PGD-10 "
           "| paper CW-inf |", "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for (bmax, bmin), paper in PAPER_TABLE4.items():
        name = "mnist-rat" if (bmax, bmin) == ("1.0", "0.1") else f"mnist-rat-b{bmax}-{bmin}"
        row = rows.get(name)
        ours = ([fmt(row["clean"]), fmt(row["attacks"].get("pgd")), fmt(row["attacks"].get("cw")),
                 fmt(row["worst_case"])] if row else [NOT_RUN, "", "", ""])
        out.append(f"| {bmax} | {bmin} | " + " | ".join(ours + [fmt(v, 2) for v in paper]) + " |")
    return out


def seeds_table(rows: dict[str, dict[str, Any]], pgd_steps: int) -> list[str]:
    out = [f"| model | seed | Clean | PGD-{pgd_steps} | CW-inf | Worst case |", "|---|---:|---:|---:|---:|---:|"]
    for method in ("sat", "rat"):
        for name, seed in ((f"mnist-{method}", 0), (f"mnist-{method}-seed1", 1)):
            row = rows.get(name)
            if row is None:
                out.append(f"| {LABELS[method]} | {seed} | {NOT_RUN} | | | |")
            else:
                out.append(f"| {LABELS[method]} | {seed} | {fmt(row['clean'])} | {fmt(row['attacks'].get('pgd'))} | "
                           f"{fmt(row['attacks'].get('cw'))} | {fmt(row['worst_case'])} |")
    return out


def cost_table(rows: dict[str, dict[str, Any]]) -> list[str]:
    out = ["| run | steps | s / 1,000 steps (fit) | relative to SAT | train wall s | eval wall s |",
           "|---|---:|---:|---:|---:|---:|"]
    sat = rows.get("mnist-sat")
    sat_cost = sat["seconds_per_1000_steps"] if sat else None
    for run in reproduce.RUNS:
        row = rows.get(run.name)
        if row is None or not row.get("seconds_per_1000_steps"):
            continue
        rel = (f"{row['seconds_per_1000_steps'] / sat_cost:.2f}x"
               if sat_cost and run.dataset == "mnist" else "–")
        out.append(f"| {run.name} | {row['train_steps']} | {row['seconds_per_1000_steps']:.0f} | {rel} | "
                   f"{row['train_seconds']:.0f} | {row['eval_seconds']:.0f} |")
    return out


def _diff(a: float, b: float) -> str:
    return f"{a - b:+.1f}"


def trained_floor(rows: dict[str, dict[str, Any]], dataset: str) -> float:
    """Clean accuracy below which a model counts as barely trained: half of ST's at the same budget
    (a small CNN after 780 steps on CIFAR-10 is far from MNIST's 99%), 50% without an ST row."""
    st = rows.get(f"{dataset}-st")
    return 0.5 * st["clean"] if st else 50.0



def _value(row: dict[str, Any], key: str) -> float:
    return row[key] if key in ("clean", "worst_case") else row["attacks"][key]


def rat_vs_sat_values(sat: dict[str, Any], rat: dict[str, Any]) -> dict[str, Any]:
    """Where RAT is above and below SAT, and the differences (RAT minus SAT, points)."""
    keys = ["clean", *[k for k, _ in ATTACK_COLUMNS if k in sat["attacks"] and k in rat["attacks"]], "worst_case"]
    return {"better": [k for k in keys if _value(rat, k) > _value(sat, k)],
            "worse": [k for k in keys if _value(rat, k) < _value(sat, k)],
            "strongest": {r["name"]: min(r["attacks"], key=r["attacks"].get) for r in (sat, rat)},
            **{f"d_{k}": _value(rat, k) - _value(sat, k) for k in ("clean", "pgd", "worst_case")}}


def _rat_vs_sat(rows: dict[str, dict[str, Any]], dataset: str, sat: dict[str, Any], rat: dict[str, Any],
                noise: Optional[float]) -> list[str]:
    v = rat_vs_sat_values(sat, rat)
    pgd_steps = rat["budget"]["eval"]["pgd_steps"]
    names = {k: label.format(pgd=pgd_steps) for k, label in ATTACK_COLUMNS}
    names.update(clean="clean", worst_case="worst case")
    out = [T.RAT_VS_SAT.substitute(
        dataset=DATASET_NAMES[dataset], better=", ".join(names[k] for k in v["better"]) or "nothing",
        worse=", ".join(names[k] for k in v["worse"]) or "nothing", pgd_label=f"PGD-{pgd_steps}",
        **{f"{who}_{k}": fmt(_value(r, key)) for who, r in (("rat", rat), ("sat", sat))
           for k, key in (("clean", "clean"), ("pgd", "pgd"), ("worst", "worst_case"))},
        d_clean=_diff(rat["clean"], sat["clean"]), d_pgd=_diff(rat["attacks"]["pgd"], sat["attacks"]["pgd"]),
        d_worst=_diff(rat["worst_case"], sat["worst_case"]))]
    out.append(T.STRONGEST.substitute(parts="; ".join(
        f"{name}: {names[k]} ({fmt(rows[name]['attacks'][k])})" for name, k in v["strongest"].items())))
    if sat["clean"] < trained_floor(rows, dataset) <= rat["clean"]:
        out.append(T.CAVEAT.substitute(sat_clean=fmt(sat["clean"]), rat_clean=fmt(rat["clean"])))
    if noise is not None:
        gap = abs(v["d_worst_case"])
        out.append(T.SEED_NOISE.substitute(noise=f"{noise:.1f}", gap=f"{gap:.1f}",
                                           larger="larger" if gap > noise else "not larger"))
    else:
        out.append(T.NO_SECOND_SEED.substitute(dataset=DATASET_NAMES[dataset]))
    out.append(T.PAPER_CLAIM.substitute(dataset=DATASET_NAMES[dataset], d_pgd=_diff(rat["attacks"]["pgd"],
                                        sat["attacks"]["pgd"]), d_worst=_diff(rat["worst_case"], sat["worst_case"])))
    return out


SOFT_LABEL_METHODS = ("rat", "avmixup")


def signature_values(rows: dict[str, dict[str, Any]], dataset: str) -> Optional[dict[str, Any]]:
    """PGD-CE minus the worst case per method of one dataset, split at LARGE_GAP; None without rows.

    "kind" says what the large gaps have in common: "soft_only" (only soft-label methods),
    "not_only_soft" (a one-hot method too), "no_soft_row" or None; "ars_share" is "most" or
    "part" when SAT+ARS (RAT's region samples with one-hot labels) has a large gap.
    """
    gaps = OrderedDict()
    for method in ("rat", "avmixup", "sat", "sat_ars", "trades", "adt"):
        row = rows.get(f"{dataset}-{method}")
        if row and "pgd" in row["attacks"]:
            gaps[method] = row["attacks"]["pgd"] - row["worst_case"]
    if not gaps:
        return None
    large = [m for m, g in gaps.items() if g > LARGE_GAP]
    soft_large = [m for m in large if m in SOFT_LABEL_METHODS]
    hard_large = [m for m in large if m not in SOFT_LABEL_METHODS]
    kind = ("soft_only" if soft_large and not hard_large else "not_only_soft" if soft_large
            else "no_soft_row" if not any(m in SOFT_LABEL_METHODS for m in gaps) else None)
    ars_share = None
    if kind == "not_only_soft" and "sat_ars" in hard_large and "rat" in gaps:
        ars_share = "most" if gaps["sat_ars"] >= 0.5 * gaps["rat"] else "part"
    return {"gaps": gaps, "large": large, "small": [m for m, g in gaps.items() if g <= LARGE_GAP],
            "hard_large": hard_large, "kind": kind, "ars_share": ars_share}


def _signature_reading(rows: dict[str, dict[str, Any]], dataset: str) -> Optional[str]:
    v = signature_values(rows, dataset)
    if v is None:
        return None
    gaps = v["gaps"]
    text = T.SIGNATURE.substitute(dataset=DATASET_NAMES[dataset],
                                  parts=", ".join(f"{LABELS[m]} {g:.1f}" for m, g in gaps.items()))
    if v["large"]:
        text += T.SIGNATURE_LARGE.substitute(limit=f"{LARGE_GAP:g}", methods=", ".join(LABELS[m] for m in v["large"]))
    if v["small"]:
        text += T.SIGNATURE_SMALL.substitute(methods=", ".join(LABELS[m] for m in v["small"]))
    if v["kind"] == "soft_only":
        text += T.SIGNATURE_SOFT_ONLY
    elif v["kind"] == "not_only_soft":
        plural = len(v["hard_large"]) > 1
        text += T.SIGNATURE_NOT_ONLY_SOFT.substitute(methods=", ".join(LABELS[m] for m in v["hard_large"]),
                                                     train="train" if plural else "trains",
                                                     have="have" if plural else "has")
        if v["ars_share"]:
            text += T.SIGNATURE_ARS_SHARE.substitute(share=v["ars_share"], ars_gap=f"{gaps['sat_ars']:.1f}",
                                                     rat_gap=f"{gaps['rat']:.1f}")
    elif v["kind"] == "no_soft_row":
        text += T.SIGNATURE_NO_SOFT
    return text.strip()


def seed_noise(rows: dict[str, dict[str, Any]]) -> Optional[float]:
    """The largest worst-case difference between seeds 0 and 1 of MNIST's SAT and RAT, or None."""
    spreads = []
    for method in ("sat", "rat"):
        a, b = rows.get(f"mnist-{method}"), rows.get(f"mnist-{method}-seed1")
        if a and b:
            spreads.append(abs(a["worst_case"] - b["worst_case"]))
    return max(spreads) if spreads else None


def table4_values(rows: dict[str, dict[str, Any]], noise: Optional[float]) -> Optional[dict[str, Any]]:
    """The beta settings that ran: lowest and best worst case, those above the default by more than `noise`."""
    rat = rows.get("mnist-rat")
    done = [r for r in (rows.get(f"mnist-rat-b{a}-{b}") for (a, b) in PAPER_TABLE4 if (a, b) != ("1.0", "0.1")) if r]
    if not (rat and done):
        return None
    every = [rat, *done]
    return {"settings": len(every), "best": max(every, key=lambda r: r["worst_case"]),
            "low": min(every, key=lambda r: r["worst_case"]), "default": rat,
            "above_noise": (None if noise is None else
                            [r["name"] for r in done if r["worst_case"] - rat["worst_case"] > noise]),
            "every_gap_large": all(r["attacks"]["pgd"] - r["worst_case"] > LARGE_GAP for r in every)}


def reading(rows: dict[str, dict[str, Any]]) -> list[str]:
    """Plain-language reading generated from the numbers of one budget."""
    out = []
    noise = seed_noise(rows)   # second seeds: MNIST only
    for dataset in DATASET_NAMES:
        sat, rat = rows.get(f"{dataset}-sat"), rows.get(f"{dataset}-rat")
        if sat and rat:
            out += _rat_vs_sat(rows, dataset, sat, rat, noise if dataset == "mnist" else None)
    for dataset in DATASET_NAMES:
        text = _signature_reading(rows, dataset)
        if text:
            out.append(text)
    sat, ars, rat = rows.get("mnist-sat"), rows.get("mnist-sat_ars"), rows.get("mnist-rat")   # Tables 3, 4: MNIST
    if sat and ars and rat:
        out.append(T.TABLE3_READING.substitute(
            **{f"{who}_{k}": fmt(r[key]) for who, r in (("sat", sat), ("ars", ars), ("rat", rat))
               for k, key in (("worst", "worst_case"), ("clean", "clean"))},
            d_ars_worst=_diff(ars["worst_case"], sat["worst_case"]), d_ars_clean=_diff(ars["clean"], sat["clean"]),
            d_dls_worst=_diff(rat["worst_case"], ars["worst_case"]), d_dls_clean=_diff(rat["clean"], ars["clean"])))
    t4 = table4_values(rows, noise)
    if t4:
        text = T.TABLE4_READING.substitute(
            settings=t4["settings"], low=fmt(t4["low"]["worst_case"]), low_name=t4["low"]["name"],
            best=fmt(t4["best"]["worst_case"]), best_name=t4["best"]["name"], default=fmt(rat["worst_case"]))
        if t4["above_noise"] is not None:
            text += T.TABLE4_ABOVE_NOISE.substitute(noise=f"{noise:.1f}", above=", ".join(t4["above_noise"]) or "none")
        text += T.TABLE4_PAPER
        if t4["every_gap_large"]:
            text += T.TABLE4_EVERY_GAP.substitute(limit=f"{LARGE_GAP:g}")
        out.append(text + ".")
    weak = [(r["name"], r["attacks"][k], r["worst_case"], label) for r in rows.values() if r["method"] == "st"
            for k, label in (("nattack", "NAttack"), ("square", "Square")) if k in r["attacks"]]
    weak = [w for w in weak if w[1] - w[2] > 10]
    if weak:
        out.append(T.BLACK_BOX.substitute(
            parts="; ".join(T.BLACK_BOX_PART.substitute(attack=label, name=name, accuracy=fmt(acc), worst=fmt(worst))
                            for name, acc, worst, label in weak),
            attacks=" and ".join(sorted({w[3] for w in weak}))))
    chance = [r for r in rows.values() if r["clean"] < 20.0]
    barely = [r for r in rows.values()
              if 20.0 <= r["clean"] < trained_floor(rows, r["name"].split("-")[0]) and r["method"] != "st"]
    if chance:
        out.append(T.NOT_TRAINED.substitute(runs=", ".join(f"{r['name']} (clean {fmt(r['clean'])})" for r in chance)))
    if barely:
        out.append(T.BARELY_TRAINED.substitute(
            runs=", ".join(f"{r['name']} (clean {fmt(r['clean'])})" for r in barely)))
    # evaluate_main's check that PGD-CE is within 3 points of the worst case fires on most robust
    # models; its gaps are the `PGD − worst` column, so it is counted here, not quoted per model.
    fired = [(r["name"], msg) for r in rows.values() for msg in r.get("checks_fired", [])]
    flatters = sorted({name for name, msg in fired if msg.startswith("PGD-CE accuracy is")})
    others = sorted({(name, msg) for name, msg in fired if not msg.startswith("PGD-CE accuracy is")})
    if flatters:
        out.append(T.SELF_CHECKS.substitute(failed=len(flatters), total=len(rows), limit=LARGE_GAP))
    if others:
        out.append(T.OTHER_CHECKS.substitute(checks="; ".join(f"{name}: {msg}" for name, msg in others)))
    elif any("checks_fired" in r for r in rows.values()):
        out.append(T.NO_OTHER_CHECKS)
    return out


def commands_section(repro: dict[str, dict[str, Any]], study_rows: dict[str, dict[str, Any]]) -> list[str]:
    """Where the exact commands are (the rows' `commands`), with one example per runner."""
    examples = []
    rat = repro.get("mnist-rat")
    if rat:
        examples.append(("benchmarks/reproduce.py", "mnist-rat", "evaluate", rat["commands"]["evaluate"]))
    name = next((n for n in (f"mnist-{study.CANDIDATE}-warm-seed0", *study_rows) if n in study_rows), None)
    if name:
        examples.append(("benchmarks/study.py", name, "train", study_rows[name]["commands"]["train"]))
    lines = [T.COMMANDS, "", T.COMMANDS_WHERE]
    for runner, run, which, command in examples:
        lines += ["", T.COMMANDS_EXAMPLE.substitute(runner=runner, name=run, which=which), "", "```bash", command,
                  "```"]
    return lines + [""]


def full_evaluation(groups: "OrderedDict[str, dict[str, dict[str, Any]]]") -> Optional[str]:
    """The section that re-evaluated every model of the published budget on 1,000+ images, if any.

    group_rows puts such a complete re-evaluation first, ahead of the published budget itself.
    """
    first = next(iter(groups), None)
    if (first is None or first == "cpu" or first.split()[0] != "cpu" or "cpu" not in groups
            or min(r.get("budget", {}).get("eval", {}).get("eval_examples", 0) for r in groups[first].values()) < 1000):
        return None
    return first



def eval_budget_text(groups: "OrderedDict[str, dict[str, dict[str, Any]]]") -> str:
    full = full_evaluation(groups)
    return T.EVAL_BUDGET_FULL.substitute(preset=full) if full else T.EVAL_BUDGET_PARTIAL


def head_section(groups: "OrderedDict[str, dict[str, dict[str, Any]]]", results_rel: str,
                 autoattack: Optional[dict[str, dict[str, Any]]] = None) -> list[str]:
    """The page's title and the paragraphs on scale and the headline number."""
    note = (T.EVAL_BUDGET_AUTOATTACK.substitute(preset=AUTOATTACK_PRESET, runs=len(autoattack)) if autoattack else "")
    return T.REPRODUCTION_HEAD.substitute(results_rel=results_rel,
                                          eval_budget=note + eval_budget_text(groups)).split("\n")


def setting_section() -> list[str]:
    """Budgets, NAttack's budget, the warm-up and the shared training setting (after the tables)."""
    return T.REPRODUCTION_SETTING.substitute(
        train_common=", ".join(f"`{a}`" for a in reproduce.TRAIN_COMMON)).split("\n")


def budget_facts(preset: str, rows: dict[str, dict[str, Any]],
                 groups: "OrderedDict[str, dict[str, dict[str, Any]]]") -> list[str]:
    """The bullets under a budget's heading: budgets, hardware, code, runs, where models come from."""
    any_row = next(iter(rows.values()))
    budgets = OrderedDict()
    for run in reproduce.RUNS:
        if run.name in rows:
            budgets.setdefault(run.dataset, rows[run.name]["budget"])
    shared = [(name, r["shared_from"]) for name, r in rows.items() if r.get("shared_from")]
    lines = [*[T.SECTION_BUDGET.substitute(dataset=d, budget=budget_text(b, d)) for d, b in budgets.items()],
             T.SECTION_HARDWARE.substitute(hardware=any_row["hardware"]),
             T.SECTION_CODE.substitute(commits=", ".join(sorted({r["git_commit"][:12] for r in rows.values()})),
                                       first=min(r["finished_at"] for r in rows.values()),
                                       last=max(r["finished_at"] for r in rows.values())),
             T.SECTION_RUNS.substitute(done=len(rows), total=len(reproduce.RUNS), not_run=NOT_RUN)]
    base = reevaluation_of(preset, groups)
    if base:
        lines.append(T.SECTION_MODELS.substitute(base=base))
    if shared:
        lines.append(T.SECTION_SHARED.substitute(pairs=", ".join(f"{name} = `{origin['name']}`"
                                                                 for name, origin in shared)))
    return lines


def tables_section(preset: str, rows: dict[str, dict[str, Any]], first: Optional[str]) -> list[str]:
    """The paper-table analogues of one budget. The published budget (the first section) shows every
    table, "not yet run" rows included; an older or smaller budget only the tables it has a run in."""
    budget = next(iter(rows.values()))["budget"]
    pgd_steps = budget["eval"]["pgd_steps"]

    def shown(table: str) -> bool:
        return preset == first or any(table in run.tables for run in reproduce.RUNS if run.name in rows)

    lines = []
    if shown("table1-mnist"):
        note = T.SUBSET_NOTE.substitute(nattack_examples=f"{budget['eval']['nattack_examples']:,}",
                                        eval_examples=f"{budget['eval']['eval_examples']:,}", pgd_steps=pgd_steps)
        lines += [T.TABLE1_MNIST, "", *table1(rows, "mnist", pgd_steps), "", note, ""]
    if shown("table1-cifar10"):
        lines += [T.TABLE1_CIFAR10, "", *table1(rows, "cifar10", pgd_steps), ""]
    if shown("table3-mnist"):
        lines += [T.TABLE3, "", T.TABLE3_NOTE, "", *table3(rows, pgd_steps), ""]
    if shown("table4-mnist"):
        lines += [T.TABLE4, "", T.TABLE4_NOTE, "", *table4(rows, pgd_steps), ""]
    if shown("seeds-mnist"):
        lines += [T.SEEDS, "", *seeds_table(rows, pgd_steps), ""]
    return lines


def curves_section(rows: dict[str, dict[str, Any]]) -> list[str]:
    curves = [(run.name, rows[run.name]) for run in reproduce.RUNS
              if run.name in rows and rows[run.name].get("train_curve")]
    if not curves:
        return []
    lines = [T.CURVES, "", T.CURVES_NOTE, "", "| run | training accuracy (%) per Keras epoch |", "|---|---|"]
    lines += [f"| {name} | {' '.join(f'{100 * c[1]:.0f}' for c in r['train_curve'])} |" for name, r in curves]
    return lines + [""]


def cost_values(rows: dict[str, dict[str, Any]]) -> Optional[dict[str, float]]:
    """SAT's and RAT's seconds per 1,000 steps (MNIST), their ratio and the target budget's minutes."""
    sat, rat = rows.get("mnist-sat"), rows.get("mnist-rat")
    if not (sat and sat.get("seconds_per_1000_steps")):
        return None
    epochs = reproduce.PRESETS["issue"]["mnist_epochs"]
    steps = epochs * 60000 / 128
    values = {"sat": sat["seconds_per_1000_steps"], "target_epochs": epochs, "target_steps": steps,
              "target_minutes": steps * sat["seconds_per_1000_steps"] / 1000 / 60}
    if rat and rat.get("seconds_per_1000_steps"):
        values.update(rat=rat["seconds_per_1000_steps"], ratio=rat["seconds_per_1000_steps"] / values["sat"])
    return values


def cost_section(preset: str, rows: dict[str, dict[str, Any]]) -> list[str]:
    cost = cost_table(rows)
    v = cost_values(rows)
    lines = [T.COST, "", T.COST_NOTE, ""]
    if v and "ratio" in v:
        lines += [T.COST_FROM_RUNS.substitute(sat=f"{v['sat']:.0f}", rat=f"{v['rat']:.0f}",
                                              ratio=f"{v['ratio']:.2f}"), ""]
    lines += [*(cost if len(cost) > 2 else [T.NO_TIMINGS]), ""]
    if v:
        lines += [T.TARGET_COST.substitute(epochs=f"{v['target_epochs']:g}", steps=f"{v['target_steps']:,.0f}",
                                           minutes=f"{v['target_minutes']:.0f}"), ""]
    return lines


SUPERSEDED_BY = {"cpu-quick": "cpu"}   # preset -> the later budget that replaces it on the page


def every_run_table(rows: dict[str, dict[str, Any]], pgd_steps: int) -> list[str]:
    """One compact line per run of a budget: clean, PGD, worst case, their gap, cost, training curve."""
    out = [f"| run | clean | PGD-{pgd_steps} | **worst case** | PGD − worst | s / 1k steps | train s | eval s "
           "| training accuracy per epoch |", "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for run in reproduce.RUNS:
        row = rows.get(run.name)
        if row is None:
            continue
        pgd, cost = row["attacks"].get("pgd"), row.get("seconds_per_1000_steps")
        curve = " ".join(f"{100 * c[1]:.0f}" for c in row.get("train_curve") or [])
        out.append(f"| {run.name} | {fmt(row['clean'], 1)} | {fmt(pgd, 1)} | **{fmt(row['worst_case'], 1)}** | "
                   f"{fmt(None if pgd is None else pgd - row['worst_case'], 1)} | {fmt(cost, 0)} | "
                   f"{row['train_seconds']:.0f} | {row['eval_seconds']:.0f} | {curve} |")
    return out


def superseded_section(preset: str, rows: dict[str, dict[str, Any]], results_rel: str) -> list[str]:
    names = [run.name for run in reproduce.RUNS if run.name in rows]
    return [*T.SUPERSEDED.substitute(preset=preset, by=SUPERSEDED_BY[preset], runs=len(names),
                                     names=", ".join(names), results_rel=results_rel).split("\n"), ""]


def budget_section(preset: str, rows: dict[str, dict[str, Any]],
                   groups: "OrderedDict[str, dict[str, dict[str, Any]]]", first: Optional[str]) -> list[str]:
    """One budget: facts, reading, tables; then curves and cost (not for a re-evaluation of another
    budget's models). A budget whose models a complete re-evaluation (the headline section) evaluated
    again gets its facts, one compact table of every run (numbers, cost, training curve) and the cost
    notes instead."""
    full = full_evaluation(groups)
    if full and reevaluation_of(full, groups) == preset:
        return compact_budget_section(preset, rows, groups, full)
    lines = [T.SECTION_HEADING.substitute(preset=preset), "", *budget_facts(preset, rows, groups), "",
             "### Reading", "", *reading(rows), "", *tables_section(preset, rows, first)]
    if reevaluation_of(preset, groups):
        return lines
    return lines + [*curves_section(rows), *cost_section(preset, rows)]


def _same_training(rows: dict[str, dict[str, Any]], other: dict[str, dict[str, Any]]) -> bool:
    """Whether each run's budget in `rows` equals its budget in `other` but for the number of test images."""
    def strip(budget):
        return {**budget, "eval": {k: v for k, v in budget["eval"].items() if k != "eval_examples"}}
    return all(name in other and strip(row["budget"]) == strip(other[name]["budget"]) for name, row in rows.items())


def compact_budget_section(preset: str, rows: dict[str, dict[str, Any]],
                           groups: "OrderedDict[str, dict[str, dict[str, Any]]]", full: str) -> list[str]:
    """The published budget once the headline section re-evaluated its models: what differs, every run
    in one table, the cost notes."""
    e = next(iter(rows.values()))["budget"]["eval"]
    facts = budget_facts(preset, rows, groups)
    if _same_training(rows, groups[full]):
        facts = [T.SECTION_SAME_BUDGET.substitute(full=full, eval_examples=f"{e['eval_examples']:,}"),
                 *[f for f in facts if not f.startswith("- **Budget")]]
    lines = [T.SECTION_HEADING.substitute(preset=preset), "", *facts, "",
             T.REPRODUCE_RUNS_LINK.substitute(eval_examples=f"{e['eval_examples']:,}",
                                              page=os.path.basename(REPRODUCE_RUNS_PAGE)), ""]
    v = cost_values(rows)
    lines += [T.COST, "", T.COST_NOTE, ""]
    if v and "ratio" in v:
        lines += [T.COST_FROM_RUNS.substitute(sat=f"{v['sat']:.0f}", rat=f"{v['rat']:.0f}", ratio=f"{v['ratio']:.2f}"),
                  ""]
    if v:
        lines += [T.TARGET_COST.substitute(epochs=f"{v['target_epochs']:g}", steps=f"{v['target_steps']:,.0f}",
                                           minutes=f"{v['target_minutes']:.0f}"), ""]
    return lines


REPRODUCE_RUNS_PAGE = os.path.join(REPO, "docs", "REPRODUCE_RUNS.md")


def reproduce_runs_page(rows_all: list[dict[str, Any]], results_rel: str) -> list[str]:
    """The page of every run of the budget the headline section re-evaluated (its numbers, cost and
    training curve); empty while no complete re-evaluation exists (the budget's section has them)."""
    groups = group_rows(rows_all)
    groups.pop(AUTOATTACK_PRESET, None)
    full = full_evaluation(groups)
    preset = reevaluation_of(full, groups) if full else None
    if not preset:
        return []
    rows = groups[preset]
    e = next(iter(rows.values()))["budget"]["eval"]
    examples = f"{e['eval_examples']:,}"
    return [*T.REPRODUCE_RUNS_HEAD.substitute(eval_examples=examples, results_rel=results_rel).split("\n"), "",
            T.EVERY_RUN.substitute(eval_examples=examples) + f" (`--preset={preset}`)", "", T.EVERY_RUN_NOTE, "",
            *every_run_table(rows, e["pgd_steps"])]


def tail_section(groups: "OrderedDict[str, dict[str, dict[str, Any]]]") -> list[str]:
    """What is not covered, the paper's Table 1, and how to continue."""
    return [*T.NOT_COVERED_HEAD.split("\n"), *([] if full_evaluation(groups) else [T.NOT_COVERED_FULL_EVAL]),
            *T.NOT_COVERED_TAIL.split("\n"), T.PAPER_TABLE1, "", *paper_table1(), "", T.PAPER_TABLE1_NOTE, "",
            *T.CONTINUING.split("\n")]


def _run_label(run: "reproduce.Run") -> str:
    """The method's label, with the seed and the overrides of a run that is not the method's default."""
    extra = [f"seed {run.seed}"] if run.seed else []
    extra += [f"{k} {v}" for k, v in run.overrides]
    return LABELS[run.method] + (f" ({', '.join(extra)})" if extra else "")


def autoattack_table(rows: dict[str, dict[str, Any]], dataset: str) -> list[str]:
    """One line per run of `dataset` evaluated with AutoAttack's standard version (see AUTOATTACK_INTRO)."""
    runs = [run for run in reproduce.RUNS if run.dataset == dataset and run.name in rows]
    if not runs:
        return []
    pgd_steps = rows[runs[0].name]["budget"]["eval"]["pgd_steps"]
    out = [f"| method | clean | FGSM | PGD-{pgd_steps} | CW-inf | AutoAttack | **worst case** | cascade |",
           "|---|---:|---:|---:|---:|---:|---:|---|"]
    for run in runs:
        row = rows[run.name]
        a = row["attacks"]
        cascade = " / ".join(fmt(a.get(k)) for k in CASCADE)
        out.append(f"| {_run_label(run)} | {fmt(row['clean'])} | {fmt(a.get('fgsm'))} | {fmt(a.get('pgd'))} | "
                   f"{fmt(a.get('cw'))} | {fmt(a.get('autoattack'))} | **{fmt(row['worst_case'])}** | {cascade} |")
    return out


def autoattack_values(rows: dict[str, dict[str, Any]], dataset: str) -> Optional[dict[str, Any]]:
    """RAT minus SAT (seed 0) under AutoAttack, in the worst case and clean; PGD minus AutoAttack of each."""
    sat, rat = rows.get(f"{dataset}-sat"), rows.get(f"{dataset}-rat")
    if not (sat and rat and "autoattack" in sat["attacks"] and "autoattack" in rat["attacks"]):
        return None
    def gap(r):
        return r["attacks"]["pgd"] - r["attacks"]["autoattack"] if "pgd" in r["attacks"] else None
    return {"sat": sat, "rat": rat, "d_aa": rat["attacks"]["autoattack"] - sat["attacks"]["autoattack"],
            "d_worst": rat["worst_case"] - sat["worst_case"], "d_clean": rat["clean"] - sat["clean"],
            "sat_gap": gap(sat), "rat_gap": gap(rat)}


def autoattack_section(rows: dict[str, dict[str, Any]],
                       groups: "OrderedDict[str, dict[str, dict[str, Any]]]") -> list[str]:
    """The models evaluated with AutoAttack's standard version: budget, a table per dataset, a reading."""
    cpu = groups.get("cpu", {})
    same = all(cpu.get(name, {}).get("train_id") == r.get("train_id") for name, r in rows.items())
    budgets = OrderedDict()
    for run in reproduce.RUNS:
        if run.name in rows:
            budgets.setdefault(run.dataset, rows[run.name]["budget"])
    any_row = next(iter(rows.values()))
    lines = [T.AUTOATTACK_HEADING, "", T.AUTOATTACK_INTRO.substitute(
        preset=AUTOATTACK_PRESET, same=T.AUTOATTACK_SAME if same else T.AUTOATTACK_OTHER), "",
        *[T.SECTION_BUDGET.substitute(dataset=d, budget=budget_text(b, d)) for d, b in budgets.items()],
        T.SECTION_HARDWARE.substitute(hardware=any_row["hardware"]),
        T.SECTION_CODE.substitute(commits=", ".join(sorted({r["git_commit"][:12] for r in rows.values()})),
                                  first=min(r["finished_at"] for r in rows.values()),
                                  last=max(r["finished_at"] for r in rows.values())), ""]
    reading_lines = []
    for dataset, name in DATASET_NAMES.items():
        table = autoattack_table(rows, dataset)
        if not table:
            continue
        epsilon = reproduce.DATASETS[dataset]["epsilon"]
        lines += [T.AUTOATTACK_TABLE.substitute(dataset=name, epsilon=epsilon), "", *table, ""]
        v = autoattack_values(rows, dataset)
        if v:
            sat, rat = v["sat"], v["rat"]
            reading_lines.append(T.AUTOATTACK_READING.substitute(
                dataset=name, rat_aa=fmt(rat["attacks"]["autoattack"]), sat_aa=fmt(sat["attacks"]["autoattack"]),
                d_aa=f"{v['d_aa']:+.1f}", rat_worst=fmt(rat["worst_case"]), sat_worst=fmt(sat["worst_case"]),
                d_worst=f"{v['d_worst']:+.1f}", rat_clean=fmt(rat["clean"]), sat_clean=fmt(sat["clean"]),
                d_clean=f"{v['d_clean']:+.1f}", pgd_steps=rat["budget"]["eval"]["pgd_steps"],
                rat_gap=fmt(v["rat_gap"]), sat_gap=fmt(v["sat_gap"])))
    if reading_lines:
        lines += ["### Reading", "", *reading_lines, ""]
    return lines


def render(rows_all: list[dict[str, Any]], results_rel: str,
           study_rows: Optional[list[dict[str, Any]]] = None) -> str:
    """The reproduction's part of the page: head, AutoAttack's standard version (if any row has it), one
    section per budget, commands, the tail."""
    groups = group_rows(rows_all)
    autoattack = groups.pop(AUTOATTACK_PRESET, None)
    lines = head_section(groups, results_rel, autoattack)
    if autoattack:
        lines += autoattack_section(autoattack, groups)
    if not groups:
        lines += [T.NO_RUN_YET, ""]
    first = next(iter(groups), None)
    for preset, rows in groups.items():
        if SUPERSEDED_BY.get(preset) in groups:
            lines += superseded_section(preset, rows, results_rel)
        else:
            lines += budget_section(preset, rows, groups, first)
    lines += setting_section()
    if groups:
        lines += commands_section(groups[first], {r["name"]: r for r in study_rows or []})
    return "\n".join(lines + tail_section(groups))


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


def figures_section(payload: dict[str, Any]) -> list[str]:
    """The Fig. 3-5 analogues: images (paths relative to docs/) and the numbers behind them."""
    models = payload["models"]
    labels = list(models)
    lines = T.FIGURES_HEAD.substitute(n=payload["sweep_examples"], hardware=payload["hardware"],
                                      commit=payload["git_commit"][:12]).split("\n")
    for key, title in (("fig3", "Fig. 3: train vs test"), ("fig4", "Fig. 4: PGD iterations"),
                       ("fig5", "Fig. 5: epsilon")):
        path = payload["figures"][key]
        lines += [f"![{title}]({os.path.relpath(os.path.join(REPO, path), os.path.join(REPO, 'docs'))})", ""]
    lines += ["| model | train clean | test clean | clean gap | train PGD-10 | test PGD-10 | PGD gap |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    for label in labels:
        g = models[label]["gaps"]
        lines.append(f"| {label} | " + " | ".join(fmt(100 * g[k], 1) for k in (
            "train_clean", "test_clean", "clean_gap", "train_pgd", "test_pgd", "pgd_gap")) + " |")
    for key, kind, caption, header in (
            ("sweep_steps", int, T.FIGURES_STEPS, lambda k: f"K={k}"),
            ("sweep_epsilon", float, T.FIGURES_EPSILON, lambda e: f"{e:.3g}")):
        curves = {m: {kind(k): v for k, v in models[m][key]["accuracy"].items()} for m in labels}
        xs = sorted({x for curve in curves.values() for x in curve})
        lines += ["", caption, "", "| model | " + " | ".join(header(x) for x in xs) + " |",
                  "|---|" + "---:|" * len(xs)]
        for label, curve in curves.items():
            lines.append(f"| {label} | " + " | ".join(fmt(100 * curve[x], 1) if x in curve else "–"
                                                      for x in xs) + " |")
    lines += ["", T.FIGURES_READING, "", *figures_reading(models)]
    lines += ["", T.FIGURES_COMMANDS.substitute(label=labels[0]), "", "```bash", models[labels[0]]["command"], "```",
              ""]
    return lines


def figures_values(models: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The numbers the Fig. 3-5 reading quotes (accuracies and gaps in points)."""
    gaps = {m: 100 * v["gaps"]["pgd_gap"] for m, v in models.items()}
    steps, k0, k1 = OrderedDict(), None, None
    for m, v in models.items():
        curve = {int(k): a for k, a in v["sweep_steps"]["accuracy"].items()}
        ks = sorted(k for k in curve if k > 0)
        if ks:
            k0, k1 = (10 if 10 in curve else ks[0]), ks[-1]
            steps[m] = (100 * curve[k0], 100 * curve[k1])
    epsilon, points = OrderedDict(), None
    for m, v in models.items():
        curve = {float(k): a for k, a in v["sweep_epsilon"]["accuracy"].items()}
        top = max(curve)
        train = min(curve, key=lambda e: abs(e - top / 2))
        above = min((e for e in curve if e > train), default=top)
        points = (train, above, top)
        epsilon[m] = tuple(100 * curve[e] for e in points)
    return {"gaps": gaps, "ordered": sorted(gaps, key=gaps.get), "k0": k0, "k1": k1, "steps": steps,
            "drops": {m: a - b for m, (a, b) in steps.items()}, "epsilons": points, "epsilon": epsilon}


def figures_reading(models: dict[str, dict[str, Any]]) -> list[str]:
    """Plain-language lines for the Fig. 3-5 analogues."""
    v = figures_values(models)
    gaps, ordered = v["gaps"], v["ordered"]
    out = [T.FIG3_READING.substitute(parts=", ".join(f"{m} {gaps[m]:.1f}" for m in ordered),
                                     smallest=ordered[0], largest=ordered[-1])]
    if v["steps"]:
        drops = v["drops"]
        text = T.FIG4_READING.substitute(k0=v["k0"], k1=v["k1"], parts="; ".join(
            f"{m} {a:.1f} -> {b:.1f}" for m, (a, b) in v["steps"].items()))
        strong = [m for m in sorted(drops, key=drops.get, reverse=True) if drops[m] > 10]
        text += (T.FIG4_STRONG.substitute(k0=v["k0"], methods=", ".join(strong)) if strong
                 else T.FIG4_NONE_STRONG.substitute(k0=v["k0"]))
        rest = [m for m in drops if m not in strong]
        text += (T.FIG4_REST.substitute(low=f"{min(drops[m] for m in rest):.1f}",
                                        high=f"{max(drops[m] for m in rest):.1f}") if rest else T.FIG4_NO_REST)
        out.append(text)
    if v["epsilon"]:
        train, above, top = v["epsilons"]
        out.append(T.FIG5_READING.substitute(train=f"{train:g}", above=f"{above:g}", top=f"{top:g}", parts="; ".join(
            f"{m} {a:.1f} / {b:.1f} / {c:.1f}" for m, (a, b, c) in v["epsilon"].items())))
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
    """The fields of `T.MEASURED_COST` from benchmarks/step_cost.py's JSON."""
    load = measured.get("load_average")
    if not load:
        busy = T.LOAD_NOT_RECORDED
    elif load[0] >= 1:   # the benchmark's own threads come after the first reading
        busy = T.LOAD_BUSY.substitute(start=f"{load[0]:g}", end=f"{load[1]:g}")
    else:
        busy = T.LOAD_IDLE.substitute(start=f"{load[0]:g}", end=f"{load[1]:g}")
    sizes = {"mnist": "MNIST size (28x28x1)", "cifar": "CIFAR-10 size (32x32x3)"}
    per_size = "; ".join(f"{sizes.get(size, size)}: " + ", ".join(f"{m} {r:.3f}x" for m, r in ratios.items())
                         for size, ratios in measured["over_sat"].items())
    return {**{k: measured[k] for k in ("command", "device", "cpu_count", "batch_size", "num_steps", "num_samples")},
            "busy": busy, "per_size": per_size}


def measured_cost(path: str = STEP_COST) -> list[str]:
    """The in-process step-cost ratios of benchmarks/step_cost.py (each input size it ran), if measured."""
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        measured = json.load(f)
    return ["", T.MEASURED_COST.substitute(measured_cost_values(measured))]


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


README_BEGIN = "<!-- results:begin (generated by benchmarks/make_results.py; do not edit) -->"
README_END = "<!-- results:end -->"


def readme_tables(repro_rows: list[dict[str, Any]], study_rows: list[dict[str, Any]]):
    """label -> rows of the published budget (MNIST, the study's extra seeds joined), label -> rows of
    the same models evaluated on 1,000 test images (the reproduction's seeds), and label -> rows of
    AutoAttack's standard version (`AUTOATTACK_PRESET`)."""
    groups = group_rows(repro_rows)
    cpu = groups.get("cpu", {})
    table: "OrderedDict[str, list[dict[str, Any]]]" = OrderedDict()
    for run in reproduce.RUNS:
        row = cpu.get(run.name)
        if row is None or run.dataset != "mnist" or run.overrides:
            continue
        table.setdefault(LABELS[run.method], []).append(row)
    study_by_name = {r["name"]: r for r in study_rows}
    # The study's SAT and RAT with the warm-up are the reproduction's SAT and RAT (same commands but
    # the seed): its extra seeds join their rows.
    have = {r["train_id"] for rows in table.values() for r in rows if "train_id" in r}
    for label, config in (("SAT", "sat-warm"), ("RAT", "rat-warm")):
        for run in study.RUNS:
            row = study_by_name.get(run.name)
            if (label in table and row and run.dataset == "mnist" and study.config_of(run.name) == config
                    and row.get("train_id") not in have):
                table[label].append(row)
    candidate = [study_by_name[r.name] for r in study.RUNS
                 if study.config_of(r.name) == f"{study.CANDIDATE}-warm" and r.name in study_by_name
                 and r.dataset == "mnist"]
    if candidate:
        table[T.README_CANDIDATE] = candidate

    def by_label(group):
        out: "OrderedDict[str, list[dict[str, Any]]]" = OrderedDict()
        for run in reproduce.RUNS:
            if run.name in group and run.dataset == "mnist" and not run.overrides:
                out.setdefault(LABELS[run.method], []).append(group[run.name])
        return out
    aa = groups.pop(AUTOATTACK_PRESET, {})
    return table, by_label(groups.get(full_evaluation(groups) or "", {})), by_label(aa)


def readme_entries(repro_rows: list[dict[str, Any]], study_rows: list[dict[str, Any]]
                   ) -> "OrderedDict[str, dict[str, Any]]":
    """label -> {rows, over, images}: each method's largest evaluation, AutoAttack's standard version
    first, then the 1,000-image re-evaluation, then the published budget (over: "autoattack" or "suite")."""
    table, big, aa = readme_tables(repro_rows, study_rows)
    out: "OrderedDict[str, dict[str, Any]]" = OrderedDict()
    for label, rows in table.items():
        chosen, over = ((aa[label], "autoattack") if label in aa else (big[label], "suite") if label in big
                        else (rows, "suite"))
        out[label] = {"rows": chosen, "over": over,
                      "images": min(r["budget"]["eval"]["eval_examples"] if "budget" in r else r["num_examples"]
                                    for r in chosen)}
    return out


def readme_comparison(entries: "OrderedDict[str, dict[str, Any]]") -> Optional[dict[str, Any]]:
    """RAT minus SAT (means over seeds, points) in the worst case and under AutoAttack, when both show
    the same evaluation; None otherwise."""
    sat, rat = entries.get("SAT"), entries.get("RAT")
    if not (sat and rat) or (sat["over"], sat["images"]) != (rat["over"], rat["images"]):
        return None

    def mean(entry, key):
        values = [r["worst_case"] if key == "worst_case" else r["attacks"].get(key) for r in entry["rows"]]
        return stats(values)[0] if values and None not in values else None
    sat_aa, rat_aa = mean(sat, "autoattack"), mean(rat, "autoattack")
    aa = rat_aa - sat_aa if sat["over"] == "autoattack" and None not in (sat_aa, rat_aa) else None
    return {"worst_case": mean(rat, "worst_case") - mean(sat, "worst_case"), "autoattack": aa,
            "over": T.README_OVER[sat["over"]].substitute(images=f"{sat['images']:,}")}


def _direction(value: float) -> str:
    return "above" if value > 0 else "below"


def readme_block(repro_rows: list[dict[str, Any]], study_rows: list[dict[str, Any]]) -> list[str]:
    """The README's results table: MNIST, each method at its largest evaluation, mean over the seeds run."""
    entries = readme_entries(repro_rows, study_rows)
    if not entries:
        return [T.README_NO_RESULT]
    any_row = next(iter(entries.values()))["rows"][0]
    aa_budget = reproduce.PRESETS[AUTOATTACK_PRESET]
    out = [T.README_INTRO.substitute(train_steps=f"{any_row['train_steps']:,}",
                                     aa_budget=T.README_AA_BUDGET.substitute(
                                         apgd_steps=aa_budget["apgd_steps"], apgd_targets=aa_budget["apgd_targets"],
                                         square_queries=f"{aa_budget['square_queries']:,}"),
                                     suite_budget=T.README_SUITE_BUDGET.substitute(
                                         {k: f"{v:,}" for k, v in reproduce.CPU_EVAL.items()})), "",
           "| method | seeds | clean | AutoAttack, 1,000 images | **worst case** | worst case over |",
           "|---|---:|---:|---:|---:|---|"]
    for label, e in entries.items():
        rows = e["rows"]
        aa = [r["attacks"]["autoattack"] for r in rows if "autoattack" in r["attacks"]]
        aa_cell = mean_sd(aa) if e["over"] == "autoattack" and len(aa) == len(rows) else "–"
        over = T.README_OVER[e["over"]].substitute(images=f"{e['images']:,}")
        out.append(f"| {label} | {len(rows)} | {mean_sd([r['clean'] for r in rows])} | {aa_cell} | "
                   f"**{mean_sd([r['worst_case'] for r in rows])}** | {over} |")
    d = readme_comparison(entries)
    sentence = "" if d is None else T.README_COMPARISON.substitute(
        worst=f"{abs(d['worst_case']):.1f}", worst_direction=_direction(d["worst_case"]), over=d["over"],
        aa="" if d["autoattack"] is None else T.README_COMPARISON_AA.substitute(
            aa=f"{abs(d['autoattack']):.1f}", aa_direction=_direction(d["autoattack"])))
    return out + ["", sentence + T.README_DETAILS]


def update_readme(path: str, block: list[str]) -> bool:
    """Replaces the text between the README's result markers; False if the markers are missing."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if README_BEGIN not in text or README_END not in text:
        return False
    head, rest = text.split(README_BEGIN, 1)
    _, tail = rest.split(README_END, 1)
    new = head + README_BEGIN + "\n" + "\n".join(block) + "\n" + README_END + tail
    if new != text:
        from rat_tf.files import atomic_write_text  # noqa: PLC0415
        atomic_write_text(path, new)
    return True


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default=reproduce.RESULTS)
    parser.add_argument("--study_results", default=study.RESULTS)
    parser.add_argument("--figures", default=figures.RESULTS)
    parser.add_argument("--overfit_results", default=O.OVERFIT_RESULTS,
                        help="the robust-overfitting study's rows (benchmarks/overfit.py); it leads when it exists")
    parser.add_argument("--overfit_figure", default=O.OVERFIT_FIGURE, help="where its gap-curve PNG goes")
    parser.add_argument("--overfit_calibration", default=O.OVERFIT_CALIBRATION,
                        help="the calibration runs that chose the study's regime (benchmarks/overfit.py --calibration)")
    parser.add_argument("--out", default=os.path.join(REPO, "docs", "RESULTS.md"))
    parser.add_argument("--readme", default=os.path.join(REPO, "README.md"),
                        help="README whose results table (between its markers) is regenerated; '' to skip")
    args = parser.parse_args(argv)
    rows = reproduce.read_rows(args.results)
    study_rows = reproduce.read_rows(args.study_results)
    overfit_rows = O.overfit_rows(args.overfit_results)
    calibration = O.calibration_rows(args.overfit_calibration)
    docs = os.path.dirname(os.path.abspath(args.out))
    text = ""
    if overfit_rows:
        figure = O.draw_overfit_gap(O.overfit_summary(overfit_rows), args.overfit_figure)
        text = "\n".join(O.overfit_section(overfit_rows, os.path.relpath(args.overfit_results, REPO), figure,
                                           docs, calibration)) + "\n"
    text += render(rows, os.path.relpath(args.results, REPO), study_rows)
    if os.path.exists(args.figures):
        with open(args.figures, encoding="utf-8") as f:
            text += "\n" + "\n".join(figures_section(json.load(f)))
    study_rel = os.path.relpath(args.study_results, REPO)
    text += "\n" + "\n".join(study_section(study_rows, study_rel, inline_runs=False))
    from rat_tf.files import atomic_write_text  # noqa: PLC0415
    atomic_write_text(args.out, text)
    atomic_write_text(os.path.join(docs, os.path.basename(STUDY_RUNS_PAGE)),
                      "\n".join(study_runs_page(study_rows, study_rel)).rstrip() + "\n")
    reproduce_page = reproduce_runs_page(rows, os.path.relpath(args.results, REPO))
    if reproduce_page:
        atomic_write_text(os.path.join(docs, os.path.basename(REPRODUCE_RUNS_PAGE)), "\n".join(reproduce_page) + "\n")
    if calibration:
        page = O.calibration_page(calibration, os.path.relpath(args.overfit_calibration, REPO), overfit_rows)
        atomic_write_text(os.path.join(docs, os.path.basename(O.CALIBRATION_PAGE)), "\n".join(page).rstrip() + "\n")
    print(f"wrote {args.out} from {len(rows)} row(s)")
    if args.readme:
        block = O.readme_overfit(overfit_rows) + readme_block(rows, study_rows)
        if update_readme(args.readme, block):
            print(f"updated the results table in {args.readme}")
        else:
            print(f"warning: {args.readme} has no results markers; its table was not updated", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
