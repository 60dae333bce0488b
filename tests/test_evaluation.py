import dataclasses
import inspect
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from rat_tf import attacks
from rat_tf.evaluation import autoattack_run, checks, report, robustness, suite

from helpers import digits, trained_digits_classifier

EPS = 0.1


@pytest.fixture(scope="module")
def model_and_data():
    model = trained_digits_classifier()
    _, _, x, y = digits()
    return (lambda z: model(z, training=False)), x[:200], y[:200]


def _suite(**kwargs):
    base = dict(epsilon=EPS, pgd_steps=10, cw_steps=10, attacks=("fgsm", "pgd", "cw"), autoattack=False)
    base.update(kwargs)
    return robustness.SuiteConfig(**base)


def test_accuracy_ordering_and_worst_case(model_and_data):
    logits_fn, x, y = model_and_data
    result = robustness.evaluate(logits_fn, x, y, _suite(restarts=2), batch_size=64)
    acc = {k: v["accuracy"] for k, v in result.summary().items()}
    assert acc["clean"] > 0.85
    assert acc["clean"] >= acc["fgsm"] >= acc["pgd"] - 0.02
    assert acc["worst_case"] <= min(acc["fgsm"], acc["pgd"], acc["cw"])
    expected = result.clean & result.per_attack["fgsm"] & result.per_attack["pgd"] & result.per_attack["cw"]
    np.testing.assert_array_equal(result.worst_case, expected)
    assert acc["pgd"] < acc["clean"] - 0.3


def test_epsilon_zero_is_clean_and_large_epsilon_is_near_zero(model_and_data):
    logits_fn, x, y = model_and_data
    zero = robustness.evaluate(logits_fn, x, y, _suite(epsilon=0.0), batch_size=100)
    assert zero.accuracy("worst_case") == zero.accuracy("clean")
    big = robustness.evaluate(logits_fn, x, y, _suite(epsilon=0.5, step_size=0.1), batch_size=100)
    assert big.accuracy("pgd") < 0.05


def test_sweeps_and_gaps(model_and_data):
    logits_fn, x, y = model_and_data
    steps = robustness.steps_sweep(logits_fn, x, y, EPS, EPS / 4, steps=(0, 1, 5, 10), batch_size=100)
    assert steps[0] == pytest.approx(np.mean(robustness.predict(logits_fn, x) == y))
    assert steps[10] < steps[1] <= steps[0]
    eps = robustness.epsilon_sweep(logits_fn, x, y, [0.0, 0.05, 0.1, 0.2], 0.025, batch_size=100)
    values = [eps[e] for e in sorted(eps)]
    assert values == sorted(values, reverse=True) and values[-1] < 0.2
    xtr, ytr, _, _ = digits()
    gaps = robustness.generalisation_gaps(logits_fn, (xtr[:200], ytr[:200]), (x, y),
                                          attacks.PGDConfig(EPS, EPS / 4, 5), batch_size=100)
    assert gaps["clean_gap"] == pytest.approx(gaps["train_clean"] - gaps["test_clean"])
    assert gaps["train_clean"] >= gaps["test_clean"] - 0.05


def test_checks_stay_quiet_on_a_normal_model(model_and_data):
    logits_fn, x, y = model_and_data
    result = robustness.evaluate(logits_fn, x, y, _suite(), batch_size=100)
    fired = [c.name for c in checks.run_all(logits_fn, x, y, result, EPS, num_examples=100) if c.fired]
    # PGD on CE may or may not flatter a plainly trained model by > 3 points; all others must be quiet
    assert set(fired) <= {"pgd_flatters"}


