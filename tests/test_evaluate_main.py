"""evaluate_main.py end to end on a SavedModel that train_main.py exports (digits, tiny budgets)."""

import json
import os
import subprocess
import sys

from absl import flags
import numpy as np
import pytest

import flags as rat_flags
from rat_tf import training

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = ["--num_examples=60", "--batch_size=30", "--pgd_steps=5", "--cw_steps=5", "--apgd_steps=10",
         "--apgd_targets=2", "--fab_steps=5", "--fab_targets=2", "--square_queries=40", "--nattack_iterations=4",
         "--nattack_population=16",
         "--sweep_examples=30"]


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory):
    model_dir = str(tmp_path_factory.mktemp("run"))
    flag_values = flags.FlagValues()
    rat_flags.define_flags(flag_values)
    flag_values(["train_main.py", "--max_train_examples=256", "--max_test_examples=64", "--batch_size=64",
                 "--num_steps=2", "--eval_pgd_steps=2", "--train_steps=20", f"--model_dir={model_dir}"])
    return training.train(rat_flags.config_from_flags(flag_values)).export_path


def _evaluate(*argv, timeout=400):
    return subprocess.run([sys.executable, os.path.join(REPO, "evaluate_main.py"), *argv],
                          capture_output=True, text=True, timeout=timeout, cwd=REPO)


def test_full_report_from_the_export(export_dir, tmp_path):
    out = str(tmp_path / "eval")
    proc = _evaluate(f"--saved_model={export_dir}", f"--output_dir={out}", "--sweep_steps",
                     "--sweep_epsilon", "--gaps", "--attacks=all", *SMALL)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.load(open(os.path.join(out, "report.json")))
    results = report["results"]
    assert set(results) == {"clean", "fgsm", "pgd", "cw", "apgd_ce", "apgd_dlr", "apgd_t", "fab", "fab_t", "square",
                            "nattack", "autoattack", "worst_case"}
    # --attacks=all runs AutoAttack's four attacks on every point; its number is their worst case.
    assert results["autoattack"]["protocol"] == "independent"
    four = np.array(report["per_example"]["clean"])
    for name in ("apgd_ce", "apgd_t", "fab_t", "square"):
        four &= np.array(report["per_example"][name])
    assert results["autoattack"]["accuracy"] == pytest.approx(four.mean())
    assert report["config"]["dataset"] == "digits"  # from the export's metadata
    assert report["config"]["suite"]["epsilon"] == pytest.approx(0.1)
    worst = np.array(report["per_example"]["worst_case"])
    for name in ("clean", "fgsm", "pgd", "cw", "apgd_ce", "apgd_dlr", "apgd_t", "fab", "fab_t", "square", "nattack"):
        assert results["worst_case"]["accuracy"] <= results[name]["accuracy"] + 1e-9
        assert not np.any(worst & ~np.array(report["per_example"][name]))
    assert report["robust_accuracy"] == results["worst_case"]["accuracy"]
    assert {c["name"] for c in report["checks"]} >= {"probabilities", "gradients", "randomness", "large_epsilon"}
    assert report["sweep_steps"]["accuracy"]["0"] == pytest.approx(results["clean"]["accuracy"], abs=1e-9) or \
        report["num_examples"] != 30
    assert set(report["gaps"]) >= {"train_clean", "test_clean", "clean_gap", "pgd_gap"}
    table = open(os.path.join(out, "report.md")).read()
    assert table.startswith("| model | Clean | FGSM | PGD-5 |")
    for png in ("sweep_steps.png", "sweep_epsilon.png"):
        assert open(os.path.join(out, png), "rb").read(4) == b"\x89PNG"
    assert "robust accuracy (worst case" in proc.stdout


def test_default_is_autoattack_as_a_cascade_plus_the_paper_columns(export_dir, tmp_path):
    out = str(tmp_path / "eval")
    proc = _evaluate(f"--saved_model={export_dir}", f"--output_dir={out}", "--checks=false", *SMALL,
                     "--apgd_targets=12")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "using 9" in proc.stderr  # more targets than classes - 1: clamped, with a warning
    report = json.load(open(os.path.join(out, "report.json")))
    results, per_example = report["results"], report["per_example"]
    assert set(results) == {"clean", "fgsm", "pgd", "cw", "apgd_ce", "apgd_t", "fab_t", "square",
                            "autoattack", "worst_case"}
    aa = results["autoattack"]
    assert aa["protocol"] == "cascade" and aa["attacks"] == ["apgd_ce", "apgd_t", "fab_t", "square"]
    broken_by = np.array(per_example["autoattack_broken_by"])
    clean, robust = np.array(per_example["clean"]), np.array(per_example["autoattack"])
    assert aa["accuracy"] == pytest.approx(robust.mean())
    np.testing.assert_array_equal(broken_by == "clean", ~clean)
    np.testing.assert_array_equal(broken_by == "", robust)
    # Each attack ran only on the points the previous ones left robust.
    attacked = int(clean.sum())
    for name in aa["attacks"]:
        assert results[name]["examples"] == attacked
        attacked -= int(np.sum(broken_by == name))
        assert aa["broken_by"][name] == int(np.sum(broken_by == name))
    worst = clean & robust
    for name in ("fgsm", "pgd", "cw"):
        worst &= np.array(per_example[name])
    np.testing.assert_array_equal(np.array(per_example["worst_case"]), worst)
    assert report["robust_accuracy"] == pytest.approx(worst.mean())
    # The version, the norm, every attack's budget and the seeds are recorded.
    assert report["autoattack"] == {"version": "standard", "norm": "Linf", "outputs": "logits",
                                    "attacks": ["apgd_ce", "apgd_t", "fab_t", "square"]}
    assert report["budgets"]["fab_t"]["final_search_steps"] == 0
    assert report["budgets"]["apgd_t"]["num_target_classes"] == 9  # 12 asked for, clamped to classes - 1
    assert report["seeds"] == {"root": 0, "streams": {"fgsm": 0, "pgd": 0, "cw": 0, "apgd_ce": 1, "apgd_t": 2,
                                                      "fab_t": 3, "square": 0}}


