"""What every attack shares: the calling convention, seeds, masks, the Linf projection, margins.

An attack takes `logits_fn` (images -> logits, the model in inference mode; white-box attacks
differentiate it, query-only ones only call it), float32 NHWC images in [0, 1], integer labels
and a stateless seed, and returns `tf.stop_gradient`-ed tensors without changing model state.
"""

from __future__ import annotations

import math
from typing import Callable, Union
import warnings

import numpy as np
import tensorflow as tf

LogitsFn = Callable[[tf.Tensor], tf.Tensor]
# Query-only attacks also accept models behind a numpy interface (no usable gradient).
QueryFn = Callable[[tf.Tensor], Union[tf.Tensor, np.ndarray]]
SeedLike = Union[int, tf.Tensor, np.ndarray, tuple, list]
ProgressFn = Callable[[int, int], None]


def as_seed(seed: SeedLike) -> tf.Tensor:
    """A stateless seed of shape (2,) from an int or a shape-(2,) seed."""
    if isinstance(seed, (int, np.integer)):
        return tf.constant([0, int(seed)], tf.int32)
    seed = tf.reshape(tf.cast(tf.convert_to_tensor(seed), tf.int32), [-1])
    if seed.shape[0] != 2:
        raise ValueError(f"seed must be an int or have shape (2,), got shape {seed.shape}")
    return seed


def batch_mask(mask: tf.Tensor, like: tf.Tensor) -> tf.Tensor:
    """Reshapes a (N,) mask so that it broadcasts against `like` (N, ...)."""
    return tf.reshape(mask, [-1] + [1] * (like.shape.rank - 1))


# The threat models AutoAttack evaluates (its `norm` argument), with the same spelling.
NORMS = ("Linf", "L2")


def check_norm(norm: str) -> str:
    """`norm` if it is one of `NORMS`, else a ValueError naming what is allowed."""
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {', '.join(NORMS)}, got {norm!r}")
    return norm


def check_radius(epsilon, norm: str = "Linf") -> float:
    """The radius in pixel units: in [0, 1] for Linf, finite and >= 0 for L2."""
    if check_norm(norm) == "Linf":
        return check_epsilon(epsilon)
    try:
        value = float(epsilon)
    except (TypeError, ValueError):
        value = float("nan")
    if isinstance(epsilon, bool) or not (math.isfinite(value) and value >= 0.0):
        raise ValueError(f"epsilon must be a finite L2 radius >= 0 (pixel units), got {epsilon!r}")
    return value


def l2_norm(delta: tf.Tensor) -> tf.Tensor:
    """Per-example L2 norm of (N, ...) tensors, shaped (N, 1, ..., 1) to broadcast against them."""
    axes = list(range(1, delta.shape.rank))
    return tf.sqrt(tf.reduce_sum(tf.square(delta), axis=axes, keepdims=True))


def project_l2(x_adv: tf.Tensor, x: tf.Tensor, epsilon) -> tf.Tensor:
    """AutoAttack's L2 step projection: rescale x_adv - x onto the L2 ball of radius eps if it
    lies outside, then clip to [0, 1] (which can only shorten it).

    x + (x_adv - x) / (||x_adv - x|| + 1e-12) * min(eps, ||x_adv - x||), clipped to [0, 1],
    as in autopgd_base.py.
    """
    delta = x_adv - x
    norm = l2_norm(delta)
    return tf.clip_by_value(x + delta / (norm + 1e-12) * tf.minimum(tf.cast(epsilon, x.dtype), norm),
                            0.0, 1.0)


def project(x_adv: tf.Tensor, x: tf.Tensor, epsilon) -> tf.Tensor:
    """Projection onto B(x, eps) intersected with [0, 1]: clip to the ball, then to [0, 1]."""
    return tf.clip_by_value(tf.clip_by_value(x_adv, x - epsilon, x + epsilon), 0.0, 1.0)


def margin(logits: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    """z_y - max_{j != y} z_j per example (positive exactly when classified as y)."""
    onehot = tf.range(tf.shape(logits)[-1])[None, :] == labels[:, None]
    true_logit = tf.reduce_sum(tf.where(onehot, logits, 0.0), axis=-1)
    other = tf.reduce_max(tf.where(onehot, tf.constant(-np.inf, logits.dtype), logits), axis=-1)
    return true_logit - other


def target_count(name: str, wanted: int, num_classes, stacklevel: int = 3) -> int:
    """AutoAttack's rule for targeted attacks: at most C - 1 target classes, clamped with a warning.

    Args:
      name: the attack or argument, for the warning.
      wanted: the target classes asked for.
      num_classes: C, or None when unknown (then `wanted` is kept).
      stacklevel: of the warning, so that it points at the caller's caller.
    """
    if num_classes is not None and wanted > num_classes - 1:
        warnings.warn(f"{name}: {wanted} target classes asked for but the model has {num_classes} "
                      f"classes; using {num_classes - 1}, as AutoAttack does", stacklevel=stacklevel)
        return int(num_classes) - 1
    return wanted


def check_count(name: str, value, minimum: int = 1) -> int:
    """`value` as an int >= `minimum`; bools and non-integers raise a ValueError naming `name`."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer, float)) or int(value) != value:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_epsilon(epsilon) -> float:
    """The Linf radius in pixel units, in [0, 1]."""
    try:
        value = float(epsilon)
    except (TypeError, ValueError):
        value = float("nan")
    if isinstance(epsilon, bool) or not 0.0 <= value <= 1.0:
        raise ValueError(f"epsilon must be in [0, 1] (pixel units), got {epsilon!r}")
    return value
