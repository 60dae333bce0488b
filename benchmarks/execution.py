"""Runs the reproduction's plans (`benchmarks/reproduction.py`): train, evaluate, one row each.

A plan trains with `train_main.py` (a subprocess, its own model directory), evaluates the exported
SavedModel with `evaluate_main.py`, and appends one JSON line to its results file: the summary
numbers (clean, every attack, the per-example worst case), training and evaluation seconds, the
exact commands, the hardware and the git commit. A plan whose (name, training id, evaluation id)
already has a row is skipped, so the same command continues an interrupted run list. Inside a
run, training resumes from its last checkpoint (`train_main.py` resumes a model directory) and a
finished evaluation report is reused. A plan whose commands have a row in another runner's
results file (`--share_from`) gets a copy of that row instead of a run.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import time
from typing import Any, Optional

from benchmarks import runner
from benchmarks.reproduction import REPO, Plan, ensure_dataset


def summarise(report: dict[str, Any]) -> dict[str, Any]:
    """The row's numbers from an evaluation report: percentages, examples and seconds per attack."""
    results = report["results"]
    attacks = {name: round(100 * v["accuracy"], 2) for name, v in results.items()
               if name not in ("clean", "worst_case")}
    examples = {name: v["examples"] for name, v in results.items() if name not in ("clean", "worst_case")}
    seconds = {name: round(v.get("seconds", 0.0), 1) for name, v in results.items()
               if name not in ("clean", "worst_case")}
    fired = [c["message"] for c in report.get("checks", []) if c.get("fired")]
    return {"clean": round(100 * results["clean"]["accuracy"], 2), "attacks": attacks,
            "worst_case": round(100 * results["worst_case"]["accuracy"], 2),
            "attack_examples": examples, "attack_seconds": seconds, "num_examples": report["num_examples"],
            "checks_fired": fired}


def _train(p: Plan, timing: dict[str, Any], timing_path: str, log_path: str) -> bool:
    """Trains (or resumes) the plan's model; adds its seconds to `timing`. False if it failed."""
    # Seconds of an interrupted attempt (recorded after every Keras epoch) count too: the resumed
    # training continues from that attempt's last checkpoint.
    partial = timing.pop("train_in_progress", None)
    if partial:
        timing["train_seconds"] = timing.get("train_seconds", 0.0) + partial["wall"]
        timing["fit_seconds"] = timing.get("fit_seconds", 0.0) + partial["fit"]
        timing["train_attempts"] = timing.get("train_attempts", 0) + 1

    def on_epoch(wall, fit):
        timing["train_in_progress"] = {"wall": wall, "fit": fit}
        runner.save_json(timing_path, timing)

    print(f"[{p.run.name}] training: {runner.command_text(p.train_cmd)}", flush=True)
    rc, wall, fit = runner.run_logged(p.train_cmd, log_path, on_epoch)
    timing.pop("train_in_progress", None)
    if rc != 0:
        timing["train_in_progress"] = {"wall": wall, "fit": fit}
        runner.save_json(timing_path, timing)
        print(f"[{p.run.name}] training failed (exit {rc}); log: {log_path}", flush=True)
        return False
    timing["train_seconds"] = timing.get("train_seconds", 0.0) + wall
    timing["fit_seconds"] = timing.get("fit_seconds", 0.0) + fit
    timing["train_attempts"] = timing.get("train_attempts", 0) + 1
    timing["train_complete"] = True
    runner.save_json(timing_path, timing)
    return True


def _training_curve(model_dir: str) -> list[list[float]]:
    """[epoch, accuracy, loss] per Keras epoch from metrics.csv (on the method's training points)."""
    curve = []
    try:
        with open(os.path.join(model_dir, "metrics.csv"), encoding="utf-8") as f:
            for rec in csv.DictReader(f):
                curve.append([int(rec["epoch"]) + 1, round(float(rec["accuracy"]), 4), round(float(rec["loss"]), 4)])
    except (OSError, KeyError, ValueError):
        pass
    return curve


