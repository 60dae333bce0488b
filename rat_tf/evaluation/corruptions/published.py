"""The published CIFAR-10-C / CIFAR-100-C sets: a directory of ``.npy`` files, or TFDS."""

from __future__ import annotations

import os
from typing import Iterable

import numpy as np

from rat_tf import data as data_lib
from rat_tf.evaluation.corruptions.names import (
    CORRUPTIONS,
    SEVERITIES,
    TFDS_DOWNLOAD_HOST,
    TFDS_NAMES,
    canonical_name,
    check_names,
    check_severities,
    check_severity,
)

_LAYOUT = ("CIFAR-10-C / CIFAR-100-C layout: <name>.npy with 5 x N images (severity 1 first) "
           "and labels.npy")


def load_npy_dir(
    path: str,
    names: Iterable[str] = CORRUPTIONS,
    severities: Iterable[int] = SEVERITIES,
) -> tuple[dict[tuple[str, int], np.ndarray], np.ndarray]:
    """Loads the published CIFAR-10-C / CIFAR-100-C ``.npy`` files from a directory.

    Each ``<name>.npy`` holds 5 x N images, severity 1 first; ``labels.npy`` holds N labels or
    the published 5 x N (the N labels repeated per severity). Glass and elastic are read from
    ``glass_blur.npy`` / ``elastic_transform.npy`` (the published names), else from the TFDS
    names ``frosted_glass_blur.npy`` / ``elastic.npy``. Arrays are memory-mapped (read-only).

    Args:
      path: the directory (e.g. the unpacked ``CIFAR-10-C/``).
      names: corruption names; default all 12.
      severities: severities to return; default all.

    Returns:
      ({(name, severity): (N, H, W, C) images}, int32 labels (N,)).

    Raises:
      ValueError: missing directory or file, or arrays of the wrong shape.
    """
    names = check_names(names)
    severities = check_severities(severities)
    root = os.path.abspath(os.path.expanduser(path))
    if not os.path.isdir(root):
        raise ValueError(f"corruption directory not found: {root} ({_LAYOUT})")
    labels = _load_npy(root, "labels.npy")
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer) or len(labels) == 0:
        raise ValueError(f"{os.path.join(root, 'labels.npy')}: expected non-empty integer labels "
                         f"of shape (N,) or (5N,), got {labels.dtype} {labels.shape}")
    out: dict[tuple[str, int], np.ndarray] = {}
    num = None
    for name in names:
        filename = next((f for f in (f"{name}.npy", f"{TFDS_NAMES[name]}.npy")
                         if os.path.isfile(os.path.join(root, f))), f"{name}.npy")
        array = _load_npy(root, filename)
        file = os.path.join(root, filename)
        if array.ndim != 4 or array.shape[-1] not in (1, 3) or len(array) == 0 \
                or len(array) % 5:
            raise ValueError(f"{file}: expected (5N, H, W, C) images with C in (1, 3), "
                             f"got shape {array.shape} ({_LAYOUT})")
        if array.dtype != np.uint8 and not np.issubdtype(array.dtype, np.floating):
            raise ValueError(f"{file}: expected uint8 (or float in [0, 1]) images, got "
                             f"{array.dtype}")
        n = len(array) // 5
        if num is None:
            num = n
        elif n != num:
            raise ValueError(f"{file}: {len(array)} images, expected 5 x {num} like the others")
        for s in severities:
            out[(name, s)] = array[(s - 1) * n:s * n]
    assert num is not None
    if len(labels) == 5 * num:
        blocks = labels.reshape(5, num)
        if not np.all(blocks == blocks[:1]):
            raise ValueError(f"{os.path.join(root, 'labels.npy')}: 5 x {num} labels whose five "
                             f"blocks differ; expected the N labels repeated per severity")
        labels = blocks[0]
    elif len(labels) != num:
        raise ValueError(f"{os.path.join(root, 'labels.npy')}: {len(labels)} labels, expected "
                         f"{num} or 5 x {num}")
    return out, np.asarray(labels, np.int32)


def _load_npy(root: str, filename: str) -> np.ndarray:
    file = os.path.join(root, filename)
    if not os.path.isfile(file):
        raise ValueError(f"{root} has no {filename} ({_LAYOUT})")
    try:
        return np.load(file, mmap_mode="r", allow_pickle=False)
    except Exception as e:  # pylint: disable=broad-except
        raise ValueError(f"cannot read {file}: {type(e).__name__}: {e}") from e


def tfds_config(name: str, severity: int) -> str:
    """The TFDS config, e.g. ``cifar10_corrupted/frosted_glass_blur_3``.

    Always name the config: plain ``cifar10_corrupted`` silently loads its default config
    (hendrycks/robustness issue 29).
    """
    return f"cifar10_corrupted/{TFDS_NAMES[canonical_name(name)]}_{check_severity(severity)}"


def load_tfds(name: str, severity: int,
              data_dir: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Loads one CIFAR-10-C set through TensorFlow Datasets.

    Args:
      name: corruption name (or alias).
      severity: 1..5.
      data_dir: TFDS data directory (None: TFDS' default).

    Returns:
      (uint8 images (10000, 32, 32, 3), int32 labels (10000,)).

    Raises:
      ValueError: bad name or severity.
      rat_tf.data.DatasetUnavailableError: not prepared in `data_dir` and the download host
        (zenodo.org) cannot be reached; raised within seconds instead of retrying for minutes.
    """
    config = tfds_config(name, severity)
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

    builder = tfds.builder(config, data_dir=data_dir)
    if not data_lib.tfds_prepared_or_fail(
            builder, config, TFDS_DOWNLOAD_HOST,
            "load_npy_dir() on the published CIFAR-10-C .npy files (--corruption_source=npy:DIR), "
            "or generate() on the CIFAR-10 test set (--corruption_source=generate)"):
        builder.download_and_prepare()
    ds = builder.as_dataset(split="test", as_supervised=True, shuffle_files=False)
    xs, ys = [], []
    for x, y in ds.batch(1000).prefetch(2):
        xs.append(np.asarray(x, np.uint8))
        ys.append(np.asarray(y, np.int32))
    if not xs:
        raise ValueError(f"TFDS dataset '{config}' has an empty test split")
    return np.concatenate(xs), np.concatenate(ys)