def test_l2_plus_version(export_dir, tmp_path):
    out = str(tmp_path / "eval")
    proc = _evaluate(f"--saved_model={export_dir}", f"--output_dir={out}", "--attacks=autoattack", "--norm=L2",
                     "--epsilon=1.5", "--autoattack_version=plus", *SMALL)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.load(open(os.path.join(out, "report.json")))
    assert report["autoattack"]["attacks"] == ["apgd_ce", "apgd_dlr", "fab", "square", "apgd_t", "fab_t"]
    assert report["budgets"]["apgd_ce"]["num_restarts"] == 5 and report["budgets"]["fab"]["num_restarts"] == 5
    assert report["budgets"]["apgd_ce"]["norm"] == "L2" and report["config"]["suite"]["epsilon"] == 1.5
    stages = [report["results"][name]["accuracy"] for name in report["autoattack"]["attacks"]]
    assert stages == sorted(stages, reverse=True)


@pytest.fixture(scope="module")
def softmax_export(tmp_path_factory):
    """A SavedModel whose endpoint ends in a softmax (probabilities, not logits)."""
    import keras  # noqa: PLC0415
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(10),
                              keras.layers.Softmax()])
    path = str(tmp_path_factory.mktemp("softmax") / "export")
    model.export(path, verbose=False)
    return path


def test_probability_outputs_are_refused_unless_declared(softmax_export, tmp_path):
    args = [f"--saved_model={softmax_export}", "--dataset=digits", "--epsilon=0.1", "--attacks=autoattack", *SMALL]
    proc = _evaluate(*args, f"--output_dir={tmp_path / 'refused'}", timeout=200)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "--outputs=logits: " in proc.stderr and "look like probabilities" in proc.stderr
    proc = _evaluate(*args, "--outputs=probabilities", f"--output_dir={tmp_path / 'declared'}", timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.load(open(tmp_path / "declared" / "report.json"))
    assert report["autoattack"]["outputs"] == "probabilities"


@pytest.mark.parametrize("argv, flag", [
    (["--saved_model=/nonexistent/model"], "--saved_model"),
    (["--attacks=pgd,deepfool"], "--attacks"),
    (["--epsilon=3"], "--epsilon"),
    (["--norm=L2", "--attacks=pgd"], "--attacks"),
    (["--norm=L3"], "--norm"),
    (["--square_queries=0"], "--square_queries"),
    (["--fab_steps=-1"], "--fab_steps"),
])
def test_bad_input_is_one_line_without_traceback(export_dir, argv, flag, tmp_path):
    args = [f"--saved_model={export_dir}", f"--output_dir={tmp_path}"]
    proc = _evaluate(*args, *argv, "--attacks=fgsm" if "--attacks" not in argv[0] else argv[0], timeout=120)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert flag in proc.stderr


def test_incompatible_dataset_is_reported(export_dir, tmp_path):
    path = tmp_path / "three.npz"
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (12, 8, 8, 1)).astype(np.uint8)
    np.savez(path, x_train=images, y_train=np.arange(12) % 3, x_test=images, y_test=np.arange(12) % 3)
    proc = _evaluate(f"--saved_model={export_dir}", f"--dataset=npz:{path}", "--attacks=fgsm", timeout=120)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "10 outputs" in proc.stderr and "3 classes" in proc.stderr


@pytest.fixture(scope="module")
def rgb_export(tmp_path_factory):
    """A 16x16 RGB classifier (a few ST steps on random images): enough to run corruptions."""
    root = tmp_path_factory.mktemp("rgb")
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (64, 16, 16, 3)).astype(np.uint8)
    labels = np.arange(64) % 4
    np.savez(root / "rgb.npz", x_train=images, y_train=labels, x_test=images[:20], y_test=labels[:20])
    flag_values = flags.FlagValues()
    rat_flags.define_flags(flag_values)
    flag_values(["train_main.py", f"--dataset=npz:{root / 'rgb.npz'}", "--method=st", "--arch=small_cnn",
                 "--batch_size=32", "--train_steps=2", "--eval_pgd_steps=0", f"--model_dir={root / 'run'}"])
    return training.train(rat_flags.config_from_flags(flag_values)).export_path, root


def test_corruptions_only(rgb_export, tmp_path):
    export_dir, root = rgb_export
    npy = tmp_path / "c10c"
    npy.mkdir()
    rng = np.random.default_rng(1)
    np.save(npy / "fog.npy", rng.integers(0, 255, (5 * 20, 16, 16, 3)).astype(np.uint8))
    np.save(npy / "labels.npy", np.tile(np.arange(20) % 4, 5))
    for source, names in (("generate", "fog,contrast"), (f"npy:{npy}", "fog")):
        out = tmp_path / source.split(":")[0]
        proc = _evaluate(f"--saved_model={export_dir}", "--attacks=none", f"--corruptions={names}",
                         "--corruption_severities=1,5", f"--corruption_source={source}",
                         f"--corruption_cache_dir={tmp_path / 'cache'}", f"--output_dir={out}", timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        report = json.load(open(out / "report.json"))
        corr = report["corruptions"]
        assert set(corr["accuracy"]) == set(names.split(","))
        assert corr["mca"] == pytest.approx(np.mean(list(corr["mean"].values())))
        assert set(report["results"]) == {"clean", "worst_case"}
        assert "mCA" in open(out / "report.md").read()