def execute(p: Plan, results_path: str, hw: str) -> Optional[dict[str, Any]]:
    """Trains and evaluates the plan (each resumed or reused), appends its row; None if a step failed."""
    run = p.run
    ensure_dataset(run.dataset)
    os.makedirs(p.model_dir, exist_ok=True)
    log_path = os.path.join(p.model_dir, "reproduce.log")
    timing_path = os.path.join(p.model_dir, "reproduce_timing.json")
    timing = runner.load_json(timing_path) or {}
    metadata_path = os.path.join(p.export_dir, "rat_tf_metadata.json")
    if not timing.get("train_complete") or not os.path.exists(metadata_path):
        if not _train(p, timing, timing_path, log_path):
            return None
    with open(metadata_path, encoding="utf-8") as f:
        metadata = json.load(f)
    report_path = os.path.join(p.eval_dir, "report.json")
    eval_key = f"eval_seconds-{p.eval_id}"
    if not os.path.exists(report_path) or eval_key not in timing:
        print(f"[{run.name}] evaluating: {runner.command_text(p.eval_cmd)}", flush=True)
        rc, wall, _ = runner.run_logged(p.eval_cmd, log_path)
        if rc != 0:
            print(f"[{run.name}] evaluation failed (exit {rc}); log: {log_path}", flush=True)
            return None
        timing[eval_key] = wall
        runner.save_json(timing_path, timing)
    with open(report_path, encoding="utf-8") as f:
        report = json.load(f)
    steps = int(metadata.get("trained_steps") or metadata.get("total_steps") or 0)
    row = {
        "name": run.name, "preset": p.preset, "tables": list(run.tables), "dataset": run.dataset,
        "method": run.method,
        "seed": run.seed, "overrides": dict(run.overrides),
        "train_id": p.train_id, "eval_id": p.eval_id, "budget": p.budget,
        "train_steps": steps, "arch": metadata.get("arch"), "epsilon": metadata.get("epsilon"),
        "method_hyperparameters": metadata.get("method_hyperparameters"),
        **summarise(report),
        "train_test_metrics": metadata.get("test_metrics"),
        "train_curve": _training_curve(p.model_dir),
        "train_seconds": round(timing["train_seconds"], 1),
        "fit_seconds": round(timing["fit_seconds"], 1),
        "seconds_per_1000_steps": round(1000 * timing["fit_seconds"] / steps, 1) if steps else None,
        "train_attempts": timing["train_attempts"],
        "eval_seconds": round(timing[eval_key], 1),
        "commands": {"train": runner.command_text(p.train_cmd), "evaluate": runner.command_text(p.eval_cmd)},
        "hardware": hw, "git_commit": runner.git_commit(),
        # What else ran: timings of runs with different thread settings or load are not comparable.
        "tf_intra_op_threads": os.environ.get("TF_NUM_INTRAOP_THREADS"),
        "load_average_at_end": round(os.getloadavg()[0], 2),
        "finished_at": runner.utc_now(),
    }
    runner.append_row(results_path, row)
    return row


def done_keys(rows: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    return {(r["name"], r["train_id"], r["eval_id"]) for r in rows}


def shared_rows(paths: list[str]) -> dict[tuple[str, str], dict[str, Any]]:
    """(train id, eval id) -> a finished row of another runner's results file."""
    found = {}
    for path in paths:
        for row in runner.read_rows(path):
            found.setdefault((row["train_id"], row["eval_id"]), {**row, "_results": path})
    return found


def adopt(p: Plan, row: dict[str, Any]) -> dict[str, Any]:
    """A copy of another runner's row for the same commands, under this plan's name and tables."""
    row = dict(row)
    source = os.path.relpath(row.pop("_results"), REPO)
    origin = row.get("shared_from") or {"results": source, "name": row["name"]}
    return {**row, "name": p.run.name, "preset": p.preset, "tables": list(p.run.tables), "budget": p.budget,
            "shared_from": origin}


def run_plans(plans: list[Plan], args: argparse.Namespace) -> int:
    """Lists (--list / --dry_run) or executes the plans in order, skipping those with a row.

    args: results, list, dry_run, deadline and share_from (a list of other runners' results files),
    as the runners' command lines parse them. Returns the exit status (1 if a run failed).
    """
    done = done_keys(runner.read_rows(args.results))

    def shared(p):
        return shared_rows([s for s in args.share_from or [] if os.path.abspath(s) != args.results]).get(
            (p.train_id, p.eval_id))
    if args.list or args.dry_run:
        for p in plans:
            state = ("done" if (p.run.name, p.train_id, p.eval_id) in done
                     else "shared" if shared(p) else "todo")
            print(f"{p.run.name:24s} {state:4s} train {p.train_id} eval {p.eval_id} "
                  f"tables={','.join(p.run.tables)}")
            if args.dry_run and state == "todo":
                print(f"    {runner.command_text(p.train_cmd)}\n    {runner.command_text(p.eval_cmd)}")
        return 0
    hw = None   # hardware() imports TensorFlow: only when a run executes
    failures = 0
    for p in plans:
        done = done_keys(runner.read_rows(args.results))   # again: another runner may have written since
        if (p.run.name, p.train_id, p.eval_id) in done:
            print(f"[{p.run.name}] already in {os.path.relpath(args.results, REPO)}, skipped", flush=True)
            continue
        other = shared(p)
        if other is not None:
            row = adopt(p, other)
            runner.append_row(args.results, row)
            print(f"[{p.run.name}] same commands as {row['shared_from']['name']} in "
                  f"{row['shared_from']['results']}: row copied", flush=True)
            continue
        if runner.deadline_reached(args.deadline):
            print(f"deadline {args.deadline} UTC reached; not starting {p.run.name}", flush=True)
            break
        started = time.time()
        hw = hw or runner.hardware()
        row = execute(p, args.results, hw)
        if row is None:
            failures += 1
            continue
        attacks = " ".join(f"{k}={v:.1f}" for k, v in row["attacks"].items())
        print(f"[{p.run.name}] done in {time.time() - started:.0f} s: clean {row['clean']:.1f} {attacks} "
              f"worst {row['worst_case']:.1f} (train {row['train_seconds']:.0f} s, eval "
              f"{row['eval_seconds']:.0f} s)", flush=True)
    return 1 if failures else 0
