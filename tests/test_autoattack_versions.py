"""AutoAttack's versions and norms, the L2 and EOT branches of APGD, and the input checks."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from rat_tf import attacks
from rat_tf.attacks import common
from rat_tf.evaluation import autoattack_run
from rat_tf.evaluation.suite import VERSIONS, SuiteConfig

from helpers import digits, tiny_cnn

# The official code's AutoAttack.set_version (fra31/auto-attack, autoattack/autoattack.py) for
# Linf and L2, written out: attacks in order, then restarts / targets / queries / EOT.
OFFICIAL = {
    "standard": dict(attacks=("apgd_ce", "apgd_t", "fab_t", "square"), apgd_restarts=1,
                     apgd_targeted_restarts=1, targets=9, fab_restarts=None, fab_t_restarts=1,
                     square_queries=5000, eot_iter=1),
    "plus": dict(attacks=("apgd_ce", "apgd_dlr", "fab", "square", "apgd_t", "fab_t"), apgd_restarts=5,
                 apgd_targeted_restarts=1, targets=9, fab_restarts=5, fab_t_restarts=1, square_queries=5000,
                 eot_iter=1),
    "rand": dict(attacks=("apgd_ce", "apgd_dlr"), apgd_restarts=1, apgd_targeted_restarts=None, targets=None,
                 fab_restarts=None, fab_t_restarts=None, square_queries=None, eot_iter=20),
}


@pytest.mark.parametrize("norm", ["Linf", "L2"])
@pytest.mark.parametrize("version", list(OFFICIAL))
def test_each_version_runs_the_official_attacks_with_the_official_budgets(version, norm):
    want = OFFICIAL[version]
    suite = SuiteConfig.for_version(version, norm, 0.5)
    assert suite.cascade == want["attacks"] == VERSIONS[version].attacks
    budgets = suite.budgets(10)
    assert tuple(budgets) == want["attacks"]
    for name, attack in budgets.items():
        assert attack["epsilon"] == 0.5 and attack["norm"] == norm
        # Only the targeted attacks record target classes.
        assert ("num_target_classes" in attack) == (name in ("apgd_t", "fab_t"))
        if name in ("apgd_ce", "apgd_dlr"):
            assert (attack["num_steps"], attack["num_restarts"], attack["rho"], attack["eot_iter"]) == \
                (100, want["apgd_restarts"], 0.75, want["eot_iter"])
        if name == "apgd_t":
            assert (attack["num_steps"], attack["num_restarts"], attack["num_target_classes"]) == \
                (100, want["apgd_targeted_restarts"], want["targets"])
        if name == "fab":
            assert (attack["num_steps"], attack["num_restarts"]) == (100, want["fab_restarts"])
        if name in ("fab", "fab_t"):
            assert (attack["alpha_max"], attack["eta"], attack["beta"]) == (0.1, 1.05, 0.9)
            assert attack["final_search_steps"] == 0  # the official FAB has no final search
        if name == "fab_t":
            assert (attack["num_restarts"], attack["num_target_classes"]) == (want["fab_t_restarts"],
                                                                             want["targets"])
        if name == "square":
            assert (attack["num_queries"], attack["p_init"], attack["rescale_schedule"]) == \
                (want["square_queries"], 0.8, False)


def test_the_fab_search_is_an_explicit_option_and_recorded():
    suite = SuiteConfig.for_version("standard", fab_final_search_steps=10)
    assert suite.budgets(10)["fab_t"]["final_search_steps"] == 10


def test_l2_suites_refuse_linf_only_attacks_and_bad_arguments():
    with pytest.raises(ValueError, match="pgd have no L2 version"):
        SuiteConfig(epsilon=0.5, norm="L2", attacks=("pgd",))
    with pytest.raises(ValueError, match="norm must be one of Linf, L2"):
        SuiteConfig.for_version("standard", "L1")
    with pytest.raises(ValueError, match="version must be one of standard, plus, rand"):
        SuiteConfig.for_version("custom")
    with pytest.raises(ValueError, match="epsilon must be in"):
        SuiteConfig.for_version("standard", "Linf", 1.5)
    assert SuiteConfig.for_version("standard", "L2", 1.5).epsilon == 1.5  # an L2 radius may exceed 1


def test_l2_projection_exact_numbers():
    x = tf.fill([1, 2, 2, 1], 0.5)
    far = x + tf.reshape(tf.constant([0.3, 0.4, 0.0, 0.0]), [1, 2, 2, 1])  # ||delta|| = 0.5
    np.testing.assert_allclose(common.project_l2(far, x, 0.25).numpy().ravel(),
                               [0.65, 0.7, 0.5, 0.5], atol=1e-6)   # rescaled to 0.25: (0.15, 0.2)
    near = x + tf.reshape(tf.constant([0.03, 0.04, 0.0, 0.0]), [1, 2, 2, 1])
    np.testing.assert_allclose(common.project_l2(near, x, 0.25).numpy(), near.numpy(), atol=1e-7)
    edge = tf.fill([1, 2, 2, 1], 0.9) + tf.reshape(tf.constant([0.2, 0.0, 0.0, 0.0]), [1, 2, 2, 1])
    np.testing.assert_allclose(common.project_l2(edge, tf.fill([1, 2, 2, 1], 0.9), 1.0).numpy().ravel(),
                               [1.0, 0.9, 0.9, 0.9], atol=1e-6)   # inside the ball, clipped to the box


@pytest.fixture(scope="module")
def trained():
    x, y, xt, yt = digits()
    keras.utils.set_random_seed(0)
    model = tiny_cnn()
    model.compile(optimizer=keras.optimizers.Adam(3e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, batch_size=64, epochs=4, verbose=0)
    logits_fn = tf.function(lambda images: model(images, training=False), reduce_retracing=True)
    return model, logits_fn, xt[:64], yt[:64]


def test_apgd_l2_stays_in_the_ball_and_breaks_the_model(trained):
    _, logits_fn, x, y = trained
    config = attacks.APGDConfig(1.0, 20, norm="L2")
    result = attacks.apgd(logits_fn, x, y, config, tf.constant([0, 1]))
    delta = (result.adversarial.numpy() - x).reshape(len(x), -1)
    assert np.all(np.linalg.norm(delta, axis=1) <= 1.0 + 1e-5)
    assert result.adversarial.numpy().min() >= 0.0 and result.adversarial.numpy().max() <= 1.0
    clean = np.mean(np.argmax(logits_fn(x).numpy(), -1) == y)
    assert result.robust.numpy().mean() < clean - 0.3


def test_eot_on_a_deterministic_model_changes_no_linf_iterate(trained):
    _, logits_fn, x, y = trained
    one = attacks.apgd(logits_fn, x, y, attacks.APGDConfig(0.1, 10), tf.constant([0, 1]))
    three = attacks.apgd(logits_fn, x, y, attacks.APGDConfig(0.1, 10, eot_iter=3), tf.constant([0, 1]))
    np.testing.assert_array_equal(one.adversarial.numpy(), three.adversarial.numpy())


def _quick(**kwargs):
    return dict(apgd_steps=5, fab_steps=5, square_queries=20, apgd_targets=2, fab_targets=2, **kwargs)


def test_probability_outputs_are_refused_unless_declared(trained):
    model, logits_fn, x, y = trained
    softmax = tf.function(lambda images: tf.nn.softmax(model(images, training=False)))
    with pytest.raises(ValueError, match="look like probabilities"):
        autoattack_run.autoattack(softmax, x, y, 0.1, **_quick())
    declared = autoattack_run.autoattack(softmax, x, y, 0.1, outputs="probabilities", **_quick())
    plain = autoattack_run.autoattack(logits_fn, x, y, 0.1, **_quick())
    assert declared.clean_accuracy == plain.clean_accuracy
    assert "probabilities" not in declared.flagged
    with pytest.raises(ValueError, match="not probabilities"):
        autoattack_run.autoattack(logits_fn, x, y, 0.1, outputs="probabilities", **_quick())


def test_images_outside_the_unit_box_are_refused(trained):
    _, logits_fn, x, y = trained
    with pytest.raises(ValueError, match=r"x: images must lie in \[0, 1\]"):
        autoattack_run.autoattack(logits_fn, x * 255.0, y, 0.1, **_quick())
    with pytest.raises(ValueError, match="x: uint8 images"):
        autoattack_run.autoattack(logits_fn, (x * 255).astype(np.uint8), y, 0.1, **_quick())


def test_the_result_records_version_norm_budgets_stages_and_checks(trained):
    _, logits_fn, x, y = trained
    result = autoattack_run.autoattack(logits_fn, x, y, 0.5, norm="L2", **_quick())
    assert (result.version, result.norm) == ("standard", "L2")
    assert list(result.after) == ["apgd_ce", "apgd_t", "fab_t", "square"]
    stages = list(result.after.values())
    assert stages == sorted(stages, reverse=True) and stages[-1] == pytest.approx(result.accuracy)
    assert result.budgets["apgd_ce"]["norm"] == "L2" and result.budgets["square"]["num_queries"] == 20
    assert {c.name for c in result.checks} == {"probabilities", "gradients", "randomness"}
    assert result.flagged == ()


def test_a_randomised_model_is_flagged_unless_rand_runs(trained):
    model, _, x, y = trained
    noisy = tf.function(lambda images: model(images + tf.random.normal(tf.shape(images), stddev=0.2),
                                             training=False))
    standard = autoattack_run.autoattack(noisy, x[:32], y[:32], 0.1, **_quick())
    assert "randomness" in standard.flagged
    rand = autoattack_run.autoattack(noisy, x[:32], y[:32], 0.1, version="rand", apgd_steps=5, eot_iter=2)
    assert "randomness" not in rand.flagged and list(rand.after) == ["apgd_ce", "apgd_dlr"]
    assert rand.budgets["apgd_ce"]["eot_iter"] == 2
