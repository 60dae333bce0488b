"""Distance-aware soft labels (DLS, the paper's Eq. 7) and label smoothing, as tensor functions."""

from __future__ import annotations

import tensorflow as tf

from rat_tf import validation


def smooth_labels(labels: tf.Tensor, num_classes: int, beta) -> tf.Tensor:
    """LS(y, beta) = onehot(y) * beta + (1 - onehot(y)) * (1 - beta) / (c - 1).

    beta = 1 gives exactly one-hot; beta = 1/c gives exactly uniform labels.

    Args:
      labels: integer labels (N,).
      num_classes: c >= 2.
      beta: the probability of the true class, a scalar or (N,).

    Returns:
      (N, c) float32 soft labels; each row sums to 1.
    """
    validation.check_int("num_classes", num_classes, minimum=2)
    onehot = tf.one_hot(tf.cast(labels, tf.int32), num_classes, dtype=tf.float32)
    beta = tf.cast(beta, tf.float32)
    if beta.shape.rank:
        beta = beta[:, None]
    return onehot * beta + (1.0 - onehot) * ((1.0 - beta) / (num_classes - 1))


def distance_aware_beta(scale, max_scale: float, beta_max: float, beta_min: float,
                        smooth_from_scale: float = 0.0) -> tf.Tensor:
    """beta(s) = beta_max - s * (beta_max - beta_min) / S: beta(0) = beta_max, beta(S) = beta_min.

    With `smooth_from_scale` s0 > 0, beta stays beta_max up to s0 and then falls linearly to
    beta_min at S: beta(s) = beta_max - max(0, s - s0) * (beta_max - beta_min) / (S - s0).
    s0 = 0 is the paper's DLS.
    """
    validation.check_float("max_scale", max_scale, minimum=0.0, exclude_minimum=True)
    if not 0.0 <= smooth_from_scale < max_scale:
        raise ValueError(f"smooth_from_scale must be in [0, max_scale={max_scale}), got {smooth_from_scale}")
    scale = tf.cast(scale, tf.float32)
    if smooth_from_scale:
        scale = tf.maximum(scale - smooth_from_scale, 0.0)
    return beta_max - scale * ((beta_max - beta_min) / (max_scale - smooth_from_scale))


def distance_aware_labels(labels: tf.Tensor, num_classes: int, scale, max_scale: float,
                          beta_max: float, beta_min: float, smooth_from_scale: float = 0.0) -> tf.Tensor:
    """DLS: the soft label of a point sampled at scale s (the paper's Eq. 7)."""
    beta = distance_aware_beta(scale, max_scale, beta_max, beta_min, smooth_from_scale)
    return smooth_labels(labels, num_classes, beta)
