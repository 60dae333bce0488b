"""Class-balanced, seeded subsets of a labelled data set (pure numpy).

Used by the robust-overfitting study (`benchmarks/overfit_train.py`): a training subset of N images
drawn with a fixed seed (not the first N files), a validation split held out from the same
training images, and fixed monitoring subsets.

    train_idx, val_idx = balanced_split(y_train, train_size=4000, val_size=1000, seed=0)

Each class contributes `size / num_classes` images (the sizes must be multiples of the class
count). For one seed the validation images do not depend on `train_size`, and a smaller
training subset is a subset of a larger one (both are prefixes of one per-class permutation),
so regimes of different sizes share their validation set.
"""

from __future__ import annotations

from typing import Optional

import numpy as np


def _per_class(labels: np.ndarray, size: int, num_classes: int, what: str) -> int:
    if size < 0 or size % num_classes:
        raise ValueError(f"{what} must be a non-negative multiple of the {num_classes} classes, got {size}")
    return size // num_classes


def balanced_split(labels, train_size: int, val_size: int = 0, seed: int = 0,
                   num_classes: Optional[int] = None) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint class-balanced index sets (train, validation) into `labels`.

    Per class, the class's indices are permuted with a generator seeded by (seed, class); the
    first val_size / C go to validation, the next train_size / C to training. Both index arrays
    are then shuffled (seeded), so that any prefix is a random sample too.

    Args:
      labels: integer labels, shape (N,) or (N, 1).
      train_size, val_size: subset sizes, multiples of the number of classes.
      seed: the seed; the same seed gives the same indices.
      num_classes: default max(labels) + 1.

    Returns:
      (train_idx, val_idx), int64 arrays.

    Raises:
      ValueError: a size not a multiple of the class count, or a class with too few images.
    """
    labels = np.asarray(labels).reshape(-1).astype(np.int64)
    num_classes = int(labels.max()) + 1 if num_classes is None else int(num_classes)
    n_train = _per_class(labels, train_size, num_classes, "train_size")
    n_val = _per_class(labels, val_size, num_classes, "val_size")
    train, val = [], []
    for c in range(num_classes):
        members = np.flatnonzero(labels == c)
        if len(members) < n_train + n_val:
            raise ValueError(f"class {c} has {len(members)} images, fewer than the {n_val + n_train} "
                             f"asked for ({n_val} validation + {n_train} training)")
        order = np.random.default_rng([seed, c]).permutation(members)
        val.append(order[:n_val])
        train.append(order[n_val:n_val + n_train])
    mix = np.random.default_rng([seed, num_classes, 1])
    return (mix.permutation(np.concatenate(train)).astype(np.int64),
            mix.permutation(np.concatenate(val)).astype(np.int64))


def balanced_subset(labels, size: int, seed: int = 0, num_classes: Optional[int] = None) -> np.ndarray:
    """A class-balanced sample of `size` indices into `labels` (see `balanced_split`)."""
    return balanced_split(labels, size, 0, seed, num_classes)[0]


def class_counts(labels, num_classes: Optional[int] = None) -> np.ndarray:
    labels = np.asarray(labels).reshape(-1).astype(np.int64)
    return np.bincount(labels, minlength=num_classes or 0)
