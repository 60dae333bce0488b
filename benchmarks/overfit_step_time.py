"""Seconds per SAT training step (batch 128, CIFAR size, PGD-10) for the study's candidate architectures.

Used to size the robust-overfitting study's calibration runs (`python -m benchmarks.overfit`).
Random images; the first (tracing) step is excluded. Run it on one thread, as the study's lanes do:

    TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1 python -m benchmarks.overfit_step_time small_cnn wrn-10-1
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.step_timer import step_timer  # noqa: E402
import rat_tf  # noqa: E402
from rat_tf import architectures  # noqa: E402


def seconds_per_step(arch: str, method: str = "sat", steps: int = 5) -> tuple[float, int]:
    """(seconds per step, parameters) of `method` on `arch` with the study's recipe and attack."""
    keras.utils.set_random_seed(0)
    classifier = architectures.build(arch, (32, 32, 3), 10)
    model = rat_tf.RATModel(classifier, method, weight_decay=2e-4, num_classes=10,
                            epsilon=8 / 255, step_size=2 / 255, num_steps=10)
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), metrics=["accuracy"])
    x = np.random.rand(128, 32, 32, 3).astype("float32")
    y = np.random.randint(0, 10, 128).astype("int32")
    return step_timer(model, x, y, steps)(), classifier.count_params()


if __name__ == "__main__":
    for name in sys.argv[1:] or ["small_cnn", "wrn-10-1", "wrn-16-1", "wrn-10-2", "wrn-16-2"]:
        seconds, params = seconds_per_step(name)
        print(f"{name} sat: {seconds:.3f} s/step ({params:,} params); load average {os.getloadavg()[0]:.2f}",
              flush=True)
