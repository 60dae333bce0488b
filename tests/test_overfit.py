"""The robust-overfitting study: balanced subsets, best checkpoint by validation, result rows."""

import json
import os

from absl import flags
import keras
import numpy as np
import pytest

from benchmarks import monitor, overfit, overfit_runs, overfit_train, runner, subsets
from rat_tf import attacks


def _labels(per_class=60, num_classes=10, seed=3):
    return np.random.default_rng(seed).permutation(np.repeat(np.arange(num_classes), per_class))


def test_subset_is_class_balanced_deterministic_and_disjoint_from_validation():
    y = _labels()
    train, val = subsets.balanced_split(y, train_size=200, val_size=100, seed=0)
    assert len(train) == 200 and len(val) == 100
    assert subsets.class_counts(y[train], 10).tolist() == [20] * 10
    assert subsets.class_counts(y[val], 10).tolist() == [10] * 10
    assert not set(train) & set(val)
    again_train, again_val = subsets.balanced_split(y, train_size=200, val_size=100, seed=0)
    np.testing.assert_array_equal(train, again_train)
    np.testing.assert_array_equal(val, again_val)
    other_train, _ = subsets.balanced_split(y, train_size=200, val_size=100, seed=1)
    assert set(other_train) != set(train)
    # Not the first N files: the draw is spread over the whole index range.
    assert train.max() > 300
    # For one seed the validation split does not depend on the training size; subsets nest.
    small_train, small_val = subsets.balanced_split(y, train_size=100, val_size=100, seed=0)
    np.testing.assert_array_equal(np.sort(small_val), np.sort(val))
    assert set(small_train) <= set(train)


def test_subset_sizes_must_fit():
    y = _labels(per_class=5)
    with pytest.raises(ValueError, match="multiple"):
        subsets.balanced_split(y, train_size=15)
    with pytest.raises(ValueError, match="fewer"):
        subsets.balanced_split(y, train_size=40, val_size=20)


def _tiny_classifier():
    inputs = keras.Input((4, 4, 1))
    logits = keras.layers.Dense(3)(keras.layers.Flatten()(inputs))
    return keras.Model(inputs, logits)


class _Scripted(monitor.RobustnessCurves):
    """Curve entries from a script instead of attacks (the selection logic only)."""

    def __init__(self, script, **kwargs):
        super().__init__(**kwargs)
        self.script = script

    def entry(self, epoch):
        return {"epoch": epoch, **self.script[epoch]}


def _weights_marker(classifier):
    return float(classifier.get_weights()[1][0])   # the first bias, set to the epoch below


def test_best_checkpoint_is_chosen_by_validation_pgd_not_test(tmp_path):
    classifier = _tiny_classifier()
    # Test PGD peaks at epoch 3, validation PGD at epoch 2 (ties later keep epoch 2).
    script = {1: dict(val_pgd=10.0, test_pgd=30.0), 2: dict(val_pgd=20.0, test_pgd=10.0),
              3: dict(val_pgd=15.0, test_pgd=40.0), 4: dict(val_pgd=20.0, test_pgd=45.0)}
    x, y = np.zeros((2, 4, 4, 1), np.float32), np.zeros(2, np.int32)
    best_path = str(tmp_path / "best.weights.h5")
    cb = _Scripted(script, classifier=classifier, subsets={"val": (x, y), "test": (x, y)},
                   pgd_config=attacks.PGDConfig(), curve_path=str(tmp_path / "curves.json"),
                   best_weights=best_path)
    cb.on_train_begin()
    for epoch in range(4):
        weights = classifier.get_weights()
        weights[1][:] = epoch + 1
        classifier.set_weights(weights)
        cb.on_epoch_end(epoch)
    state = json.loads((tmp_path / "curves.json").read_text())
    assert state["best_epoch"] == 2 and state["select"] == "val_pgd"
    assert [e["epoch"] for e in state["curve"]] == [1, 2, 3, 4]
    assert json.loads((tmp_path / "best.weights.h5.json").read_text())["epoch"] == 2
    fresh = _tiny_classifier()
    fresh.load_weights(best_path)
    assert _weights_marker(fresh) == 2.0
    assert monitor.best_epoch(state["curve"], "test_pgd") == 4
    # Resuming from the checkpoint of epoch 2 drops the later entries.
    resumed = _Scripted(script, classifier=classifier, subsets={"val": (x, y)}, pgd_config=attacks.PGDConfig(),
                        curve_path=str(tmp_path / "curves.json"), best_weights=best_path, initial_epoch=2)
    resumed.on_train_begin()
    assert [e["epoch"] for e in resumed.curve] == [1, 2]
    # Stopped after the checkpoint of epoch 3 but before its curve entry: measured at train begin.
    resumed = _Scripted(script, classifier=classifier, subsets={"val": (x, y)}, pgd_config=attacks.PGDConfig(),
                        curve_path=str(tmp_path / "curves.json"), best_weights=best_path, initial_epoch=3)
    resumed.on_train_begin()
    assert [e["epoch"] for e in resumed.curve] == [1, 2, 3]
    with pytest.raises(ValueError, match="test"):
        monitor.RobustnessCurves(classifier, {}, attacks.PGDConfig(), str(tmp_path / "c.json"), select="test_pgd")


