"""Small fixed models and data shared by the tests."""

import functools

import keras
import numpy as np
import tensorflow as tf


@functools.lru_cache(maxsize=1)
def digits():
    """sklearn's 8x8 digits as float32 NHWC in [0, 1]: (x_train, y_train, x_test, y_test)."""
    from sklearn.datasets import load_digits
    d = load_digits()
    x = (d.images / 16.0).astype("float32")[..., None]
    y = d.target.astype("int32")
    return x[:1437], y[:1437], x[1437:], y[1437:]


def tiny_cnn(num_classes=10, input_shape=(8, 8, 1), batch_norm=False, seed=0):
    """A small deterministic CNN mapping images to logits."""
    init = lambda i: keras.initializers.GlorotUniform(seed=seed + i)  # noqa: E731
    inputs = keras.Input(input_shape)
    h = keras.layers.Conv2D(16, 3, padding="same", kernel_initializer=init(0))(inputs)
    if batch_norm:
        h = keras.layers.BatchNormalization()(h)
    h = keras.layers.ReLU()(h)
    h = keras.layers.MaxPooling2D()(h)
    h = keras.layers.Flatten()(h)
    h = keras.layers.Dense(32, activation="relu", kernel_initializer=init(1))(h)
    outputs = keras.layers.Dense(num_classes, kernel_initializer=init(2))(h)
    return keras.Model(inputs, outputs)


class Linear(keras.Model):
    """logits = flatten(x) @ w + b with fixed weights: PGD paths computable by hand."""

    def __init__(self, w, b):
        super().__init__()
        self.w = tf.constant(w, tf.float32)
        self.b = tf.constant(b, tf.float32)

    def call(self, x, training=False):
        flat = tf.reshape(x, [tf.shape(x)[0], -1])
        return flat @ self.w + self.b


@functools.lru_cache(maxsize=1)
def trained_digits_classifier():
    """A tiny CNN trained on digits with ST (about 97% clean test accuracy), for attack tests."""
    keras.utils.set_random_seed(0)
    x, y, _, _ = digits()
    model = tiny_cnn()
    model.compile(optimizer=keras.optimizers.Adam(3e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, batch_size=64, epochs=8, verbose=0)
    return model


def accuracy(model, x, y):
    return float(np.mean(np.argmax(model(x, training=False), -1) == y))


# Runs `absl.app.run(train_main.main)` once per bad command line inside ONE process (importing
# TensorFlow once instead of once per case), exactly as `python train_main.py ARGS` would,
# recording the exit status, stderr, and any exception that escaped (which would print a
# traceback).
BAD_FLAGS_DRIVER = """
import contextlib, io, json, sys
from absl import app, flags
import flags as rat_flags
import train_main
rat_flags.define_flags()
flags.adopt_module_key_flags(rat_flags)
results = []
for argv in json.loads(sys.argv[1]):
    flags.FLAGS.unparse_flags()
    err, code, escaped = io.StringIO(), None, None
    with contextlib.redirect_stderr(err):
        try:
            app.run(train_main.main, argv=["train_main.py", *argv])
            code = 0
        except SystemExit as exit_:
            code = exit_.code
        except BaseException as exc:  # would be a traceback in the real script
            escaped = repr(exc)
    results.append({"code": code, "stderr": err.getvalue(), "escaped": escaped})
print(json.dumps(results))
"""


def h5_arrays(path):
    """Every dataset in an HDF5 file (a Keras weights checkpoint), by name."""
    import h5py
    arrays = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: arrays.__setitem__(name, obj[()])
                     if isinstance(obj, h5py.Dataset) else None)
    return arrays
