"""The result pages (python -m benchmarks.make_results): their numbers and verdicts as data, and
their structure (synthetic and recorded rows).

The prose comes from the benchmarks/templates_*.py modules; these tests check the values the
`results_*` modules compute to fill it (verdicts as their outcome and numbers), the tables, the
section headings and which templated lines appear, not the wording.
"""

import argparse
from collections import OrderedDict
import json
import os
import re

import pytest

from benchmarks import (
    execution,
    figures,
    make_results,
    overfit_runs,
    reproduce,
    reproduction,
    results_calibration,
    results_common,
    results_figures,
    results_overfit,
    results_reading,
    results_readme,
    results_reproduction,
    results_study,
    results_tables,
    runner,
    study,
)
from benchmarks import templates_overfit as TO
from benchmarks import templates_readme as TM
from benchmarks import templates_reproduction as TR
from benchmarks import templates_study as TS


def row(name, clean, worst, pgd, cost=1000.0):
    return {"name": name, "clean": clean, "worst_case": worst, "attacks": {"pgd": pgd},
            "seconds_per_1000_steps": cost, "train_seconds": 1.0, "finished_at": "t", "git_commit": "c" * 12,
            "commands": {"train": "python train_main.py", "evaluate": "python evaluate_main.py"}}


def summary_of(rows):
    return results_study.study_summary({r["name"]: r for r in rows}, "mnist")


def bullet_titles(lines):
    """The bold titles of a reading's bullets ("- **Title.** ..."): the reading's structure."""
    return [m.group(1) for m in (re.match(r"- \*\*(.+?)\*\*", line) for line in lines) if m]


def test_study_runs_are_named_by_config_and_seed():
    names = [r.name for r in study.RUNS]
    assert len(names) == len(set(names))
    assert names[:3] == ["mnist-sat-warm-seed0", "mnist-rat-seed0", "mnist-rat-e0.5-s0-seed0"]
    assert study.config_of("mnist-rat-e0.5-s0-seed2") == "rat-e0.5-s0"
    overrides = {r.name: dict(r.overrides) for r in study.RUNS}
    assert overrides["mnist-rat-e0.75-s1-seed1"] == {"end_point_fraction": "0.75", "smooth_from_scale": "1"}
    assert overrides["mnist-sat-warm-seed0"] == {"epsilon_warmup": "1epochs"}


def test_summary_statistics_and_collapse_count():
    s = summary_of([row("mnist-sat-warm-seed0", 90.0, 60.0, 70.0, 1000.0),
                    row("mnist-sat-warm-seed1", 11.0, 11.0, 11.0, 1000.0),
                    row("mnist-rat-e0.5-s0-seed0", 97.0, 80.0, 82.0, 1200.0)])
    sat = s["sat-warm"]
    assert sat["clean"] == [90.0, 11.0] and len(sat["trained"]) == 1
    assert sat["gap"] == [10.0]                       # the collapsed seed (clean 11) has no gap
    mean, sd, low, high = results_common.stats(sat["worst"])
    assert (mean, low, high) == (35.5, 11.0, 60.0)
    assert abs(sd - 34.648232278140824) < 1e-9        # sample standard deviation of 60 and 11
    assert s["rat"]["runs"] == []


def test_verdict_needs_non_overlapping_seed_ranges():
    rows = [row("mnist-rat-e0.5-s0-seed0", 97.0, 84.0, 85.0), row("mnist-rat-e0.5-s0-seed1", 96.0, 86.0, 87.0),
            row("mnist-sat-warm-seed0", 93.0, 75.0, 76.0), row("mnist-sat-warm-seed1", 92.0, 83.0, 84.0),
            row("mnist-rat-seed0", 98.0, 60.0, 90.0), row("mnist-rat-seed1", 98.0, 85.0, 95.0)]
    summary = summary_of(rows)
    v = results_study.verdict_values(summary["rat-e0.5-s0"], summary["sat-warm"])
    assert v["outcome"] == "beats" and (v["n_candidate"], v["n_base"]) == (2, 2)
    assert (v["mean_candidate"], v["mean_base"], v["difference"]) == (85.0, 79.0, 6.0)
    assert (v["low_candidate"], v["high_base"]) == (84.0, 83.0)       # worst seed above the best seed
    v = results_study.verdict_values(summary["rat-e0.5-s0"], summary["rat"])
    assert v["outcome"] == "overlap" and v["mean_base"] == 72.5
    assert (v["low_candidate"], v["high_candidate"], v["low_base"], v["high_base"]) == (84.0, 86.0, 60.0, 85.0)
    lines = results_study.study_verdict(summary, "rat-e0.5-s0", ["sat-warm", "rat", "sat"])
    assert bullet_titles(lines) == ["rat-e0.5-s0 vs sat-warm", "rat-e0.5-s0 vs rat", "rat-e0.5-s0 vs sat:"]
    assert lines[2] == TS.VERDICT_NO_BASELINE.substitute(candidate="rat-e0.5-s0", base="sat")


def test_verdict_with_one_seed_makes_no_claim():
    rows = [row("mnist-rat-e0.5-s0-seed0", 97.0, 84.0, 85.0), row("mnist-sat-warm-seed0", 93.0, 10.0, 10.0)]
    summary = summary_of(rows)
    assert results_study.verdict_values(summary["rat-e0.5-s0"], summary["sat-warm"])["outcome"] == "too_few"
    (line,) = results_study.study_verdict(summary, "rat-e0.5-s0", ["sat-warm"])
    assert TS.VERDICT_OUTCOMES["too_few"].substitute() in line


def test_the_best_grid_setting_needs_two_seeds_and_excludes_the_candidate_and_warm_ups():
    rows = [row("mnist-rat-e0.25-s1-seed0", 99.0, 90.0, 91.0),                       # one seed only
            row("mnist-rat-e0.5-s1-seed0", 97.0, 76.0, 85.0), row("mnist-rat-e0.5-s1-seed1", 97.0, 50.0, 67.0),
            row("mnist-rat-e0.75-s1-seed0", 97.0, 67.0, 77.0), row("mnist-rat-e0.75-s1-seed1", 97.0, 58.0, 70.0),
            row("mnist-rat-e0.5-s0-seed0", 98.0, 95.0, 96.0), row("mnist-rat-e0.5-s0-seed1", 98.0, 95.0, 96.0),
            row("mnist-rat-e0.5-s0-warm-seed0", 98.0, 96.0, 97.0),
            row("mnist-rat-e0.5-s0-warm-seed1", 98.0, 96.0, 97.0)]
    assert results_study.best_grid_setting(summary_of(rows)) == "rat-e0.5-s1"          # 63.0 > 62.5
    assert results_study.best_grid_setting(summary_of(rows[:1])) is None
    text = "\n".join(results_study.study_section(rows, "study.jsonl"))
    assert TS.VERDICT_NO_BASELINE.substitute(candidate="rat-e0.5-s1", base="sat-warm") in text


def test_study_section_renders_finished_and_missing_runs():
    lines = results_study.study_section([row("mnist-rat-seed0", 98.0, 60.0, 90.0)], "study.jsonl")
    text = "\n".join(lines)
    assert "| rat | 1 | 1/1 | 98.0 | **60.0** | 30.0 |" in text
    assert "| sat-warm | 0 | | not yet run | | | |" in text
    assert TS.STUDY_NO_DATASET_RUN.substitute(dataset="cifar10") in lines
    assert "## MNIST: summary over seeds" in lines and "### Verdict (generated from the numbers)" in lines


