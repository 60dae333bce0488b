"""Adversarial weight perturbation (AWP; Wu, Xia & Wang, NeurIPS 2020), for any method's step.

AWP flattens the weight loss landscape of adversarial training: each step it moves the weights
to a nearby point where the method's loss is higher and trains from there. As in the official
code (csdongxian/AWP, `utils_awp.py`):

1. One ascent step on the method's own loss, at the method's own training points, in training
   mode (BatchNorm on batch statistics, its moving statistics left untouched), gives the
   gradient g_l of every kernel W_l (weights of rank > 1: convolution and dense kernels; not
   BatchNorm scales or biases).
2. Each kernel is perturbed layer-wise, relative to its own norm:
       v_l = gamma * ||W_l|| * g_l / ||g_l||        so that ||v_l|| = gamma * ||W_l||.
3. The outer pass runs at W + v; its gradient is applied to the unperturbed W.

In `RATModel.train_step` the perturbed kernels never enter the variables: the outer pass reads
W + v through a `keras.StatelessScope`, so "removing the perturbation" is exact and happens
inside the same compiled step. Under `tf.distribute` the ascent gradient is summed over replicas
before step 2 (every replica computes the same v).
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import tensorflow as tf

from rat_tf import validation

# The official code's guard against a zero gradient norm (`EPS` in utils_awp.py).
EPS = 1e-20

# The official defaults: AT-AWP's --awp-gamma 0.01 (train_cifar10.py), TRADES-AWP's 0.005 with
# a warm-up of 10 of its 200 epochs (train_trades_cifar.py), here as a fraction of the run.
DEFAULT_GAMMA = 0.01
METHOD_GAMMA = {"trades": 0.005}
METHOD_WARMUP = {"trades": "0.05"}


def default_gamma(method: str) -> float:
    """The official code's gamma for a method (TRADES 0.005, adversarial training 0.01)."""
    return METHOD_GAMMA.get(method, DEFAULT_GAMMA)


def default_warmup(method: str) -> str:
    """The official code's warm-up for a method, as a warm-up string ("0": none)."""
    return METHOD_WARMUP.get(method, "0")


def check_gamma(gamma: float) -> float:
    """gamma as a float >= 0 (0: AWP off), or a ValueError naming `awp_gamma`."""
    return validation.check_float("awp_gamma", gamma, minimum=0.0)


def perturbed_weights(weights: Sequence[keras.Variable]) -> list[keras.Variable]:
    """The weights AWP perturbs: those of rank > 1 (kernels), as the official code selects."""
    return [w for w in weights if len(w.shape) > 1]


def perturbation(weights: Sequence[tf.Tensor], gradients: Sequence[tf.Tensor | None],
                 gamma) -> list[tf.Tensor]:
    """v_l = gamma * ||W_l|| / (||g_l|| + EPS) * g_l for each weight W_l and its gradient g_l.

    A None gradient (a weight the loss does not reach) gives v_l = 0. If any gradient is not
    finite (a float16 loss-scale overflow), every v_l is 0: that step trains unperturbed.

    Args:
      weights: the kernels W_l (variables or tensors).
      gradients: their ascent gradients, summed over replicas.
      gamma: the relative size of the perturbation (a float or scalar tensor).

    Returns:
      The perturbations v_l, in the weights' dtypes.
    """
    gradients = [tf.zeros_like(w) if g is None else tf.convert_to_tensor(g)
                 for w, g in zip(weights, gradients)]
    finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in gradients])
    out = []
    for weight, gradient in zip(weights, gradients):
        weight = tf.convert_to_tensor(weight)
        gradient = tf.cast(gradient, weight.dtype)
        gradient = tf.where(finite, gradient, tf.zeros_like(gradient))
        factor = tf.cast(gamma, weight.dtype) * tf.norm(weight) / (tf.norm(gradient) + EPS)
        out.append(factor * gradient)
    return out


def all_reduce_sum(gradients: Sequence[tf.Tensor | None]) -> list[tf.Tensor | None]:
    """Gradients summed over the replicas of the strategy in scope (unchanged with one)."""
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return list(gradients)
    present = [i for i, g in enumerate(gradients) if g is not None]
    reduced = context.all_reduce(tf.distribute.ReduceOp.SUM, [gradients[i] for i in present])
    out = list(gradients)
    for i, g in zip(present, reduced):
        out[i] = g
    return out