def test_each_check_fires_on_a_model_built_to_trigger_it(model_and_data):
    logits_fn, x, y = model_and_data
    x, y = x[:100], y[:100]
    softmax = lambda z: tf.nn.softmax(logits_fn(z))  # noqa: E731
    assert checks.probabilities(softmax, x).fired
    assert not checks.probabilities(logits_fn, x).fired
    masked = lambda z: logits_fn(tf.stop_gradient(tf.round(z * 4) / 4))  # noqa: E731
    assert checks.gradients(masked, x, y).fired
    assert not checks.gradients(logits_fn, x, y).fired
    zero_grad = lambda z: 0.0 * logits_fn(z) + tf.stop_gradient(logits_fn(z))  # noqa: E731
    assert checks.gradients(zero_grad, x, y).fired
    noisy = lambda z: logits_fn(z) + tf.random.normal([tf.shape(z)[0], 10])  # noqa: E731
    assert checks.randomness(noisy, x).fired
    assert not checks.randomness(logits_fn, x).fired
    assert checks.large_epsilon(masked, x, y, EPS).fired
    assert not checks.large_epsilon(logits_fn, x, y, EPS).fired
    assert checks.one_step_vs_iterative(fgsm=0.30, pgd=0.45).fired
    assert not checks.one_step_vs_iterative(fgsm=0.50, pgd=0.45).fired
    assert checks.soft_label_signature(pgd=0.60, worst_case=0.40).fired
    assert "(the soft-label signature)" in checks.soft_label_signature(pgd=0.60, worst_case=0.40).message
    usual = checks.soft_label_signature(pgd=0.45, worst_case=0.40)    # 5 points: fires, but is not the signature
    assert usual.fired and "signature" not in usual.message and "usual distance" in usual.message
    assert not checks.soft_label_signature(pgd=0.41, worst_case=0.40).fired
    n = 10
    ones, covered = np.ones(n, bool), np.ones(n, bool)
    fake = robustness.RobustnessResult(ones, {"pgd": ones.copy(), "square": np.arange(n) < 5},
                                       {"pgd": covered, "square": covered}, {})
    assert checks.query_vs_white_box(fake).fired
    fake.per_attack["square"] = ones.copy()
    assert not checks.query_vs_white_box(fake).fired


def test_suite_validation():
    with pytest.raises(ValueError, match="unknown attack"):
        robustness.SuiteConfig(attacks=("pgd", "deepfool"))
    with pytest.raises(ValueError, match="epsilon"):
        robustness.SuiteConfig(epsilon=1.5)
    with pytest.raises(ValueError, match="restarts"):
        robustness.SuiteConfig(restarts=0)


def test_report_files(tmp_path, model_and_data):
    logits_fn, x, y = model_and_data
    result = robustness.evaluate(logits_fn, x[:50], y[:50], _suite(attacks=("fgsm",)), batch_size=50)
    table = report.markdown_table({"rat": result.summary()}, pgd_steps=20)
    assert table.splitlines()[0] == "| model | Clean | FGSM | Worst case |"
    assert f"{100 * result.accuracy('clean'):.2f}" in table
    path = report.write_json(str(tmp_path / "r.json"), {"flags": result.worst_case, "n": 3})
    assert json.load(open(path))["n"] == 3
    png = report.plot_curve(str(tmp_path / "p.png"), {"rat": {0: 0.9, 5: 0.5}}, "K", "t")
    assert open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]


def test_every_preset_and_list_parses_to_registry_attacks():
    assert suite.parse_attacks("default") == (("fgsm", "pgd", "cw"), True)
    assert suite.parse_attacks("autoattack") == ((), True)
    assert suite.parse_attacks("paper") == (("fgsm", "pgd", "cw", "nattack"), False)
    assert suite.parse_attacks("all") == (tuple(suite.REGISTRY), False)
    assert suite.parse_attacks("none") == ((), False)
    # Attacks the cascade already runs are not run again on their own; NAttack only when asked.
    assert suite.parse_attacks("autoattack,square,nattack") == (("nattack",), True)
    assert "nattack" not in robustness.SuiteConfig().names
    with pytest.raises(ValueError, match="deepfool.*allowed: a comma list of fgsm, pgd"):
        suite.parse_attacks("pgd,deepfool")
    for name, spec in suite.REGISTRY.items():
        assert spec.name == name and dataclasses.is_dataclass(spec.config_type)
        config = spec.config(robustness.SuiteConfig(epsilon=0.1), 10)
        # The attack's own frozen config, passed as is: attack(logits_fn, x, y, config, seed).
        assert type(config) is spec.config_type and config.__dataclass_params__.frozen
        assert list(inspect.signature(spec.run).parameters)[:5] == ["logits_fn", "x", "y", "config", "seed"]


