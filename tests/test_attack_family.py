"""The attack family: one signature, frozen configs, results with `adversarial`, pinned outputs.

Every attack of the registry runs through `robustness.make_attack` (the suite's path) on a
fixed two-layer network with small budgets. The pinned flags and perturbation sizes were
produced by the attacks before they took a common signature; any change to an attack's
arithmetic, draws or seed layout moves them. APGD-DLR's and APGD-T's moved once, on purpose,
when APGD's first increase count came to follow the official code (tests/test_apgd_reference.py);
APGD-CE's did not move on these images.
"""

import dataclasses
import inspect
import threading
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits
import tensorflow as tf

from rat_tf import attacks
from rat_tf.evaluation import robustness
from rat_tf.evaluation.suite import REGISTRY, SuiteConfig

# (norm, attack) -> (per example: still classified as y after the attack, sum |x_adv - x|), for
# 16 digits at eps 0.05 (Linf) / 0.5 (L2), root seed 3.
PINNED = {
    ("Linf", "fgsm"): ("0110010001100100", 35.90000429749489),
    ("Linf", "pgd"): ("1110010001100100", 31.76918227877468),
    ("Linf", "cw"): ("0110010001100100", 32.63542249146849),
    ("Linf", "apgd_ce"): ("0110010001000100", 35.76776512339711),
    ("Linf", "apgd_dlr"): ("0110010001000100", 33.849751528236084),
    ("Linf", "apgd_t"): ("0110010001000100", 35.41387151554227),
    ("Linf", "fab"): ("0110010001000100", 10.047212283592671),
    ("Linf", "fab_t"): ("0110010001000100", 9.87781944591552),
    ("Linf", "square"): ("1110011011110110", 34.850003372877836),
    ("Linf", "nattack"): ("1110011001100110", 11.721279114484787),
    ("L2", "apgd_ce"): ("0100010000000000", 42.56057610637072),
    ("L2", "apgd_dlr"): ("0100010000000000", 42.43446697620675),
    ("L2", "apgd_t"): ("0100010000000000", 43.76534019400492),
    ("L2", "fab"): ("0100010000000000", 12.051923938231994),
    ("L2", "fab_t"): ("0100010000000000", 12.517522637586808),
    ("L2", "square"): ("1110010001100100", 36.08443201140108),
}
BUDGETS = dict(pgd_steps=5, cw_steps=5, apgd_steps=10, apgd_targets=3, fab_steps=10, fab_targets=3, fab_restarts=2,
               apgd_restarts=2, square_queries=50, nattack_iterations=3, nattack_population=10, attacks=(),
               autoattack=False)


@pytest.fixture(scope="module")
def mlp():
    """A fixed ReLU network on 8x8 digits (weights from a seeded numpy generator) and 16 images
    labelled with its own predictions, so that every image is attacked."""
    rng = np.random.RandomState(0)
    w1 = tf.constant(rng.normal(0, 0.5, (64, 32)).astype(np.float32))
    b1 = tf.constant(rng.normal(0, 0.1, 32).astype(np.float32))
    w2 = tf.constant(rng.normal(0, 0.5, (32, 10)).astype(np.float32))
    b2 = tf.constant(rng.normal(0, 0.1, 10).astype(np.float32))

    def model(images):
        return tf.nn.relu(tf.reshape(images, [-1, 64]) @ w1 + b1) @ w2 + b2

    x = (load_digits().images[:16] / 16.0).astype(np.float32)[..., None]
    return model, x, np.argmax(model(x).numpy(), -1).astype(np.int32)


@pytest.mark.parametrize("norm, name", list(PINNED))
def test_each_attack_output_is_pinned_on_a_fixed_seed(mlp, norm, name):
    model, x, y = mlp
    suite = SuiteConfig(epsilon=0.05 if norm == "Linf" else 0.5, norm=norm, **BUDGETS)
    adversarial = robustness.make_attack(name, model, suite, 10)(x, y, 3)
    robust = "".join("1" if r else "0" for r in np.argmax(model(adversarial).numpy(), -1) == y)
    flags, size = PINNED[norm, name]
    assert robust == flags
    assert float(np.abs(adversarial.astype(np.float64) - x).sum()) == pytest.approx(size, rel=1e-5)


