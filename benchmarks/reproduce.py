"""Resumable runner for the CPU-scale reproduction of the paper's comparisons (the command line).

Each named run (`benchmarks/reproduction.py`) trains one model with `train_main.py` (a subprocess,
its own model directory under `runs/repro/`), evaluates the exported SavedModel with
`evaluate_main.py`, and appends one JSON line to `benchmarks/results/reproduce.jsonl`: the summary
numbers (clean, every attack, the per-example worst case), training and evaluation seconds, the
exact commands, the hardware and the git commit (`benchmarks/execution.py`). A run whose (name,
training flags, evaluation flags) already has a row is skipped, so the same command continues an
interrupted reproduction. Inside a run, training resumes from its last checkpoint (`train_main.py`
resumes a model directory; the runner checkpoints every `--steps_per_epoch` steps) and a finished
evaluation report is reused.

    python -m benchmarks.reproduce --list                      # the runs and their state
    python -m benchmarks.reproduce                             # the published budget (--preset=cpu)
    python -m benchmarks.reproduce --preset=issue              # the full specified budget, every run
    python -m benchmarks.reproduce --only='^mnist-(sat|rat)$' --dry_run
    python -m benchmarks.make_results                          # docs/RESULTS.md (and the README table)

Budgets. `--preset=cpu` (the default) is what is published: the budget of the study beyond the
paper (benchmarks/study.py), so a run both need is trained once (see PRESETS). `--preset=issue`
is the reproduction's full specified budget: MNIST 5 epochs over all 60,000 training images, CIFAR-10 5 epochs,
evaluation on 1,000 test images with the full suite (PGD-20, CW-30, APGD-CE 100, APGD-T 100 x 9
targets, Square 5,000 queries, NAttack 200 x 300 on all 1,000). `--preset=cpu-quick` is what
fitted the first session (1 epoch). Any budget flag below overrides the preset (its rows get a
section of their own). The runs, their ids and the shared optimiser: `benchmarks/reproduction.py`.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Optional

from benchmarks import execution, runner
from benchmarks.reproduction import PRESETS, REPO, RESULTS, RUNS, RUNS_DIR, STUDY_RESULTS, plan


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="cpu",
                        help="budget preset (default: cpu, the published budget; issue: the full specified budget)")
    runner.add_runner_flags(parser, RESULTS, RUNS_DIR)
    parser.add_argument("--share_from", action="append", default=None,
                        help="another runner's results file: a run with the same training and evaluation "
                             f"commands there is copied, not rerun (default: {os.path.relpath(STUDY_RESULTS, REPO)})")
    # Budget overrides (default: the preset's value).
    for name, kind in (("mnist_epochs", float), ("cifar_epochs", float), ("max_train_examples", int),
                       ("steps_per_epoch", int), ("eval_examples", int), ("pgd_steps", int),
                       ("cw_steps", int), ("apgd_steps", int), ("apgd_targets", int),
                       ("square_queries", int), ("nattack_examples", int), ("nattack_iterations", int),
                       ("nattack_population", int)):
        parser.add_argument(f"--{name}", type=kind, default=None)
    return parser.parse_args(argv)


def resolve_budget(args: argparse.Namespace) -> dict[str, Any]:
    """The preset with the flags that were given; a flag overrides the per-dataset values too."""
    budget = dict(PRESETS[args.preset])
    per_dataset = {d: dict(v) for d, v in budget.get("per_dataset", {}).items()}
    for key in budget:
        value = getattr(args, key, None)
        if value is not None:
            budget[key] = value
            for overrides in per_dataset.values():
                overrides.pop(key, None)
    if per_dataset:
        budget["per_dataset"] = per_dataset
    return budget


def preset_label(args: argparse.Namespace) -> str:
    """The preset and the budget flags that override it, e.g. 'cpu --eval_examples=1000' (rows of
    different budgets must not share a section of docs/RESULTS.md)."""
    overrides = [f"--{key}={getattr(args, key)}" for key in PRESETS[args.preset]
                 if key != "per_dataset" and getattr(args, key, None) is not None]
    return " ".join([args.preset, *overrides])


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    runner.use_code_dir(args.code_dir)
    args.results, args.runs_dir = os.path.abspath(args.results), os.path.abspath(args.runs_dir)
    budget = resolve_budget(args)
    selected = runner.select(RUNS, args.only)
    if not selected:
        return runner.no_match(RUNS, args.only)
    plans = [plan(r, budget, args.runs_dir, preset_label(args)) for r in selected]
    if args.share_from is None:
        args.share_from = [STUDY_RESULTS]
    return execution.run_plans(plans, args)


if __name__ == "__main__":
    sys.exit(main())