def synthetic_figures_models():
    def curve(values):
        return {str(k): v for k, v in values.items()}
    return {label: {"gaps": {"train_clean": 0.99, "test_clean": 0.98, "clean_gap": 0.01, "train_pgd": 0.7 + d,
                             "test_pgd": 0.6 + d, "pgd_gap": 0.1},
                    "sweep_steps": {"accuracy": curve({0: 0.98, 10: 0.65 + d, 100: 0.6 + d})},
                    "sweep_epsilon": {"accuracy": curve({0.0: 0.98, 0.3: 0.6 + d, 0.6: 0.01})},
                    "command": f"python evaluate_main.py --name={label}"}
            for label, d in (("SAT", 0.0), ("RAT", 0.05))}


def test_figures_draw_and_section(tmp_path):
    models = synthetic_figures_models()
    paths = figures.draw(models, docs=str(tmp_path))
    for key in ("fig3", "fig4", "fig5"):
        with open(os.path.join(runner.REPO, paths[key]), "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    text = "\n".join(results_figures.figures_section(
        {"models": models, "figures": paths, "sweep_examples": 500, "hardware": "cpu", "git_commit": "abc"}))
    assert "| RAT | 99.0 | 98.0 | 1.0 | 75.0 | 65.0 | 10.0 |" in text
    assert "| SAT | 98.0 | 65.0 | 60.0 |" in text       # K = 0, 10, 100
    assert "| model | 0 | 0.3 | 0.6 |" in text


def plans_of(module_runs, names, budget_of, runs_dir, preset):
    runs = {r.name: r for r in module_runs}
    return {n: reproduction.plan(runs[n], budget_of(runs[n]), runs_dir, preset) for n in names}


def test_cpu_preset_shares_its_sat_and_rat_runs_with_the_study():
    repro = plans_of(reproduction.RUNS, ["mnist-sat", "mnist-rat", "mnist-rat-seed1", "cifar10-sat", "mnist-st"],
                     lambda r: reproduction.PRESETS["cpu"], "/r", "cpu")
    stud = plans_of(study.RUNS, ["mnist-sat-warm-seed0", "mnist-rat-warm-seed0", "mnist-rat-warm-seed1",
                                 "cifar10-sat-seed0"], lambda r: study.BUDGETS[r.dataset], "/s", "study")
    for a, b in (("mnist-sat", "mnist-sat-warm-seed0"), ("mnist-rat", "mnist-rat-warm-seed0"),
                 ("mnist-rat-seed1", "mnist-rat-warm-seed1"), ("cifar10-sat", "cifar10-sat-seed0")):
        assert (repro[a].train_id, repro[a].eval_id) == (stud[b].train_id, stud[b].eval_id), (a, b)
    # The warm-up is for adversarial methods only, on both datasets; CIFAR-10 trains on all its
    # images for 2 epochs.
    assert "--epsilon_warmup=1epochs" in repro["mnist-sat"].train_cmd
    assert not any(a.startswith("--epsilon") for a in repro["mnist-st"].train_cmd)
    assert repro["mnist-sat"].budget["epsilon_warmup"] == "1epochs"
    cifar = repro["cifar10-sat"]
    assert {"--steps_per_epoch=50", "--epochs=2", "--epsilon_warmup=1epochs"} <= set(cifar.train_cmd)
    assert not any(a.startswith("--max_train_examples") for a in cifar.train_cmd)


def test_the_runners_train_the_papers_rat_and_keep_the_recorded_ids():
    repro = plans_of(reproduction.RUNS, ["mnist-rat", "mnist-sat"], lambda r: reproduction.PRESETS["cpu"],
                     "/r", "cpu")
    stud = plans_of(study.RUNS, ["mnist-rat-e0.5-s0-seed0"], lambda r: study.BUDGETS[r.dataset],
                    "/s", "study")
    rat, sat, candidate = repro["mnist-rat"], repro["mnist-sat"], stud["mnist-rat-e0.5-s0-seed0"]
    assert rat.train_cmd.count("--end_point_fraction=0") == 1   # not MNIST's auto 0.5
    assert not any(a.startswith("--end_point_fraction") for a in sat.train_cmd)
    assert [a for a in candidate.train_cmd if a.startswith("--end_point_fraction")] == \
        ["--end_point_fraction=0.5"]                              # an override replaces the pin
    # The id is that of the command without the pin: the id its row was recorded under.
    args = reproduction.train_args(rat.run, reproduction.PRESETS["cpu"])
    assert reproduction.short_hash(args) == reproduction.short_hash(
        [a for a in args if a != "--end_point_fraction=0"]) == rat.train_id
    recorded = {json.loads(line)["train_id"] for line in open(os.path.join(
        runner.REPO, "benchmarks", "results", "reproduce.jsonl"))}
    assert rat.train_id in recorded


def test_a_budget_flag_overrides_the_per_dataset_value_too():
    args = reproduce.parse_args(["--preset=cpu", "--steps_per_epoch=7"])
    budget = reproduce.resolve_budget(args)
    assert reproduction.for_dataset(budget, "cifar10")["steps_per_epoch"] == 7
    assert reproduction.for_dataset(budget, "cifar10")["max_train_examples"] is None
    assert reproduction.for_dataset(budget, "mnist")["max_train_examples"] == 30_000


def test_a_run_with_the_same_commands_is_copied_not_rerun(tmp_path, capsys):
    p = plans_of(reproduction.RUNS, ["mnist-sat"], lambda r: reproduction.PRESETS["cpu"], str(tmp_path),
                 "cpu")["mnist-sat"]
    other, mine = tmp_path / "study.jsonl", tmp_path / "reproduce.jsonl"
    source = {**row("mnist-sat-warm-seed0", 97.8, 82.2, 87.0), "train_id": p.train_id, "eval_id": p.eval_id,
              "preset": "study", "tables": ["study-mnist"], "budget": {}}
    unrelated = {**source, "name": "other", "train_id": "ffffffff"}
    other.write_text(json.dumps(unrelated) + "\n" + json.dumps(source) + "\n")
    args = argparse.Namespace(results=str(mine), list=False, dry_run=False, deadline=None, share_from=[str(other)])
    assert execution.run_plans([p], args) == 0
    rows = runner.read_rows(str(mine))
    assert len(rows) == 1
    copied = rows[0]
    assert copied["name"] == "mnist-sat" and copied["preset"] == "cpu" and copied["worst_case"] == 82.2
    assert copied["tables"] == list(p.run.tables) and copied["budget"] == p.budget
    assert copied["shared_from"]["name"] == "mnist-sat-warm-seed0"
    assert "_results" not in copied
    # A second pass finds the row done; nothing is appended.
    assert execution.run_plans([p], args) == 0
    assert len(runner.read_rows(str(mine))) == 1
    assert "row copied" in capsys.readouterr().out


def test_reproduction_sections_are_grouped_by_preset_largest_first():
    rows = [{"name": "a", "preset": "cpu-quick"}, {"name": "b", "preset": "cpu"}, {"name": "a", "preset": "cpu"},
            {"name": "c", "preset": "issue"}]
    groups = results_common.group_rows(rows)
    assert list(groups) == ["issue", "cpu", "cpu-quick"]
    assert sorted(groups["cpu"]) == ["a", "b"]


