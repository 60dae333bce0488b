"""The robust-overfitting study's runs: the recipe, the calibration's candidate regimes, the
methods and seeds, each run's training and evaluation commands (a `Plan`), and the calibration
criteria. `benchmarks/overfit.py` runs them; the result pages read the same definitions.

Data. Every run trains on a class-balanced subset of the CIFAR-10 training images
(`benchmarks/subsets.py`, seed 0, the same for every run) with a 1,000-image validation split held
out from the rest, written once as an npz under the runs directory by `benchmarks/overfit_train.py`
from `--source`: by default the image-folder tree `../cache/cifar10` beside the repository,
unpacked there from the shared `../shared/data/cifar10-jpeg.tar.gz` on first use.

Ids. A run's training id hashes its training flags with their paths absolute (`runner.run_id`,
the form the recorded ids have); its model directory is `<runs_dir>/<train id>/<config>-seed<s>`.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from typing import Any, Optional

from benchmarks import runner

REPO = runner.REPO
RESULTS = os.path.join(runner.RESULTS_DIR, "overfit.jsonl")
CALIBRATION_RESULTS = os.path.join(runner.RESULTS_DIR, "overfit_calibration.jsonl")
RUNS_DIR = os.path.join(os.path.dirname(REPO), "runs", "overfit")
# The CIFAR-10 image-folder tree the subsets are drawn from: ../cache/cifar10, beside the repository.
CIFAR_DIR = os.path.join(os.path.dirname(REPO), "cache", "cifar10")
SOURCE = f"folder:{CIFAR_DIR}"

# The paper's recipe (CIFAR-10), for every run.
RECIPE = ["--optimizer=sgd", "--learning_rate=0.1", "--momentum=0.9", "--weight_decay=2e-4",
          "--lr_boundaries=0.375,0.5625", "--batch_size=128", "--augment=true", "--epsilon_warmup=0",
          "--eval_epsilon=8/255", "--eval_step_size=2/255", "--eval_pgd_steps=10", "--validation_freq=0",
          "--max_test_examples=1000"]
ATTACK = ["--epsilon=8/255", "--step_size=2/255", "--num_steps=10"]
VAL_EXAMPLES = 1000
MONITOR_EXAMPLES = 1000
SUBSET_SEED = 0
EVAL_FLAGS = ["--attacks=default", "--num_examples=1000", "--seed=0"]

# Calibration criteria (SAT): the last epoch's test PGD-10 at least this far below the best
# epoch's, and the final train - test PGD-10 gap at least this large (points), within about an hour.
MIN_DECLINE = 3.0
MIN_GAP = 15.0
MAX_SECONDS = 3900


@dataclasses.dataclass(frozen=True)
class Regime:
    arch: str
    train_examples: int
    epochs: int                          # passes over the training subset
    curve_every: Optional[int] = None    # steps between curve points (None: one per pass)

    @property
    def name(self) -> str:
        every = f"-c{self.curve_every}" if self.curve_every else ""
        return f"{self.arch}-n{self.train_examples}-e{self.epochs}{every}"


# Candidate regimes, in the order they were tried (see the calibration results file).
# small_cnn (no BatchNorm) sat at chance with the paper's SGD (lr 0.1): every curve value 10.0
# after 2 epochs, so it was stopped. wrn-10-1 over 2,000 images x 100 epochs trained, but ran at
# about 75 s per epoch (15 steps of about 3.3 s while the 2 cores were shared, plus 25-50 s of
# curves), about 2 hours, and was stopped after 5 epochs for the shorter candidates below. The
# machine's load (other work, load average 6-9 on 2 cores) then made wall times 3-8 times the
# training process's CPU time: in CPU time (0.6 s per step alone) 100 epochs is about 40 minutes,
# so the n1000 x 60 candidate (420 steps) was stopped after 5 epochs and n2000 x 100 resumed.
# wrn-10-1 (78k parameters) then underfit: at epoch 21 of 40, after the first decay, train and
# test PGD-10 were equal (24.4 and 24.5), so both wrn-10-1 runs were stopped for the wider
# wrn-10-2 (305k parameters, 1.6 s per step alone). wrn-10-2 over 1,000 images x 80 epochs (7 steps
# each, about 50 s per epoch with the curves) still under-fit at epoch 39 of 80, after the first
# decay: train clean 39%, train / test PGD-10 26.8 / 21 (gap 6). Next: more steps per image
# (several hundred passes over a smaller subset), with the curves every fixed number of steps so
# that their cost (about 35 s for the three 1,000-image PGD-10 curves) stays near a quarter of
# the run: about 1,800 steps of wrn-10-2 over 1,000 images (256 passes) and over 500 (600 passes).
# Both were stopped after 3 curve points: with two single-thread lanes a step took 3.5 s (not the
# 1.6 s measured alone), so 1,800 steps is about 2h15. Over 500 images the gap opened fastest
# (train / test PGD-10 27.0 / 14.5 at step 180, against 24.7 / 20.4 at step 192 over 1,000), so
# the next candidate is 900 steps (300 passes) over those 500 images, a curve point every 45 steps.
# It overfits: test PGD-10 peaks at 17.2 at step 90 and ends at 11.8 (decline 5.4), while training
# PGD-10 climbs to 48.6 (final gap 36.8). It took 75 min (4,525 s wall, 4,354 s CPU) with a second
# lane beside it, over the 65-minute mark: 52 min of training steps and 21 min of curves. Accepted
# as "about an hour": the curves the study needs cost the rest, and a shorter schedule would cut
# into the phase after the first decay, where training PGD-10 climbs from 34 to 48.
CALIBRATION = (
    Regime("small_cnn", 4000, 50),
    Regime("wrn-10-1", 2000, 100),
    Regime("wrn-10-1", 2000, 40),
    Regime("wrn-10-1", 1000, 60),
    Regime("wrn-10-2", 1000, 80),
    Regime("wrn-10-2", 2000, 60),
    Regime("wrn-10-2", 1000, 256, curve_every=64),
    Regime("wrn-10-2", 500, 600, curve_every=60),
    Regime("wrn-10-2", 500, 300, curve_every=45),
)
# The study's regime, chosen by the calibration: wrn-10-2, 500 images, 900 steps.
REGIME = CALIBRATION[-1]

# name -> (method, overrides); the methods' own hyperparameters are their defaults (the paper's).
METHODS: dict[str, tuple[str, tuple[tuple[str, str], ...]]] = {
    "sat": ("sat", ()),
    "rat": ("rat", ()),
    "sat_ars": ("sat_ars", ()),
    "trades": ("trades", ()),
    "avmixup": ("avmixup", ()),
    "rat-e0.5": ("rat", (("end_point_fraction", "0.5"),)),
    # Beyond the paper, within SAT's step cost: one region sample per image (m = 1, a batch of n
    # points like SAT's), half of them the PGD end points with hard labels, soft labels only
    # beyond scale 1.
    "rat-m1-e0.5-s1": ("rat", (("num_samples", "1"), ("end_point_fraction", "0.5"),
                               ("smooth_from_scale", "1.0"))),
    # Adversarial weight perturbation (Wu et al. 2020) with the official code's values: gamma
    # 0.01 for adversarial training, 0.005 after a warm-up of 10 of 200 epochs for TRADES.
    "sat-awp": ("sat", (("awp_gamma", "0.01"), ("awp_warmup", "0"))),
    "rat-awp": ("rat", (("awp_gamma", "0.01"), ("awp_warmup", "0"))),
    "trades-awp": ("trades", (("awp_gamma", "0.005"), ("awp_warmup", "0.05"))),
}
SEEDS = {"sat": 3, "rat": 3, "sat_ars": 2, "trades": 2, "avmixup": 2, "rat-e0.5": 2,
         "rat-m1-e0.5-s1": 1, "sat-awp": 3, "rat-awp": 3, "trades-awp": 2}


@dataclasses.dataclass(frozen=True)
class Run:
    name: str
    config: str          # key of METHODS
    seed: int
    regime: Regime
    calibration: bool = False

    @property
    def method(self) -> str:
        return METHODS[self.config][0]


def runs_of(regime: Regime) -> list[Run]:
    """The study's runs in `regime`, in the order they run."""
    # Seed 0 of SAT and RAT first, then the other methods' seed 0, then the further seeds.
    order = [("sat", 0), ("rat", 0), ("rat-e0.5", 0), ("sat_ars", 0), ("trades", 0), ("avmixup", 0),
             ("sat-awp", 0), ("rat-awp", 0), ("trades-awp", 0)]
    order += [(c, 1) for c in METHODS if SEEDS[c] > 1] + [(c, 2) for c in METHODS if SEEDS[c] > 2]
    order += [(c, 0) for c in METHODS if (c, 0) not in order]
    return [Run(f"{c}-seed{s}", c, s, regime) for c, s in order]


