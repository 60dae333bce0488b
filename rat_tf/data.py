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
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import socket
import tempfile
import threading
import urllib.parse
import urllib.request
from typing import Any, Sequence

from absl import logging
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

DIGITS_NUM_TRAIN = 1437
DIGITS_NUM_TEST = 360

IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".gif")

# Download hosts of the TFDS builders (their `_URL`s); probed before a download.
_TFDS_DOWNLOAD_HOSTS = {
    "cifar10": "www.cs.toronto.edu",
    "cifar100": "www.cs.toronto.edu",
    "mnist": "storage.googleapis.com",
    "imagenette": "s3.amazonaws.com",
}
_TFDS_TEST_SPLIT = {"imagenette": "validation"}
_TFDS_DEFAULT_IMAGE_SIZE = {"imagenette": 160}

PROBE_TIMEOUT_S = 3.0

_CACHE_FORMAT_VERSION = 1


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


# --------------------------------------------------------------------------
# load().


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
        data = _load_npz(_spec_path(spec, "npz:"), name=spec)
    elif lowered.startswith("folder:"):
        # Resized while decoding (sizes may differ), and cached at full length.
        data = _load_folder(_spec_path(spec, "folder:"), name=spec, image_size=image_size,
                            cache_dir=cache_dir)
        return _take(data, max_train_examples, max_test_examples)
    elif lowered == "digits":
        data = _load_digits()
    elif lowered in TFDS_NAMES:
        return _load_tfds(lowered, data_dir=data_dir, image_size=image_size,
                          max_train_examples=max_train_examples,
                          max_test_examples=max_test_examples)
    else:
        raise ValueError(f"unknown dataset spec {spec!r}; allowed: {describe_specs()}")
    return _resize_data(_take(data, max_train_examples, max_test_examples), image_size)


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


# --------------------------------------------------------------------------
# digits (embedded in scikit-learn).


def _load_digits() -> ImageData:
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

_NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")


