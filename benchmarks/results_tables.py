"""The reproduction's tables: the paper's numbers beside this repository's (Tables 1, 3 and 4),
seeds, cost, every run, AutoAttack's standard version; and a budget in words.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Optional

from benchmarks import reproduction
from benchmarks import templates_reproduction as T
from benchmarks.results_common import ATTACK_COLUMNS, CASCADE, LABELS, NOT_RUN, fmt

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


def attack_keys(rows: dict[str, dict[str, Any]]) -> list[str]:
    """The ATTACK_COLUMNS keys that at least one of `rows` has, in column order."""
    return [k for k, _ in ATTACK_COLUMNS if any(k in r.get("attacks", {}) for r in rows.values())]


def attack_header(pgd_steps: int, keys: Optional[list[str]] = None) -> list[str]:
    return [label.format(pgd=pgd_steps) for k, label in ATTACK_COLUMNS if keys is None or k in keys]


def table1(rows: dict[str, dict[str, Any]], dataset: str, pgd_steps: int) -> list[str]:
    runs = [r for r in reproduction.RUNS if f"table1-{dataset}" in r.tables]
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
    for run in reproduction.RUNS:
        row = rows.get(run.name)
        if row is None or not row.get("seconds_per_1000_steps"):
            continue
        rel = (f"{row['seconds_per_1000_steps'] / sat_cost:.2f}x"
               if sat_cost and run.dataset == "mnist" else "–")
        out.append(f"| {run.name} | {row['train_steps']} | {row['seconds_per_1000_steps']:.0f} | {rel} | "
                   f"{row['train_seconds']:.0f} | {row['eval_seconds']:.0f} |")
    return out


def every_run_table(rows: dict[str, dict[str, Any]], pgd_steps: int) -> list[str]:
    """One compact line per run of a budget: clean, PGD, worst case, their gap, cost, training curve."""
    out = [f"| run | clean | PGD-{pgd_steps} | **worst case** | PGD − worst | s / 1k steps | train s | eval s "
           "| training accuracy per epoch |", "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for run in reproduction.RUNS:
        row = rows.get(run.name)
        if row is None:
            continue
        pgd, cost = row["attacks"].get("pgd"), row.get("seconds_per_1000_steps")
        curve = " ".join(f"{100 * c[1]:.0f}" for c in row.get("train_curve") or [])
        out.append(f"| {run.name} | {fmt(row['clean'], 1)} | {fmt(pgd, 1)} | **{fmt(row['worst_case'], 1)}** | "
                   f"{fmt(None if pgd is None else pgd - row['worst_case'], 1)} | {fmt(cost, 0)} | "
                   f"{row['train_seconds']:.0f} | {row['eval_seconds']:.0f} | {curve} |")
    return out


def _run_label(run: "reproduction.Run") -> str:
    """The method's label, with the seed and the overrides of a run that is not the method's default."""
    extra = [f"seed {run.seed}"] if run.seed else []
    extra += [f"{k} {v}" for k, v in run.overrides]
    return LABELS[run.method] + (f" ({', '.join(extra)})" if extra else "")


def autoattack_table(rows: dict[str, dict[str, Any]], dataset: str) -> list[str]:
    """One line per run of `dataset` evaluated with AutoAttack's standard version (see AUTOATTACK_INTRO)."""
    runs = [run for run in reproduction.RUNS if run.dataset == dataset and run.name in rows]
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
