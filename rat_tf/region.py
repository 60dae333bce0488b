"""Adversarial-region sampling (ARS, the paper's Eq. 5-6).

One sampler serves RAT, the SAT+ARS ablation and AVmixup. For each example and each of m
samples: xbar = lambda * x'_f + (1 - lambda) * x'_e with lambda ~ U(0, 1), then
xhat = clip(x + s * (xbar - x), 0, 1) with s drawn from a scale set. Points are NOT projected
onto the eps-ball: scales above 1 leave it on purpose.

AVmixup (Lee et al. 2020) is the case x'_f = x'_e with a continuous scale s ~ U(0, gamma) whose
clipping is applied to the vertex x + gamma * delta instead of to each point (`clip="vertex"`).
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple, Optional

import numpy as np
import tensorflow as tf

from rat_tf import randomness, validation

CLIP_MODES = ("point", "vertex")


def scale_grid(max_scale: float, scale_step: float) -> tuple[float, ...]:
    """The paper's scale set {0, step, 2 step, ..., S} (S included)."""
    validation.check_float("max_scale", max_scale, minimum=0.0)
    validation.check_float("scale_step", scale_step, minimum=0.0, exclude_minimum=True)
    count = int(np.floor(max_scale / scale_step + 1e-6))
    grid = [round(i * scale_step, 10) for i in range(count + 1)]
    if abs(grid[-1] - max_scale) > 1e-6:
        raise ValueError(f"max_scale ({max_scale}) must be a multiple of scale_step ({scale_step})")
    return tuple(grid)


@dataclasses.dataclass(frozen=True)
class RegionConfig:
    """How training points are drawn from the adversarial region.

    Attributes:
      num_samples: m, points per example.
      scales: a discrete scale set to draw s from uniformly, or None for a continuous
        s ~ U(0, max_scale).
      max_scale: S, the largest scale (normalises the soft labels).
      use_first_point: False sets x'_f := x'_e (the segment collapses to the end point).
      clip: "point" clips each sample to [0, 1] (RAT); "vertex" clips the vertex
        x + S * (xbar - x) and interpolates towards x (AVmixup).
    """

    num_samples: int = 2
    scales: Optional[tuple[float, ...]] = scale_grid(2.0, 0.1)
    max_scale: float = 2.0
    use_first_point: bool = True
    clip: str = "point"

    def __post_init__(self):
        validation.check_int("num_samples", self.num_samples, minimum=1)
        validation.check_float("max_scale", self.max_scale, minimum=0.0, exclude_minimum=True)
        if self.scales is not None:
            if not self.scales:
                raise ValueError("scales must not be empty")
            if min(self.scales) < 0 or max(self.scales) > self.max_scale + 1e-9:
                raise ValueError(f"scales must lie in [0, max_scale={self.max_scale}], got {self.scales}")
        if self.clip not in CLIP_MODES:
            raise ValueError(f"clip must be one of {', '.join(CLIP_MODES)}, got {self.clip!r}")


class RegionDraw(NamedTuple):
    """Random numbers for one batch: lam and scale, both (m, n)."""

    lam: tf.Tensor
    scale: tf.Tensor


def draw(config: RegionConfig, batch_size, seed) -> RegionDraw:
    """Draws lambda ~ U(0, 1) and the scale s for m samples of n examples (shape (m, n))."""
    lam_seed, scale_seed = randomness.split(seed, 2)
    shape = [config.num_samples, batch_size]
    lam = randomness.uniform(lam_seed, shape, batch_axis=1)
    if config.scales is None:
        scale = randomness.uniform(scale_seed, shape, 0.0, config.max_scale, batch_axis=1)
    else:
        index = randomness.uniform_int(scale_seed, shape, len(config.scales), batch_axis=1)
        scale = tf.gather(tf.constant(config.scales, tf.float32), index)
    return RegionDraw(lam, scale)


def sample(x: tf.Tensor, x_first: tf.Tensor, x_end: tf.Tensor, region_draw: RegionDraw,
           config: RegionConfig) -> tf.Tensor:
    """Training points from the adversarial region.

    Written so that the special cases are exact in floating point: s = 0 returns x, s = 1 with
    x'_f = x'_e returns x'_e.

    Args:
      x: clean images (n, ...).
      x_first, x_end: x'_f and x'_e from the PGD path (n, ...).
      region_draw: lam and scale, (m, n).
      config: the sampler configuration.

    Returns:
      (m * n, ...) points, sample j of example i at row j * n + i; no gradient flows.
    """
    x = tf.convert_to_tensor(x)
    if not config.use_first_point:
        x_first = x_end
    rank = x.shape.rank
    expand = lambda t: tf.reshape(tf.cast(t, x.dtype), tf.concat([tf.shape(t), [1] * (rank - 1)], 0))  # noqa: E731
    lam, scale = expand(region_draw.lam), expand(region_draw.scale)
    # xbar = lam * x'_f + (1 - lam) * x'_e, written so that x'_f = x'_e gives x'_e exactly.
    x_bar = x_end[None] + lam * (x_first - x_end)[None]
    if config.clip == "point":
        points = tf.clip_by_value(scale * x_bar + (1.0 - scale) * x[None], 0.0, 1.0)
    else:
        max_scale = tf.cast(config.max_scale, x.dtype)
        vertex = tf.clip_by_value(max_scale * x_bar + (1.0 - max_scale) * x[None], 0.0, 1.0)
        weight = scale / max_scale
        points = weight * vertex + (1.0 - weight) * x[None]
    points = tf.reshape(points, tf.concat([[-1], tf.shape(x)[1:]], 0))
    return tf.stop_gradient(points)
