"""Image-folder trees (PATH/train/<class>/*, PATH/test/<class>/*) and their decoded-array cache."""

from __future__ import annotations

import hashlib
import json
import os
from typing import Sequence

from absl import logging
import numpy as np

from rat_tf.data.core import NPZ_KEYS, ImageData
from rat_tf.files import atomic_savez

IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".gif")

_CACHE_FORMAT_VERSION = 1

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


def load_folder(root: str, *, name: str, image_size: int | None,
                cache_dir: str | None) -> ImageData:
    """Decodes an image-folder tree (or reads its cache), class-interleaved; see `load`."""
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
            arrays = tuple(npz[k] for k in NPZ_KEYS)
            cached_names = tuple(str(c) for c in npz["class_names"])
    except Exception as e:  # A truncated or foreign file: decode again.
        logging.warning("ignoring unreadable cache %s: %s", path, e)
        return None
    if cached_names != class_names:
        logging.warning("ignoring cache %s: class names differ", path)
        return None
    return arrays


def _write_folder_cache(path: str, **arrays: np.ndarray) -> None:
    """Writes the cache atomically; a cache that cannot be written is only a warning."""
    try:
        atomic_savez(path, **arrays)
    except OSError as e:  # A read-only cache is not fatal; we just decode next time.
        logging.warning("could not write image-folder cache %s: %s", path, e)
