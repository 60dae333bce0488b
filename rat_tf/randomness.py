"""Stateless, replica-independent random draws for the training step.

Every random number the training step uses (PGD random starts, region samples) is drawn
with `tf.random.stateless_*` from a seed that depends only on the root seed and the global
step. To make a run independent of how many replicas share the global batch, each replica
draws the values for the *whole* global batch and keeps the rows of its own examples: the
example at global position i gets the same random numbers whether it is processed by one
replica or by the second of two. As a consequence, replicas never share draws (each holds
different rows), and 1- and 2-replica runs agree to float tolerance. The extra cost is
generating noise for the global batch on each replica, which is negligible next to the
forward and backward passes.
"""

from __future__ import annotations

from typing import Callable

import tensorflow as tf


def _replica_position() -> tuple[tf.Tensor | int, int]:
    ctx = tf.distribute.get_replica_context()
    if ctx is None:  # cross-replica context: behave as a single replica
        return 0, 1
    return ctx.replica_id_in_sync_group, ctx.num_replicas_in_sync


def fold_in(seed: tf.Tensor, value) -> tf.Tensor:
    """Derives a new stateless seed (shape (2,), int32) from `seed` and an integer `value`."""
    seed = tf.cast(tf.convert_to_tensor(seed), tf.int32)
    value = tf.cast(value, tf.int32)
    return tf.random.experimental.stateless_fold_in(seed, value)


def split(seed: tf.Tensor, num: int) -> list[tf.Tensor]:
    """Splits a stateless seed into `num` independent seeds."""
    seed = tf.cast(tf.convert_to_tensor(seed), tf.int32)
    seeds = tf.random.experimental.stateless_split(seed, num=num)
    return [seeds[i] for i in range(num)]


def _per_replica(draw: Callable[[tf.Tensor, tf.Tensor], tf.Tensor], seed, shape, batch_axis: int):
    shape = tf.cast(tf.convert_to_tensor(shape), tf.int32)
    replica_id, num_replicas = _replica_position()
    if num_replicas == 1:
        return draw(shape, seed)
    rank = shape.shape[0]
    local = shape[batch_axis]
    global_shape = shape * tf.one_hot(batch_axis, rank, on_value=num_replicas, off_value=1,
                                      dtype=tf.int32)
    begin = tf.one_hot(batch_axis, rank, on_value=tf.cast(replica_id, tf.int32) * local,
                       off_value=0, dtype=tf.int32)
    return tf.slice(draw(global_shape, seed), begin, shape)


def uniform(seed, shape, minval=0.0, maxval=1.0, dtype=tf.float32, batch_axis: int = 0):
    """U[minval, maxval) draws of `shape`, consistent across replica counts (see module doc).

    Args:
      seed: stateless seed, shape (2,).
      shape: the local (this replica's) shape.
      minval, maxval: range.
      dtype: a float dtype.
      batch_axis: the axis along which the global batch is split across replicas.
    """
    return _per_replica(
        lambda s, sd: tf.random.stateless_uniform(s, sd, minval=minval, maxval=maxval, dtype=dtype),
        seed, shape, batch_axis)


def uniform_int(seed, shape, maxval: int, batch_axis: int = 0):
    """Integers uniform in [0, maxval), consistent across replica counts."""
    return _per_replica(
        lambda s, sd: tf.random.stateless_uniform(s, sd, minval=0, maxval=maxval, dtype=tf.int32),
        seed, shape, batch_axis)


def normal(seed, shape, dtype=tf.float32, batch_axis: int = 0):
    """Standard normal draws, consistent across replica counts."""
    return _per_replica(
        lambda s, sd: tf.random.stateless_normal(s, sd, dtype=dtype), seed, shape, batch_axis)
