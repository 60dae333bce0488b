"""In-memory sources: scikit-learn's digits and .npz files; resizing of in-memory arrays."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import tensorflow as tf

from rat_tf.data.core import NPZ_KEYS, ImageData, to_float

DIGITS_NUM_TRAIN = 1437
DIGITS_NUM_TEST = 360

# --------------------------------------------------------------------------
# digits (embedded in scikit-learn).


def load_digits() -> ImageData:
    """scikit-learn's 8x8 digits as float32 in [0, 1]: the first 1,437 train, the last 360 test."""
    from sklearn import datasets as sk_datasets  # pylint: disable=g-import-not-at-top

    digits = sk_datasets.load_digits()
    images = (np.asarray(digits.images, np.float32) / np.float32(16.0))[..., None]
    labels = np.asarray(digits.target, np.int32)
    if len(images) != DIGITS_NUM_TRAIN + DIGITS_NUM_TEST:
        raise ValueError(f"scikit-learn digits has {len(images)} images, expected "
                         f"{DIGITS_NUM_TRAIN + DIGITS_NUM_TEST}")
    return ImageData(
        name="digits",
        x_train=images[:DIGITS_NUM_TRAIN], y_train=labels[:DIGITS_NUM_TRAIN],
        x_test=images[DIGITS_NUM_TRAIN:], y_test=labels[DIGITS_NUM_TRAIN:],
        class_names=tuple(str(i) for i in range(10)))


# --------------------------------------------------------------------------
# npz.


def load_npz(path: str, *, name: str) -> ImageData:
    """An .npz file with the `keras.datasets` keys, validated (raises ValueError on bad data)."""
    if not os.path.isfile(path):
        raise ValueError(f"npz file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in NPZ_KEYS if k not in npz.files]
            if missing:
                raise ValueError(
                    f"npz file {path} is missing key(s) {', '.join(missing)} "
                    f"(expected {', '.join(NPZ_KEYS)}; found {', '.join(npz.files) or 'none'})")
            arrays = {k: npz[k] for k in NPZ_KEYS}
    except ValueError:
        raise
    except Exception as e:  # zipfile.BadZipFile, OSError, pickle refusal, ...
        raise ValueError(f"cannot read npz file {path}: {type(e).__name__}: {e}") from e

    x_train = _validate_images(arrays["x_train"], "x_train", path)
    x_test = _validate_images(arrays["x_test"], "x_test", path)
    y_train = _validate_labels(arrays["y_train"], "y_train", path)
    y_test = _validate_labels(arrays["y_test"], "y_test", path)
    for split, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
        if len(x) != len(y):
            raise ValueError(f"npz file {path}: mismatched lengths, x_{split} has {len(x)} images "
                             f"but y_{split} has {len(y)} labels")
    if x_train.shape[1:] != x_test.shape[1:]:
        raise ValueError(f"npz file {path}: train and test image shapes differ "
                         f"({x_train.shape[1:]} vs {x_test.shape[1:]})")
    if x_train.dtype != x_test.dtype:  # One uint8, one float: use float for both.
        x_train, x_test = to_float(x_train), to_float(x_test)
    num_classes = int(max(y_train.max(), y_test.max())) + 1
    return ImageData(name=name, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
                     class_names=tuple(str(i) for i in range(num_classes)))


def _validate_images(x: np.ndarray, key: str, path: str) -> np.ndarray:
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4:
        raise ValueError(f"npz file {path}: {key} must have shape (N, H, W) or (N, H, W, C), "
                         f"got {x.shape}")
    if len(x) == 0:
        raise ValueError(f"npz file {path}: {key} is empty")
    if x.dtype == np.uint8:
        return x
    if np.issubdtype(x.dtype, np.integer) or x.dtype == np.bool_:
        lo, hi = int(x.min()), int(x.max())
        if lo < 0 or hi > 255:
            raise ValueError(f"npz file {path}: {key} is integer ({x.dtype}) with values out of "
                             f"range [{lo}, {hi}]; integer images must be in [0, 255]")
        return x.astype(np.uint8)
    if np.issubdtype(x.dtype, np.floating):
        if not np.all(np.isfinite(x)):
            raise ValueError(f"npz file {path}: {key} contains NaN or infinite values")
        lo, hi = float(x.min()), float(x.max())
        if lo < 0.0 or hi > 1.0:
            raise ValueError(f"npz file {path}: {key} is float with values out of range "
                             f"[{lo:g}, {hi:g}]; float images must be in [0, 1] "
                             f"(uint8 images in [0, 255])")
        return x.astype(np.float32, copy=False)
    raise ValueError(f"npz file {path}: {key} has unsupported dtype {x.dtype}; "
                     f"use uint8 in [0, 255] or float in [0, 1]")


def _validate_labels(y: np.ndarray, key: str, path: str) -> np.ndarray:
    if y.ndim == 2 and y.shape[1] == 1:  # keras.datasets.cifar10 style (N, 1).
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(f"npz file {path}: {key} must have shape (N,) or (N, 1), got {y.shape}")
    if len(y) == 0:
        raise ValueError(f"npz file {path}: {key} is empty")
    if np.issubdtype(y.dtype, np.floating):
        if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
            raise ValueError(f"npz file {path}: {key} has non-integer labels")
    elif not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"npz file {path}: {key} has non-integer labels (dtype {y.dtype})")
    if y.min() < 0:
        raise ValueError(f"npz file {path}: {key} has negative labels (min {y.min()})")
    if y.max() > np.iinfo(np.int32).max:
        raise ValueError(f"npz file {path}: {key} has labels too large for int32")
    return y.astype(np.int32)


# --------------------------------------------------------------------------
# Resizing in-memory arrays (npz, digits; TFDS images one at a time).


def resize_center_crop(images: tf.Tensor, size: int) -> tf.Tensor:
    """Shorter side to `size` (bilinear, antialiased), then center crop; float32 out.

    Works on one HWC image or an NHWC batch of equally sized images.
    """
    shape = tf.shape(images)
    h = tf.cast(shape[-3], tf.float32)
    w = tf.cast(shape[-2], tf.float32)
    scale = tf.cast(size, tf.float32) / tf.minimum(h, w)
    new_h = tf.maximum(size, tf.cast(tf.round(h * scale), tf.int32))
    new_w = tf.maximum(size, tf.cast(tf.round(w * scale), tf.int32))
    resized = tf.image.resize(tf.cast(images, tf.float32), tf.stack([new_h, new_w]),
                              method="bilinear", antialias=True)
    return tf.image.resize_with_crop_or_pad(resized, size, size)


def _resize_array(x: np.ndarray, size: int, chunk: int = 1024) -> np.ndarray:
    if x.shape[1:3] == (size, size):
        return x
    out = []
    for start in range(0, len(x), chunk):
        r = resize_center_crop(tf.constant(x[start:start + chunk]), size).numpy()
        if x.dtype == np.uint8:
            out.append(np.clip(np.round(r), 0, 255).astype(np.uint8))
        else:
            out.append(np.clip(r, 0.0, 1.0).astype(np.float32))
    return np.concatenate(out)


def resize_data(data: ImageData, image_size: int | None) -> ImageData:
    """Both splits resized with `resize_center_crop` (unchanged when image_size is None)."""
    if image_size is None:
        return data
    return dataclasses.replace(data, x_train=_resize_array(data.x_train, image_size),
                               x_test=_resize_array(data.x_test, image_size))


