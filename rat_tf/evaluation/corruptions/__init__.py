"""Common corruptions (the paper's Table 2): CIFAR-10-C / CIFAR-100-C, generated or loaded.

The paper reports accuracy under 12 corruption types x 5 severities of CIFAR-10-C (Hendrycks &
Dietterich, "Benchmarking Neural Network Robustness to Common Corruptions and Perturbations",
ICLR 2019), the mean over severities per type, and mCA, the mean over all types. Three sources:

* `generate`: the 12 corruptions applied here to any 32x32 RGB images (e.g. the CIFAR test
  set), re-implemented in numpy + Pillow after hendrycks/robustness
  ``ImageNet-C/create_c/make_cifar_c.py`` with *its* severity constants (CIFAR-10-C's, chosen
  for 32 px images; ImageNet-C's and the PyPI package ``imagecorruptions``' are for 224 px).
  Seeded, deterministic, cached on disk. No download.
* `load_npy_dir`: the published CIFAR-10-C / CIFAR-100-C ``.npy`` files in a local directory.
* `load_tfds`: TFDS ``cifar10_corrupted/<name>_<severity>`` (needs its one-off download).

`corruption_accuracy` scores a classifier on any of them and `markdown_table` renders a
Table-2-like table.

Modules, one concern each (this package re-exports their public names):

* `names`: the 12 names, TFDS and display names, `canonical_name`, argument checks.
* `filters`: the linear filters and resampling the corruptions are built from (scipy,
  OpenCV and ImageMagick algorithms in numpy).
* `functions`: the 12 corruptions with CIFAR-10-C's constants; what is exact and what
  deviates from make_cifar_c.py is documented there.
* `frost_textures`: the frost photos (or the procedural fallback).
* `generation`: `corrupt` and `generate` (seeded, chunked, cached on disk).
* `published`: `load_npy_dir` and `load_tfds`.
* `tables`: `corruption_accuracy` and `markdown_table`.
"""

from rat_tf.evaluation.corruptions.frost_textures import frost_texture_source
from rat_tf.evaluation.corruptions.functions import CorruptionFn
from rat_tf.evaluation.corruptions.generation import CACHE_VERSION, corrupt, generate
from rat_tf.evaluation.corruptions.names import (
    CORRUPTIONS,
    DISPLAY_NAMES,
    SEVERITIES,
    TFDS_DOWNLOAD_HOST,
    TFDS_NAMES,
    canonical_name,
)
from rat_tf.evaluation.corruptions.published import load_npy_dir, load_tfds, tfds_config
from rat_tf.evaluation.corruptions.tables import corruption_accuracy, markdown_table

__all__ = [
    "CACHE_VERSION",
    "CORRUPTIONS",
    "DISPLAY_NAMES",
    "SEVERITIES",
    "TFDS_DOWNLOAD_HOST",
    "TFDS_NAMES",
    "CorruptionFn",
    "canonical_name",
    "corrupt",
    "corruption_accuracy",
    "frost_texture_source",
    "generate",
    "load_npy_dir",
    "load_tfds",
    "markdown_table",
    "tfds_config",
]
