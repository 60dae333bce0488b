"""`tf.data` pipelines: the seeded training stream with CIFAR augmentation, and evaluation."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from rat_tf.data.core import ImageData, to_float

# --------------------------------------------------------------------------
# tf.data pipelines and augmentation.

AUGMENT_PADDING = 4


def augment_batch(images: tf.Tensor, seed: tf.Tensor, padding: int = AUGMENT_PADDING) -> tf.Tensor:
    """CIFAR-style augmentation of a batch: zero-padded random crop, random h-flip.

    Equivalent to torchvision's ``RandomCrop(H, padding=padding)`` followed by
    ``RandomHorizontalFlip()``, drawn independently per image with stateless
    random ops (same `seed`, same result).

    Args:
      images: (B, H, W, C) images of any dtype.
      seed: shape-[2] integer seed for `tf.random.stateless_*`.
      padding: zero padding on each side; offsets range over [0, 2 * padding].

    Returns:
      Augmented images, same shape and dtype.
    """
    images = tf.convert_to_tensor(images)
    seed = tf.cast(tf.convert_to_tensor(seed), tf.int64)
    shape = tf.shape(images)
    batch, height, width = shape[0], shape[1], shape[2]
    seeds = tf.random.experimental.stateless_split(seed, num=3)
    dy = tf.random.stateless_uniform([batch], seeds[0], 0, 2 * padding + 1, dtype=tf.int32)
    dx = tf.random.stateless_uniform([batch], seeds[1], 0, 2 * padding + 1, dtype=tf.int32)
    flip = tf.random.stateless_uniform([batch], seeds[2], 0, 2, dtype=tf.int32) > 0
    padded = tf.pad(images, [[0, 0], [padding, padding], [padding, padding], [0, 0]])
    rows = dy[:, None] + tf.range(height)[None, :]
    cols = tf.range(width)[None, :]
    # Crop then flip: output column j reads crop column W-1-j when flipped.
    cols = tf.where(flip[:, None], width - 1 - cols, cols) + dx[:, None]
    out = tf.gather(padded, rows, axis=1, batch_dims=1)
    out = tf.gather(out, cols, axis=2, batch_dims=1)
    return tf.ensure_shape(out, images.shape)


def augment_image(image: tf.Tensor, seed: tf.Tensor, padding: int = AUGMENT_PADDING) -> tf.Tensor:
    """`augment_batch` for one (H, W, C) image."""
    return augment_batch(tf.convert_to_tensor(image)[None], seed, padding)[0]


def _split_arrays(data: ImageData, split: str) -> tuple[np.ndarray, np.ndarray]:
    if split == "train":
        return data.x_train, data.y_train
    if split == "test":
        return data.x_test, data.y_test
    raise ValueError(f"split must be 'train' or 'test', got {split!r}")


def _check_batch_size(batch_size: int) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")


def train_dataset(
    data: ImageData,
    batch_size: int,
    *,
    augment: bool,
    seed: int,
    shuffle: bool = True,
    drop_remainder: bool = True,
    repeat: bool = False,
) -> tf.data.Dataset:
    """The training pipeline: shuffle, batch, to float, augment.

    Deterministic for a given `seed`. With `repeat=True` (what `train_main.py` uses) the stream
    is a pure function of the seed and the position in it: data epoch e is shuffled with a seed
    derived from (seed, e), and batch i is augmented with the stateless seed (seed, i), so every
    iterator of the dataset yields the same stream. That keeps a run independent of how many
    iterators Keras makes (under any tf.distribute strategy `fit` first draws from a throwaway
    one), and `skip(n)` resumes it exactly. With `repeat=False`, each new iterator is a new
    epoch: a new order and new augmentation, reproducible from the seed (for `fit(epochs=...)`).

    Args:
      data: the data set.
      batch_size: examples per batch.
      augment: apply `augment_batch` (padded random crop + horizontal flip).
      seed: the integer seed for shuffling and augmentation.
      shuffle: shuffle with a buffer as large as the data set.
      drop_remainder: drop the last partial batch (static batch dimension).
      repeat: repeat forever (epochs follow each other without a gap).

    Returns:
      A dataset of (float32 images in [0, 1] (B, H, W, C), int32 labels (B,)).
    """
    _check_batch_size(batch_size)
    seed = int(seed)
    if repeat:
        # Data epoch e is the permutation drawn with the stateless seed (seed, e): the order does
        # not depend on the iterator. Batches are gathered from the arrays by index.
        num = len(data.y_train)
        images, labels = tf.constant(data.x_train), tf.constant(data.y_train)

        def epoch_order(epoch):
            order = tf.range(num, dtype=tf.int64)
            if shuffle:
                order = tf.random.experimental.stateless_shuffle(
                    order, seed=tf.stack([tf.constant(seed, tf.int64), epoch]))
            return tf.data.Dataset.from_tensor_slices(order)

        ds = tf.data.Dataset.counter().flat_map(epoch_order)
        ds = ds.batch(batch_size, drop_remainder=drop_remainder).map(
            lambda index: (tf.gather(images, index), tf.gather(labels, index)))
    else:
        ds = tf.data.Dataset.from_tensor_slices((data.x_train, data.y_train))
        if shuffle:
            ds = ds.shuffle(len(data.y_train), seed=seed, reshuffle_each_iteration=True)
        ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    if augment:
        if repeat:
            # Stateless seed (seed, batch index): batch i gets the same crops in every iterator.
            seeds = tf.data.Dataset.counter().map(
                lambda i: tf.stack([tf.constant(seed, tf.int64), i]))
        else:
            # One stateless seed pair per batch; new pairs each epoch, fixed by `seed`.
            seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
        ds = tf.data.Dataset.zip((ds, seeds)).map(
            lambda xy, s: (augment_batch(to_float(xy[0]), s), tf.cast(xy[1], tf.int32)),
            num_parallel_calls=tf.data.AUTOTUNE)
    else:
        ds = ds.map(lambda x, y: (to_float(x), tf.cast(y, tf.int32)),
                    num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def test_dataset(data: ImageData, batch_size: int, split: str = "test") -> tf.data.Dataset:
    """The evaluation pipeline: no shuffle, keeps the last partial batch.

    Args:
      data: the data set.
      batch_size: examples per batch.
      split: "test" or "train".

    Returns:
      A dataset of (float32 images in [0, 1] (B, H, W, C), int32 labels (B,)).
    """
    _check_batch_size(batch_size)
    x, y = _split_arrays(data, split)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size)
    ds = ds.map(lambda x, y: (to_float(x), tf.cast(y, tf.int32)),
                num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


# pytest would otherwise try to collect `test_dataset` when imported into tests.
test_dataset.__test__ = False  # type: ignore[attr-defined]