RUNS = runs_of(REGIME)
REGIMES = {r.name: r for r in CALIBRATION}
CALIBRATION_RUNS = [Run(f"cal-{r.name}-sat-seed0", "sat", 0, r, calibration=True) for r in CALIBRATION]


def subset_path(runs_dir: str, regime: Regime) -> str:
    return os.path.join(runs_dir, "data", f"cifar10-n{regime.train_examples}-v{VAL_EXAMPLES}-s{SUBSET_SEED}.npz")


def train_args(run: Run, runs_dir: str) -> list[str]:
    r = run.regime
    method, overrides = METHODS[run.config]
    return [f"--dataset=npz:{subset_path(runs_dir, r)}", f"--source={SOURCE}",
            f"--train_examples={r.train_examples}", f"--val_examples={VAL_EXAMPLES}",
            f"--subset_seed={SUBSET_SEED}", f"--monitor_examples={MONITOR_EXAMPLES}",
            f"--method={method}", f"--seed={run.seed}", f"--arch={r.arch}", f"--epochs={r.epochs}",
            *([f"--steps_per_epoch={r.curve_every}"] if r.curve_every else []), *RECIPE, *ATTACK,
            *[f"--{k}={v}" for k, v in overrides]]


@dataclasses.dataclass
class Plan:
    run: Run
    train_id: str
    eval_id: str
    model_dir: str
    train_cmd: list[str]
    eval_cmds: dict[str, list[str]]      # "best" / "last" -> command
    eval_dirs: dict[str, str]


