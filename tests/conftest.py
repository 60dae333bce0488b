"""Test setup: quiet TF logs and split the CPU into two logical devices.

The split must happen before TensorFlow initialises its devices, so it lives here, at import
time of the test session. Tests that run on the default strategy use CPU:0 only; the
distribution tests build a MirroredStrategy over CPU:0 and CPU:1.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

_cpus = tf.config.list_physical_devices("CPU")
try:
    tf.config.set_logical_device_configuration(
        _cpus[0], [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])
except RuntimeError:  # devices already initialised by an earlier import: keep going
    pass