def test_budgets_must_be_positive_integers():
    for field in ("apgd_steps", "fab_steps", "fab_targets", "square_queries", "nattack_population"):
        for bad in (0, -3, 2.5, True):
            with pytest.raises(ValueError, match=field):
                robustness.SuiteConfig(**{field: bad})


def test_cascade_attacks_only_the_points_left_robust(model_and_data):
    logits_fn, x, y = model_and_data
    small = dict(apgd_steps=5, fab_steps=5, apgd_targets=2, fab_targets=2, square_queries=30)
    result = robustness.evaluate(logits_fn, x[:80], y[:80], _suite(attacks=(), autoattack=True, **small),
                                 batch_size=40)
    assert result.cascade == suite.AUTOATTACK and set(result.per_attack) == set(suite.AUTOATTACK)
    robust = result.clean
    for name in suite.AUTOATTACK:
        np.testing.assert_array_equal(result.coverage[name], robust)  # what was still robust
        assert not np.any(result.per_attack[name] & ~robust)          # flags only fall
        robust = result.per_attack[name]
    np.testing.assert_array_equal(result.autoattack, robust)
    assert result.accuracy("autoattack") == pytest.approx(robust.mean())
    assert result.accuracy("autoattack") < result.accuracy("clean")
    np.testing.assert_array_equal(result.worst_case, robust)
    summary = result.summary()["autoattack"]
    assert sum(summary["broken_by"].values()) == int(result.clean.sum() - robust.sum())


def test_cascade_a_stage_at_a_time_gives_its_flags_and_resumes(model_and_data):
    # benchmarks/autoattack_crosscheck.py runs the cascade one attack at a time, so that a run
    # can stop between stages and go on later: the flags must be the cascade's, bit for bit.
    from benchmarks import autoattack_crosscheck as crosscheck

    logits_fn, x, y = model_and_data
    x, y = x[:80], y[:80]
    small = _suite(attacks=(), autoattack=True, apgd_steps=5, fab_steps=5, apgd_targets=2, fab_targets=2,
                   square_queries=30)
    whole = robustness.evaluate(logits_fn, x, y, small, batch_size=30, seed=3)
    want = {"clean": whole.clean, **whole.per_attack}
    assert whole.accuracy("autoattack") < whole.accuracy("clean")

    saved = []

    class Stop(Exception):
        pass

    def save_then_stop(run):
        saved.append(run)
        if len(saved) == 3:  # after the clean pass, APGD-CE and APGD-T
            raise Stop

    with pytest.raises(Stop):
        crosscheck.ours_run(logits_fn, x, y, small, 3, 30, save=save_then_stop)
    assert list(saved[-1]["robust"]) == ["clean", "apgd_ce", "apgd_t"]
    stages, _ = crosscheck.ours_run(logits_fn, x, y, small, 3, 30, partial=saved[-1], save=saved.append)
    # Only FAB-T and Square ran again (one save each).
    assert list(stages) == ["clean", *crosscheck.STAGES] and len(saved) == 5
    for stage, flags in want.items():
        np.testing.assert_array_equal(stages[stage], flags, err_msg=stage)