def test_measured_cost_names_the_command_the_load_and_the_ratios(tmp_path):
    path = tmp_path / "cost.json"
    assert results_study.measured_cost(str(path)) == []
    path.write_text(json.dumps({"command": "python -m benchmarks.step_cost --methods=sat,rat", "device": "CPU",
                                "cpu_count": 2, "load_average": [2.37, 3.81], "batch_size": 128, "num_steps": 10,
                                "num_samples": 2, "over_sat": {"mnist": {"sat": 1.0, "rat": 1.0938}}}))
    v = results_study.measured_cost_values(json.loads(path.read_text()))
    assert v["ratios"] == {"mnist": {"sat": 1.0, "rat": 1.0938}}
    assert v["load"] == [2.37, 3.81] and v["busy"] is True                   # load >= 1 at the start: other jobs
    assert v["command"] == "python -m benchmarks.step_cost --methods=sat,rat" and v["cpu_count"] == 2
    (blank, line) = results_study.measured_cost(str(path))
    assert blank == "" and TS.LOAD_BUSY.substitute(start="2.37", end="3.81") in line
    del v["load"]
    path.write_text(json.dumps({**json.loads(path.read_text()), "load_average": None}))
    v = results_study.measured_cost_values(json.loads(path.read_text()))
    assert v["load"] is None and v["busy"] is None                          # not recorded: no claim either way
    assert TS.LOAD_NOT_RECORDED in results_study.measured_cost(str(path))[1]


def test_step_cost_sizes_reach_the_study_tables_of_both_datasets(tmp_path):
    path = tmp_path / "cost.json"
    path.write_text(json.dumps({"command": "c", "device": "CPU", "cpu_count": 2, "load_average": [0.12, 1.9],
                                "batch_size": 128, "num_steps": 10, "num_samples": 2,
                                "over_sat": {"mnist": {"sat": 1.0, "rat_e0.25": 1.1},
                                             "cifar": {"sat": 1.0, "rat_e0.75": 1.2}}}))
    assert results_study._step_ratios("mnist", str(path)) == {"sat": 1.0, "rat_e0.25": 1.1}
    assert results_study._step_ratios("cifar10", str(path)) == {"sat": 1.0, "rat_e0.75": 1.2}
    v = results_study.measured_cost_values(json.loads(path.read_text()))
    assert list(v["ratios"]) == ["mnist", "cifar"] and v["ratios"]["cifar"]["rat_e0.75"] == 1.2
    assert v["busy"] is False                                                # load < 1 at the start: no other job


def test_reading_tells_a_soft_label_gap_from_the_usual_one():
    def r(name, method, pgd, worst):
        return {**row(name, 99.0, worst, pgd), "method": method, "budget": {"eval": {"pgd_steps": 20}},
                "attacks": {"pgd": pgd, "apgd_t": worst}}
    rows = {"mnist-sat": r("mnist-sat", "sat", 87.0, 82.2), "mnist-rat": r("mnist-rat", "rat", 60.2, 27.6)}
    v = results_reading.signature_values(rows, "mnist")
    assert v["large"] == ["rat"] and v["small"] == ["sat"] and v["kind"] == "soft_only"
    assert any(TR.SIGNATURE_SOFT_ONLY.strip() in line for line in results_reading.reading(rows))
    rows["mnist-sat_ars"] = r("mnist-sat_ars", "sat_ars", 63.2, 37.8)   # one-hot labels, region samples
    v = results_reading.signature_values(rows, "mnist")
    assert v["kind"] == "not_only_soft" and v["hard_large"] == ["sat_ars"] and v["ars_share"] == "most"
    assert round(v["gaps"]["sat_ars"], 2) == 25.4 and round(v["gaps"]["rat"], 2) == 32.6
    assert results_reading.signature_values(rows, "cifar10") is None


def test_study_configs_map_to_the_step_cost_method_they_train_with():
    assert results_study._step_cost_key("sat-warm") == "sat"
    assert results_study._step_cost_key("rat-warm") == "rat"
    assert results_study._step_cost_key("rat-e0.5-s0-warm") == "rat_e0.5"
    assert results_study._step_cost_key("rat-e0.75-s1") == "rat_e0.75"


def test_readme_table_is_regenerated_between_its_markers_only(tmp_path):
    def r(name, method, clean, pgd, worst, seed=0):
        return {**row(name, clean, worst, pgd), "preset": "cpu", "method": method, "seed": seed,
                "train_steps": 1170, "num_examples": 500}
    repro = [r("mnist-sat", "sat", 97.8, 87.0, 82.2), r("mnist-sat-seed1", "sat", 98.4, 88.4, 84.2, 1),
             r("mnist-rat", "rat", 99.6, 60.2, 27.6), {**r("mnist-rat", "rat", 1, 1, 1), "preset": "cpu-quick"}]
    block = results_readme.readme_block(repro, [])
    text = "\n".join(block)
    assert "| SAT | 2 | 98.1 ± 0.4 | – | **83.2 ± 1.4** | suite, 500 images |" in text
    assert "| RAT | 1 | 99.6 | – | **27.6** | suite, 500 images |" in text     # the cpu-quick row is not mixed in
    assert "PGD-20 (CE)" not in text      # every robustness number shown is AutoAttack or a worst case
    d = results_readme.readme_comparison(results_readme.readme_entries(repro, []))
    assert round(d["worst_case"], 1) == -55.6 and d["autoattack"] is None      # RAT minus SAT
    readme = tmp_path / "README.md"
    readme.write_text("intro\n" + results_readme.README_BEGIN + "\nold\n" + results_readme.README_END + "\nrest\n")
    assert results_readme.update_readme(str(readme), block)
    new = readme.read_text()
    assert new.startswith("intro\n") and new.endswith(results_readme.README_END + "\nrest\n") and "old" not in new
    plain = tmp_path / "PLAIN.md"
    plain.write_text("no markers\n")
    assert not results_readme.update_readme(str(plain), block) and plain.read_text() == "no markers\n"
    # The study's SAT with the warm-up is the same configuration: its seed 2 joins SAT's row, its seed 0
    # (the same training run as the reproduction's seed 0) does not count twice.
    ids = [{**x, "train_id": f"t{i}"} for i, x in enumerate(repro)]
    study_rows = [{**ids[0], "name": "mnist-sat-warm-seed0"},
                  {**r("mnist-sat-warm-seed2", "sat", 97.0, 85.0, 76.6, 2), "train_id": "t9"}]
    text = "\n".join(results_readme.readme_block(ids, study_rows))
    assert "| SAT | 3 |" in text and "**81.0 ± 3.9** |" in text


def test_figures_reading_names_gaps_convergence_and_epsilon():
    v = results_figures.figures_values(synthetic_figures_models())
    assert v["gaps"] == {"SAT": 10.0, "RAT": 10.0}
    assert (v["k0"], v["k1"]) == (10, 100)
    assert {m: tuple(round(a, 1) for a in ab) for m, ab in v["steps"].items()} == {
        "SAT": (65.0, 60.0), "RAT": (70.0, 65.0)}
    assert all(round(d, 1) == 5.0 for d in v["drops"].values())      # no model loses more than 10 points
    assert v["epsilons"] == (0.3, 0.6, 0.6)                          # training epsilon, next, largest
    assert tuple(round(a, 1) for a in v["epsilon"]["SAT"]) == (60.0, 1.0, 1.0)
    assert bullet_titles(results_figures.figures_reading(synthetic_figures_models())) == [
        "Generalisation (Fig. 3).", "PGD iterations (Fig. 4).", "Epsilon (Fig. 5)."]


