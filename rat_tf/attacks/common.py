"""What every attack shares: the calling convention, seeds, masks, projections, the margin,
the target rule and the input check.

Every attack is `attack(logits_fn, x, y, config, seed)`: `logits_fn` maps images to logits (the
model in inference mode; white-box attacks differentiate it, query-only ones only call it), `x`
holds float NHWC images in [0, 1] (`check_images`), `y` integer labels, `config` the attack's
frozen dataclass and `seed` a stateless seed. It returns a result whose `adversarial` holds the
attack's images, with every tensor `tf.stop_gradient`-ed, and changes no model state.
"""

from __future__ import annotations

import math
from typing import Callable, Optional, Union
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


def check_images(x, name: str = "x", rank: Optional[int] = None):
    """`x` itself if it holds float images in [0, 1], else a one-line ValueError naming `name`.

    The attacks clip to [0, 1] and their budgets are in pixel units of [0, 1] images: images in
    [0, 255], or normalised with a mean and standard deviation, would be attacked at the wrong
    radius and clipped to a box they do not live in. Values are checked where they are known
    (numpy arrays, eager tensors); inside `tf.function` only the dtype and rank are.

    Args:
      x: images, a numpy array or a tensor.
      name: the argument, for the message.
      rank: the rank required (4 for NHWC), or None for any.
    """
    symbolic = tf.is_symbolic_tensor(x)
    if not symbolic and not tf.is_tensor(x):
        x = np.asarray(x)
    dtype = tf.as_dtype(x.dtype)
    if dtype == tf.uint8:
        raise ValueError(f"{name}: uint8 images; pass float images in [0, 1] (x / 255)")
    if not dtype.is_floating:
        raise ValueError(f"{name}: {dtype.name} images; pass float images in [0, 1]")
    actual = x.shape.rank if tf.is_tensor(x) else x.ndim
    if rank is not None and actual not in (rank, None):
        raise ValueError(f"{name}: images of rank {rank} (NHWC) expected, got shape {tuple(x.shape)}")
    values = None if symbolic else (x.numpy() if tf.is_tensor(x) else x)
    if values is not None and values.size:
        if not np.all(np.isfinite(values)):
            raise ValueError(f"{name}: images must lie in [0, 1] (pixel units; normalise inside the model), "
                             "got non-finite values")
        if values.min() < 0.0 or values.max() > 1.0:
            raise ValueError(f"{name}: images must lie in [0, 1] (pixel units; normalise inside the model), "
                             f"got values in [{values.min():.4g}, {values.max():.4g}]")
    return x


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


def label_logit(logits: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    """z_y per example: the entry of each row of `logits` (N, C) at its label (N,)."""
    return tf.gather(logits, labels, axis=-1, batch_dims=1)


def margin(logits: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    """The label margin z_y - max_{j != y} z_j per example (positive exactly when classified as y).

    The one margin of the attacks: CW-inf ascends its negation, DLR divides it, FAB and Square
    track it, NAttack takes it on log-probabilities.
    """
    onehot = tf.range(tf.shape(logits)[-1])[None, :] == labels[:, None]
    other = tf.reduce_max(tf.where(onehot, tf.constant(-np.inf, logits.dtype), logits), axis=-1)
    return label_logit(logits, labels) - other


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


def ranked_targets(name: str, clean_logits: tf.Tensor, wanted: int) -> tf.Tensor:
    """The target classes of AutoAttack's targeted attacks (APGD-T, FAB-T), (N, K) int32.

    Column k - 2 holds each example's class with the k-th largest clean logit, k = 2 .. K + 1,
    with K = `wanted` capped at C - 1 (`target_count`; when C is only known at run time, capped
    there without a warning).
    """
    num_classes = clean_logits.shape[-1]
    if num_classes is not None:
        ranks = target_count(name, wanted, num_classes, stacklevel=4) + 1
    else:
        ranks = tf.minimum(wanted + 1, tf.shape(clean_logits)[-1])
    return tf.math.top_k(clean_logits, k=ranks).indices[:, 1:]


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
