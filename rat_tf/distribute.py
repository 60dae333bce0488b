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
"""

from __future__ import annotations

from typing import Optional

import tensorflow as tf

STRATEGY_NAMES: tuple[str, ...] = ("default", "mirrored", "multi_worker", "tpu")


def get_strategy(name: str = "default", *, tpu: Optional[str] = None) -> tf.distribute.Strategy:
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
        return tf.distribute.MultiWorkerMirroredStrategy(
            cluster_resolver=tf.distribute.cluster_resolver.TFConfigClusterResolver())
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu or None)
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)
