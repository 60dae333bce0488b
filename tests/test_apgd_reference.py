"""APGD's step-size schedule against a line-by-line transcription of the official loop.

The transcription below follows fra31/auto-attack `autopgd_base.py` (`attack_single_run`,
`check_oscillation`) in plain Python: the losses of the iterates go into a zero-initialised
buffer of N rows, and at each checkpoint the increases are counted over that buffer with
negative indices, as the official code does. At the first checkpoint that reads the buffer's
last row, still 0, so the first iterate's loss is compared with 0, not with the loss at the
random start. `_single_run` (one `tf.while_loop`) must take the same halving decisions and so
reach the same points, for the cross-entropy and the targeted DLR loss, in Linf and L2.
"""

import importlib

import numpy as np
import pytest
from sklearn.datasets import load_digits
import tensorflow as tf

from rat_tf.attacks.apgd import APGDConfig
from rat_tf.attacks.common import l2_norm

apgd = importlib.import_module("rat_tf.attacks.apgd")  # the package exports a function of that name


def _model():
    rng = np.random.RandomState(0)
    w1 = tf.constant(rng.normal(0, 0.5, (64, 32)).astype(np.float32))
    b1 = tf.constant(rng.normal(0, 0.1, 32).astype(np.float32))
    w2 = tf.constant(rng.normal(0, 0.5, (32, 10)).astype(np.float32))
    b2 = tf.constant(rng.normal(0, 0.1, 10).astype(np.float32))
    return lambda images: tf.nn.relu(tf.reshape(images, [-1, 64]) @ w1 + b1) @ w2 + b2


def _loss_and_grad(model, loss_fn, labels, x_adv):
    x_adv = tf.constant(x_adv)
    with tf.GradientTape() as tape:
        tape.watch(x_adv)
        logits = model(x_adv)
        loss = loss_fn(logits)
        total = tf.reduce_sum(loss)
    grad = tape.gradient(total, x_adv)
    wrong = np.argmax(logits.numpy(), -1) != labels
    return loss.numpy(), grad.numpy(), wrong


def _per_example(v, x):
    return v.reshape((-1,) + (1,) * (x.ndim - 1))


def _official_loop(model, loss_fn, x, y, noise, eps, n_iter, norm, thr_decr=0.75):
    """The official single run, transcribed; returns (x_best, x_best_adv, found, loss_best)."""
    axes = tuple(range(1, x.ndim))

    def l2(v):  # TensorFlow's reduction, so that sums are added in the same order as ours
        return l2_norm(tf.constant(v)).numpy()

    def normalize(v):
        if norm == "Linf":
            return v / (np.abs(v).max(axis=axes, keepdims=True) + 1e-12)
        return v / (l2(v) + 1e-12)

    def project(v):
        if norm == "Linf":
            return np.clip(np.clip(v, x - eps, x + eps), 0.0, 1.0)
        return np.clip(x + normalize(v - x) * np.minimum(np.float32(eps), l2(v - x)), 0.0, 1.0)

    def check_oscillation(buffer, j, k):
        t = np.zeros(buffer.shape[1], np.float32)
        for c in range(k):
            t += (buffer[j - c] > buffer[j - c - 1]).astype(np.float32)
        return t <= k * thr_decr

    n_iter_2, n_iter_min, size_decr = (max(int(0.22 * n_iter), 1), max(int(0.06 * n_iter), 1),
                                       max(int(0.03 * n_iter), 1))
    x_adv = np.clip(x + np.float32(eps) * normalize(noise), 0.0, 1.0).astype(np.float32)
    x_best, x_best_adv = x_adv.copy(), x_adv.copy()
    loss_steps = np.zeros([n_iter, x.shape[0]], np.float32)
    loss, grad, found = _loss_and_grad(model, loss_fn, y, x_adv)
    grad_best, loss_best = grad.copy(), loss.copy()
    step_size = np.full(x.shape[0], 2.0 * eps, np.float32)
    x_adv_old = x_adv.copy()
    k, counter3 = n_iter_2, 0
    loss_best_last_check, reduced_last_check = loss_best.copy(), np.ones(x.shape[0], bool)
    for i in range(n_iter):
        grad2 = x_adv - x_adv_old
        x_adv_old = x_adv.copy()
        a = np.float32(0.75 if i > 0 else 1.0)
        step = _per_example(step_size, x)
        if norm == "Linf":
            x_1 = project(x_adv + step * np.sign(grad))
        else:
            x_1 = project(x_adv + step * normalize(grad))
        x_adv = project(x_adv + (x_1 - x_adv) * a + grad2 * (np.float32(1.0) - a))
        loss, grad, wrong = _loss_and_grad(model, loss_fn, y, x_adv)
        found = found | wrong
        x_best_adv[wrong] = x_adv[wrong]
        loss_steps[i] = loss
        better = loss > loss_best
        x_best[better], grad_best[better], loss_best[better] = x_adv[better], grad[better], loss[better]
        counter3 += 1
        if counter3 == k:
            halve = check_oscillation(loss_steps, i, k) | (
                ~reduced_last_check & (loss_best_last_check >= loss_best))
            reduced_last_check, loss_best_last_check = halve, loss_best.copy()
            step_size[halve] /= 2.0
            x_adv[halve], grad[halve] = x_best[halve], grad_best[halve]
            k = max(k - size_decr, n_iter_min)
            counter3 = 0
    return x_best, x_best_adv, found, loss_best


@pytest.mark.parametrize("norm, eps", [("Linf", 0.05), ("L2", 0.5)])
@pytest.mark.parametrize("loss", ["ce", "dlr_targeted"])
@pytest.mark.parametrize("n_iter", [20, 100])
def test_single_run_takes_the_official_loops_halving_decisions(norm, eps, loss, n_iter):
    model = _model()
    x = (load_digits().images[:16] / 16.0).astype(np.float32)[..., None]
    y = np.argmax(model(x).numpy(), -1).astype(np.int32)
    targets = np.argsort(-model(x).numpy(), -1)[:, 1].astype(np.int32)  # the runner-up class
    rng = np.random.RandomState(1)
    noise = (rng.uniform(-1, 1, x.shape) if norm == "Linf" else rng.normal(size=x.shape))
    noise = noise.astype(np.float32)

    loss_fn = apgd._make_loss(loss, tf.constant(y), tf.constant(targets))
    x_best, x_best_adv, found, loss_best = _official_loop(model, loss_fn, x, y, noise, eps, n_iter,
                                                          norm)

    config = APGDConfig(epsilon=eps, num_steps=n_iter, loss=loss, norm=norm)
    ours, ours_found, ours_loss = apgd._single_run(model, tf.constant(x), tf.constant(y),
                                                   tf.constant(targets), tf.constant(noise), config)
    ours, ours_found, ours_loss = ours.numpy(), ours_found.numpy(), ours_loss.numpy()
    np.testing.assert_array_equal(ours_found, found)
    expected = np.where(_per_example(found, x), x_best_adv, x_best)
    np.testing.assert_allclose(ours, expected, atol=1e-5)
    np.testing.assert_allclose(ours_loss, loss_best, rtol=1e-5, atol=1e-6)
