"""Small fixed models and data shared by the tests.

Every test runs from a clone of the repository alone: the data here are made by the tests or
ship with a dependency (scikit-learn). The data sets in the shared directory next to the clone
(``../shared/data``; ``$RAT_TF_SHARED_DIR`` overrides it) only add coverage on real data.
"""

import functools
import os
import pathlib

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


def shared_data_dir() -> pathlib.Path:
    """``$RAT_TF_SHARED_DIR/data`` if set, else ``<clone>/../shared/data`` (may not exist)."""
    shared = os.environ.get("RAT_TF_SHARED_DIR")
    root = pathlib.Path(shared) if shared else pathlib.Path(__file__).resolve().parents[1].parent / "shared"
    return root / "data"


def shared_file(name: str) -> pathlib.Path | None:
    """A file of the shared data directory, or None when it is not there."""
    path = shared_data_dir() / name
    return path if path.is_file() else None


@functools.lru_cache(maxsize=1)
def natural_patches(num: int = 256, size: int = 32) -> np.ndarray:
    """`num` (N, size, size, 3) uint8 crops of the two photos that ship with scikit-learn.

    Natural-image statistics (edges, textures, smooth regions) like CIFAR's, without a download:
    each crop is a random square of 64 to 192 pixels of `china.jpg` or `flower.jpg`, shrunk to
    `size` x `size` (BOX filter). Fixed seed: the same patches every run.
    """
    from PIL import Image
    from sklearn.datasets import load_sample_images
    photos = load_sample_images().images
    rng = np.random.default_rng(0)
    out = np.empty((num, size, size, 3), np.uint8)
    for i in range(num):
        photo = photos[i % len(photos)]
        side = int(rng.integers(64, 193))
        top = int(rng.integers(0, photo.shape[0] - side + 1))
        left = int(rng.integers(0, photo.shape[1] - side + 1))
        crop = Image.fromarray(photo[top:top + side, left:left + side])
        out[i] = np.asarray(crop.resize((size, size), Image.Resampling.BOX))
    return out


@functools.lru_cache(maxsize=1)
def colour_digits_32():
    """scikit-learn's digits as 32x32 RGB uint8, CIFAR-sized: (x_train, y_train, x_test, y_test).

    Each 8x8 digit is enlarged (bilinear) and drawn in a random light colour on a random dark
    one (fixed seed); the split is the embedded default's (1,437 train, 360 test).
    """
    from PIL import Image
    from sklearn.datasets import load_digits
    d = load_digits()
    ink = np.stack([np.asarray(Image.fromarray((im * 255 / 16).astype(np.uint8)).resize(
        (32, 32), Image.Resampling.BILINEAR)) for im in d.images])[..., None] / 255.0
    rng = np.random.default_rng(0)
    background = rng.integers(0, 128, size=(len(ink), 1, 1, 3))
    foreground = rng.integers(128, 256, size=(len(ink), 1, 1, 3))
    x = (ink * foreground + (1 - ink) * background).astype(np.uint8)
    y = d.target.astype(np.int32)
    return x[:1437], y[:1437], x[1437:], y[1437:]


def write_image_tree(root, images_by_split, class_names, fmt="JPEG", quality=95):
    """Writes an image-folder tree ``root/<split>/<class>/<index>.jpg`` (the CIFAR-10 JPEG layout).

    Args:
      root: the tree's root directory (created).
      images_by_split: {split: (uint8 images (N, H, W, C), int labels (N,))}.
      class_names: the class directory names; label k goes to class_names[k].
      fmt: a Pillow format ("JPEG", "PNG").
      quality: JPEG quality.

    Returns:
      root, as a pathlib.Path.
    """
    from PIL import Image
    root = pathlib.Path(root)
    suffix = {"JPEG": "jpg"}.get(fmt, fmt.lower())
    for split, (images, labels) in images_by_split.items():
        counts = {}
        for image, label in zip(images, labels):
            cls = class_names[int(label)]
            index = counts[cls] = counts.get(cls, -1) + 1
            folder = root / split / cls
            folder.mkdir(parents=True, exist_ok=True)
            options = {"quality": quality} if fmt == "JPEG" else {}
            Image.fromarray(image.squeeze(-1) if image.shape[-1] == 1 else image).save(
                folder / f"{index:04d}.{suffix}", fmt, **options)
    return root


def write_mnist_like_npz(path, num_train=600, num_test=100, size=28, seed=0):
    """An .npz in `keras.datasets.mnist`'s layout: uint8 (N, 28, 28) images, uint8 labels.

    The images are scikit-learn's digits, enlarged to `size` x `size` (bilinear), so they are
    real handwriting with mnist's shapes and dtypes; the first `num_train` digits are the train
    split and the next `num_test` the test split, shuffled with `seed`.

    Returns:
      {"x_train", "y_train", "x_test", "y_test"}: the arrays written.
    """
    from PIL import Image
    from sklearn.datasets import load_digits
    d = load_digits()
    order = np.random.default_rng(seed).permutation(len(d.target))[:num_train + num_test]
    images = np.stack([np.asarray(Image.fromarray((d.images[i] * 255 / 16).astype(np.uint8)).resize(
        (size, size), Image.Resampling.BILINEAR)) for i in order])
    labels = d.target[order].astype(np.uint8)
    arrays = {"x_train": images[:num_train], "y_train": labels[:num_train],
              "x_test": images[num_train:], "y_test": labels[num_train:]}
    np.savez(path, **arrays)
    return arrays


# A tiny train_main.py run (a few seconds on the embedded digits).
TINY_TRAIN = ["--max_train_examples=128", "--max_test_examples=48", "--batch_size=32",
              "--num_steps=2", "--eval_pgd_steps=2"]


def train_config(*argv, base=TINY_TRAIN):
    """The resolved config of `train_main.py *base *argv` (through the flags, as the CLI does)."""
    from absl import flags

    import flags as rat_flags
    flag_values = flags.FlagValues()
    rat_flags.define_flags(flag_values)
    flag_values(["train_main.py", *base, *argv])
    return rat_flags.config_from_flags(flag_values)


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
