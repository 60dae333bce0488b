"""The CPU-scale reproduction's part of docs/RESULTS.md and docs/REPRODUCE_RUNS.md: the head,
AutoAttack's standard version, one section per budget (facts, reading, tables, curves, cost), the
setting, the commands and the tail.
"""

from __future__ import annotations

from collections import OrderedDict
import os
from typing import Any, Optional

from benchmarks import reproduction, study
from benchmarks import templates_reproduction as T
from benchmarks.results_common import (
    AUTOATTACK_PRESET,
    DATASET_NAMES,
    NOT_RUN,
    fmt,
    full_evaluation,
    group_rows,
    reevaluation_of,
)
from benchmarks.results_reading import reading
from benchmarks.results_tables import (
    autoattack_table,
    budget_text,
    cost_table,
    every_run_table,
    paper_table1,
    seeds_table,
    table1,
    table3,
    table4,
)
from benchmarks.runner import REPO


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
        train_common=", ".join(f"`{a}`" for a in reproduction.TRAIN_COMMON)).split("\n")


def budget_facts(preset: str, rows: dict[str, dict[str, Any]],
                 groups: "OrderedDict[str, dict[str, dict[str, Any]]]") -> list[str]:
    """The bullets under a budget's heading: budgets, hardware, code, runs, where models come from."""
    any_row = next(iter(rows.values()))
    budgets = OrderedDict()
    for run in reproduction.RUNS:
        if run.name in rows:
            budgets.setdefault(run.dataset, rows[run.name]["budget"])
    shared = [(name, r["shared_from"]) for name, r in rows.items() if r.get("shared_from")]
    lines = [*[T.SECTION_BUDGET.substitute(dataset=d, budget=budget_text(b, d)) for d, b in budgets.items()],
             T.SECTION_HARDWARE.substitute(hardware=any_row["hardware"]),
             T.SECTION_CODE.substitute(commits=", ".join(sorted({r["git_commit"][:12] for r in rows.values()})),
                                       first=min(r["finished_at"] for r in rows.values()),
                                       last=max(r["finished_at"] for r in rows.values())),
             T.SECTION_RUNS.substitute(done=len(rows), total=len(reproduction.RUNS), not_run=NOT_RUN)]
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
        return preset == first or any(table in run.tables for run in reproduction.RUNS if run.name in rows)

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
    curves = [(run.name, rows[run.name]) for run in reproduction.RUNS
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
    epochs = reproduction.PRESETS["issue"]["mnist_epochs"]
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


def superseded_section(preset: str, rows: dict[str, dict[str, Any]], results_rel: str) -> list[str]:
    names = [run.name for run in reproduction.RUNS if run.name in rows]
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
    for run in reproduction.RUNS:
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
        epsilon = reproduction.DATASETS[dataset]["epsilon"]
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


def commands_section(repro: dict[str, dict[str, Any]], study_rows: dict[str, dict[str, Any]]) -> list[str]:
    """Where the exact commands are (the rows' `commands`), with one example: the reproduction's evaluation
    of mnist-rat, else the study's training of its candidate (the page has room for one)."""
    rat = repro.get("mnist-rat")
    name = None if rat else next(
        (n for n in (f"mnist-{study.CANDIDATE}-warm-seed0", *study_rows) if n in study_rows), None)
    lines = [T.COMMANDS, "", T.COMMANDS_WHERE]
    if rat or name:
        runner, run, which, command = (
            ("benchmarks/reproduce.py", "mnist-rat", "evaluate", rat["commands"]["evaluate"]) if rat
            else ("benchmarks/study.py", name, "train", study_rows[name]["commands"]["train"]))
        lines += ["", T.COMMANDS_EXAMPLE.substitute(runner=runner, name=run, which=which), "", "```bash", command,
                  "```"]
    return lines + [""]


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
