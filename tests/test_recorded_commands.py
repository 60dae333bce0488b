"""Every recorded command reproduces its row: benchmarks/results/*.jsonl through today's flags.

Each row of the result files records the training command it ran (`commands.train`) and the
method config the run trained with (`method` + `method_hyperparameters`, or the whole resolved
`config`). Re-parsed through today's training flags and resolved by `rat_tf.config`, with the
image shape of the row's dataset, the command must give that config again: a changed default or
"auto" rule that would make a saved command train something else fails here. The evaluation
commands must still parse, with the budget the row records. No training, no data loaded.
"""

import glob
import json
import os
import shlex

from absl import flags
import pytest

import flags as rat_flags
from flags import evaluation as eval_flags
from rat_tf import config as config_lib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(REPO, "benchmarks", "results")

# The programs a row's training command may run, and the flags each adds to the training flags
# (the overfitting study's: which subset of --source it writes into the npz file it trains on).
TRAIN_PROGRAMS = {
    ("train_main.py",): set(),
    ("-m", "benchmarks.overfit_train"): {"source", "train_examples", "val_examples", "subset_seed",
                                          "monitor_examples"},
}
# Rows the study's runner wrote before it ran as a module name the script by its path.
TRAIN_PROGRAMS[("benchmarks/overfit_train.py",)] = TRAIN_PROGRAMS[("-m", "benchmarks.overfit_train")]
EVAL_PROGRAMS = {("evaluate_main.py",)}
# The image shape of each dataset the rows train on (what `resolve_for_data` needs).
SHAPES = {"mnist": (28, 28, 1), "cifar10": (32, 32, 3)}
# The evaluation budget a reproduction row records, by evaluate_main.py flag.
BUDGET_FLAGS = {"eval_examples": "num_examples", "pgd_steps": "pgd_steps", "cw_steps": "cw_steps",
                "apgd_steps": "apgd_steps", "apgd_targets": "apgd_targets", "fab_steps": "fab_steps",
                "fab_targets": "fab_targets", "square_queries": "square_queries",
                "nattack_examples": "nattack_examples", "nattack_iterations": "nattack_iterations",
                "nattack_population": "nattack_population", "attacks": "attacks"}


def _rows():
    rows = []
    for path in sorted(glob.glob(os.path.join(RESULTS, "*.jsonl"))):
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                if line.strip():
                    rows.append((f"{os.path.basename(path)}:{number}", json.loads(line)))
    return rows


ROWS = _rows()


def _split(command: str, programs) -> tuple[tuple[str, ...], list[str]]:
    """(the program, its arguments) of `python PROGRAM ARGS`; an unknown program fails the test."""
    words = shlex.split(command)
    assert words[0] == "python", command
    for program in programs:
        if tuple(words[1:1 + len(program)]) == program:
            return program, words[1 + len(program):]
    pytest.fail(f"{command[:80]}...: a program this test does not know; add it to the test")


def _parse(define, argv: list[str]) -> flags.FlagValues:
    values = flags.FlagValues()
    define(values)
    values(["program", *argv])
    return values


def _dataset(row: dict, args: dict[str, str]) -> str:
    """The data set the row trains on: the row's `dataset`, or the study's --source."""
    name = row.get("dataset") or os.path.basename(args.get("source", "").rstrip("/"))
    assert name in SHAPES, f"the image shape of {name!r} is not in the test's SHAPES"
    return name


def resolved_config(row: dict) -> config_lib.TrainConfig:
    """The config the row's saved training command gives today (autos closed for its data)."""
    program, argv = _split(row["commands"]["train"], TRAIN_PROGRAMS)
    args = dict(a[2:].split("=", 1) for a in argv if a.startswith("--") and "=" in a)
    own = TRAIN_PROGRAMS[program]
    train_argv = [a for a in argv if a[2:].split("=", 1)[0] not in own]
    config = rat_flags.config_from_flags(_parse(rat_flags.define_flags, train_argv))
    return config_lib.resolve_for_data(config, SHAPES[_dataset(row, args)])


def recorded_method(row: dict) -> dict:
    if "config" in row:
        return row["config"]["method"]
    return {"method": row["method"], **(row["method_hyperparameters"] or {})}


def test_the_rows_are_all_checked():
    """Every row of every result file records its training command: none is passed over."""
    assert len(ROWS) > 100
    assert not [where for where, row in ROWS if not row.get("commands", {}).get("train")]
    files = {where.split(":")[0] for where, _ in ROWS}
    assert {"reproduce.jsonl", "study.jsonl", "overfit.jsonl", "overfit_calibration.jsonl"} <= files


@pytest.mark.parametrize("where, row", ROWS, ids=[f"{w}:{r['name']}" for w, r in ROWS])
def test_the_saved_training_command_gives_the_recorded_method_config(where, row):
    config = resolved_config(row)
    assert config.method.to_dict() == recorded_method(row), where
    if "config" in row:  # the overfitting study records the whole resolved config
        today, default = config_lib.json_ready(config.to_dict()), config_lib.resolve({}).to_dict()
        for section, values in today.items():
            recorded = row["config"][section]
            assert {k: v for k, v in values.items() if k in recorded} == recorded, (where, section)
            # A field the row does not record came later: the saved command leaves it at its default.
            for key in set(values) - set(recorded):
                assert values[key] == default[section][key], (where, section, key)


@pytest.mark.parametrize("where, row", ROWS, ids=[f"{w}:{r['name']}" for w, r in ROWS])
def test_the_saved_evaluation_commands_parse_with_the_recorded_budget(where, row):
    commands = {k: v for k, v in row["commands"].items() if k.startswith("evaluate")}
    budget = row.get("budget", {}).get("eval", {})
    for command in commands.values():
        _, argv = _split(command, EVAL_PROGRAMS)
        values = _parse(eval_flags.define_flags, argv)
        for key, value in budget.items():
            assert values[BUDGET_FLAGS[key]].value == value, (where, key)


def test_a_command_without_the_paper_pin_would_fail_here():
    """The check can fail: MNIST RAT without --end_point_fraction=0 trains with today's rule (0.5)."""
    where, row = next((w, r) for w, r in ROWS if r.get("method") == "rat" and r.get("dataset") == "mnist"
                      and "--end_point_fraction=0" in r["commands"]["train"].split())
    unpinned = dict(row, commands={"train": row["commands"]["train"].replace(" --end_point_fraction=0", "")})
    assert resolved_config(unpinned).method.kwargs()["end_point_fraction"] == 0.5
    assert recorded_method(row)["end_point_fraction"] == 0.0, where