def test_crosscheck_adds_runs_only_on_the_same_weights():
    # Runs of two exports (a retrained one need not be the same) never share a report entry.
    import keras

    from benchmarks import autoattack_crosscheck as crosscheck

    def model():
        keras.utils.set_random_seed(0)
        return keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])

    a, b = model(), model()
    assert crosscheck.weights_sha256(a) == crosscheck.weights_sha256(b)
    kernel = b.layers[0].kernel
    kernel.assign(np.nextafter(kernel.numpy(), np.float32(np.inf)))  # one ulp on every entry
    fingerprint = crosscheck.weights_sha256(a)
    assert crosscheck.weights_sha256(b) != fingerprint
    clean = [0, 2]
    entry = {"norms": {"L2": {"runs": {"official": [{"seed": 0, "robust": {"clean": [0, 2]}}]},
                              "partial": {"rat_tf seed 1": {"robust": {"clean": [0, 2]}}}}}}
    crosscheck.check_same_weights("m", entry, fingerprint, clean)  # no fingerprint yet: the clean flags agree
    with pytest.raises(SystemExit, match="m: the export classifies .* L2 official seed 0"):
        crosscheck.check_same_weights("m", entry, fingerprint, [1])
    entry["norms"]["L2"]["partial"]["rat_tf seed 1"]["robust"]["clean"] = [0]
    with pytest.raises(SystemExit, match="L2 rat_tf seed 1 run"):
        crosscheck.check_same_weights("m", entry, fingerprint, clean)
    crosscheck.check_same_weights("m", {**entry, "weights_sha256": fingerprint}, fingerprint, [1])  # sha256 decides
    with pytest.raises(SystemExit, match="m: the export's weights"):
        crosscheck.check_same_weights("m", {**entry, "weights_sha256": fingerprint}, crosscheck.weights_sha256(b),
                                      clean)


def test_crosscheck_merges_runs_made_side_by_side():
    from benchmarks import autoattack_crosscheck as crosscheck

    def run(seed, stages):
        return {"seed": seed, "seconds": 1.0, "robust": {s: [0, 1, 2][:3 - i] for i, s in enumerate(stages)}}

    full = ("clean", *crosscheck.STAGES)
    model = {"num_examples": 4, "weights_sha256": "ab"}
    ours = {"models": {"m": {**model, "norms": {"L2": {"epsilon": 0.5, "runs": {"rat_tf": [run(0, full)]},
                                                        "partial": {"official seed 0": run(0, full[:2])}}}}}}
    side = {"models": {"m": {**model, "norms": {"L2": {"epsilon": 0.5, "runs": {"official": [run(0, full)]},
                                                        "partial": {"official seed 1": run(1, full[:3])}}}}}}
    added = crosscheck.merge_reports(ours, side)
    assert added == ["m L2 official seed 0", "m L2 official seed 1: stages clean, apgd_ce, apgd_t"]
    n = ours["models"]["m"]["norms"]["L2"]
    assert [r["seed"] for r in n["runs"]["official"]] == [0]
    assert list(n["partial"]) == ["official seed 1"]  # seed 0 finished, so its stages went
    assert n["ours_minus_official_mean"] == 0.0 and n["by_stage"]["square"]["robust_only_for_rat_tf"] == []
    assert crosscheck.merge_reports(ours, side) == []  # nothing new the second time
    side["models"]["m"]["weights_sha256"] = "cd"
    with pytest.raises(SystemExit, match="m: b.json's weights"):
        crosscheck.merge_reports(ours, side, source="b.json")
    del side["models"]["m"]["weights_sha256"]  # a report written before the fingerprint: the clean flags decide
    assert crosscheck.merge_reports(ours, side) == []
    side["models"]["m"]["norms"]["L2"]["partial"]["official seed 1"]["robust"]["clean"] = [0, 1, 3]
    with pytest.raises(SystemExit, match="m: the other report classifies other test images"):
        crosscheck.merge_reports(ours, side)


def test_library_autoattack_on_a_keras_model():
    model = trained_digits_classifier()
    _, _, x, y = digits()
    out = autoattack_run.autoattack(model, x[:40], y[:40], EPS, apgd_steps=5, fab_steps=5, apgd_targets=2,
                                fab_targets=2, square_queries=30)
    assert out.robust.shape == (40,) and out.accuracy == pytest.approx(out.robust.mean())
    assert out.accuracy < out.clean_accuracy
    assert set(np.unique(out.broken_by)) <= {"", "clean", *suite.AUTOATTACK}
    import rat_tf.evaluation
    assert rat_tf.evaluation.autoattack is autoattack_run.autoattack