def plan(run: Run, runs_dir: str) -> Plan:
    targs = train_args(run, runs_dir)
    train_id, eval_id = runner.run_id(targs), runner.run_id(EVAL_FLAGS)
    # Named by the config, not the run: a calibration run of the study's regime is its SAT seed 0.
    model_dir = os.path.join(runs_dir, train_id, f"{run.config}-seed{run.seed}")
    exports = {"best": os.path.join(model_dir, "best"), "last": os.path.join(model_dir, "export")}
    eval_dirs = {k: os.path.join(model_dir, f"eval-{eval_id}-{k}") for k in exports}
    python = sys.executable
    train_cmd = [python, "-m", "benchmarks.overfit_train", *targs, f"--model_dir={model_dir}"]
    eval_cmds = {k: [python, "evaluate_main.py", f"--saved_model={exports[k]}", *EVAL_FLAGS,
                     f"--output_dir={eval_dirs[k]}", f"--name={run.name}-{k}"] for k in exports}
    return Plan(run, train_id, eval_id, model_dir, train_cmd, eval_cmds, eval_dirs)


CURVE_FIELDS = ("train_pgd", "val_pgd", "test_pgd", "train_clean", "val_clean", "test_clean")


def criteria(curve: list[dict[str, Any]], seconds: Optional[float] = None) -> dict[str, Any]:
    """The calibration criteria on a curve (test PGD-10 decline from its best epoch, final gap)."""
    if not curve:
        return {}
    best = max(curve, key=lambda e: (e["test_pgd"], -e["epoch"]))
    last = curve[-1]
    decline = round(best["test_pgd"] - last["test_pgd"], 2)
    gap = round(last["train_pgd"] - last["test_pgd"], 2)
    out = {"best_test_pgd_epoch": best["epoch"], "best_test_pgd": best["test_pgd"],
           "last_test_pgd": last["test_pgd"], "last_train_pgd": last["train_pgd"],
           "test_pgd_decline": decline, "train_test_pgd_gap": gap,
           "decline_ok": decline >= MIN_DECLINE, "gap_ok": gap >= MIN_GAP}
    if seconds is not None:
        out["seconds_ok"] = seconds <= MAX_SECONDS
    out["meets"] = all(v for k, v in out.items() if k.endswith("_ok"))
    return out
