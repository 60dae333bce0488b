import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from rat_tf import attacks
from rat_tf.attacks import PGDConfig

from helpers import Linear, accuracy, digits, tiny_cnn, trained_digits_classifier

# Two classes on one feature: z0 = 0, z1 = x - 0.35; label 0 is adversarial once x > 0.35.
# Both the CE gradient and the CW margin gradient have sign +1, so with no random start the
# path is x'_t = min(x + 0.1 t, x + eps, 1) and can be written down by hand.
LINEAR = Linear(w=[[0.0, 1.0]], b=[0.0, -0.35])


def _run(x, config):
    x = tf.constant(np.reshape(x, (-1, 1, 1, 1)), tf.float32)
    y = tf.zeros([x.shape[0]], tf.int32)
    result = attacks.pgd(LINEAR, x, y, config)
    return [np.reshape(t.numpy(), [-1]) for t in result]


@pytest.mark.parametrize("loss", ["ce", "cw"])
def test_first_adversarial_point_on_a_hand_made_linear_model(loss):
    config = PGDConfig(epsilon=0.3, step_size=0.1, num_steps=5, random_start=False, loss=loss)
    end, first, found = _run([0.2, 0.0, 0.5, 0.9], config)
    # 0.2: path .3 .4 .5 .5 .5 -> first adversarial iterate x'_2 = .4
    # 0.0: path .1 .2 .3 .3 .3 -> never adversarial: x'_f = x'_e
    # 0.5: clean point already adversarial, but x'_0 is not on the path: x'_f = x'_1 = .6
    # 0.9: path clipped to 1.0 at once
    np.testing.assert_allclose(end, [0.5, 0.3, 0.8, 1.0], atol=1e-6)
    np.testing.assert_allclose(first, [0.4, 0.3, 0.6, 1.0], atol=1e-6)
    np.testing.assert_array_equal(found, [True, False, True, True])


def test_only_the_end_point_adversarial_gives_first_equal_end():
    config = PGDConfig(epsilon=0.4, step_size=0.1, num_steps=4, random_start=False)
    end, first, found = _run([0.0], config)  # path .1 .2 .3 .4: only x'_K is adversarial
    np.testing.assert_allclose(end, [0.4], atol=1e-6)
    np.testing.assert_allclose(first, [0.4], atol=1e-6)
    assert not found[0]


def test_epsilon_zero_is_the_identity():
    x, y, _, _ = digits()
    model = tiny_cnn()
    for random_start in (True, False):
        config = PGDConfig(epsilon=0.0, step_size=0.1, num_steps=3, random_start=random_start)
        result = attacks.pgd(model, x[:16], y[:16], config, seed=tf.constant([1, 2]))
        np.testing.assert_array_equal(result.end.numpy(), x[:16])
        np.testing.assert_array_equal(result.first.numpy(), x[:16])
    np.testing.assert_array_equal(attacks.fgsm(model, x[:16], y[:16], attacks.FGSMConfig(0.0)).adversarial.numpy(),
                                  x[:16])


@pytest.mark.parametrize("loss", ["ce", "cw"])
def test_results_stay_in_the_ball_and_the_unit_box(loss):
    x, y, _, _ = digits()
    model = tiny_cnn()
    config = PGDConfig(epsilon=0.1, step_size=0.04, num_steps=5, loss=loss)
    result = attacks.pgd(model, x[:64], y[:64], config, seed=tf.constant([0, 7]))
    for t in (result.end, result.first):
        t = t.numpy()
        assert np.abs(t - x[:64]).max() <= 0.1 + 1e-6
        assert t.min() >= 0.0 and t.max() <= 1.0
    assert np.abs(result.end.numpy() - x[:64]).max() > 0.09  # it moved to the boundary


def test_random_start_is_seeded():
    x, y, _, _ = digits()
    model = tiny_cnn()
    config = PGDConfig(epsilon=0.1, step_size=0.02, num_steps=2)
    a = attacks.pgd(model, x[:8], y[:8], config, seed=tf.constant([0, 1])).end.numpy()
    b = attacks.pgd(model, x[:8], y[:8], config, seed=tf.constant([0, 1])).end.numpy()
    c = attacks.pgd(model, x[:8], y[:8], config, seed=tf.constant([0, 2])).end.numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    with pytest.raises(ValueError, match="seed"):
        attacks.pgd(model, x[:8], y[:8], config)


def test_attacks_drive_a_trained_model_accuracy_down():
    _, _, x, y = digits()
    model = trained_digits_classifier()
    clean = accuracy(model, x, y)
    config = PGDConfig(epsilon=0.15, step_size=0.04, num_steps=10)
    fgsm = accuracy(model, attacks.fgsm(model, x, y, attacks.FGSMConfig(0.15)).adversarial, y)
    pgd = accuracy(model, attacks.pgd(model, x, y, config, seed=tf.constant([0, 0])).adversarial, y)
    cw = accuracy(model, attacks.cw_inf(model, x, y, config, seed=tf.constant([0, 0])).adversarial, y)
    assert clean > 0.9
    assert pgd < clean - 0.5 and cw < clean - 0.5
    assert pgd <= fgsm + 0.02


def test_fgsm_is_one_signed_gradient_step():
    x, y, _, _ = digits()
    model = tiny_cnn()
    xt = tf.constant(x[:10])
    with tf.GradientTape() as tape:
        tape.watch(xt)
        loss = tf.reduce_sum(attacks.cross_entropy(model(xt, training=False), y[:10]))
    expected = np.clip(x[:10] + 0.05 * np.sign(tape.gradient(loss, xt).numpy()), 0, 1)
    result = attacks.fgsm(model, x[:10], y[:10], attacks.FGSMConfig(0.05))
    np.testing.assert_allclose(result.adversarial.numpy(), expected, atol=1e-7)
    with pytest.raises(ValueError, match="epsilon"):
        attacks.FGSMConfig(1.5)


