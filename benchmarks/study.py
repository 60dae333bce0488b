"""Resumable runner for the study beyond the paper: end points with hard labels in RAT.

RAT trains on n * m points drawn from the adversarial region with distance-aware soft labels.
The study generalises it with `end_point_fraction` (that fraction of the training points are the
PGD end points x'_e with hard labels: 0 is the paper's RAT, 1 is SAT) and `smooth_from_scale`
(DLS only beyond the scale s0), and compares it with SAT (with and without an epsilon warm-up)
and the paper's RAT over several seeds, each model evaluated through its SavedModel with the
full suite (the headline is the per-example worst case).

Same machinery as `benchmarks/reproduce.py` (`benchmarks/execution.py`: train_main.py and
evaluate_main.py subprocesses, one JSON line per finished run, resumable, `--only`, `--list`,
`--dry_run`, `--deadline`, `--code_dir`), its own results file (`benchmarks/results/study.jsonl`) and model directories
(`runs/study/`). Runs are listed in priority order: SAT with warm-up, RAT and the candidate
(e = 0.5, s0 = 0) for seed 0; the candidate and SAT with warm-up for seed 1; the candidate and
RAT with SAT's warm-up (seeds 0, 1); RAT seed 1; seed 2 of all of these; the rest of the grid;
CIFAR-10.

    python -m benchmarks.study --list
    python -m benchmarks.study --deadline=21:00          # run what is missing, in order
    python -m benchmarks.study --only='^mnist-(sat-warm|rat)-seed0$'
    python -m benchmarks.make_results                     # docs/RESULTS.md, study section included

Budget (MNIST as in the reproduction): the first 30,000 MNIST training images x 5 epochs (1,170
steps of 128), eps 0.3, K = 10, step 0.075, small_cnn, Adam 1e-3 (divided by 10 at 75%).
Evaluation on the first 500 test images: FGSM, PGD-20, CW-inf 30, APGD-CE 50, APGD-T 50 x 3
targets, Square 1,000 queries, NAttack 20 x 50 on 100 images. CIFAR-10 uses the CIFAR-10 budget
of the reproduction's published preset (`--preset=cpu`: 2 epochs over all images, epsilon warmed
up over the first), so that the runs both need are trained once.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from typing import Any, Optional

from benchmarks import execution, reproduction, runner

RESULTS = reproduction.STUDY_RESULTS
RUNS_DIR = os.path.join(runner.REPO, "runs", "study")

EVAL = reproduction.CPU_EVAL
BUDGETS: dict[str, dict[str, Any]] = {
    "mnist": dict(mnist_epochs=5.0, cifar_epochs=None, max_train_examples=30_000, steps_per_epoch=117,
                  **EVAL),
    # The reproduction's CIFAR-10 budget (2 epochs, epsilon warmed up over the first), so that SAT
    # and RAT seed 0 are trained once for both.
    "cifar10": reproduction.for_dataset(reproduction.PRESETS["cpu"], "cifar10") | dict(mnist_epochs=None),
}
SEEDS = (0, 1, 2)
WARMUP = "1epochs"   # SAT's warm-up: the first of the 5 epochs

# name -> (method, overrides). end_point_fraction e, smooth_from_scale s0.
CONFIGS: dict[str, tuple[str, tuple[tuple[str, str], ...]]] = {
    "sat": ("sat", ()),
    "sat-warm": ("sat", (("epsilon_warmup", WARMUP),)),
    "rat": ("rat", ()),
}
for _e in ("0.25", "0.5", "0.75"):
    for _s in ("0", "1"):
        CONFIGS[f"rat-e{_e}-s{_s}"] = ("rat", (("end_point_fraction", _e), ("smooth_from_scale", _s)))
MAIN = ("sat-warm", "rat", "rat-e0.5-s0")     # the prototype's candidate is e = 0.5, s0 = 0
CANDIDATE = "rat-e0.5-s0"
# Added after seed 0: the candidate and RAT spent their first one to two epochs on the chance
# plateau that the warm-up spares SAT; with the same warm-up the comparison is like for like.
CONFIGS["rat-warm"] = ("rat", (("epsilon_warmup", WARMUP),))
CONFIGS[f"{CANDIDATE}-warm"] = ("rat", CONFIGS[CANDIDATE][1] + (("epsilon_warmup", WARMUP),))
WARM = (f"{CANDIDATE}-warm", "rat-warm")


def _runs() -> list[reproduction.Run]:
    # Seed 0 of the three, then the candidate and its baseline for the other seeds first.
    order = [(config, 0) for config in MAIN]
    order += [(config, 1) for config in (CANDIDATE, "sat-warm")]
    order += [(config, seed) for seed in SEEDS[:2] for config in WARM]
    order += [("rat", 1)] + [(config, 2) for config in (CANDIDATE, "sat-warm", "rat", *WARM)]
    order += [(config, seed) for seed in SEEDS for config in CONFIGS if config not in MAIN + WARM]
    runs = [reproduction.Run(f"mnist-{config}-seed{seed}", "mnist", CONFIGS[config][0], ("study-mnist",),
                          CONFIGS[config][1], seed) for config, seed in order]
    for seed in (0, 1):
        for config in ("sat", "rat", CANDIDATE):
            runs.append(reproduction.Run(f"cifar10-{config}-seed{seed}", "cifar10", CONFIGS[config][0],
                                      ("study-cifar10",), CONFIGS[config][1], seed))
    return runs


RUNS = _runs()


def config_of(name: str) -> str:
    """'mnist-rat-e0.5-s0-seed1' -> 'rat-e0.5-s0'."""
    return re.sub(r"^[a-z0-9]+-(.*)-seed\d+$", r"\1", name)


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    runner.add_runner_flags(parser, RESULTS, RUNS_DIR)
    parser.add_argument("--share_from", action="append", default=None,
                        help="another runner's results file: a run with the same commands there is copied, "
                             "not rerun (default: benchmarks/results/reproduce.jsonl)")
    return parser.parse_args(argv)


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    runner.use_code_dir(args.code_dir)
    args.results, args.runs_dir = os.path.abspath(args.results), os.path.abspath(args.runs_dir)
    selected = runner.select(RUNS, args.only)
    if not selected:
        return runner.no_match(RUNS, args.only)
    plans = [reproduction.plan(r, BUDGETS[r.dataset], args.runs_dir, "study") for r in selected]
    if args.share_from is None:
        args.share_from = [reproduction.RESULTS]
    return execution.run_plans(plans, args)


if __name__ == "__main__":
    sys.exit(main())
