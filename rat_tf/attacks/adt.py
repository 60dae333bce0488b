"""The inner maximisation of ADT_EXP (Deng et al. 2020): a learned per-pixel adversarial distribution.

x_adv = clip(x + eps * tanh(mean + softplus(var) * xi), 0, 1), xi ~ N(0, I). Starting from
mean = var = 0, T steps each draw k samples and ascend CE + lambda * H with the entropy
estimate H = mean(xi^2 / 2 + log(std + 1e-8) + log(1 - a^2)), a = tanh(u). As in the
official code (Adam with betas (0, 0) and gradients never zeroed), the update is sign-like on
the gradient accumulated over all steps and samples so far:
G += grad; param += step_size * G / (|G| + 1e-8).
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import tensorflow as tf

from rat_tf import randomness
from rat_tf.attacks.common import LogitsFn, check_count, check_epsilon, check_images
from rat_tf.attacks.pgd import cross_entropy


@dataclasses.dataclass(frozen=True)
class ADTConfig:
    """ADT_EXP's inner problem (paper defaults: eps 8/255, T = 7, k = 5, lr 0.3, lambda 0.01)."""

    epsilon: float = 8 / 255
    num_steps: int = 7
    num_samples: int = 5
    step_size: float = 0.3
    entropy_weight: float = 0.01

    def __post_init__(self):
        check_epsilon(self.epsilon)
        check_count("num_steps", self.num_steps, 0)
        check_count("num_samples", self.num_samples)
        if self.step_size <= 0:
            raise ValueError(f"step_size must be > 0, got {self.step_size}")
        if self.entropy_weight < 0:
            raise ValueError(f"entropy_weight must be >= 0, got {self.entropy_weight}")


class Distribution(NamedTuple):
    mean: tf.Tensor
    var: tf.Tensor


def sample_points(x, dist: Distribution, xi, epsilon):
    """x_adv = clip(x + eps * tanh(u), 0, 1) with u = mean + softplus(var) * xi; returns (x_adv, u, std)."""
    std = tf.nn.softplus(dist.var)
    u = dist.mean + std * xi
    return tf.clip_by_value(x + epsilon * tf.tanh(u), 0.0, 1.0), u, std


def log_one_minus_tanh_squared(u):
    """log(1 - tanh(u)^2) = 2 (log 2 - |u| - softplus(-2 |u|)), stable for any u.

    The official code writes log(1 - a^2 + 1e-8); in float32 graph mode the constant can be
    reassociated away, giving log(0) and NaN gradients once tanh saturates. The two agree to
    float precision wherever 1 - a^2 >> 1e-8, i.e. |u| < about 8.
    """
    abs_u = tf.abs(u)
    return 2.0 * (tf.math.log(2.0) - abs_u - tf.nn.softplus(-2.0 * abs_u))


def entropy_estimate(xi, u, std):
    """H = mean(xi^2 / 2 + log(std + 1e-8) + log(1 - a^2)), a = tanh(u) (constants omitted)."""
    return tf.reduce_mean(tf.square(xi) / 2.0 + tf.math.log(std + 1e-8) + log_one_minus_tanh_squared(u))


def step_noise(seed, step, num_samples, like):
    """xi for all k samples of one step: (k, n, ...), drawn from fold_in(seed, step)."""
    return randomness.normal(randomness.fold_in(seed, step), tf.concat([[num_samples], tf.shape(like)], 0),
                             dtype=like.dtype, batch_axis=1)


def fit_distribution(logits_fn: LogitsFn, x, y, config: ADTConfig, seed, epsilon_scale=None) -> Distribution:
    """Runs ADT_EXP's T sign-like steps and returns the per-pixel (mean, var) parameters.

    The k samples of a step are evaluated in one batched forward pass (the model runs in
    inference mode, so batching does not change any output); the objective is the sum over
    samples of the batch-mean CE plus lambda times each sample's entropy estimate, as in the
    official code.
    """
    x = tf.convert_to_tensor(check_images(x))
    y = tf.cast(tf.reshape(y, [-1]), tf.int32)
    k = config.num_samples
    eps = tf.cast(config.epsilon, x.dtype)
    if epsilon_scale is not None:
        eps = eps * tf.cast(epsilon_scale, x.dtype)
    tiled_y = tf.tile(y, [k])

    def body(t, mean, var, g_mean, g_var):
        xi = step_noise(seed, t, k, x)
        with tf.GradientTape() as tape:
            tape.watch([mean, var])
            points, u, std = sample_points(x[None], Distribution(mean[None], var[None]), xi, eps)
            logits = logits_fn(tf.reshape(points, tf.concat([[-1], tf.shape(x)[1:]], 0)))
            ce = tf.reduce_sum(cross_entropy(logits, tiled_y)) / tf.cast(tf.shape(y)[0], tf.float32)
            # Sum over samples of each sample's mean = k * the mean over all samples.
            entropy = k * entropy_estimate(xi, u, std)
            objective = ce + config.entropy_weight * entropy
        d_mean, d_var = tape.gradient(objective, [mean, var])
        g_mean, g_var = g_mean + d_mean, g_var + d_var
        mean = mean + config.step_size * g_mean / (tf.abs(g_mean) + 1e-8)
        var = var + config.step_size * g_var / (tf.abs(g_var) + 1e-8)
        return t + 1, mean, var, g_mean, g_var

    # Four distinct tensors: a tape watching one tensor twice would merge the two gradients.
    start = tuple(tf.zeros_like(x) for _ in range(4))
    _, mean, var, _, _ = tf.while_loop(lambda t, *_: t < config.num_steps, body,
                                       (tf.constant(0),) + start,
                                       maximum_iterations=config.num_steps)
    return Distribution(tf.stop_gradient(mean), tf.stop_gradient(var))


def adt_sample(logits_fn: LogitsFn, x, y, config: ADTConfig, seed, epsilon_scale=None) -> tf.Tensor:
    """One fresh sample from the fitted distribution (the outer step's training point)."""
    dist = fit_distribution(logits_fn, x, y, config, seed, epsilon_scale)
    xi = step_noise(seed, config.num_steps, 1, tf.convert_to_tensor(x))[0]
    eps = tf.cast(config.epsilon, dist.mean.dtype)
    if epsilon_scale is not None:
        eps = eps * tf.cast(epsilon_scale, eps.dtype)
    return tf.stop_gradient(sample_points(x, dist, xi, eps)[0])