def test_budget_flags_give_their_rows_a_section_of_their_own():
    assert reproduce.preset_label(reproduce.parse_args([])) == "cpu"
    label = reproduce.preset_label(reproduce.parse_args(["--preset=cpu", "--eval_examples=1000"]))
    assert label == "cpu --eval_examples=1000"
    groups = results_common.group_rows([{"name": "a", "preset": "cpu-quick"}, {"name": "a", "preset": label},
                                      {"name": "a", "preset": "cpu"}, {"name": "b", "preset": "cpu"}])
    assert list(groups) == ["cpu", label, "cpu-quick"]        # a partial re-evaluation comes after
    groups = results_common.group_rows([{"name": "a", "preset": "cpu-quick"}, {"name": "a", "preset": label},
                                      {"name": "a", "preset": "cpu"}])
    assert list(groups) == [label, "cpu", "cpu-quick"]        # a complete one is the larger budget


def test_a_complete_1000_image_reevaluation_is_the_headline_section():
    path = os.path.join(runner.REPO, "benchmarks", "results", "reproduce.jsonl")
    with open(path, encoding="utf-8") as f:
        cpu = [r for r in map(json.loads, filter(str.strip, f)) if r["preset"] == "cpu"]
    label = "cpu --eval_examples=1000"
    def again(r):
        budget = {**r["budget"], "eval": {**r["budget"]["eval"], "eval_examples": 1000}}
        return {**r, "preset": label, "budget": budget, "worst_case": r["worst_case"] - 1.0, "num_examples": 1000}
    partial = cpu + [again(r) for r in cpu[:-1]]
    page = results_reproduction.render(partial, "reproduce.jsonl")
    assert page.index("## Budget `--preset=cpu`") < page.index(f"## Budget `--preset={label}`")
    assert TR.NOT_COVERED_FULL_EVAL in page
    rows = cpu + [again(r) for r in cpu]
    page = results_reproduction.render(rows, "reproduce.jsonl")
    first, second = page.index(f"## Budget `--preset={label}`"), page.index("## Budget `--preset=cpu`")
    assert first < second
    reeval = page[first:second]
    assert TR.SECTION_MODELS.substitute(base="cpu") in reeval
    assert TR.CURVES not in reeval and "python train_main.py" not in reeval
    assert TR.EVAL_BUDGET_FULL.substitute(preset=label) in page
    # The published budget's section is compact now: a link to the page of every run at 500 images,
    # with its cost and training curve; the commands are listed once (the rows hold them), not per run.
    published = page[second:page.index("## Setting")]
    assert TR.REPRODUCE_RUNS_LINK.substitute(eval_examples="500", page="REPRODUCE_RUNS.md") in published
    assert TR.CURVES not in published and "| mnist-sat |" not in published
    runs_page = "\n".join(results_reproduction.reproduce_runs_page(rows, "reproduce.jsonl"))
    assert TR.EVERY_RUN.substitute(eval_examples="500") + " (`--preset=cpu`)" in runs_page
    cpu_sat = {r["name"]: r for r in cpu}["mnist-sat"]
    curve = " ".join(f"{100 * c[1]:.0f}" for c in cpu_sat["train_curve"])
    assert (f"| mnist-sat | {cpu_sat['clean']:.1f} | {cpu_sat['attacks']['pgd']:.1f} | "
            f"**{cpu_sat['worst_case']:.1f}** |") in runs_page and f"| {curve} |" in runs_page
    assert results_reproduction.reproduce_runs_page(partial, "reproduce.jsonl") == []
    assert "(finished " not in page and page.count("python evaluate_main.py") == 1
    assert TR.NOT_COVERED_FULL_EVAL not in page
    sat = {r["name"]: r for r in rows if r["preset"] == label}["mnist-sat"]
    block = "\n".join(results_readme.readme_block(rows, []))
    # The README shows each method at its largest evaluation: here the 1,000-image rows of its seeds.
    seeds = [r for r in rows if r["preset"] == label and r["name"] in ("mnist-sat", "mnist-sat-seed1")]
    assert (f"| SAT | 2 | {results_common.mean_sd([r['clean'] for r in seeds])} | – | "
            f"**{results_common.mean_sd([r['worst_case'] for r in seeds])}** | suite, 1,000 images |") in block
    assert sat["worst_case"] in [r["worst_case"] for r in seeds]


