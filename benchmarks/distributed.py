"""Training steps per second of RAT with 1 and 2 replicas (tf.distribute.MirroredStrategy).

On a CPU the two replicas are two logical devices carved out of the same cores, so two
replicas cannot be faster than one: the point is to check that nothing serialises (per-replica
work is not run one replica after the other with the cores idle, nor blocked by a per-step
host round trip), i.e. that 2 logical devices reach roughly the 1-device rate. On a machine
with GPUs it also times one GPU (and all of them, when there are several).

Every configuration runs the compiled step `model.fit` uses (`RATModel.train_function`) on the
same global batch, over a distributed iterator; repetitions are interleaved across
configurations so that machine noise hits all alike, and the table gives the median.

Usage: python -m benchmarks.distributed [--batch_size 128] [--num_steps 10] [--steps 3]
                                         [--repeats 3] [--size cifar|mnist|digits]
"""

from __future__ import annotations

import argparse
import os
import statistics

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

# Two logical CPU devices, before TensorFlow initialises its devices.
_CPU = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(_CPU, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.step_timer import interleaved, step_timer  # noqa: E402
import rat_tf  # noqa: E402
from rat_tf import architectures  # noqa: E402

SIZES = {"digits": ((8, 8, 1), 0.1, 0.025), "mnist": ((28, 28, 1), 0.3, 0.075),
         "cifar": ((32, 32, 3), 8 / 255, 2 / 255)}


def configurations():
    """(name, strategy) pairs: no strategy, then MirroredStrategy on 1 and 2 CPU devices, GPUs."""
    configs = [("default (CPU:0)", None),
               ("mirrored, 1 CPU device", tf.distribute.MirroredStrategy(["/cpu:0"])),
               ("mirrored, 2 logical CPUs", tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))]
    gpus = tf.config.list_logical_devices("GPU")
    if gpus:
        configs.append(("mirrored, 1 GPU", tf.distribute.MirroredStrategy([gpus[0].name])))
        if len(gpus) > 1:
            configs.append((f"mirrored, {len(gpus)} GPUs",
                            tf.distribute.MirroredStrategy([g.name for g in gpus])))
    return configs


def build(strategy, method, shape, epsilon, step_size, num_steps):
    """The small CNN's RATModel, built and compiled under `strategy` (the default one if None)."""
    scope = strategy.scope() if strategy is not None else tf.distribute.get_strategy().scope()
    with scope:
        keras.utils.set_random_seed(0)
        classifier = architectures.build("small_cnn", shape, 10)
        model = rat_tf.RATModel(classifier, method, epsilon=epsilon, step_size=step_size,
                                num_steps=num_steps)
        model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), metrics=["accuracy"])
    return model


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch_size", type=int, default=128, help="global batch")
    parser.add_argument("--num_steps", type=int, default=10, help="PGD steps K")
    parser.add_argument("--method", default="rat")
    parser.add_argument("--size", default="cifar", choices=sorted(SIZES))
    parser.add_argument("--steps", type=int, default=3, help="steps per timed repetition")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    shape, epsilon, step_size = SIZES[args.size]
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (args.batch_size, *shape)).astype("float32")
    y = rng.integers(0, 10, args.batch_size).astype("int32")
    timers = {}
    replicas = {}
    for name, strategy in configurations():
        model = build(strategy, args.method, shape, epsilon, step_size, args.num_steps)
        timers[name] = step_timer(model, x, y, args.steps, warmup_steps=2, strategy=strategy)
        replicas[name] = strategy.num_replicas_in_sync if strategy is not None else 1
    times = interleaved(timers, args.repeats)
    median = {name: statistics.median(t) for name, t in times.items()}

    base = median["mirrored, 1 CPU device"]
    print(f"\n{args.method} on small_cnn {'x'.join(map(str, shape))}, global batch "
          f"{args.batch_size}, PGD K={args.num_steps}; {args.repeats} interleaved repeats x "
          f"{args.steps} steps; {os.cpu_count()} CPU cores, "
          f"{len(tf.config.list_physical_devices('GPU'))} GPU(s)")
    print(f"{'configuration':<26} {'replicas':>8} {'ms/step':>9} {'steps/s':>8} {'images/s':>9} "
          f"{'vs 1 CPU device':>15}")
    for name, t in median.items():
        print(f"{name:<26} {replicas[name]:>8} {1000 * t:9.1f} {1 / t:8.3f} "
              f"{args.batch_size / t:9.1f} {base / t:15.2f}")
    print(f"two_over_one_cpu_device={base / median['mirrored, 2 logical CPUs']:.3f}")


if __name__ == "__main__":
    main()
