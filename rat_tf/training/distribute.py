"""A `tf.distribute` strategy from a name.

| name           | strategy                                                                   |
|----------------|----------------------------------------------------------------------------|
| "default"      | the default strategy (one device: the first GPU if any, else the CPU)       |
| "mirrored"     | `MirroredStrategy` over all local GPUs (or the CPU / logical CPUs)          |
| "multi_worker" | `MultiWorkerMirroredStrategy`; the cluster comes from the `TF_CONFIG` env   |
|                | variable (without it: a single local worker)                               |
| "tpu"          | `TPUStrategy` after connecting to the TPU named by `tpu` (or `TPU_NAME`,    |
|                | or the local TPU VM)                                                       |

Build the model and the optimizer under `strategy.scope()`; `keras.Model.fit` then distributes
the training step and the `tf.data` pipeline (batches are global batches).
`MultiWorkerMirroredStrategy` must be created before any other TensorFlow op runs.

In a multi-worker run every worker runs the same program and takes part in every collective
(training steps, evaluation, saving). Only the chief (`is_chief`) writes files where the user
asked; the other workers write theirs to a scratch directory and delete it, as the TensorFlow
multi-worker guide does.
"""

from __future__ import annotations

import tensorflow as tf

from rat_tf.config import STRATEGY_NAMES  # the strategy names (also the config's rule)


class _MultiWorkerMirroredStrategy(tf.distribute.MultiWorkerMirroredStrategy):
    """`MultiWorkerMirroredStrategy` with a `reduce` that Keras 3's `fit` can use.

    Two calls Keras 3 makes to `strategy.reduce` fail on the collective strategy, while the
    mirrored strategy takes them (keras-team/keras#20585, tensorflow/tensorflow#72388):

    * `fit` first reduces the whole (x, y) batch, a nested structure, to build the model
      symbolically (`_maybe_symbolic_build` in keras/src/backend/tensorflow/trainer.py):
      "Attempt to convert a value (PerReplica...) ... to a Tensor". Here each value is reduced
      on its own, as `MirroredStrategy.reduce` does.
    * Every step reduces the logged metrics with `reduce("MEAN", value, axis=0)`; the metrics
      are scalars, so axis 0 does not exist ("Invalid reduction dimension 0 for input with 0
      dimensions"). For a scalar the only meaning is the mean across replicas (axis=None),
      which is what `MirroredStrategy` computes for Keras.
    """

    def reduce(self, reduce_op, value, axis=None):  # noqa: D102  (see Strategy.reduce)
        base = super()
        if not (isinstance(value, tf.distribute.DistributedValues) or tf.is_tensor(value)):
            return tf.nest.map_structure(lambda v: self.reduce(reduce_op, v, axis), value)
        if axis is not None and self.experimental_local_results(value)[0].shape.rank == 0:
            axis = None
        return base.reduce(reduce_op, value, axis)


def get_strategy(name: str = "default", *, tpu: str | None = None) -> tf.distribute.Strategy:
    """Returns the distribution strategy named `name`.

    Args:
      name: one of `STRATEGY_NAMES`.
      tpu: for "tpu" only: the TPU name or grpc address passed to `TPUClusterResolver`
        (None or "": the `TPU_NAME` environment variable, else the local TPU VM).

    Returns:
      The strategy.

    Raises:
      ValueError: unknown name, or `tpu` given for another strategy.
    """
    if name not in STRATEGY_NAMES:
        raise ValueError(f"unknown strategy {name!r}; allowed: {', '.join(STRATEGY_NAMES)}")
    if tpu and name != "tpu":
        raise ValueError(f"a TPU address ({tpu!r}) only applies to the 'tpu' strategy, "
                         f"not {name!r}")
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        # TFConfigClusterResolver reads TF_CONFIG; without it this is a single local worker.
        return _MultiWorkerMirroredStrategy(
            cluster_resolver=tf.distribute.cluster_resolver.TFConfigClusterResolver())
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu or None)
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes checkpoints, logs and the export.

    True for single-process strategies and for the chief of a multi-worker cluster (the
    "chief" task, or worker 0 when there is none): `strategy.extended.should_checkpoint`.
    """
    return bool(strategy.extended.should_checkpoint)


def task_name(strategy: tf.distribute.Strategy) -> str:
    """"worker-1", "chief-0", ... in a cluster; "local" otherwise (for logs and scratch names)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    task_type = getattr(resolver, "task_type", None)
    if not task_type:
        return "local"
    return f"{task_type}-{getattr(resolver, 'task_id', 0)}"


def distribute_global_batches(strategy: tf.distribute.Strategy, dataset: tf.data.Dataset,
                              global_batch_size: int):
    """Splits each global batch of `dataset` so that replica r gets its r-th slice, in order.

    `rat_tf.randomness` gives the example at position i of a global batch the same random
    numbers however many replicas share the batch, which holds when replica r of R processes
    rows [r * B / R, (r + 1) * B / R). `MirroredStrategy` splits a batched dataset that way.
    Under `MultiWorkerMirroredStrategy`, what `experimental_distribute_dataset` gives each
    replica is up to tf.data's auto-sharding rewrite (for in-memory data: split every global
    batch into pieces and deal the pieces out to the workers), and which rows a replica gets
    when a worker has several is an implementation detail. Here every worker reads the whole
    global batch (same seed, same order) and keeps the rows of its own replicas, explicitly: a
    run then equals a one-process run with the same global batch and seed. Each worker pays for
    producing the whole global batch (so does auto-sharding), which for in-memory arrays is
    small next to an adversarial training step.

    Args:
      strategy: the strategy `fit` runs under.
      dataset: a dataset of global batches with a static batch size (`drop_remainder=True`).
      global_batch_size: its batch size.

    Returns:
      `dataset` itself for other strategies (Keras distributes it), else a distributed dataset
      for `keras.Model.fit`.

    Raises:
      ValueError: the global batch does not split evenly across the replicas.
    """
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return dataset
    replicas = strategy.num_replicas_in_sync
    if global_batch_size % replicas:
        raise ValueError(f"batch size {global_batch_size} does not split evenly across "
                         f"{replicas} replicas; use a multiple of {replicas}")
    per_replica = global_batch_size // replicas

    def dataset_fn(context: tf.distribute.InputContext) -> tf.data.Dataset:
        local = context.num_replicas_in_sync // context.num_input_pipelines
        start = context.input_pipeline_id * local * per_replica

        def own_rows(*batch):
            def split(t):
                rows = t[start:start + local * per_replica]
                return tf.reshape(rows, tf.concat([[local, per_replica], tf.shape(t)[1:]], 0))
            return tf.data.Dataset.from_tensor_slices(tf.nest.map_structure(split, batch))

        # One element per local replica, in replica order.
        return dataset.flat_map(own_rows)

    return strategy.distribute_datasets_from_function(dataset_fn)