def test_an_older_budget_shows_only_the_tables_it_has_runs_for():
    path = os.path.join(runner.REPO, "benchmarks", "results", "reproduce.jsonl")
    with open(path, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    quick_rows = [r for r in rows if r["preset"] == "cpu-quick"]
    rows = [r for r in rows if r["preset"] in ("cpu", "cpu-quick") and r["name"] != "cifar10-sat"]
    # Only MNIST rows: the published budget still lists CIFAR-10 ("not yet run").
    page = results_reproduction.render(rows, "reproduce.jsonl")
    cpu, quick = page.split("## Budget `--preset=cpu-quick` (superseded)")
    assert "### Table 1 analogue: CIFAR-10" in cpu and "| SAT | not yet run |" in cpu
    # The cpu-quick budget, superseded by cpu, is one line naming its runs, no tables.
    quick = quick.split("\n## ")[0]
    assert "### " not in quick and all(r["name"] in quick for r in quick_rows)
    assert f"{len(quick_rows)} run(s)" in quick
    # On its own (nothing supersedes it) it keeps its tables.
    alone = results_reproduction.render(quick_rows, "reproduce.jsonl")
    assert "## Budget `--preset=cpu-quick`\n" in alone and "### Table 1 analogue: MNIST" in alone


def reading_row(name, method, clean, worst, pgd, checks=()):
    attacks = {"fgsm": pgd, "pgd": pgd, "cw": pgd, "apgd_ce": worst, "apgd_t": worst, "square": pgd}
    return {"name": name, "method": method, "clean": clean, "worst_case": worst, "attacks": attacks,
            "budget": {"eval": {"pgd_steps": 20}}, "checks_fired": list(checks)}


def test_reading_judges_training_against_st_and_beta_settings_against_the_seed_noise():
    flat = "PGD-CE accuracy is 25.0 points above the worst case: ..."
    rows = [reading_row("cifar10-st", "st", 60.0, 0.0, 0.0), reading_row("cifar10-sat", "sat", 43.4, 18.6, 24.4),
            reading_row("cifar10-rat", "rat", 48.0, 10.0, 30.0, [flat]),
            reading_row("mnist-sat", "sat", 97.8, 82.2, 87.0), reading_row("mnist-sat-seed1", "sat", 98.4, 84.2, 88.4),
            reading_row("mnist-rat", "rat", 99.6, 27.6, 60.2, [flat]),
            reading_row("mnist-rat-b1.0-0.3", "rat", 99.2, 39.0, 64.8, [flat]),
            reading_row("mnist-rat-b0.8-0.1", "rat", 99.4, 26.6, 56.4, [flat])]
    by_name = {r["name"]: r for r in rows}
    lines = results_reading.reading(by_name)
    # 43.4% clean is not "barely trained" next to ST's 60% on CIFAR-10; RAT vs SAT is read per dataset.
    titles = bullet_titles(lines)
    assert "Barely trained." not in titles and "Not trained yet." not in titles
    assert titles[:5] == ["RAT vs SAT on MNIST.", "Strongest single attack.", "Seed noise.", "The paper's claim.",
                          "RAT vs SAT on CIFAR-10."]
    assert TR.NO_SECOND_SEED.substitute(dataset="CIFAR-10") in lines
    assert results_reading.seed_noise(by_name) == 2.0                  # |82.2 - 84.2|, MNIST SAT's two seeds
    # Table 4: 39.0 - 27.6 > 2.0 (the seed noise), 26.6 is within it.
    t4 = results_reading.table4_values(by_name, 2.0)
    assert t4["above_noise"] == ["mnist-rat-b1.0-0.3"] and t4["settings"] == 3
    assert (t4["low"]["name"], t4["best"]["name"]) == ("mnist-rat-b0.8-0.1", "mnist-rat-b1.0-0.3")
    assert TR.SELF_CHECKS.substitute(failed=4, total=8, limit=results_common.LARGE_GAP) in lines
    assert TR.NO_OTHER_CHECKS in lines
    assert results_reading.trained_floor({}, "mnist") == 50.0


def test_cifar_study_section_judges_training_by_its_own_bar_and_only_its_configs():
    rows = [{**row("cifar10-sat-seed0", 43.4, 18.6, 24.4), "train_curve": [[1, 0.16, 2.2], [2, 0.21, 2.0]]},
            row("cifar10-rat-seed0", 47.2, 13.2, 20.8), row("cifar10-rat-e0.5-s0-seed0", 12.0, 11.0, 11.0)]
    summary = results_study.study_summary({r["name"]: r for r in rows}, "cifar10")
    assert list(summary) == ["sat", "rat", "rat-e0.5-s0"]      # CIFAR-10 runs no warm-up variants
    assert [len(summary[c]["trained"]) for c in summary] == [1, 1, 0]   # 20% bar: 43.4 counts, 12.0 not
    text = "\n".join(results_study.study_section(rows, "study.jsonl"))
    cifar = text[text.index("## CIFAR-10"):]
    assert "rat-warm" not in cifar.split("### Every run")[0]
    assert "- **rat-e0.5-s0 vs sat**" in cifar and "- **rat-e0.5-s0 vs rat**" in cifar
    line = next(x for x in cifar.splitlines() if x.startswith("| cifar10-sat-seed0 |"))
    assert TS.STUDY_CURVES_NOTE in cifar and line.endswith("| **18.6** | 16 21 |")


def autoattack_row(cpu_row, clean, fgsm, pgd, cw, cascade, worst):
    """A synthetic `cpu-autoattack` row for one of the published budget's models (same training id)."""
    run = {r.name: r for r in reproduction.RUNS}[cpu_row["name"]]
    plan = reproduction.plan(run, reproduction.PRESETS["cpu-autoattack"], "/r", "cpu-autoattack")
    attacks = {"fgsm": fgsm, "pgd": pgd, "cw": cw, **dict(zip(results_common.CASCADE, cascade)),
               "autoattack": cascade[-1]}
    return {**cpu_row, "preset": "cpu-autoattack", "budget": plan.budget, "clean": clean, "attacks": attacks,
            "worst_case": worst, "num_examples": 1000, "eval_id": plan.eval_id, "checks_fired": [],
            "commands": {**cpu_row["commands"], "evaluate": runner.command_text(plan.eval_cmd)}}


def recorded_rows():
    path = os.path.join(runner.REPO, "benchmarks", "results", "reproduce.jsonl")
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_autoattack_rows_lead_the_page_and_the_readme(tmp_path):
    assert dict(results_common.ATTACK_COLUMNS)["fab_t"] == "FAB-T"
    assert dict(results_common.ATTACK_COLUMNS)["autoattack"] == "AutoAttack"
    # The recorded rows without their own AutoAttack rows: the synthetic ones stand in for them.
    rows = [r for r in recorded_rows() if r["preset"] != "cpu-autoattack"]
    cpu = {r["name"]: r for r in rows if r["preset"] == "cpu"}
    synthetic = [autoattack_row(cpu["mnist-sat"], 98.7, 92.0, 86.5, 86.0, (82.0, 81.1, 81.0, 80.9), 80.2),
                 autoattack_row(cpu["mnist-rat"], 99.4, 85.0, 60.1, 50.0, (38.0, 25.3, 25.1, 24.6), 24.0)]
    assert synthetic[0]["budget"]["eval"]["fab_steps"] == 100 and synthetic[0]["budget"]["eval"]["attacks"] == "default"
    results = write_jsonl(tmp_path / "reproduce.jsonl", rows + synthetic)
    study_rows = runner.read_rows(study.RESULTS)
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{results_readme.README_BEGIN}\nold\n{results_readme.README_END}\nrest\n")
    out = tmp_path / "RESULTS.md"
    assert make_results.main(["--results", results, "--study_results", study.RESULTS,
                              "--figures", str(tmp_path / "none.json"), "--out", str(out),
                              "--readme", str(readme)]) == 0
    page = out.read_text()
    assert not re.search(r"\bissues? ?#?\d", page + readme.read_text(), re.IGNORECASE)
    sections = [line for line in page.splitlines() if line.startswith("## ")]
    assert sections[0] == TR.AUTOATTACK_HEADING
    assert sections[1] == "## Budget `--preset=cpu --eval_examples=1000`"      # the rest as before
    aa = page[page.index(TR.AUTOATTACK_HEADING):page.index(sections[1])]
    assert "| SAT | 98.7 | 92.0 | 86.5 | 86.0 | 80.9 | **80.2** | 82.0 / 81.1 / 81.0 / 80.9 |" in aa
    assert "| RAT | 99.4 | 85.0 | 60.1 | 50.0 | 24.6 | **24.0** | 38.0 / 25.3 / 25.1 / 24.6 |" in aa
    assert "### MNIST (eps 0.3)" in aa and "### CIFAR-10" not in aa     # no CIFAR-10 row has the budget
    budget = results_tables.budget_values(synthetic[0]["budget"], "mnist")
    assert (budget["fab_steps"], budget["fab_targets"], budget["eval_examples"]) == (100, 9, "1,000")
    assert TR.AUTOATTACK_SAME in aa and results_tables.budget_text(synthetic[0]["budget"], "mnist") in aa
    v = results_reproduction.autoattack_values({r["name"]: r for r in synthetic}, "mnist")
    assert round(v["d_aa"], 1) == -56.3 and round(v["d_worst"], 1) == -56.2
    assert (round(v["sat_gap"], 1), round(v["rat_gap"], 1)) == (5.6, 35.5)       # PGD-20 minus AutoAttack
    assert bullet_titles(aa.splitlines()) == ["Budget, mnist:", "Hardware:", "Code:", "MNIST, RAT vs SAT."]
    # The README: SAT and RAT from AutoAttack's rows; the others keep their own budget, AutoAttack "–".
    block = readme.read_text().split(results_readme.README_BEGIN)[1].split(results_readme.README_END)[0]
    table = {line.split(" | ")[0][2:]: line.split(" | ") for line in block.splitlines() if line.startswith("| ")}
    assert table["SAT"][1:6] == ["1", "98.7", "80.9", "**80.2**", "AA+, 1,000 images |"]
    assert table["RAT"][1:6] == ["1", "99.4", "24.6", "**24.0**", "AA+, 1,000 images |"]
    big = {r["name"]: r for r in rows if r["preset"] == "cpu --eval_examples=1000"}
    assert table["TRADES"][3:6] == ["–", f"**{big['mnist-trades']['worst_case']:.1f}**", "suite, 1,000 images |"]
    assert table[TM.README_CANDIDATE][3] == "–" and table[TM.README_CANDIDATE][5] == "suite, 500 images |"
    d = results_readme.readme_comparison(results_readme.readme_entries(rows + synthetic, study_rows))
    assert round(d["worst_case"], 1) == -56.2 and round(d["autoattack"], 1) == -56.3
    # Without AutoAttack rows the page starts with the 1,000-image budget and the README has no AA+ row.
    assert results_reproduction.render(rows, "r.jsonl").count(TR.AUTOATTACK_HEADING) == 0
    assert "AA+, " not in "\n".join(results_readme.readme_block(rows, [])).split("| method |")[1]


def overfit_row(config, method, seed, train_pgd, test_pgd, best, last, best_epoch=3):
    """A synthetic benchmarks/overfit.py row: curves per epoch (percent), best / last checkpoints."""
    curves = [{"epoch": i + 1, "step": 10 * (i + 1), "train_pgd": tr, "val_pgd": te, "test_pgd": te,
               "train_clean": tr + 20, "test_clean": te + 20} for i, (tr, te) in enumerate(zip(train_pgd, test_pgd))]
    point = lambda v: dict(zip(("clean", "pgd", "autoattack", "worst"), v))  # noqa: E731
    return {"name": f"{config}-seed{seed}", "method": method, "config_name": config, "seed": seed,
            "config": {"method": {"method": method}}, "regime": {"arch": "wrn-10-1", "train_examples": 2000,
                                                                   "epochs": len(curves), "name": "r"},
            "calibration": False, "evaluated": True, "curves": curves, "best_epoch": best_epoch,
            "best": point(best), "last": point(last)}


def test_the_robust_overfitting_study_leads_when_its_file_exists(tmp_path):
    rows = [overfit_row("sat", "sat", 0, [30, 45, 60, 70], [28, 35, 33, 30], (60, 36, 32, 31), (62, 31, 27, 26)),
            overfit_row("sat", "sat", 1, [30, 46, 62, 72], [28, 36, 34, 31], (61, 37, 33, 32), (63, 32, 28, 27)),
            overfit_row("rat", "rat", 0, [28, 40, 48, 52], [27, 36, 38, 38], (70, 45, 30, 29), (71, 44, 29, 28)),
            overfit_row("rat", "rat", 1, [29, 41, 49, 53], [27, 37, 39, 39], (69, 46, 31, 30), (70, 45, 30, 29)),
            {**overfit_row("sat", "sat", 9, [10], [10], (10, 10, 10, 10), (10, 10, 10, 10)), "name": "cal-x",
             "calibration": True}]
    path = write_jsonl(tmp_path / "overfit.jsonl", rows)
    assert [r["name"] for r in results_overfit.overfit_rows(path)] == ["sat-seed0", "sat-seed1", "rat-seed0",
                                                                       "rat-seed1"]
    summary = results_overfit.overfit_summary(results_overfit.overfit_rows(path))
    assert list(summary) == ["sat", "rat"]
    assert summary["sat"]["gap"] == [40, 41] and summary["rat"]["gap"] == [14, 14]       # last train - test
    assert summary["rat"]["last_pgd_aa"] == [15, 15] and summary["sat"]["last_pgd_aa"] == [4, 4]
    v = results_overfit.overfit_values(summary)
    assert v["gap"]["outcome"] == "below" and v["gap"]["difference"] == -26.5      # RAT shrinks the gap
    assert v["last_autoattack"]["outcome"] == "above" and v["last_autoattack"]["difference"] == 2.0
    assert v["best_autoattack"]["outcome"] == "below" and v["best_autoattack"]["difference"] == -2.0  # 30-31, 32-33
    assert v["last_pgd_aa"]["outcome"] == "above"                                  # 15 vs 4
    assert summary["rat"]["last_test_pgd"] == [38, 39] and summary["sat"]["last_test_pgd"] == [30, 31]
    assert results_overfit.what_moved(summary["rat"], summary["sat"]) == "test_up"  # test PGD rose
    assert results_common.separation([1.0], [2.0, 3.0])["outcome"] == "too_few"
    assert results_common.separation([], [2.0])["outcome"] == "missing"
    # The page: the study first, then the label, then the reproduction as before; the PNG is written.
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{results_readme.README_BEGIN}\nold\n{results_readme.README_END}\nrest\n")
    out, figure = tmp_path / "docs" / "RESULTS.md", tmp_path / "docs" / "fig_overfit_gap.png"
    assert make_results.main(["--results", reproduction.RESULTS, "--study_results", study.RESULTS,
                              "--figures", str(tmp_path / "none.json"), "--out", str(out), "--readme", str(readme),
                              "--overfit_results", path, "--overfit_figure", str(figure),
                              "--overfit_calibration", write_jsonl(tmp_path / "cal.jsonl", [calibration_row(
                                  "cal-y", {"arch": "wrn-10-1", "train_examples": 2000, "epochs": 4, "name": "r"},
                                  [10, 20], [10, 12], 60, stopped="stopped")])]) == 0
    with open(figure, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    page = out.read_text()
    assert not re.search(r"\bissues? ?#?\d", page + readme.read_text(), re.IGNORECASE)
    # The end-point study's every-run tables are on their own page, linked from this one.
    runs_page = (tmp_path / "docs" / "STUDY_RUNS.md").read_text()
    assert "### Every run" in runs_page and "| mnist-sat-warm-seed0 |" in runs_page
    assert "### Every run\n" not in page and "[STUDY_RUNS.md](STUDY_RUNS.md)" in page
    headings = [line for line in page.splitlines() if line.startswith("# ")]
    assert headings[0].startswith("# Robust overfitting") and headings[1] == "# Reproduction at CPU scale"
    assert page.index(TO.OUTSIDE_REGIME) < page.index("# Reproduction at CPU scale")
    assert "![Train and test PGD-10 accuracy per epoch, SAT and RAT](fig_overfit_gap.png)" in page
    head = page[:page.index(TO.OUTSIDE_REGIME)]
    assert "| SAT | 2 | 3/3 | 62.5 ± 0.7 | 32.5 ± 0.7 | **27.5 ± 0.7** | 31.5 ± 0.7 | 26.5 ± 0.7 | 4.0 ± 0.0 " \
           "| 40.5 ± 0.7 |" in head
    assert "| RAT | 2 | 3/3 | 70.5 ± 0.7 | 30.5 ± 0.7 | **29.5 ± 0.7** |" in head
    table = head[:head.index(TO.OVERFIT_VERDICT)]
    assert "calibration" not in table and "cal-x" not in head
    assert (tmp_path / "docs" / "OVERFIT_CALIBRATION.md").read_text().startswith("# Robust overfitting: how")
    assert "| wrn-10-1, 2,000 images, 4 passes | 2 of 4 |" in (tmp_path / "docs" / "OVERFIT_CALIBRATION.md").read_text()
    assert bullet_titles(head.splitlines()) == [
        "Does RAT shrink the train-test gap?", "Is RAT above SAT under AutoAttack, last checkpoint?",
        "Is RAT above SAT under AutoAttack, best checkpoint?", "Is RAT's PGD − AutoAttack gap larger than SAT's"] + [
        "Is RAT's PGD − AutoAttack gap larger than SAT's",
        "RAT"]
    assert TO.OVERFIT_GAP_OUTCOMES["below"].substitute(high_a="14.0", low_b="40.0") in head
    # The README: the study's table first, then the MNIST table, labelled as outside the paper's regime.
    block = readme.read_text().split(results_readme.README_BEGIN)[1]
    assert TM.README_OVERFIT_VERDICT.substitute(
        gap_rat="14.0 ± 0.0", gap_sat="40.5 ± 0.7", gap_word="smaller beyond the seed spread",
        last_rat="29.5 ± 0.7", last_sat="27.5 ± 0.7", last_word="above it beyond the seed spread",
        best_rat="30.5 ± 0.7", best_sat="32.5 ± 0.7",
        best_word="below it beyond the seed spread", moved=TO.OVERFIT_MOVED["test_up"]) in block
    assert block.index("| SAT | 2 | 32.5 ± 0.7 | **27.5 ± 0.7** | 26.5 ± 0.7 | 40.5 ± 0.7 |") < block.index(
        TM.README_OUTSIDE_REGIME) < block.index("| method | seeds | clean | AutoAttack, 1,000 images |")
    # Without the file nothing changes.
    assert results_overfit.overfit_rows(str(tmp_path / "missing.jsonl")) == []
    assert results_readme.readme_overfit([]) == []


def test_beyond_the_paper_asks_for_a_last_checkpoint_above_sats_early_stopped_one_at_bounded_cost(tmp_path):
    # SAT's best checkpoints: AutoAttack 32, 33. RAT's last: 28, 29 (below); RAT e0.5's last: 35, 36 (above).
    rows = [overfit_row("sat", "sat", s, [30, 60], [28, 30], (60, 36, 32 + s, 31), (62, 31, 27, 26)) for s in (0, 1)]
    rows += [overfit_row("rat", "rat", s, [30, 50], [28, 33], (60, 36, 30, 30), (62, 31, 28 + s, 27)) for s in (0, 1)]
    rows += [overfit_row("rat-e0.5", "rat", s, [30, 50], [28, 34], (60, 40, 34, 33), (62, 41, 35 + s, 34))
             for s in (0, 1)]
    summary = results_overfit.overfit_summary(rows)
    cost = tmp_path / "step_cost.json"
    ratios = {"sat": 1.0, "rat": 1.14, "rat_e0.5": 1.10}
    cost.write_text(json.dumps({"arch": "wrn-10-2", "over_sat": {"cifar": ratios}}))
    v = results_overfit.overfit_beyond_values(summary, str(cost))
    rat, e05 = v["configs"]
    assert (rat["config"], rat["last"], rat["sat_best"]) == ("rat", [28, 29], [32, 33])
    assert rat["separation"]["outcome"] == "below" and rat["separation"]["difference"] == -4.0
    assert rat["step_cost"] == 1.14 and not rat["qualifies"]
    assert e05["separation"]["outcome"] == "above" and e05["separation"]["difference"] == 3.0
    assert (e05["separation"]["low_a"], e05["separation"]["high_b"]) == (35, 33)     # lowest seed above SAT's best
    assert e05["step_cost"] == 1.10 and e05["qualifies"] and v["arch"] == "wrn-10-2"
    assert v["winners"] == ["RAT with e = 0.5 end points"]
    lines = results_overfit.overfit_beyond(summary, str(cost))
    assert lines[0] == TO.OVERFIT_BEYOND_HEADING and len([line for line in lines if line.startswith("- ")]) == 2
    assert lines[-2] == TO.OVERFIT_BEYOND_YES.substitute(configs="RAT with e = 0.5 end points", limit="1.15")
    # Above SAT but dearer than 1.15x, or with no measured cost: no configuration qualifies.
    cost.write_text(json.dumps({"arch": "wrn-10-2", "over_sat": {"cifar": {"rat": 1.14, "rat_e0.5": 1.2}}}))
    assert results_overfit.overfit_beyond_values(summary, str(cost))["winners"] == []
    assert results_overfit.overfit_beyond(summary, str(cost))[-2] == TO.OVERFIT_BEYOND_NO.substitute(limit="1.15")
    unmeasured = results_overfit.overfit_beyond_values(summary, str(tmp_path / "none.json"))
    assert [c["step_cost"] for c in unmeasured["configs"]] == [None, None] and unmeasured["winners"] == []
    assert results_overfit.overfit_beyond_values(OrderedDict(), str(cost)) is None
    # Several files: a ratio comes from the first file that has it; a file timed on another
    # architecture is skipped.
    later = tmp_path / "step_cost_awp.json"
    later.write_text(json.dumps({"arch": "wrn-10-2", "over_sat": {"cifar": {"rat": 1.5, "rat_e0.5": 1.05}}}))
    other = tmp_path / "step_cost_cnn.json"
    other.write_text(json.dumps({"arch": "small_cnn", "over_sat": {"cifar": {"rat": 1.01}}}))
    cost.write_text(json.dumps({"arch": "wrn-10-2", "over_sat": {"cifar": {"rat": 1.14}}}))
    merged = results_overfit.overfit_beyond_values(summary, (str(cost), str(other), str(later)))
    assert [c["step_cost"] for c in merged["configs"]] == [1.14, 1.05] and merged["arch"] == "wrn-10-2"
    assert merged["winners"] == ["RAT with e = 0.5 end points"]
    # A group of repeated runs gives the median of the runs that have the ratio.
    runs = [tmp_path / f"run{i}.json" for i in range(3)]
    for path, ratio in zip(runs, (1.2, 1.05, 1.12)):
        path.write_text(json.dumps({"arch": "wrn-10-2", "over_sat": {"cifar": {"rat_e0.5": ratio}}}))
    grouped = results_overfit.overfit_beyond_values(summary, (str(cost), tuple(str(p) for p in runs)))
    assert [c["step_cost"] for c in grouped["configs"]] == [1.14, 1.12]
    assert results_overfit.overfit_beyond(OrderedDict(), str(cost)) == []
    # One seed is too few for a verdict, however far below SAT's range.
    one = rows + [overfit_row("rat-m1-e0.5-s1", "rat", 0, [30, 50], [28, 33], (60, 36, 30, 30), (62, 31, 25, 25))]
    cost.write_text(json.dumps({"arch": "wrn-10-2", "over_sat": {"cifar": {"rat_m1_e0.5_s1": 1.01}}}))
    single = results_overfit.overfit_beyond_values(results_overfit.overfit_summary(one), str(cost))["configs"][-1]
    x = single["separation"]
    assert single["config"] == "rat-m1-e0.5-s1" and x["outcome"] == "too_few" and (x["n_a"], x["n_b"]) == (1, 2)
    assert x["difference"] == -7.5 and (x["low_b"], x["high_b"]) == (32, 33) and single["step_cost"] == 1.01
    assert not single["qualifies"]


def test_awp_is_judged_against_the_seed_spread():
    def awp(config, method, seed, best_aa, last_aa):
        return overfit_row(config, method, seed, [30, 50], [28, 33], (60, 36, best_aa, 30), (62, 31, last_aa, 27))
    rows = [awp("sat", "sat", s, 33 + s, 27 + s) for s in (0, 1)]              # SAT drops 6 points
    rows += [awp("sat-awp", "sat", s, 35 + s, 34 + s) for s in (0, 1)]         # SAT+AWP drops 1
    rows += [awp("rat-awp", "rat", s, 30 + s, 29 + s) for s in (0, 1)]
    summary = results_overfit.overfit_summary(rows)
    v = results_overfit.overfit_awp_values(summary)
    assert v["pair"]["last"]["outcome"] == "below" and v["pair"]["last"]["difference"] == -5.0   # RAT+AWP vs SAT+AWP
    assert v["pair"]["best"]["outcome"] == "below"
    (drop,) = v["drops"]
    assert (drop["config"], drop["base"]) == ("sat-awp", "sat")
    assert drop["separation"]["outcome"] == "below" and drop["separation"]["difference"] == -5.0  # 1 against 6
    assert results_overfit.overfit_awp(summary)[0] == TO.OVERFIT_AWP_HEADING
    plain = results_overfit.overfit_summary(rows[:2])
    assert results_overfit.overfit_awp_values(plain) == {"pair": None, "drops": []}
    assert results_overfit.overfit_awp(plain) == []


@pytest.mark.parametrize("rat, sat, moved", [
    ({"gap": [34.0], "last_test_pgd": [9.0]}, {"gap": [37.0], "last_test_pgd": [12.0]}, "train_down"),
    ({"gap": [30.0], "last_test_pgd": [13.0]}, {"gap": [37.0], "last_test_pgd": [12.0]}, "test_up"),
    ({"gap": [40.0], "last_test_pgd": [13.0]}, {"gap": [37.0], "last_test_pgd": [12.0]}, "wider"),
])
def test_what_moved_in_the_gap(rat, sat, moved):
    assert results_overfit.what_moved(rat, sat) == moved


def test_the_regime_is_told_in_passes_and_steps_when_curves_are_every_few_steps():
    regime = {"arch": "wrn-10-2", "train_examples": 500, "epochs": 300, "curve_every": 45}
    row = {"regime": regime, "total_steps": 900, "lr_boundaries": [338, 506]}
    sat = [{**row, "config_name": "sat", "method": "sat", "best_epoch": 2, "best": {"clean": clean},
            "curves": [{"epoch": 1, "step": 45}, {"epoch": 2, "step": 90}]} for clean in (28.7, 26.9)]
    assert results_overfit._regime_text([row, *sat]) == TO.OVERFIT_REGIME.substitute(
        arch="wrn-10-2", train_examples="500", length="300 passes (900 steps of 128, a curve point every 45 steps)",
        data="1", params="0.7", steps="1", sat_best_steps="90", sat_best_clean="27–29", decay=338)
    assert results_overfit.regime_length({"epochs": 80}, []) == "80 epochs"


def calibration_row(name, regime, train_pgd, test_pgd, seconds, cpu_seconds=None, stopped=None):
    """A synthetic benchmarks/overfit.py --calibration row."""
    curves = [{"epoch": i + 1, "train_pgd": tr, "test_pgd": te} for i, (tr, te) in enumerate(zip(train_pgd, test_pgd))]
    row = {"name": name, "method": "sat", "config_name": "sat", "seed": 0, "calibration": True, "regime": regime,
           "config": {"optim": {"batch_size": 128}}, "curves": curves, "train_seconds": seconds,
           "train_cpu_seconds": cpu_seconds}
    return {**row, "stopped": stopped} if stopped else row


def test_the_calibration_that_chose_the_regime_is_on_the_page(tmp_path):
    chosen = overfit_runs.REGIME
    small = {"arch": "small_cnn", "train_examples": 4000, "epochs": 50, "name": "small_cnn-n4000-e50"}
    regime = {"arch": chosen.arch, "train_examples": chosen.train_examples, "epochs": chosen.epochs,
              "curve_every": chosen.curve_every, "name": chosen.name}
    rows = [calibration_row("cal-small", small, [10, 10], [10, 10], 120, stopped="chance level; stopped"),
            calibration_row("cal-chosen", regime, [20, 30], [15, 16], 600),          # resumed: the next row wins
            calibration_row("cal-chosen", regime, [20, 30, 40, 50], [15, 17, 14, 12], 3000)]
    path = write_jsonl(tmp_path / "calibration.jsonl", rows)
    loaded = results_calibration.calibration_rows(path)
    assert [(r["name"], len(r["curves"])) for r in loaded] == [("cal-small", 2), ("cal-chosen", 4)]
    study_rows = [{**overfit_row("sat", "sat", s, [30], [20], (1, 1, 1, 1), (1, 1, 1, 1)), "train_seconds": t,
                   "train_cpu_seconds": c} for s, (t, c) in enumerate([(3000, 2940), (1800, 1764)])]
    stopped, chosen_run = [results_calibration.calibration_values(r) for r in loaded]
    assert stopped["outcome"] == "stopped" and stopped["reason"] == "chance level; stopped" and stopped["checks"] == {}
    assert (stopped["points"], stopped["planned"]) == (2, 50)
    assert chosen_run["outcome"] == "chosen" and chosen_run["checks"] == {"decline": True, "gap": True, "time": True}
    c = chosen_run["criteria"]
    assert (c["best_test_pgd"], c["best_test_pgd_epoch"], c["last_test_pgd"]) == (17, 2, 12)
    assert (c["test_pgd_decline"], c["train_test_pgd_gap"]) == (5, 38)
    lines = results_calibration.calibration_page(loaded, "cal.jsonl", study_rows)
    head = TO.OVERFIT_CALIBRATION_HEAD.substitute(results_rel="cal.jsonl", decline="3", gap="15").split("\n")
    assert lines[:len(head)] == head                                  # the criteria: 3 points, 15 points
    assert "| small_cnn, 4,000 images, 50 passes | 2 of 50 | 10.0 (1) | 10.0 | 0.0 | 0.0 | 2 min " \
           "| chance level; stopped |" in lines
    # 300 passes of 500 // 128 = 3 steps: 900 steps, a point every 45: 20 points planned. Best test PGD-10 17 at
    # point 2, last 12: decline 5; last gap 50 - 12 = 38; 50 min is within the hour.
    steps = chosen.epochs * (chosen.train_examples // 128)
    planned = -(-steps // chosen.curve_every)
    assert chosen_run["planned"] == planned == 20 and chosen_run["points"] == 4
    assert (f"| {chosen.arch}, {chosen.train_examples:,} images, {chosen.epochs} passes, a point every "
            f"{chosen.curve_every} steps | 4 of {planned} | 17.0 (2) | 12.0 | 5.0 | 38.0 | 50 min | "
            + TO.OVERFIT_CALIBRATION_CHOSEN.substitute(meets="decline, gap, time", misses="") + " |") in lines
    assert TO.OVERFIT_CALIBRATION_TIMES.substitute(times="30–50", n=2, cpu="2") in lines
    # Over the time mark, the chosen row says so.
    slow = {**loaded[1], "train_seconds": overfit_runs.MAX_SECONDS + 60}
    assert results_calibration.calibration_values(slow)["checks"] == {"decline": True, "gap": True, "time": False}
    unfinished = {**loaded[1], "regime": {**regime, "name": "another"}}
    assert results_calibration.calibration_values(unfinished)["outcome"] == "unfinished"
    assert results_calibration.calibration_page([], "c") == []
    # The results page gets a paragraph with the chosen regime's numbers and a link to this page.
    link = results_overfit.calibration_link(loaded)[0]
    assert link == TO.OVERFIT_CALIBRATION_LINK.substitute(
        n=2, best="17.0", last="12.0", decline="5.0", min_decline="3", gap="38.0", min_gap="15", minutes="50",
        page="OVERFIT_CALIBRATION.md")
    assert results_overfit.calibration_link(loaded[:1]) == []
