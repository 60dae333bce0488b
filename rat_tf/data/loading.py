"""`load(spec)`: one entry point that dispatches a dataset spec to its source."""

from __future__ import annotations

import dataclasses
import os

from rat_tf.data import arrays, folders, tfds_source
from rat_tf.data.core import TFDS_NAMES, ImageData, describe_specs


def load(
    spec: str,
    *,
    data_dir: str | None = None,
    image_size: int | None = None,
    max_train_examples: int | None = None,
    max_test_examples: int | None = None,
    cache_dir: str | None = None,
) -> ImageData:
    """Loads a data set into memory.

    Args:
      spec: one of `describe_specs()`.
      data_dir: TFDS data directory (TFDS specs only; None uses TFDS' default).
      image_size: if set, resize images to image_size x image_size (shorter side
        to image_size, then center crop). ImageNette defaults to 160.
      max_train_examples: keep only the first N training examples.
      max_test_examples: keep only the first N test examples.
      cache_dir: where decoded image folders are cached; None uses
        `default_cache_dir()`.

    Returns:
      The `ImageData`.

    Raises:
      ValueError: unknown spec, bad arguments or invalid data.
      DatasetUnavailableError: a TFDS dataset is not prepared and its download
        host is unreachable.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"dataset spec must be a non-empty string; allowed: {describe_specs()}")
    for arg_name, value in (("image_size", image_size),
                            ("max_train_examples", max_train_examples),
                            ("max_test_examples", max_test_examples)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"{arg_name} must be a positive integer or None, got {value!r}")

    spec = spec.strip()
    lowered = spec.lower()
    if lowered.startswith("npz:"):
        data = arrays.load_npz(_spec_path(spec, "npz:"), name=spec)
    elif lowered.startswith("folder:"):
        # Resized while decoding (sizes may differ), and cached at full length.
        data = folders.load_folder(_spec_path(spec, "folder:"), name=spec,
                                   image_size=image_size, cache_dir=cache_dir)
        return _take(data, max_train_examples, max_test_examples)
    elif lowered == "digits":
        data = arrays.load_digits()
    elif lowered in TFDS_NAMES:
        return tfds_source.load_tfds(lowered, data_dir=data_dir, image_size=image_size,
                                     max_train_examples=max_train_examples,
                                     max_test_examples=max_test_examples)
    else:
        raise ValueError(f"unknown dataset spec {spec!r}; allowed: {describe_specs()}")
    return arrays.resize_data(_take(data, max_train_examples, max_test_examples), image_size)


def _spec_path(spec: str, prefix: str) -> str:
    path = spec[len(prefix):].strip()
    if not path:
        raise ValueError(f"dataset spec {spec!r} needs a path after {prefix!r}")
    return os.path.abspath(os.path.expanduser(path))


def _take(data: ImageData, max_train: int | None, max_test: int | None) -> ImageData:
    if max_train is None and max_test is None:
        return data
    return dataclasses.replace(
        data,
        x_train=data.x_train[:max_train], y_train=data.y_train[:max_train],
        x_test=data.x_test[:max_test], y_test=data.y_test[:max_test])