@pytest.mark.parametrize("name", list(REGISTRY))
def test_every_attack_is_called_the_same_way(mlp, name):
    # attack(logits_fn, x, y, config, seed) -> a result with `adversarial`, config a frozen dataclass.
    model, x, y = mlp
    spec = REGISTRY[name]
    assert list(inspect.signature(spec.run).parameters)[:5] == ["logits_fn", "x", "y", "config", "seed"]
    config = spec.config(SuiteConfig(epsilon=0.05, **BUDGETS), 10)
    assert isinstance(config, spec.config_type)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.epsilon = 0.1
    result = spec.run(model, x[:4], y[:4], config, tf.constant([0, 1]))
    assert result.adversarial.shape == x[:4].shape
    assert np.abs(result.adversarial.numpy() - x[:4]).max() <= 0.05 + 1e-6


def test_pgd_results_name_their_end_point_adversarial(mlp):
    model, x, y = mlp
    result = attacks.pgd(model, x, y, attacks.PGDConfig(0.05, 0.02, 3), tf.constant([0, 1]))
    assert result.adversarial is result.end


def test_targeted_attacks_cap_their_targets_at_classes_minus_one(mlp):
    model, x, y = mlp
    # The registry caps once (with a warning) and records the cap; the attacks apply the same rule.
    suite = SuiteConfig.for_version("standard", "Linf", 0.05, apgd_steps=10, fab_steps=10, apgd_targets=12,
                                    fab_targets=12)
    with pytest.warns(UserWarning, match="apgd_t: 12 target classes asked for but the model has 10 classes"):
        config = REGISTRY["apgd_t"].config(suite, 10)
    assert config.num_target_classes == 9
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an already capped config runs without a warning
        capped = attacks.apgd_targeted(model, x, y, config, tf.constant([0, 2]))
    with pytest.warns(UserWarning, match="apgd_targeted: 12 target classes"):
        asked = attacks.apgd_targeted(model, x, y, dataclasses.replace(config, num_target_classes=12),
                                      tf.constant([0, 2]))
    np.testing.assert_array_equal(capped.adversarial.numpy(), asked.adversarial.numpy())
    budgets = suite.budgets(10)
    assert budgets["apgd_t"]["num_target_classes"] == budgets["fab_t"]["num_target_classes"] == 9
    assert "num_target_classes" not in budgets["apgd_ce"]


def test_compiled_attacks_trace_once_without_retracing_warnings(mlp, caplog):
    # One trace per attack and image shape, whatever the batch sizes, and none of TensorFlow's
    # "triggered tf.function retracing" warnings when several attacks are compiled in a row.
    model, x, y = mlp
    suite = SuiteConfig(epsilon=0.05, **BUDGETS)
    compiled = []
    with caplog.at_level("WARNING"):
        for _ in range(2):
            for name in ("fgsm", "pgd", "cw", "apgd_ce", "apgd_t", "fab_t"):
                spec = REGISTRY[name]
                run = robustness.compile_attack(spec.run, model, spec.config(suite, 10), x.shape[1:])
                for size in (16, 5, 11):
                    run(x[:size], y[:size], tf.constant([0, 1]))
                compiled.append(run)
    assert all(run.experimental_get_tracing_count() == 1 for run in compiled)
    assert not [r for r in caplog.records if "retracing" in r.getMessage()]


def test_evaluate_traces_each_attack_once_while_the_attacks_before_it_run(mlp, caplog):
    # evaluate() traces the compiled attacks in a background thread; an attack whose turn comes
    # while it is being traced waits for that trace. One trace each, no retracing warnings, and
    # the flags of each attack run on its own.
    model, x, y = mlp
    suite = SuiteConfig(epsilon=0.05, **{**BUDGETS, "attacks": ("fgsm", "pgd", "apgd_ce")})
    with caplog.at_level("WARNING"):
        result = robustness.evaluate(model, x, y, suite, batch_size=7)
    assert not [r for r in caplog.records if "retracing" in r.getMessage()]
    for name in suite.attacks:
        alone = robustness.evaluate(model, x, y, dataclasses.replace(suite, attacks=(name,)), batch_size=7)
        np.testing.assert_array_equal(result.per_attack[name], alone.per_attack[name])
    traced = robustness.make_attack("pgd", model, suite, 10)
    threads = [threading.Thread(target=traced.trace, args=(x.shape[1:],)) for _ in range(3)]
    for thread in threads:
        thread.start()
    adversarial = traced(x[:5], y[:5], 0)
    for thread in threads:
        thread.join()
    assert traced.trace(x.shape[1:]).experimental_get_tracing_count() == 1
    # The same images as the attack made and run in this thread alone.
    np.testing.assert_array_equal(adversarial, robustness.make_attack("pgd", model, suite, 10)(x[:5], y[:5], 0))