def test_cw_margin_values():
    logits = tf.constant([[1.0, 3.0, 2.0], [5.0, 0.0, -1.0]])
    np.testing.assert_allclose(attacks.cw_margin(logits, tf.constant([1, 2])).numpy(), [-1.0, 6.0])


def test_the_one_label_margin():
    # z_y - max_{j != y} z_j, exact (a tie with another class gives 0); CW ascends its negation.
    logits = tf.constant([[1.0, 3.0, 2.0], [5.0, 0.0, -1.0], [2.0, 2.0, -7.0]])
    labels = tf.constant([1, 2, 0])
    np.testing.assert_array_equal(attacks.margin(logits, labels).numpy(), [1.0, -6.0, 0.0])
    np.testing.assert_array_equal(attacks.cw_margin(logits, labels).numpy(), -attacks.margin(logits, labels).numpy())
    # Its gradient is +1 at the label and -1 at the runner-up.
    with tf.GradientTape() as tape:
        tape.watch(logits)
        total = tf.reduce_sum(attacks.margin(logits, labels)[:2])
    np.testing.assert_array_equal(tape.gradient(total, logits).numpy(), [[0, 1, -1], [-1, 0, 1], [0, 0, 0]])


def test_the_one_input_check():
    x = np.full((2, 4, 4, 1), 0.5, np.float32)
    assert attacks.check_images(x) is x
    for bad, match in (((x * 255).astype(np.uint8), r"x: uint8 images; pass float images in \[0, 1\] \(x / 255\)"),
                       (x.astype(np.int32), "x: int32 images; pass float images"),
                       (x + 1.0, r"x: images must lie in \[0, 1\] .*got values in \[1.5, 1.5\]"),
                       (np.where(x > 0, np.nan, x), r"x: images must lie in \[0, 1\] .*got non-finite values"),
                       (tf.constant(x - 1.0), r"x: images must lie in \[0, 1\]")):
        with pytest.raises(ValueError, match=match) as error:
            attacks.check_images(bad)
        assert "\n" not in str(error.value)
    with pytest.raises(ValueError, match=r"x: images of rank 4 \(NHWC\) expected, got shape \(2, 4, 4\)"):
        attacks.check_images(x[..., 0], rank=4)
    # Inside tf.function the values are unknown: only the dtype and rank are checked.
    traced = tf.function(lambda images: attacks.check_images(images, rank=4) * 1.0)
    np.testing.assert_array_equal(traced(tf.constant(x + 1.0)).numpy(), x + 1.0)
    # Every attack checks its images with it.
    model = tiny_cnn()
    for attack, config in ((attacks.fgsm, attacks.FGSMConfig(0.1)), (attacks.pgd, PGDConfig(0.1, 0.05, 1)),
                           (attacks.apgd, attacks.APGDConfig(0.1, 1)), (attacks.fab, attacks.FABConfig(0.1, 1))):
        with pytest.raises(ValueError, match=r"x: images must lie in \[0, 1\]"):
            attack(model, x * 3.0, np.zeros(2, np.int32), config, tf.constant([0, 1]))


def test_attack_changes_no_model_state_and_runs_in_graph():
    keras.utils.set_random_seed(1)
    x, y, _, _ = digits()
    model = tiny_cnn(batch_norm=True)
    model(x[:32], training=True)
    bn = next(layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization))
    bn.moving_mean.assign(np.random.default_rng(0).normal(size=16).astype("float32"))
    before = [w.numpy().copy() for w in model.weights]
    config = PGDConfig(epsilon=0.1, step_size=0.03, num_steps=3)
    graph_pgd = tf.function(lambda a, b: attacks.pgd(lambda z: model(z, training=False), a, b, config,
                                                     seed=tf.constant([0, 3])).end)
    eager = attacks.pgd(lambda z: model(z, training=False), x[:32], y[:32], config, seed=tf.constant([0, 3])).end
    np.testing.assert_allclose(graph_pgd(x[:32], y[:32]).numpy(), eager.numpy(), atol=1e-6)
    for w, b in zip(model.weights, before):
        np.testing.assert_array_equal(w.numpy(), b)


def test_no_gradient_flows_through_the_result():
    x, y, _, _ = digits()
    model = tiny_cnn()
    xt = tf.constant(x[:4])
    with tf.GradientTape() as tape:
        tape.watch(xt)
        end = attacks.pgd(model, xt, y[:4], PGDConfig(0.1, 0.05, 2), seed=tf.constant([0, 0])).end
        total = tf.reduce_sum(end)
    assert tape.gradient(total, xt) is None


def test_config_validation():
    with pytest.raises(ValueError, match="epsilon"):
        PGDConfig(epsilon=-0.1)
    with pytest.raises(ValueError, match="epsilon"):
        PGDConfig(epsilon=8)
    with pytest.raises(ValueError, match="num_steps"):
        PGDConfig(num_steps=-1)
    with pytest.raises(ValueError, match="num_steps"):
        PGDConfig(num_steps=2.5)
    with pytest.raises(ValueError, match="loss"):
        PGDConfig(loss="kl")
    assert dataclasses.replace(PGDConfig(), loss="cw").loss == "cw"
