"""Image classification data: loading into memory and `tf.data` pipelines.

`load(spec)` turns a dataset spec into an in-memory `ImageData` (numpy arrays,
NHWC). The accepted specs (see `describe_specs()`):

* ``"digits"``: the 8x8 handwritten digits that ship inside the scikit-learn
  wheel (1,797 real images; `sklearn.datasets.load_digits`). Pixel values
  0..16 become float32 in [0, 1]. Fixed split: the first 1,437 images in
  scikit-learn's order are train, the last 360 are test. Always available
  offline; the embedded default.
* ``"npz:PATH"``: a ``.npz`` file with the `keras.datasets` keys ``x_train``,
  ``y_train``, ``x_test``, ``y_test``. Images are (N, H, W) or (N, H, W, C),
  uint8 in [0, 255] or float in [0, 1]. Class names are "0".."K-1" with
  K = max label + 1 over train and test.
* ``"folder:PATH"``: an image-folder tree ``PATH/train/<class>/*`` and
  ``PATH/test/<class>/*`` (jpg, jpeg, png, bmp, gif). Class names are the
  sorted directory names of ``train/``; a label is the index in that list.
  Examples are interleaved across classes (the k-th file of every class in
  turn, files sorted by name), so the first N examples are class-balanced.
  Decoded arrays are cached as ``.npz`` in ``cache_dir``.
* ``"cifar10"``, ``"cifar100"``, ``"mnist"``, ``"imagenette"``,
  ``"imagenette/160px"``, ``"imagenette/320px"``, ``"imagenette/full-size"``
  (and their ``-v2`` configs, the newer imagenette2 release): TensorFlow
  Datasets. ImageNette's test split is its ``validation`` split; plain
  ``"imagenette"`` is TFDS' default config (``full-size-v2`` in TFDS 4.9).
  When a dataset is not prepared in ``data_dir`` and its download host cannot
  be reached, `load` fails fast with `DatasetUnavailableError` instead of
  retrying for minutes.

Resize policy (wherever ``image_size`` applies; ImageNette defaults to 160):
scale the shorter side to ``image_size`` (bilinear, antialiased), then
center-crop to ``image_size`` x ``image_size``. Square images are therefore
simply resized; aspect ratios are never distorted.

`train_dataset` / `test_dataset` build `tf.data` pipelines yielding
``(float32 images in [0, 1] NHWC, int32 labels (B,))``. Training augmentation is
the CIFAR recipe (random crop with 4-pixel zero padding, then random horizontal
flip), computed with stateless random ops seeded from one integer seed.

Modules, one concern each (this package re-exports their public names):

* `core`: `ImageData`, `to_float`, the spec names, `DatasetUnavailableError`.
* `loading`: `load`, which dispatches a spec to its source.
* `arrays`: digits and ``.npz`` sources, resizing of in-memory arrays.
* `folders`: image-folder trees and their decoded-array cache.
* `tfds_source`: TensorFlow Datasets and the offline probe that fails fast.
* `pipelines`: `train_dataset`, `test_dataset` and the augmentation.
"""

from rat_tf.data.arrays import DIGITS_NUM_TEST, DIGITS_NUM_TRAIN
from rat_tf.data.core import (
    DATASET_NAMES,
    NPZ_KEYS,
    SPEC_PREFIXES,
    TFDS_NAMES,
    DatasetUnavailableError,
    ImageData,
    describe_specs,
    to_float,
)
from rat_tf.data.folders import IMAGE_EXTENSIONS, default_cache_dir, folder_cache_path
from rat_tf.data.loading import load
from rat_tf.data.pipelines import (
    AUGMENT_PADDING,
    augment_batch,
    augment_image,
    test_dataset,
    train_dataset,
)
from rat_tf.data.tfds_source import PROBE_TIMEOUT_S, tfds_prepared_or_fail

__all__ = [
    "AUGMENT_PADDING",
    "DATASET_NAMES",
    "DIGITS_NUM_TEST",
    "DIGITS_NUM_TRAIN",
    "IMAGE_EXTENSIONS",
    "NPZ_KEYS",
    "PROBE_TIMEOUT_S",
    "SPEC_PREFIXES",
    "TFDS_NAMES",
    "DatasetUnavailableError",
    "ImageData",
    "augment_batch",
    "augment_image",
    "default_cache_dir",
    "describe_specs",
    "folder_cache_path",
    "load",
    "test_dataset",
    "tfds_prepared_or_fail",
    "to_float",
    "train_dataset",
]
