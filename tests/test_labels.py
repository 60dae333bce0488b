import numpy as np
import pytest
import tensorflow as tf

from rat_tf import labels


def test_smooth_labels_sum_to_one_and_exact_values():
    y = tf.constant([0, 3, 9])
    beta = tf.constant([1.0, 0.55, 0.1])
    out = labels.smooth_labels(y, 10, beta).numpy()
    np.testing.assert_allclose(out.sum(-1), 1.0, rtol=0, atol=1e-6)
    assert out[1, 3] == pytest.approx(0.55)
    np.testing.assert_allclose(np.delete(out[1], 3), 0.45 / 9, rtol=1e-6)


def test_beta_one_is_exactly_one_hot():
    out = labels.smooth_labels(tf.constant([2, 0]), 4, 1.0).numpy()
    np.testing.assert_array_equal(out, np.eye(4)[[2, 0]])


def test_beta_one_over_c_is_uniform():
    out = labels.smooth_labels(tf.constant([1, 4]), 5, 1 / 5).numpy()
    np.testing.assert_allclose(out, 0.2, rtol=0, atol=1e-7)


def test_distance_aware_beta_end_points_and_line():
    s = tf.constant([0.0, 1.0, 2.0, 0.5])
    beta = labels.distance_aware_beta(s, max_scale=2.0, beta_max=1.0, beta_min=0.1).numpy()
    np.testing.assert_allclose(beta, [1.0, 0.55, 0.1, 0.775], rtol=1e-6)
    assert beta[0] == 1.0  # beta(0) = beta_max exactly


def test_distance_aware_labels_match_formula():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, size=20)
    s = rng.choice(np.round(np.arange(0, 2.01, 0.1), 1), size=20)
    out = labels.distance_aware_labels(tf.constant(y), 10, tf.constant(s, tf.float32), 2.0, 0.9, 0.2).numpy()
    beta = 0.9 - s * (0.9 - 0.2) / 2.0
    onehot = np.eye(10)[y]
    expected = onehot * beta[:, None] + (1 - onehot) * ((1 - beta) / 9)[:, None]
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-7)


def test_bad_arguments():
    with pytest.raises(ValueError, match="num_classes"):
        labels.smooth_labels(tf.constant([0]), 1, 1.0)
    with pytest.raises(ValueError, match="max_scale"):
        labels.distance_aware_beta(1.0, 0.0, 1.0, 0.1)
