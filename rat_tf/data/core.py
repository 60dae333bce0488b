"""The in-memory data set, the dataset spec names, and conversion to float."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import tensorflow as tf

# --------------------------------------------------------------------------
# Specs.

TFDS_NAMES: tuple[str, ...] = (
    "cifar10",
    "cifar100",
    "mnist",
    "imagenette",
    "imagenette/160px",
    "imagenette/320px",
    "imagenette/full-size",
    "imagenette/160px-v2",
    "imagenette/320px-v2",
    "imagenette/full-size-v2",
)
DATASET_NAMES: tuple[str, ...] = ("digits",) + TFDS_NAMES
SPEC_PREFIXES: tuple[str, ...] = ("npz:", "folder:")

# The `keras.datasets` keys of an .npz data set (and of the image-folder cache).
NPZ_KEYS: tuple[str, ...] = ("x_train", "y_train", "x_test", "y_test")


class DatasetUnavailableError(RuntimeError):
    """A TFDS dataset is not prepared locally and cannot be downloaded."""


def describe_specs() -> str:
    """Returns the accepted dataset specs as one line, for error messages."""
    return ", ".join(DATASET_NAMES + ("npz:PATH", "folder:PATH"))


# --------------------------------------------------------------------------
# The in-memory data set.


@dataclasses.dataclass(frozen=True, eq=False)
class ImageData:
    """An in-memory image classification data set.

    Attributes:
      name: the spec it was loaded from.
      x_train: uint8 NHWC images in [0, 255], or float32 NHWC in [0, 1].
      y_train: int32 labels, shape (N,).
      x_test: test images, same dtype and HWC shape as `x_train`.
      y_test: int32 test labels.
      class_names: one name per class; labels index into it.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]

    def __post_init__(self):
        for split in ("train", "test"):
            x = getattr(self, f"x_{split}")
            y = getattr(self, f"y_{split}")
            if x.ndim != 4:
                raise ValueError(
                    f"ImageData {self.name!r}: x_{split} must be NHWC, got shape {x.shape}")
            if x.dtype not in (np.uint8, np.float32):
                raise ValueError(
                    f"ImageData {self.name!r}: x_{split} must be uint8 or float32, got {x.dtype}")
            if y.ndim != 1 or y.dtype != np.int32:
                raise ValueError(
                    f"ImageData {self.name!r}: y_{split} must be int32 of shape (N,), "
                    f"got {y.dtype} {y.shape}")
            if len(x) != len(y):
                raise ValueError(
                    f"ImageData {self.name!r}: x_{split} has {len(x)} images but "
                    f"y_{split} has {len(y)} labels")
        if self.x_train.shape[1:] != self.x_test.shape[1:]:
            raise ValueError(
                f"ImageData {self.name!r}: train images {self.x_train.shape[1:]} and test "
                f"images {self.x_test.shape[1:]} differ in shape")
        object.__setattr__(self, "class_names", tuple(str(c) for c in self.class_names))

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(H, W, C) of one image."""
        return tuple(int(d) for d in self.x_train.shape[1:])  # type: ignore[return-value]

    @property
    def num_train(self) -> int:
        return int(len(self.y_train))

    @property
    def num_test(self) -> int:
        return int(len(self.y_test))


def to_float(images: Any) -> Any:
    """Converts images to float32 in [0, 1].

    Args:
      images: a numpy array or a tensor; uint8 is divided by 255, floats are
        cast to float32 and otherwise passed through.

    Returns:
      float32 images of the same kind (numpy in, numpy out; tensor in, tensor out).
    """
    if isinstance(images, (np.ndarray, np.generic)):
        if images.dtype == np.uint8:
            return images.astype(np.float32) / np.float32(255.0)
        return images.astype(np.float32, copy=False)
    images = tf.convert_to_tensor(images)
    if images.dtype == tf.uint8:
        return tf.cast(images, tf.float32) / 255.0
    return tf.cast(images, tf.float32)