def _load_npz(path: str, *, name: str) -> ImageData:
    if not os.path.isfile(path):
        raise ValueError(f"npz file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in _NPZ_KEYS if k not in npz.files]
            if missing:
                raise ValueError(
                    f"npz file {path} is missing key(s) {', '.join(missing)} "
                    f"(expected {', '.join(_NPZ_KEYS)}; found {', '.join(npz.files) or 'none'})")
            arrays = {k: npz[k] for k in _NPZ_KEYS}
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
# Image folders.


def default_cache_dir() -> str:
    """The default cache directory for decoded image folders.

    ``$RAT_TF_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/rat_tf``, else
    ``~/.cache/rat_tf``.
    """
    if os.environ.get("RAT_TF_CACHE_DIR"):
        return os.path.expanduser(os.environ["RAT_TF_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "rat_tf")


def _list_split(root: str, split: str) -> dict[str, list[os.DirEntry]]:
    """Maps class name -> image files (sorted by name) of PATH/<split>/<class>/."""
    split_dir = os.path.join(root, split)
    if not os.path.isdir(split_dir):
        raise ValueError(f"image folder {root} has no {split}/ directory "
                         f"(expected {root}/train/<class>/*.png and {root}/test/<class>/*.png)")
    classes: dict[str, list[os.DirEntry]] = {}
    with os.scandir(split_dir) as it:
        class_dirs = sorted(e.name for e in it if e.is_dir() and not e.name.startswith("."))
    for cls in class_dirs:
        with os.scandir(os.path.join(split_dir, cls)) as it:
            files = [e for e in it
                     if e.is_file() and not e.name.startswith(".")
                     and os.path.splitext(e.name)[1].lower() in IMAGE_EXTENSIONS]
        classes[cls] = sorted(files, key=lambda e: e.name)
    return classes


def _interleave(classes: dict[str, list[os.DirEntry]],
                class_index: dict[str, int]) -> tuple[list[str], np.ndarray]:
    """Orders files round-robin over classes: k-th file of each class in turn."""
    paths, labels = [], []
    lists = [(class_index[c], files) for c, files in classes.items()]
    longest = max((len(f) for _, f in lists), default=0)
    for k in range(longest):
        for label, files in lists:
            if k < len(files):
                paths.append(files[k].path)
                labels.append(label)
    return paths, np.asarray(labels, np.int32)


def _folder_cache_key(root: str, splits: Sequence[dict[str, list[os.DirEntry]]],
                      image_size: int | None) -> str:
    h = hashlib.sha256()
    h.update(json.dumps({"version": _CACHE_FORMAT_VERSION, "root": root,
                         "image_size": image_size}).encode())
    for classes in splits:
        for cls, files in classes.items():
            h.update(f"\0class\0{cls}".encode())
            for e in files:
                st = e.stat()
                h.update(f"\0{e.name}\0{st.st_size}\0{st.st_mtime_ns}".encode())
    return h.hexdigest()[:24]


_GRAY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"})


def _decode_image(path: str, image_size: int | None) -> np.ndarray:
    """Decodes one file to uint8 (H, W) if grayscale, else (H, W, 3)."""
    from PIL import Image  # pylint: disable=g-import-not-at-top

    with Image.open(path) as im:
        if image_size is not None and im.format == "JPEG":
            im.draft(None, (image_size, image_size))  # Cheap DCT downscale, >= target size.
        im.load()
        mode = im.mode
        if mode in ("1", "L", "LA"):
            arr = np.asarray(im.convert("L"))
        elif mode in _GRAY_MODES:  # 16/32-bit integer or float grayscale.
            raw = np.asarray(im, dtype=np.float64)
            if mode != "F":
                raw = raw / 257.0  # 0..65535 -> 0..255
            arr = np.clip(np.round(raw), 0, 255).astype(np.uint8)
        else:
            arr = np.asarray(im if mode == "RGB" else im.convert("RGB"))
    if image_size is not None:
        arr = _resize_center_crop_pil(arr, image_size)
    return arr


def _resize_center_crop_pil(arr: np.ndarray, size: int) -> np.ndarray:
    """Shorter side to `size` (bilinear, antialiased), then center crop."""
    from PIL import Image  # pylint: disable=g-import-not-at-top

    h, w = arr.shape[:2]
    if (h, w) == (size, size):
        return arr
    scale = size / min(h, w)
    new_h, new_w = max(size, round(h * scale)), max(size, round(w * scale))
    im = Image.fromarray(arr).resize((new_w, new_h), Image.BILINEAR)
    top, left = (new_h - size) // 2, (new_w - size) // 2
    return np.asarray(im.crop((left, top, left + size, top + size)))


def _decode_all(paths: Sequence[str], image_size: int | None, root: str) -> np.ndarray:
    """Decodes files into one uint8 NHWC array (RGB unless all are grayscale)."""
    images = []
    for p in paths:
        try:
            images.append(_decode_image(p, image_size))
        except Exception as e:  # PIL.UnidentifiedImageError, OSError, ...
            raise ValueError(f"cannot decode image {p}: {type(e).__name__}: {e}") from e
    shapes = {}
    for p, a in zip(paths, images):
        shapes.setdefault(a.shape[:2], p)
        if len(shapes) > 1:
            (s0, p0), (s1, p1) = list(shapes.items())[:2]
            raise ValueError(
                f"images in {root} differ in size ({p0} is {s0[1]}x{s0[0]}, {p1} is "
                f"{s1[1]}x{s1[0]}); pass image_size to resize them")
    if any(a.ndim == 3 for a in images):
        images = [np.repeat(a[..., None], 3, axis=-1) if a.ndim == 2 else a for a in images]
    else:
        images = [a[..., None] for a in images]
    return np.stack(images)


def _load_folder(root: str, *, name: str, image_size: int | None,
                 cache_dir: str | None) -> ImageData:
    if not os.path.isdir(root):
        raise ValueError(f"image folder not found: {root}")
    train = _list_split(root, "train")
    test = _list_split(root, "test")
    class_names = tuple(train)
    if not class_names or not any(train.values()):
        raise ValueError(f"image folder {root} has no training images "
                         f"(expected {root}/train/<class>/*.{{jpg,jpeg,png,bmp,gif}})")
    unknown = sorted(set(test) - set(class_names))
    if unknown:
        raise ValueError(f"image folder {root}: test/ has classes not in train/: "
                         f"{', '.join(unknown)}")
    if not any(test.values()):
        raise ValueError(f"image folder {root} has no test images "
                         f"(expected {root}/test/<class>/*.{{jpg,jpeg,png,bmp,gif}})")
    empty = [c for c, files in train.items() if not files]
    if empty:
        logging.warning("image folder %s: train classes without images: %s", root,
                        ", ".join(empty))

    cache_path = _folder_cache_file(root, train, test, image_size, cache_dir)
    cached = _read_folder_cache(cache_path, class_names)
    if cached is not None:
        logging.info("image folder %s: loaded decoded arrays from cache %s", root, cache_path)
        x_train, y_train, x_test, y_test = cached
    else:
        class_index = {c: i for i, c in enumerate(class_names)}
        train_paths, y_train = _interleave(train, class_index)
        test_paths, y_test = _interleave(test, class_index)
        logging.info("image folder %s: decoding %d images", root,
                     len(train_paths) + len(test_paths))
        x_all = _decode_all(train_paths + test_paths, image_size, root)
        x_train, x_test = x_all[:len(train_paths)], x_all[len(train_paths):]
        _write_folder_cache(cache_path, x_train=x_train, y_train=y_train, x_test=x_test,
                            y_test=y_test, class_names=np.asarray(class_names, dtype=str))
    return ImageData(name=name, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
                     class_names=class_names)


def folder_cache_path(spec_or_path: str, *, image_size: int | None = None,
                      cache_dir: str | None = None) -> str:
    """The cache file `load("folder:PATH", ...)` uses for a tree in its current state."""
    path = spec_or_path
    if path.lower().startswith("folder:"):
        path = path[len("folder:"):]
    root = os.path.abspath(os.path.expanduser(path.strip()))
    return _folder_cache_file(root, _list_split(root, "train"), _list_split(root, "test"),
                              image_size, cache_dir)


def _folder_cache_file(root: str, train: dict[str, list[os.DirEntry]],
                       test: dict[str, list[os.DirEntry]], image_size: int | None,
                       cache_dir: str | None) -> str:
    """cache_dir/folder-<tree name>-<hash of path, file names/sizes/mtimes, image_size>.npz."""
    key = _folder_cache_key(root, (train, test), image_size)
    cache_root = os.path.abspath(os.path.expanduser(cache_dir or default_cache_dir()))
    return os.path.join(
        cache_root, f"folder-{os.path.basename(root.rstrip(os.sep)) or 'root'}-{key}.npz")


def _read_folder_cache(path: str, class_names: tuple[str, ...]):
    if not os.path.isfile(path):
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = tuple(npz[k] for k in _NPZ_KEYS)
            cached_names = tuple(str(c) for c in npz["class_names"])
    except Exception as e:  # A truncated or foreign file: decode again.
        logging.warning("ignoring unreadable cache %s: %s", path, e)
        return None
    if cached_names != class_names:
        logging.warning("ignoring cache %s: class names differ", path)
        return None
    return arrays


def _write_folder_cache(path: str, **arrays: np.ndarray) -> None:
    """Writes the cache atomically (temp file in the same directory + os.replace)."""
    directory = os.path.dirname(path)
    tmp = None
    try:
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=directory)
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        tmp = None
    except OSError as e:  # A read-only cache is not fatal; we just decode next time.
        logging.warning("could not write image-folder cache %s: %s", path, e)
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)


# --------------------------------------------------------------------------
# Resizing in-memory arrays (npz, digits).


def _resize_center_crop_tf(images: tf.Tensor, size: int) -> tf.Tensor:
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
        r = _resize_center_crop_tf(tf.constant(x[start:start + chunk]), size).numpy()
        if x.dtype == np.uint8:
            out.append(np.clip(np.round(r), 0, 255).astype(np.uint8))
        else:
            out.append(np.clip(r, 0.0, 1.0).astype(np.float32))
    return np.concatenate(out)


def _resize_data(data: ImageData, image_size: int | None) -> ImageData:
    if image_size is None:
        return data
    return dataclasses.replace(data, x_train=_resize_array(data.x_train, image_size),
                               x_test=_resize_array(data.x_test, image_size))


# --------------------------------------------------------------------------
# TensorFlow Datasets.


def _probe_download_host(host: str, port: int = 443,
                         timeout: float | None = None) -> str | None:
    """Tries a TCP connection to `host` (or the HTTPS proxy, if one is set).

    Runs in a daemon thread so a hanging DNS lookup cannot block longer than
    `timeout`.

    Returns:
      None if the connection succeeded, else a short reason.
    """
    timeout = PROBE_TIMEOUT_S if timeout is None else timeout
    proxy = urllib.request.getproxies().get("https")
    if proxy and not urllib.request.proxy_bypass(host):
        parts = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        if parts.hostname:
            host, port = parts.hostname, parts.port or 8080
    result: list[str | None] = []

    def connect():
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result.append(None)
        except OSError as e:
            result.append(f"{host}:{port} unreachable ({type(e).__name__}: {e})")

    thread = threading.Thread(target=connect, daemon=True, name="rat_tf-probe")
    thread.start()
    thread.join(timeout + 0.5)
    if not result:
        return f"{host}:{port} unreachable (no answer within {timeout:g} s)"
    return result[0]


def _tfds_family(name: str) -> str:
    return name.split("/", 1)[0]


def tfds_prepared_or_fail(builder, name: str, host: str, offline_options: str) -> bool:
    """Whether a TFDS builder is prepared; if not, fails fast when its download host is unreachable.

    A TFDS download retries for minutes before it fails; this probes `host` with a short TCP
    connect first and raises at once, naming the offline options.

    Args:
      builder: a `tfds` builder (its `is_prepared()` never touches the network).
      name: the dataset name as the user gave it, for the message.
      host: the host its download comes from.
      offline_options: what the user can do instead, for the message.

    Returns:
      True if prepared, False if it must (and can) be downloaded.

    Raises:
      DatasetUnavailableError: not prepared and `host` unreachable.
    """
    try:
        prepared = bool(builder.is_prepared())
    except Exception as e:  # pylint: disable=broad-except
        logging.warning("could not check whether %s is prepared: %s", name, e)
        prepared = False
    if not prepared:
        reason = _probe_download_host(host)
        if reason is not None:
            raise DatasetUnavailableError(
                f"TFDS dataset '{name}' is not prepared in {builder.data_dir} and cannot be downloaded from here ({reason}); "
                f"offline options: {offline_options}")
        logging.info("downloading and preparing TFDS dataset %s into %s", name, builder.data_dir)
    return prepared


def _load_tfds(name: str, *, data_dir: str | None, image_size: int | None,
               max_train_examples: int | None, max_test_examples: int | None) -> ImageData:
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

    family = _tfds_family(name)
    builder = tfds.builder(name, data_dir=data_dir)
    prepared = tfds_prepared_or_fail(
        builder, name, _TFDS_DOWNLOAD_HOSTS.get(family, "storage.googleapis.com"),
        "--dataset=npz:PATH, --dataset=folder:PATH, --dataset=digits, or --data_dir=DIR with a "
        "prepared TFDS directory")

    test_split = _TFDS_TEST_SPLIT.get(family, "test")
    size = image_size if image_size is not None else _TFDS_DEFAULT_IMAGE_SIZE.get(family)

    def split_spec(split: str, n: int | None) -> str:
        return split if n is None else f"{split}[:{n}]"

    (train_ds, test_ds), info = tfds.load(
        name, split=[split_spec("train", max_train_examples),
                     split_spec(test_split, max_test_examples)],
        data_dir=data_dir, as_supervised=True, shuffle_files=False, download=not prepared,
        with_info=True)
    # Read after loading: some builders (CIFAR) learn their label names while preparing.
    class_names = tuple(info.features["label"].names)
    x_train, y_train = _tfds_to_numpy(train_ds, size)
    x_test, y_test = _tfds_to_numpy(test_ds, size)
    return ImageData(name=name, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
                     class_names=class_names)


def _tfds_to_numpy(ds: tf.data.Dataset, size: int | None) -> tuple[np.ndarray, np.ndarray]:
    def prepare(image, label):
        image = tf.convert_to_tensor(image)
        if image.shape.rank == 2:
            image = image[..., None]
        if size is not None:
            image = tf.cast(tf.clip_by_value(tf.round(_resize_center_crop_tf(image, size)),
                                             0, 255), tf.uint8)
        return tf.cast(image, tf.uint8), tf.cast(label, tf.int32)

    xs, ys = [], []
    for x, y in ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE).batch(1024).prefetch(2):
        xs.append(x.numpy())
        ys.append(y.numpy())
    if not xs:
        raise ValueError("TFDS split is empty")
    return np.concatenate(xs), np.concatenate(ys)


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
