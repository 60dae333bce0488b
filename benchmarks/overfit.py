"""Resumable runner for the robust-overfitting study: RAT against SAT over a long schedule.

Over a long schedule standard adversarial training (SAT) overfits: its training robustness
keeps rising while its test robustness peaks and falls (Rice et al. 2020). The study finds a
regime on CIFAR-10 where SAT does so on this machine (calibration), then trains SAT, RAT, SAT+ARS,
TRADES, AVmixup and RAT with end_point_fraction 0.5 there, over several seeds.

Each run trains with `benchmarks/overfit_train.py` (train_main.py plus clean and PGD-10
accuracy on fixed 1,000-image train / validation / test subsets per curve point: a pass over
the training subset, or every `curve_every` steps where the regime sets it, and two SavedModels: the last
weights and the best by validation PGD-10) in its own model directory, then evaluates both
exports with `evaluate_main.py --attacks=default --num_examples=1000` (the first 1,000 test
images). One JSON line per run goes to benchmarks/results/overfit.jsonl (calibration:
overfit_calibration.jsonl) with the config, the curves, the best epoch, the numbers of both
checkpoints and the exact commands. A run with a row is skipped; an interrupted one resumes.

    python benchmarks/overfit.py --calibration --list
    python benchmarks/overfit.py --calibration --only=small_cnn-n4000 --code_dir=../snap-overfit
    python benchmarks/overfit.py --stage=train --deadline=09:00      # train what is missing
    python benchmarks/overfit.py --stage=eval                         # evaluate the trained runs

Stages: `train` trains and writes a row without the attack-suite numbers ("evaluated": false;
best / last clean and pgd from the curve's test subset, PGD-10); `eval` evaluates trained runs
and writes the full row ("evaluated": true); `all` does both. Readers take the last row of a
(name, train_id). The data: a class-balanced training subset of the CIFAR-10 training JPEGs
(rat_tf.subsets, fixed seed 0, the same for every run) and a 1,000-image validation split held
out from the remaining training images; training recipe: the paper's SGD (lr 0.1 divided by 10
at 37.5% and 56.25% of the steps, momentum 0.9, weight decay 2e-4, batch 128, crop + flip),
eps 8/255, PGD-10 with step 2/255.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import re
import resource
import shutil
import subprocess
import sys
from typing import Any, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import reproduce  # noqa: E402

REPO = reproduce.REPO
RESULTS = os.path.join(REPO, "benchmarks", "results", "overfit.jsonl")
CALIBRATION_RESULTS = os.path.join(REPO, "benchmarks", "results", "overfit_calibration.jsonl")
RUNS_DIR = os.path.join(os.path.dirname(REPO), "runs", "overfit")
SOURCE = "folder:/work/cache/cifar10"
CIFAR_TAR = os.path.join(os.path.dirname(REPO), "shared", "data", "cifar10-jpeg.tar.gz")

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


def _runs(regime: Regime) -> list[Run]:
    # Seed 0 of SAT and RAT first, then the other methods' seed 0, then the further seeds.
    order = [("sat", 0), ("rat", 0), ("rat-e0.5", 0), ("sat_ars", 0), ("trades", 0), ("avmixup", 0),
             ("sat-awp", 0), ("rat-awp", 0), ("trades-awp", 0)]
    order += [(c, 1) for c in METHODS if SEEDS[c] > 1] + [(c, 2) for c in METHODS if SEEDS[c] > 2]
    order += [(c, 0) for c in METHODS if (c, 0) not in order]
    return [Run(f"{c}-seed{s}", c, s, regime) for c, s in order]


RUNS = _runs(REGIME)
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
    train_id, eval_id = reproduce.short_hash(targs), reproduce.short_hash(EVAL_FLAGS)
    # Named by the config, not the run: a calibration run of the study's regime is its SAT seed 0.
    model_dir = os.path.join(runs_dir, train_id, f"{run.config}-seed{run.seed}")
    exports = {"best": os.path.join(model_dir, "best"), "last": os.path.join(model_dir, "export")}
    eval_dirs = {k: os.path.join(model_dir, f"eval-{eval_id}-{k}") for k in exports}
    python = sys.executable
    train_cmd = [python, "benchmarks/overfit_train.py", *targs, f"--model_dir={model_dir}"]
    eval_cmds = {k: [python, "evaluate_main.py", f"--saved_model={exports[k]}", *EVAL_FLAGS,
                     f"--output_dir={eval_dirs[k]}", f"--name={run.name}-{k}"] for k in exports}
    return Plan(run, train_id, eval_id, model_dir, train_cmd, eval_cmds, eval_dirs)


# --------------------------------------------------------------------------------------------
# Rows.

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
        "commands": {"train": reproduce.command_text(p.train_cmd),
                     **{f"evaluate_{k}": reproduce.command_text(c) for k, c in p.eval_cmds.items()}},
        "hardware": hw, "git_commit": reproduce.git_commit(reproduce.CODE_DIR),
        "tf_intra_op_threads": os.environ.get("TF_NUM_INTRAOP_THREADS"),
        "load_average_at_end": round(os.getloadavg()[0], 2),
        "finished_at": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    return row


# --------------------------------------------------------------------------------------------
# Execution.

def _load_json(path: str) -> Optional[dict[str, Any]]:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def ensure_source() -> None:
    """Unpacks the shared CIFAR-10 JPEGs once; into a temporary directory renamed at the end, so
    that a second lane never reads a half-unpacked folder."""
    root = SOURCE[len("folder:"):]
    if os.path.isdir(os.path.join(root, "train")):
        return
    partial = f"{root}.partial-{os.getpid()}"
    os.makedirs(partial, exist_ok=True)
    print(f"unpacking {CIFAR_TAR} into {root}", flush=True)
    subprocess.run(["tar", "-xzf", CIFAR_TAR, "-C", partial], check=True)
    try:
        os.rename(partial, root)
    except OSError:               # another lane finished first (root exists and is not empty)
        shutil.rmtree(partial, ignore_errors=True)
        if not os.path.isdir(os.path.join(root, "train")):
            raise


def _save_timing(path: str, timing: dict[str, Any]) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(timing, f)
    os.replace(tmp, path)


def _child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def claim(model_dir: str) -> bool:
    """Takes MODEL_DIR/.lock for this process (False when a live process holds it), so that two
    lanes given the same run list do not train one run twice."""
    os.makedirs(model_dir, exist_ok=True)
    lock = os.path.join(model_dir, ".lock")
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                pid = int(open(lock, encoding="utf-8").read().strip() or 0)
                if pid == os.getpid():
                    return True
                os.kill(pid, 0)
                return False          # held by a live process
            except (ValueError, ProcessLookupError, OSError):
                os.remove(lock)       # stale: its process is gone
                continue
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(str(os.getpid()))
        return True
    return False


def release(model_dir: str) -> None:
    lock = os.path.join(model_dir, ".lock")
    try:
        if int(open(lock, encoding="utf-8").read().strip()) == os.getpid():
            os.remove(lock)
    except (OSError, ValueError):
        pass


def train_stage(p: Plan) -> Optional[tuple[dict[str, Any], dict[str, Any]]]:
    """Trains (or resumes) until overfit_train.json exists; returns (summary, timing) or None."""
    os.makedirs(p.model_dir, exist_ok=True)
    timing_path = os.path.join(p.model_dir, "overfit_timing.json")
    timing = _load_json(timing_path) or {}
    summary_path = os.path.join(p.model_dir, "overfit_train.json")
    if not os.path.exists(summary_path):
        partial = timing.pop("train_in_progress", None)
        if partial:
            timing["train_seconds"] = timing.get("train_seconds", 0.0) + partial
            timing["train_attempts"] = timing.get("train_attempts", 0) + 1

        def on_epoch(wall, _fit):
            timing["train_in_progress"] = wall
            _save_timing(timing_path, timing)

        print(f"[{p.run.name}] training: {reproduce.command_text(p.train_cmd)}", flush=True)
        cpu_before = _child_cpu()
        rc, wall, _ = reproduce.run_logged(p.train_cmd, os.path.join(p.model_dir, "overfit.log"), on_epoch)
        # CPU seconds of the training process: comparable across machine loads, unlike wall time.
        timing["train_cpu_seconds"] = timing.get("train_cpu_seconds", 0.0) + _child_cpu() - cpu_before
        timing.pop("train_in_progress", None)
        timing["train_seconds"] = timing.get("train_seconds", 0.0) + wall
        timing["train_attempts"] = timing.get("train_attempts", 0) + 1
        _save_timing(timing_path, timing)
        if rc != 0 or not os.path.exists(summary_path):
            print(f"[{p.run.name}] training failed (exit {rc}); log: {p.model_dir}/overfit.log", flush=True)
            return None
    return _load_json(summary_path), timing


def eval_stage(p: Plan, timing: dict[str, Any]) -> Optional[dict[str, dict[str, Any]]]:
    timing_path = os.path.join(p.model_dir, "overfit_timing.json")
    reports = {}
    for k, cmd in p.eval_cmds.items():
        report_path = os.path.join(p.eval_dirs[k], "report.json")
        key = f"eval-{p.eval_id}-{k}"
        if not os.path.exists(report_path) or key not in timing:
            print(f"[{p.run.name}] evaluating {k}: {reproduce.command_text(cmd)}", flush=True)
            rc, wall, _ = reproduce.run_logged(cmd, os.path.join(p.model_dir, "overfit.log"))
            if rc != 0:
                print(f"[{p.run.name}] evaluation of {k} failed (exit {rc})", flush=True)
                return None
            timing[key] = wall
            _save_timing(timing_path, timing)
        reports[k] = _load_json(report_path)
    return reports


def rows_of(path: str) -> list[dict[str, Any]]:
    return reproduce.read_rows(path)


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
    state = _load_json(os.path.join(p.model_dir, "curves.json"))
    config = _load_json(os.path.join(p.model_dir, "config.json"))
    if not state or not state.get("curve"):
        return None
    timing = _load_json(os.path.join(p.model_dir, "overfit_timing.json")) or {}
    curve = [{k: e.get(k) for k in ("epoch", "step", *CURVE_FIELDS)} for e in state["curve"]]
    return {"name": p.run.name, "method": p.run.method, "config_name": p.run.config, "seed": p.run.seed,
            "regime": dataclasses.asdict(p.run.regime) | {"name": p.run.regime.name},
            "calibration": p.run.calibration, "evaluated": False, "stopped": reason,
            "train_id": p.train_id, "config": config, "curves": curve, "best_epoch": state.get("best_epoch"),
            "curve_seconds": [e.get("seconds") for e in state["curve"]],
            "criteria": criteria(curve), "train_seconds": round(timing.get("train_in_progress", 0.0)
                                                               + timing.get("train_seconds", 0.0), 1),
            "commands": {"train": reproduce.command_text(p.train_cmd)},
            "tf_intra_op_threads": os.environ.get("TF_NUM_INTRAOP_THREADS"),
            "finished_at": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--calibration", action="store_true", help="the SAT calibration runs (no evaluation)")
    parser.add_argument("--regime", default=REGIME.name, choices=sorted(REGIMES),
                        help=f"the study's regime (default {REGIME.name}, the calibration's choice)")
    parser.add_argument("--stage", choices=("train", "eval", "all"), default="all")
    parser.add_argument("--only", default=None, help="regex on run names (re.search)")
    parser.add_argument("--list", action="store_true", help="print the runs and whether they are done")
    parser.add_argument("--dry_run", action="store_true", help="print the commands, run nothing")
    parser.add_argument("--results", default=None, help="JSON-lines results file (default: by --calibration)")
    parser.add_argument("--runs_dir", default=RUNS_DIR, help="model directories (not committed)")
    parser.add_argument("--code_dir", default=REPO,
                        help="run the training and evaluation scripts from this checkout or snapshot")
    parser.add_argument("--record_stopped", default=None, metavar="REASON",
                        help="append a row for each selected run that was stopped early (its curve so far)")
    parser.add_argument("--deadline", default=None,
                        help="UTC time HH:MM: start no new run after it (a started run is not stopped)")
    return parser.parse_args(argv)


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    reproduce.CODE_DIR = os.path.abspath(args.code_dir)
    results = os.path.abspath(args.results or (CALIBRATION_RESULTS if args.calibration else RESULTS))
    runs_dir = os.path.abspath(args.runs_dir)
    pool = CALIBRATION_RUNS if args.calibration else _runs(REGIMES[args.regime])
    selected = [r for r in pool if args.only is None or re.search(args.only, r.name)]
    if not selected:
        print(f"no run matches {args.only!r}; runs: {', '.join(r.name for r in pool)}", file=sys.stderr)
        return 2
    plans = [plan(r, runs_dir) for r in selected]
    if args.list or args.dry_run:
        rows = rows_of(results)
        for p in plans:
            stopped = any(r["name"] == p.run.name and r["train_id"] == p.train_id and r.get("stopped") for r in rows)
            state = ("done" if is_done(rows, p, "all") else "trained" if is_done(rows, p, "train")
                     else "stopped" if stopped else "todo")
            done_epochs = len((_load_json(os.path.join(p.model_dir, "curves.json")) or {}).get("curve", []))
            print(f"{p.run.name:34s} {state:7s} {done_epochs:3d} curve points "
                  f"train {p.train_id} eval {p.eval_id} {p.model_dir}")
            if args.dry_run and state != "done":
                print(f"    {reproduce.command_text(p.train_cmd)}")
                if not p.run.calibration:
                    for cmd in p.eval_cmds.values():
                        print(f"    {reproduce.command_text(cmd)}")
        return 0
    if args.record_stopped:
        for p in plans:
            row = stopped_row(p, args.record_stopped)
            if row is not None:
                reproduce.append_row(results, row)
                print(f"[{p.run.name}] stopped row written ({len(row['curves'])} epochs)", flush=True)
        return 0
    ensure_source()
    hw, failures = None, 0
    for p in plans:
        stage = "train" if p.run.calibration else args.stage
        if is_done(rows_of(results), p, stage):
            print(f"[{p.run.name}] already in {os.path.relpath(results, REPO)}, skipped", flush=True)
            continue
        if args.deadline:
            now = datetime.datetime.now(datetime.timezone.utc).strftime("%H:%M")
            if now >= args.deadline:
                print(f"deadline {args.deadline} UTC reached; not starting {p.run.name}", flush=True)
                break
        summary_path = os.path.join(p.model_dir, "overfit_train.json")
        if stage == "eval" and not os.path.exists(summary_path):
            print(f"[{p.run.name}] not trained yet, skipped", flush=True)
            continue
        if not claim(p.model_dir):
            print(f"[{p.run.name}] running in another lane ({p.model_dir}/.lock), skipped", flush=True)
            continue
        try:
            hw = hw or reproduce.hardware()
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
            if is_done(rows_of(results), p, stage):
                continue
            reproduce.append_row(results, row)
        finally:
            release(p.model_dir)
        c = row["criteria"]
        print(f"[{p.run.name}] row written: best epoch {row['best_epoch']}, best {row['best']}, last {row['last']}; "
              f"test PGD-10 decline {c.get('test_pgd_decline')}, gap {c.get('train_test_pgd_gap')}, "
              f"{row['train_seconds']:.0f} s", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