def test_measure_runs_the_attack_in_graph(tmp_path):
    classifier = _tiny_classifier()
    rng = np.random.default_rng(0)
    x, y = rng.random((10, 4, 4, 1)).astype(np.float32), rng.integers(0, 3, 10)
    pgd = attacks.PGDConfig(epsilon=0.3, step_size=0.1, num_steps=3)
    cb = monitor.RobustnessCurves(classifier, {"val": (x, y)}, pgd, str(tmp_path / "c.json"), batch_size=4)
    first = cb.measure("val", x, y.astype(np.int32), 0)
    assert 0.0 <= first["pgd"] <= 100.0 and 0.0 <= first["clean"] <= 100.0
    assert cb.measure("val", x, y.astype(np.int32), 0) == first   # fixed attack seeds


def _summary(epochs=6):
    curve = [{"epoch": e, "step": 10 * e, "train_pgd": 20.0 + 8 * e, "val_pgd": [20, 25, 30, 28, 26, 24][e - 1],
              "test_pgd": [19, 24, 29, 27, 25, 23][e - 1], "train_clean": 50.0 + e, "val_clean": 45.0,
              "test_clean": 44.0 + e, "seconds": 1.0} for e in range(1, epochs + 1)]
    return {"curve": curve, "best_epoch": 3, "select": "val_pgd", "pgd": {"epsilon": 8 / 255, "num_steps": 10},
            "config": {"method": {"method": "sat"}, "optim": {"learning_rate": 0.1}},
            "subset": {"train_examples": 4000}, "steps_per_epoch": 10, "total_steps": 60, "lr_boundaries": [22, 33]}


def _report(with_autoattack):
    results = {"clean": {"accuracy": 0.5}, "pgd": {"accuracy": 0.3}, "worst_case": {"accuracy": 0.2}}
    if with_autoattack:
        results["autoattack"] = {"accuracy": 0.25}
    return {"results": results, "num_examples": 1000}


@pytest.mark.parametrize("evaluated", [False, True])
def test_result_row_has_its_fields(tmp_path, evaluated):
    run = overfit_runs.RUNS[0]
    p = overfit_runs.plan(run, str(tmp_path))
    reports = {"best": _report(True), "last": _report(False)} if evaluated else None
    row = overfit.make_row(p, _summary(), {"train_seconds": 100.0}, reports, "test machine")
    row = json.loads(json.dumps(row))
    for key in ("method", "seed", "config", "curves", "best_epoch", "best", "last", "commands", "train_id"):
        assert key in row
    assert row["method"] == "sat" and row["seed"] == 0 and row["best_epoch"] == 3
    for entry in row["curves"]:
        assert set(overfit_runs.CURVE_FIELDS) <= set(entry)
    for which in ("best", "last"):
        assert set(row[which]) >= {"clean", "pgd", "autoattack", "worst"}
    if evaluated:
        assert row["best"]["autoattack"] == 25.0 and row["last"]["autoattack"] is None
        assert row["best"]["clean"] == 50.0 and row["last"]["worst"] == 20.0
    assert row["best"]["epoch"] == 3 and row["last"]["epoch"] == 6
    assert row["commands"]["train"].startswith("python -m benchmarks.overfit_train ")
    assert row["commands"]["evaluate_best"].startswith("python evaluate_main.py ")
    assert row["criteria"]["test_pgd_decline"] == 6.0 and row["criteria"]["train_test_pgd_gap"] == 45.0


def test_runs_cover_the_methods_and_seeds():
    names = {r.name for r in overfit_runs.RUNS}
    for config, seeds in overfit_runs.SEEDS.items():
        assert {f"{config}-seed{s}" for s in range(seeds)} <= names
    assert all(r.config == "sat" for r in overfit_runs.CALIBRATION_RUNS)


