"""Resumable runner for the robust-overfitting study: RAT against SAT over a long schedule.

Over a long schedule standard adversarial training (SAT) overfits: its training robustness
keeps rising while its test robustness peaks and falls (Rice et al. 2020). The study finds a
regime on CIFAR-10 where SAT does so on this machine (calibration), then trains SAT, RAT, SAT+ARS,
TRADES, AVmixup and RAT with end_point_fraction 0.5 there, over several seeds.

The runs, the recipe and the regimes are in `benchmarks/overfit_runs.py`. Each run trains with
`python -m benchmarks.overfit_train` (train_main.py plus clean and PGD-10 accuracy on fixed
1,000-image train / validation / test subsets per curve point: a pass over the training subset, or
every `curve_every` steps where the regime sets it, and two SavedModels: the last weights and the
best by validation PGD-10) in its own model directory, then evaluates both exports with
`evaluate_main.py --attacks=default --num_examples=1000` (the first 1,000 test images). One JSON
line per run goes to benchmarks/results/overfit.jsonl (calibration: overfit_calibration.jsonl)
with the config, the curves, the best epoch, the numbers of both checkpoints and the exact
commands. A run with a row is skipped; an interrupted one resumes.

    python -m benchmarks.overfit --calibration --list
    python -m benchmarks.overfit --calibration --only=small_cnn-n4000 --code_dir=../snap-overfit
    python -m benchmarks.overfit --stage=train --deadline=09:00      # train what is missing
    python -m benchmarks.overfit --stage=eval                         # evaluate the trained runs

Stages: `train` trains and writes a row without the attack-suite numbers ("evaluated": false;
best / last clean and pgd from the curve's test subset, PGD-10); `eval` evaluates trained runs
and writes the full row ("evaluated": true); `all` does both. Readers take the last row of a
(name, train_id). The data: a class-balanced training subset of the CIFAR-10 training JPEGs
(benchmarks/subsets.py, fixed seed 0, the same for every run) and a 1,000-image validation split
held out from the remaining training images, drawn from the folder tree ../cache/cifar10 beside
the repository (unpacked there from ../shared/data/cifar10-jpeg.tar.gz on first use). Training
recipe: the paper's SGD (lr 0.1 divided by 10 at 37.5% and 56.25% of the steps, momentum 0.9,
weight decay 2e-4, batch 128, crop + flip), eps 8/255, PGD-10 with step 2/255.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import resource
import sys
from typing import Any, Optional

from benchmarks import runner
from benchmarks.overfit_runs import (
    CALIBRATION_RESULTS,
    CALIBRATION_RUNS,
    CIFAR_DIR,
    CURVE_FIELDS,
    REGIME,
    REGIMES,
    REPO,
    RESULTS,
    RUNS_DIR,
    Plan,
    criteria,
    plan,
    runs_of,
)

# --------------------------------------------------------------------------------------------
# Rows.

def _pct(value: Optional[float]) -> Optional[float]:
    return None if value is None else round(100.0 * value, 2)


def summarise_report(report: dict[str, Any]) -> dict[str, Any]:
    """clean, pgd, autoattack (None when the preset has none), worst, in percent."""
    results = report.get("results", {})
    def acc(key):
        return _pct(results[key]["accuracy"]) if key in results else None
    return {"clean": acc("clean"), "pgd": acc("pgd"), "autoattack": acc("autoattack"),
            "worst": acc("worst_case"),
            "attacks": {k: _pct(v["accuracy"]) for k, v in results.items() if k not in ("clean", "worst_case")},
            "num_examples": report.get("num_examples")}


def make_row(p: Plan, summary: dict[str, Any], timing: dict[str, Any],
             reports: Optional[dict[str, dict[str, Any]]], hw: str) -> dict[str, Any]:
    curve = [{k: e.get(k) for k in ("epoch", "step", *CURVE_FIELDS)} for e in summary["curve"]]
    best_epoch = summary["best_epoch"]
    by_epoch = {e["epoch"]: e for e in curve}
    points = {"best": by_epoch.get(best_epoch, {}), "last": curve[-1] if curve else {}}
    checkpoints = {}
    for k, entry in points.items():
        if reports is not None:
            checkpoints[k] = summarise_report(reports[k])
        else:   # training only: the curve's test-subset numbers (PGD-10), no attack suite yet
            checkpoints[k] = {"clean": entry.get("test_clean"), "pgd": entry.get("test_pgd"),
                              "autoattack": None, "worst": None, "source": "curve (PGD-10)"}
        checkpoints[k]["epoch"] = entry.get("epoch")
    row = {
        "name": p.run.name, "method": p.run.method, "config_name": p.run.config, "seed": p.run.seed,
        "regime": dataclasses.asdict(p.run.regime) | {"name": p.run.regime.name},
        "calibration": p.run.calibration, "evaluated": reports is not None,
        "train_id": p.train_id, "eval_id": p.eval_id if reports is not None else None,
        "config": summary["config"], "subset": summary["subset"],
        "steps_per_epoch": summary["steps_per_epoch"], "total_steps": summary["total_steps"],
        "lr_boundaries": summary["lr_boundaries"], "selected_by": summary["select"],
        "curve_attack": summary["pgd"], "curves": curve, "best_epoch": best_epoch,
        "best": checkpoints["best"], "last": checkpoints["last"],
        "criteria": criteria(curve, timing.get("train_seconds")),
        "train_seconds": round(timing.get("train_seconds", 0.0), 1),
        "train_cpu_seconds": round(timing["train_cpu_seconds"], 1) if "train_cpu_seconds" in timing else None,
        "eval_seconds": {k: round(v, 1) for k, v in timing.items() if k.startswith("eval-")},
        "commands": {"train": runner.command_text(p.train_cmd),
                     **{f"evaluate_{k}": runner.command_text(c) for k, c in p.eval_cmds.items()}},
        "hardware": hw, "git_commit": runner.git_commit(),
        "tf_intra_op_threads": os.environ.get("TF_NUM_INTRAOP_THREADS"),
        "load_average_at_end": round(os.getloadavg()[0], 2),
        "finished_at": runner.utc_now(),
    }
    return row


# --------------------------------------------------------------------------------------------
# Execution.

def _child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def train_stage(p: Plan) -> Optional[tuple[dict[str, Any], dict[str, Any]]]:
    """Trains (or resumes) until overfit_train.json exists; returns (summary, timing) or None."""
    os.makedirs(p.model_dir, exist_ok=True)
    timing_path = os.path.join(p.model_dir, "overfit_timing.json")
    timing = runner.load_json(timing_path) or {}
    summary_path = os.path.join(p.model_dir, "overfit_train.json")
    if not os.path.exists(summary_path):
        partial = timing.pop("train_in_progress", None)
        if partial:
            timing["train_seconds"] = timing.get("train_seconds", 0.0) + partial
            timing["train_attempts"] = timing.get("train_attempts", 0) + 1

        def on_epoch(wall, _fit):
            timing["train_in_progress"] = wall
            runner.save_json(timing_path, timing)

        print(f"[{p.run.name}] training: {runner.command_text(p.train_cmd)}", flush=True)
        cpu_before = _child_cpu()
        rc, wall, _ = runner.run_logged(p.train_cmd, os.path.join(p.model_dir, "overfit.log"), on_epoch)
        # CPU seconds of the training process: comparable across machine loads, unlike wall time.
        timing["train_cpu_seconds"] = timing.get("train_cpu_seconds", 0.0) + _child_cpu() - cpu_before
        timing.pop("train_in_progress", None)
        timing["train_seconds"] = timing.get("train_seconds", 0.0) + wall
        timing["train_attempts"] = timing.get("train_attempts", 0) + 1
        runner.save_json(timing_path, timing)
        if rc != 0 or not os.path.exists(summary_path):
            print(f"[{p.run.name}] training failed (exit {rc}); log: {p.model_dir}/overfit.log", flush=True)
            return None
    return runner.load_json(summary_path), timing


def eval_stage(p: Plan, timing: dict[str, Any]) -> Optional[dict[str, dict[str, Any]]]:
    timing_path = os.path.join(p.model_dir, "overfit_timing.json")
    reports = {}
    for k, cmd in p.eval_cmds.items():
        report_path = os.path.join(p.eval_dirs[k], "report.json")
        key = f"eval-{p.eval_id}-{k}"
        if not os.path.exists(report_path) or key not in timing:
            print(f"[{p.run.name}] evaluating {k}: {runner.command_text(cmd)}", flush=True)
            rc, wall, _ = runner.run_logged(cmd, os.path.join(p.model_dir, "overfit.log"))
            if rc != 0:
                print(f"[{p.run.name}] evaluation of {k} failed (exit {rc})", flush=True)
                return None
            timing[key] = wall
            runner.save_json(timing_path, timing)
        reports[k] = runner.load_json(report_path)
    return reports


def is_done(rows: list[dict[str, Any]], p: Plan, stage: str) -> bool:
    for r in rows:
        # A stopped run's row records its curve so far; selecting the run again resumes it.
        if r["name"] != p.run.name or r["train_id"] != p.train_id or r.get("stopped"):
            continue
        if p.run.calibration or stage == "train":
            return True
        if r.get("evaluated") and r.get("eval_id") == p.eval_id:
            return True
    return False


def stopped_row(p: Plan, reason: str) -> Optional[dict[str, Any]]:
    """A row for a run stopped before the end (its curve so far), marked "stopped"."""
    state = runner.load_json(os.path.join(p.model_dir, "curves.json"))
    config = runner.load_json(os.path.join(p.model_dir, "config.json"))
    if not state or not state.get("curve"):
        return None
    timing = runner.load_json(os.path.join(p.model_dir, "overfit_timing.json")) or {}
    curve = [{k: e.get(k) for k in ("epoch", "step", *CURVE_FIELDS)} for e in state["curve"]]
    return {"name": p.run.name, "method": p.run.method, "config_name": p.run.config, "seed": p.run.seed,
            "regime": dataclasses.asdict(p.run.regime) | {"name": p.run.regime.name},
            "calibration": p.run.calibration, "evaluated": False, "stopped": reason,
            "train_id": p.train_id, "config": config, "curves": curve, "best_epoch": state.get("best_epoch"),
            "curve_seconds": [e.get("seconds") for e in state["curve"]],
            "criteria": criteria(curve), "train_seconds": round(timing.get("train_in_progress", 0.0)
                                                               + timing.get("train_seconds", 0.0), 1),
            "commands": {"train": runner.command_text(p.train_cmd)},
            "tf_intra_op_threads": os.environ.get("TF_NUM_INTRAOP_THREADS"),
            "finished_at": runner.utc_now()}


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--calibration", action="store_true", help="the SAT calibration runs (no evaluation)")
    parser.add_argument("--regime", default=REGIME.name, choices=sorted(REGIMES),
                        help=f"the study's regime (default {REGIME.name}, the calibration's choice)")
    parser.add_argument("--stage", choices=("train", "eval", "all"), default="all")
    runner.add_runner_flags(parser, None, RUNS_DIR)   # --results: by --calibration unless given
    parser.add_argument("--record_stopped", default=None, metavar="REASON",
                        help="append a row for each selected run that was stopped early (its curve so far)")
    args = parser.parse_args(argv)
    args.results = args.results or (CALIBRATION_RESULTS if args.calibration else RESULTS)
    return args


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    runner.use_code_dir(args.code_dir)
    results, runs_dir = os.path.abspath(args.results), os.path.abspath(args.runs_dir)
    pool = CALIBRATION_RUNS if args.calibration else runs_of(REGIMES[args.regime])
    selected = runner.select(pool, args.only)
    if not selected:
        return runner.no_match(pool, args.only)
    plans = [plan(r, runs_dir) for r in selected]
    if args.list or args.dry_run:
        rows = runner.read_rows(results)
        for p in plans:
            stopped = any(r["name"] == p.run.name and r["train_id"] == p.train_id and r.get("stopped") for r in rows)
            state = ("done" if is_done(rows, p, "all") else "trained" if is_done(rows, p, "train")
                     else "stopped" if stopped else "todo")
            done_epochs = len((runner.load_json(os.path.join(p.model_dir, "curves.json")) or {}).get("curve", []))
            print(f"{p.run.name:34s} {state:7s} {done_epochs:3d} curve points "
                  f"train {p.train_id} eval {p.eval_id} {p.model_dir}")
            if args.dry_run and state != "done":
                print(f"    {runner.command_text(p.train_cmd)}")
                if not p.run.calibration:
                    for cmd in p.eval_cmds.values():
                        print(f"    {runner.command_text(cmd)}")
        return 0
    if args.record_stopped:
        for p in plans:
            row = stopped_row(p, args.record_stopped)
            if row is not None:
                runner.append_row(results, row)
                print(f"[{p.run.name}] stopped row written ({len(row['curves'])} epochs)", flush=True)
        return 0
    runner.extract_once(runner.CIFAR_TAR, CIFAR_DIR)
    hw, failures = None, 0
    for p in plans:
        stage = "train" if p.run.calibration else args.stage
        if is_done(runner.read_rows(results), p, stage):
            print(f"[{p.run.name}] already in {os.path.relpath(results, REPO)}, skipped", flush=True)
            continue
        if runner.deadline_reached(args.deadline):
            print(f"deadline {args.deadline} UTC reached; not starting {p.run.name}", flush=True)
            break
        summary_path = os.path.join(p.model_dir, "overfit_train.json")
        if stage == "eval" and not os.path.exists(summary_path):
            print(f"[{p.run.name}] not trained yet, skipped", flush=True)
            continue
        if not runner.claim(p.model_dir):
            print(f"[{p.run.name}] running in another lane ({p.model_dir}/.lock), skipped", flush=True)
            continue
        try:
            hw = hw or runner.hardware()
            trained = train_stage(p)
            if trained is None:
                failures += 1
                continue
            summary, timing = trained
            reports = None
            if stage in ("eval", "all"):
                reports = eval_stage(p, timing)
                if reports is None:
                    failures += 1
                    continue
            row = make_row(p, summary, timing, reports, hw)
            if is_done(runner.read_rows(results), p, stage):
                continue
            runner.append_row(results, row)
        finally:
            runner.release(p.model_dir)
        c = row["criteria"]
        print(f"[{p.run.name}] row written: best epoch {row['best_epoch']}, best {row['best']}, last {row['last']}; "
              f"test PGD-10 decline {c.get('test_pgd_decline')}, gap {c.get('train_test_pgd_gap')}, "
              f"{row['train_seconds']:.0f} s", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