def test_a_run_is_claimed_by_one_lane(tmp_path):
    model_dir = str(tmp_path / "run")
    assert runner.claim(model_dir) and runner.claim(model_dir)        # this process, twice
    (tmp_path / "run" / ".lock").write_text("1")                        # a live process (init)
    assert not runner.claim(model_dir)
    (tmp_path / "run" / ".lock").write_text("999999999")                # a dead one: stale
    assert runner.claim(model_dir)
    runner.release(model_dir)
    assert not (tmp_path / "run" / ".lock").exists()


def test_a_regime_with_curve_points_every_few_steps_trains_its_passes_and_shares_sat_seed0():
    regime = overfit_runs.Regime("wrn-10-2", 500, 300, curve_every=45)
    assert regime.name == "wrn-10-2-n500-e300-c45"
    assert overfit_runs.Regime("wrn-10-2", 1000, 80).name == "wrn-10-2-n1000-e80"     # recorded names unchanged
    run = overfit_runs.Run("sat-seed0", "sat", 0, regime)
    args = overfit_runs.train_args(run, "/runs")
    assert "--epochs=300" in args and "--steps_per_epoch=45" in args and "--arch=wrn-10-2" in args
    other = overfit_runs.Run("x", "sat", 0, overfit_runs.CALIBRATION[4])
    assert "--steps_per_epoch=45" not in overfit_runs.train_args(other, "/r")
    # The calibration run of the study's regime is the study's SAT seed 0: same command, same directory.
    calibration = overfit_runs.Run("cal", "sat", 0, regime, calibration=True)
    assert overfit_runs.plan(calibration, "/runs").model_dir == overfit_runs.plan(run, "/runs").model_dir


def test_a_second_lane_never_reads_a_half_unpacked_cifar_folder(tmp_path):
    import tarfile  # noqa: PLC0415
    src = tmp_path / "src"
    for split in ("train", "test"):
        (src / split / "cat").mkdir(parents=True)
        (src / split / "cat" / "0.jpg").write_bytes(b"x")
    tar = tmp_path / "c.tar.gz"
    with tarfile.open(tar, "w:gz") as t:
        for split in ("train", "test"):
            t.add(src / split, arcname=split)
    root = tmp_path / "cache" / "cifar10"
    runner.extract_once(str(tar), str(root))
    assert sorted(p.name for p in root.iterdir()) == ["test", "train"]
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["cifar10"]       # no partial folder left
    (root / "train" / "cat" / "0.jpg").write_bytes(b"kept")
    runner.extract_once(str(tar), str(root))                                    # present: nothing to do
    assert (root / "train" / "cat" / "0.jpg").read_bytes() == b"kept"


def test_rows_name_paths_relative_to_the_repository_and_ids_hash_the_paths_the_run_gets(tmp_path):
    run = overfit_runs.RUNS[0]
    p = overfit_runs.plan(run, overfit_runs.RUNS_DIR)
    beside = os.path.dirname(runner.REPO)
    # The subprocess gets absolute paths (it may run from a snapshot elsewhere); the id hashes them.
    data = [a for a in overfit_runs.train_args(run, overfit_runs.RUNS_DIR) if a.startswith(("--dataset=", "--source="))]
    assert [a.split(":", 1)[1].startswith(beside + os.sep) for a in data] == [True, True]
    assert p.train_id == runner.run_id(overfit_runs.train_args(run, overfit_runs.RUNS_DIR))
    # What the training script writes back names them absolutely too; the row records them relative.
    summary = _summary()
    summary["config"]["run"] = {"model_dir": p.model_dir, "export_dir": os.path.join(p.model_dir, "export")}
    summary["subset"] = {"npz": data[0].split(":", 1)[1], "source": overfit_runs.SOURCE}
    row = overfit.make_row(p, summary, {"train_seconds": 1.0}, None, "test machine")
    path = tmp_path / "overfit.jsonl"
    runner.append_row(str(path), row)
    text = path.read_text()
    assert beside + os.sep not in text and runner.REPO not in text
    (recorded,) = runner.read_rows(str(path))
    assert recorded["train_id"] == p.train_id
    assert recorded["subset"]["source"] == "folder:../cache/cifar10"
    assert recorded["config"]["run"]["model_dir"] == f"../runs/overfit/{p.train_id}/{run.config}-seed{run.seed}"
    assert f"--dataset=npz:../runs/overfit/data/cifar10-n{run.regime.train_examples}-" in recorded["commands"]["train"]


def test_the_training_script_defines_its_flags_only_when_asked():
    assert "train_examples" not in flags.FLAGS          # importing it defined nothing
    values = flags.FlagValues()
    overfit_train.define_flags(values)
    assert {"source", "train_examples", "val_examples", "subset_seed", "monitor_examples"} <= set(values)
    assert values["source"].default is None             # no default data path: the command names its data
