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

Faithfulness of `corrupt` to make_cifar_c.py. Each corruption follows the reference step by
step with its constants; where the reference calls a library, the library's algorithm is
re-implemented (and the tests compare it with scipy where scipy has the same function):

* skimage ``gaussian`` / scipy ``gaussian_filter``, scipy ``zoom`` (order 1) and
  ``map_coordinates`` (order 1, mode ``reflect``): same kernels, coordinates and boundary rules.
* OpenCV ``filter2D``, ``GaussianBlur`` (defocus disk), ``warpAffine`` (elastic: bilinear with
  sub-pixel positions rounded to 1/32 as OpenCV's fixed-point path does, BORDER_REFLECT_101),
  ``resize(fx=fy=0.2)`` of the frost textures (an exact 1-in-5 subsample at that scale) and
  ``cvtColor(RGB2GRAY)`` (0.299 R + 0.587 G + 0.114 B).
* skimage's HSV round trip in brightness: V is raised and clipped while H and S are kept, which
  scales RGB by V'/V exactly; computed that way (black pixels become grey V').
* ImageMagick's motion blur (motion_blur, and the snow layer), called through Wand in the
  reference: re-implemented after ImageMagick's ``MotionBlurImage``, a one-sided line kernel of
  ``2 * ceil(radius) + 1`` taps weighted ``exp(-i^2 / (2 sigma^2))``, tap i at the offset
  ``(round(i cos a), round(i sin a))``, edge pixels repeated outside the image. ImageMagick
  rounds the result to 8 bits; so does this on uint8 input (float input keeps full precision).
* Pillow's JPEG encoder and BOX resize are called as the reference does (one image at a time).

Deviations, and why:

* Random numbers: drawn from a numpy ``Generator`` (seeded, vectorised over a chunk of images)
  instead of the global ``np.random`` state, so no image is bit-identical to the published
  CIFAR-10-C; the distributions and constants are the same. The deterministic corruptions
  (defocus, zoom, brightness, contrast, pixelate, JPEG) match it up to float round-off, i.e. a
  grey level where a value lands next to a whole number before the truncation below (e.g.
  brightness against colorsys' HSV round trip: off by one on under 4% of pixels).
* Glass blur: the reference's "swap" ``x[h, w], x[h', w'] = x[h', w'], x[h, w]`` swaps numpy
  *views*, so it copies the neighbour (h', w') into (h, w) and leaves (h', w') as it was. That
  copy is what CIFAR-10-C contains, and it is reproduced here. Because the neighbour lies above
  or to the left (offsets in {-1, 0}, the reference's ``randint(-1, 1)``) and the loop runs from
  the bottom-right, every pass reads only unvisited pixels, so a pass is one vectorised gather,
  exactly equivalent to the Python double loop (CIFAR-10-C uses max_delta = 1 at every severity).
* Frost: the texture photos ship with hendrycks/robustness, not with pip packages; when the PyPI
  package ``imagecorruptions`` is installed its copies of frost1..frost5 are read (only the
  image files; none of its code runs). Like the reference, ``randint(5)`` draws from the first
  five textures (frost6 is listed there but never drawn). JPEG textures are decoded by Pillow,
  not OpenCV (both libjpeg; at most a grey level apart). Without ``imagecorruptions`` a
  procedural texture is used instead: a fixed-seed plasma haze plus motion-blurred crystal
  streaks, coloured to the mean and spread of the real downscaled textures (RGB means
  (146, 167, 179), std 28). That fallback is *not* CIFAR-10-C's frost; `frost_texture_source`
  says which one is in use and it is part of the cache key.
* uint8 output: the reference stores ``np.uint8(result)``, which truncates; this does too, with a
  1e-6 slack so that results that are whole numbers up to float round-off are not lowered by
  one. Float input in [0, 1] gives float output in [0, 1] without that quantisation (only the
  8-bit steps that are part of an algorithm remain: JPEG and pixelate work on the image rounded
  to uint8, the snow layer is 8-bit as in the reference).
* Image size: the constants are CIFAR-10-C's, for 32x32 pixels. Other sizes (at least 8x8) run
  with the same pixel-unit constants (blur radii, zooms, crops) except where the reference
  scales with the image: the glass-blur loop covers the whole image, the fog fractal is the next
  power of two at least as large as the image, elastic's fractions multiply min(H, W) (32 in the
  reference), and its affine control points use (W/2, H/2) as the (x, y) centre (the reference
  mixes the axes, which only matters for non-square images). Frost textures smaller than the
  image are enlarged (bilinear) first. Such images are not CIFAR-10-C; only 3 channels (RGB).
"""

from __future__ import annotations

import concurrent.futures
import functools
import hashlib
import importlib.util
import io
import json
import math
import os
import threading
import zlib
from typing import Any, Callable, Iterable, Mapping, Sequence

from absl import logging
import numpy as np

from rat_tf import data as data_lib
from rat_tf import files

# --------------------------------------------------------------------------
# Names.

CORRUPTIONS: tuple[str, ...] = (
    "defocus_blur", "glass_blur", "motion_blur", "zoom_blur", "snow", "frost", "fog",
    "brightness", "contrast", "elastic_transform", "pixelate", "jpeg_compression",
)
SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)

# TFDS `cifar10_corrupted` config prefixes: `cifar10_corrupted/<TFDS_NAMES[name]>_<severity>`.
TFDS_NAMES: dict[str, str] = {name: name for name in CORRUPTIONS}
TFDS_NAMES.update(glass_blur="frosted_glass_blur", elastic_transform="elastic")

# Short column titles for the Table-2-like markdown table.
DISPLAY_NAMES: dict[str, str] = {
    "defocus_blur": "Defocus", "glass_blur": "Glass", "motion_blur": "Motion",
    "zoom_blur": "Zoom", "snow": "Snow", "frost": "Frost", "fog": "Fog",
    "brightness": "Bright", "contrast": "Contrast", "elastic_transform": "Elastic",
    "pixelate": "Pixel", "jpeg_compression": "JPEG",
}

_ALIASES: dict[str, str] = {tfds: name for name, tfds in TFDS_NAMES.items()}
_ALIASES.update(glass="glass_blur", elastic="elastic_transform", jpeg="jpeg_compression",
                defocus="defocus_blur", motion="motion_blur", zoom="zoom_blur",
                pixel="pixelate")

# The TFDS builder downloads CIFAR-10-C from here (tensorflow_datasets cifar10_corrupted.py).
TFDS_DOWNLOAD_HOST = "zenodo.org"

# Bump when any corruption's output changes: it is part of the cache key.
CACHE_VERSION = 1

# Images are corrupted in chunks of this many; chunk k draws from SeedSequence(seed, (k,)).
_CHUNK = 1000
# np.uint8() truncates; this slack keeps whole numbers computed as k - 1e-13 at k.
_TRUNCATION_SLACK = 1e-6
_MIN_SIZE = 8


def canonical_name(name: str) -> str:
    """Maps a corruption name or alias (TFDS's ``frosted_glass_blur``, ``elastic``) to its name.

    Args:
      name: one of `CORRUPTIONS`, a TFDS config prefix from `TFDS_NAMES`, or a short alias
        (``glass``, ``elastic``, ``jpeg``, ...).

    Returns:
      The name in `CORRUPTIONS`.

    Raises:
      ValueError: unknown name.
    """
    if not isinstance(name, str):
        raise ValueError(f"corruption name must be a string, got {name!r}")
    key = name.strip().lower().replace("-", "_")
    key = _ALIASES.get(key, key)
    if key not in CORRUPTIONS:
        raise ValueError(f"unknown corruption {name!r}; allowed: {', '.join(CORRUPTIONS)} "
                         f"(or the TFDS names frosted_glass_blur, elastic)")
    return key


def _check_severity(severity: Any) -> int:
    if isinstance(severity, bool) or not isinstance(severity, (int, np.integer)) \
            or not 1 <= int(severity) <= 5:
        raise ValueError(f"severity must be an integer in 1..5, got {severity!r}")
    return int(severity)


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or int(seed) < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def _check_names(names: Iterable[str]) -> tuple[str, ...]:
    if isinstance(names, str):
        if names.strip().lower() == "all":
            return CORRUPTIONS
        names = [n for n in names.split(",") if n.strip()]
    out = tuple(dict.fromkeys(canonical_name(n) for n in names))
    if not out:
        raise ValueError("no corruption names given")
    return out


def _check_severities(severities: Iterable[int]) -> tuple[int, ...]:
    out = tuple(dict.fromkeys(_check_severity(s) for s in severities))
    if not out:
        raise ValueError("no severities given")
    return out


# --------------------------------------------------------------------------
# CIFAR-10-C's constants (hendrycks/robustness ImageNet-C/create_c/make_cifar_c.py), one row
# per severity 1..5.

_DEFOCUS = ((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1.0, 0.2), (1.5, 0.1))  # radius, alias sigma
# Glass: Gaussian sigma, max shift (delta), passes of the pixel loop.
_GLASS = ((0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2))
_MOTION = ((6, 1.0), (6, 1.5), (6, 2.0), (8, 2.0), (9, 2.5))  # radius, sigma (ImageMagick)
_ZOOM_STOPS = (1.06, 1.11, 1.16, 1.21, 1.26)  # zoom factors np.arange(1, stop, 0.01)
# Snow: layer mean, layer std, layer zoom, threshold, blur radius, blur sigma, image weight.
_SNOW = ((0.1, 0.2, 1.0, 0.6, 8, 3, 0.95),
         (0.1, 0.2, 1.0, 0.5, 10, 4, 0.9),
         (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9),
         (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85),
         (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8))
_FROST = ((1.0, 0.2), (1.0, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45))  # image, texture weight
_FOG = ((0.2, 3.0), (0.5, 3.0), (0.75, 2.5), (1.0, 2.0), (1.5, 1.75))  # strength, wibble decay
_BRIGHTNESS = (0.05, 0.1, 0.15, 0.2, 0.3)  # added to HSV value
_CONTRAST = (0.75, 0.5, 0.4, 0.3, 0.15)  # factor around the per-channel mean
# Elastic: (alpha, sigma, affine jitter) as fractions of the image size (32 px).
_ELASTIC = ((0.0, 0.0, 0.08), (0.05, 0.2, 0.07), (0.08, 0.06, 0.06), (0.1, 0.04, 0.05),
            (0.1, 0.03, 0.03))
_PIXELATE = (0.95, 0.9, 0.85, 0.75, 0.65)  # downscale factor (BOX down, BOX up)
_JPEG_QUALITY = (80, 65, 58, 50, 40)

_MOTION_ANGLE = (-45.0, 45.0)  # degrees, uniform
_SNOW_ANGLE = (-135.0, -45.0)

# Frost textures: make_cifar_c.py lists six and draws `randint(5)`, i.e. the first five.
_FROST_FILES = ("frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg")
_FROST_DOWNSCALE = 5  # cv2.resize(fx=fy=0.2)
_FROST_FALLBACK_MEAN = (146.0, 167.0, 179.0)
_FROST_FALLBACK_STD = 28.0


# --------------------------------------------------------------------------
# Linear-filter building blocks (numpy re-implementations of the library calls above).


def _fold(v: np.ndarray) -> np.ndarray:
    """v for v >= 0, -v - 1 for v < 0 (integer arrays)."""
    return v ^ (v >> 63)


def _boundary(index: np.ndarray, size: int, mode: str) -> np.ndarray:
    """Maps integer indices (any range) into [0, size) by a boundary rule.

    Modes: "nearest" (edge repeated; scipy 'nearest', ImageMagick edge), "reflect" (d c b a | a b
    c d; scipy 'reflect'), "reflect101" (d c b | a b c d; OpenCV BORDER_REFLECT_101 = scipy
    'mirror').
    """
    index = np.asarray(index, np.int64)
    if mode == "nearest":
        return np.clip(index, 0, size - 1)
    if mode not in ("reflect", "reflect101"):
        raise ValueError(f"unknown boundary mode {mode!r}")
    low, high = (int(index.min()), int(index.max())) if index.size else (0, 0)
    if low >= 0 and high < size:
        return index
    last = size - 1
    if mode == "reflect":
        if low >= -size and high < 2 * size:  # one reflection at most: cheap integer folds
            return last - _fold(last - _fold(index))
        index = np.mod(index, 2 * size)
        return np.where(index >= size, 2 * size - 1 - index, index)
    if size == 1:
        return np.zeros_like(index)
    if low > -size and high < 2 * size - 1:
        return last - np.abs(last - np.abs(index))
    index = np.mod(index, 2 * size - 2)
    return np.where(index >= size, 2 * size - 2 - index, index)


def _gaussian_kernel1d(sigma: float, truncate: float) -> np.ndarray:
    """scipy.ndimage's Gaussian taps: radius int(truncate * sigma + 0.5), normalised."""
    if sigma <= 1e-15:  # scipy skips such an axis entirely
        return np.ones(1)
    radius = int(truncate * sigma + 0.5)
    t = np.arange(-radius, radius + 1, dtype=np.float64)
    taps = np.exp(-0.5 * (t / sigma) ** 2)
    return taps / taps.sum()


def _filter_matrix(size: int, taps: np.ndarray, mode: str) -> np.ndarray:
    """The (size x size) matrix of a 1-D correlation with `taps` (centred) under `mode`.

    Boundary handling is folded into the matrix, so kernels longer than the signal work as in
    scipy (which reflects as often as needed).
    """
    radius = len(taps) // 2
    rows = np.arange(size)[:, None]
    cols = _boundary(rows + np.arange(-radius, radius + 1)[None, :], size, mode)
    matrix = np.zeros((size, size))
    np.add.at(matrix, (np.broadcast_to(rows, cols.shape), cols), np.broadcast_to(taps, cols.shape))
    return matrix


def _zoom_matrix(size: int, factor: float) -> np.ndarray:
    """The reference's `clipped_zoom` along one axis as a (size x size) matrix.

    Crop the central ceil(size / factor) pixels, enlarge them with scipy.ndimage.zoom (order 1:
    output length round(crop * factor), output index o samples crop position
    o * (crop - 1) / (length - 1)), then keep the central `size` outputs.
    """
    crop = int(math.ceil(size / factor))
    top = (size - crop) // 2
    length = int(round(crop * factor))
    step = (crop - 1) / (length - 1) if length > 1 else 1.0
    trim = (length - size) // 2
    position = np.arange(trim, trim + size) * step
    lower = np.floor(position).astype(np.int64)
    frac = position - lower
    matrix = np.zeros((size, size))
    out = np.arange(size)
    matrix[out, top + lower] += 1.0 - frac
    inside = lower + 1 < crop  # beyond the crop scipy reads cval 0 (weight ~0 there anyway)
    matrix[out[inside], top + lower[inside] + 1] += frac[inside]
    return matrix


# A linear spatial operator as a sum of separable terms (weight, rows (H'xH), cols (W'xW)).
Terms = tuple[tuple[float, np.ndarray, np.ndarray], ...]

# Up to this many pixels an operator is applied as one dense (HW x HW) matrix: one GEMM for the
# whole chunk, far faster than a pass per term at 32x32 (1024^2 doubles = 8 MB).
_DENSE_MAX_PIXELS = 48 * 48
_OPERATOR_CACHE_BYTES = 256 * 2 ** 20

_OPERATORS: dict[Any, np.ndarray] = {}
_OPERATORS_LOCK = threading.Lock()


def _dense(key: Any, terms_fn: Callable[[], Terms], dtype: np.dtype) -> np.ndarray:
    """sum_t weight_t * kron(rows_t, cols_t), cached by (key, dtype)."""
    key = (key, np.dtype(dtype).str)
    with _OPERATORS_LOCK:
        op = _OPERATORS.get(key)
    if op is None:
        op = sum(weight * np.kron(rows, cols) for weight, rows, cols in terms_fn())
        op = np.ascontiguousarray(op.T.astype(dtype))  # stored transposed, ready for flat @ op
        with _OPERATORS_LOCK:
            if sum(o.nbytes for o in _OPERATORS.values()) + op.nbytes > _OPERATOR_CACHE_BYTES:
                _OPERATORS.clear()
            _OPERATORS[key] = op
    return op


def _apply_linear(x: np.ndarray, key: Any, terms_fn: Callable[[], Terms]) -> np.ndarray:
    """Applies sum_t weight_t * rows_t . image . cols_t^T to every channel of (N, H, W, C).

    Args:
      x: the batch; the result has its dtype.
      key: a hashable description of the operator (with the image size), for caching it.
      terms_fn: builds the terms (called once per key).
    """
    n, h, w, c = x.shape
    if h * w <= _DENSE_MAX_PIXELS:
        op_t = _dense(key, terms_fn, x.dtype)
        flat = np.ascontiguousarray(x.transpose(0, 3, 1, 2)).reshape(n * c, h * w)
        y = (flat @ op_t).reshape(n, c, h, w)
        return np.ascontiguousarray(y.transpose(0, 2, 3, 1))
    out = np.zeros_like(x)
    for weight, rows, cols in terms_fn():
        y = np.tensordot(rows.astype(x.dtype), x, axes=(1, 1))  # (H, N, W, C)
        y = np.tensordot(cols.astype(x.dtype), y, axes=(1, 2))  # (W, H, N, C)
        out += weight * y.transpose(2, 1, 0, 3)
    return out


def _gaussian_filter(x: np.ndarray, sigma: float, mode: str, truncate: float) -> np.ndarray:
    """scipy.ndimage.gaussian_filter over axes 1 and 2 of an (N, H, W[, C]) array."""
    taps = _gaussian_kernel1d(sigma, truncate)
    if len(taps) == 1:
        return x.copy()
    squeeze = x.ndim == 3
    if squeeze:
        x = x[..., None]
    h, w = x.shape[1:3]
    out = _apply_linear(x, ("gaussian", sigma, mode, truncate, h, w), lambda: (
        (1.0, _filter_matrix(h, taps, mode), _filter_matrix(w, taps, mode)),))
    return out[..., 0] if squeeze else out


def _clipped_zoom(x: np.ndarray, factor: float) -> np.ndarray:
    """The reference's `clipped_zoom` of an (N, H, W, C) batch."""
    h, w = x.shape[1:3]
    return _apply_linear(x, ("zoom", factor, h, w), lambda: (
        (1.0, _zoom_matrix(h, factor), _zoom_matrix(w, factor)),))


def _bilinear(x: np.ndarray, row0: np.ndarray, col0: np.ndarray, row_frac: np.ndarray,
              col_frac: np.ndarray, mode: str) -> np.ndarray:
    """Bilinear samples of an (N, H, W, C) batch at (row0 + row_frac, col0 + col_frac).

    Index arrays are (N, H', W'); each of the four taps is mapped into the image by `mode`.
    Computed in x's dtype.
    """
    n, h, w, c = x.shape
    base = (np.arange(n, dtype=np.int64) * (h * w)).reshape(n, 1, 1)
    r0 = _boundary(row0, h, mode) * w + base
    r1 = _boundary(row0 + 1, h, mode) * w + base
    c0, c1 = _boundary(col0, w, mode), _boundary(col0 + 1, w, mode)
    flat = x.reshape(n * h * w, c)
    shape = row0.shape + (c,)

    def tap(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        return np.take(flat, (rows + cols).reshape(-1), axis=0).reshape(shape)

    fr = np.asarray(row_frac, x.dtype)[..., None]
    fc = np.asarray(col_frac, x.dtype)[..., None]
    top = tap(r0, c0)
    top += (tap(r0, c1) - top) * fc
    bottom = tap(r1, c0)
    bottom += (tap(r1, c1) - bottom) * fc
    top += (bottom - top) * fr
    return top


def _motion_blur(x: np.ndarray, radius: float, sigma: float, angles: np.ndarray) -> np.ndarray:
    """ImageMagick's MotionBlurImage on an (N, H, W, C) batch, one angle (degrees) per image.

    A one-sided line of 2 * ceil(radius) + 1 taps, tap i weighted exp(-i^2 / (2 sigma^2))
    (normalised) and read at (x + round(i cos a), y + round(i sin a)), rows growing downwards;
    pixels outside the image repeat the edge (ImageMagick's default virtual-pixel method).
    Computed in x's dtype.
    """
    n, h, w, c = x.shape
    width = int(2 * math.ceil(radius) + 1)
    i = np.arange(width, dtype=np.float64)
    taps = np.exp(-(i * i) / (2.0 * sigma * sigma))
    taps /= taps.sum()
    # ImageMagick: point = width * (sin a, cos a); offset_i = ceil(i * point / |point| - 0.5).
    radians = np.pi * np.asarray(angles, np.float64) / 180.0
    px, py = width * np.sin(radians), width * np.cos(radians)
    norm = np.hypot(px, py)
    dx = np.ceil(i[None, :] * py[:, None] / norm[:, None] - 0.5).astype(np.int64)  # (N, width)
    dy = np.ceil(i[None, :] * px[:, None] / norm[:, None] - 0.5).astype(np.int64)
    # Edge-pad once; tap k of image j is then the (h, w) window at (pad + dy, pad + dx).
    pad = width
    padded = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, (h, w), axis=(1, 2))
    every = np.arange(n)
    out = np.zeros((n, c, h, w), x.dtype)
    for k in range(width):
        out += x.dtype.type(taps[k]) * windows[every, pad + dy[:, k], pad + dx[:, k]]
    return np.ascontiguousarray(out.transpose(0, 2, 3, 1))


def _plasma_fractal(rng: np.random.Generator, n: int, size: int,
                    wibble_decay: float) -> np.ndarray:
    """The reference's diamond-square height map, for n maps of size x size, in [0, 1].

    `size` must be a power of two. Squares then diamonds at each scale, each new point the mean
    of its four (wrapped) neighbours plus uniform noise of half-width wibble^2, wibble starting
    at 100 and divided by `wibble_decay` per scale; finally min-max normalised per map.
    """
    grid = np.zeros((n, size, size))
    step, wibble = size, 100.0

    def noisy_mean(total: np.ndarray) -> np.ndarray:
        return total / 4 + wibble * rng.uniform(-wibble, wibble, total.shape)

    while step >= 2:
        half = step // 2
        corners = grid[:, 0::step, 0::step]
        around = corners + np.roll(corners, -1, axis=1)
        around = around + np.roll(around, -1, axis=2)
        grid[:, half::step, half::step] = noisy_mean(around)
        centres = grid[:, half::step, half::step]
        # Edge midpoints on corner rows: centres above/below, corners left/right.
        grid[:, 0::step, half::step] = noisy_mean(
            centres + np.roll(centres, 1, axis=1) + corners + np.roll(corners, -1, axis=2))
        # Edge midpoints on corner columns: centres left/right, corners above/below.
        grid[:, half::step, 0::step] = noisy_mean(
            centres + np.roll(centres, 1, axis=2) + corners + np.roll(corners, -1, axis=1))
        step //= 2
        wibble /= wibble_decay
    grid -= grid.min(axis=(1, 2), keepdims=True)
    return grid / grid.max(axis=(1, 2), keepdims=True)


def _to_uint8(x01: np.ndarray) -> np.ndarray:
    """[0, 1] floats to uint8 by rounding (exact for images that came in as uint8)."""
    return np.clip(np.rint(x01 * 255.0), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------
# The corruptions. Each takes x: float64 (N, H, W, 3) in [0, 1], the severity, a Generator and
# whether the input was uint8, and returns the result on the reference's 0..255 scale.

CorruptionFn = Callable[[np.ndarray, int, np.random.Generator, bool], np.ndarray]


def _defocus_kernel(radius: float, alias_blur: float) -> np.ndarray:
    """The reference's anti-aliased disk: a 17x17 disk of `radius`, normalised, then OpenCV's
    3x3 GaussianBlur(sigma=alias_blur); returned cropped to its non-zero support (the border of
    the 17x17 grid is zero for the radii used, so cropping changes nothing)."""
    coords = np.arange(-8, 9)  # the reference's grid for radius <= 8 (all CIFAR-10-C radii)
    xx, yy = np.meshgrid(coords, coords)
    disk = (xx ** 2 + yy ** 2 <= radius ** 2).astype(np.float32)
    disk /= disk.sum()
    t = np.arange(3) - 1.0  # cv2.getGaussianKernel(3, sigma)
    g = np.exp(-(t * t) / (2.0 * alias_blur ** 2))
    g /= g.sum()
    blurred = np.zeros_like(disk, dtype=np.float64)
    padded = np.pad(disk.astype(np.float64), 1)
    for a in range(3):
        for b in range(3):
            blurred += g[a] * g[b] * padded[a:a + 17, b:b + 17]
    kernel = blurred.astype(np.float32).astype(np.float64)
    nz_rows = np.flatnonzero(kernel.any(axis=1))
    nz_cols = np.flatnonzero(kernel.any(axis=0))
    return kernel[nz_rows[0]:nz_rows[-1] + 1, nz_cols[0]:nz_cols[-1] + 1]


def _shift_matrix(size: int, offset: int, mode: str) -> np.ndarray:
    """(size x size) matrix reading index i + offset, mapped into the image by `mode`."""
    matrix = np.zeros((size, size))
    matrix[np.arange(size), _boundary(np.arange(size) + offset, size, mode)] = 1.0
    return matrix


def _defocus_blur(x, severity, rng, from_uint8):
    del rng, from_uint8  # deterministic
    kernel = _defocus_kernel(*_DEFOCUS[severity - 1])
    kh, kw = kernel.shape
    h, w = x.shape[1:3]

    def terms() -> Terms:  # cv2.filter2D: correlation, BORDER_REFLECT_101
        return tuple((float(kernel[a, b]), _shift_matrix(h, a - kh // 2, "reflect101"),
                      _shift_matrix(w, b - kw // 2, "reflect101"))
                     for a in range(kh) for b in range(kw) if kernel[a, b] != 0.0)

    out = _apply_linear(x, ("defocus", severity, h, w), terms)
    return np.clip(out, 0, 1) * 255


def _glass_blur(x, severity, rng, from_uint8):
    sigma, delta, passes = _GLASS[severity - 1]
    n, h, w, c = x.shape
    # skimage.filters.gaussian defaults: mode 'nearest', truncate 4.
    y = _gaussian_filter(x, sigma, "nearest", 4.0) * 255
    if from_uint8:
        y = np.floor(y + _TRUNCATION_SLACK)  # the reference's np.uint8(...) before the loop
    # The pixels the reference's loop visits: rows/cols delta+1 .. size-delta.
    rr, cc = np.meshgrid(np.arange(delta + 1, h - delta + 1), np.arange(delta + 1, w - delta + 1),
                         indexing="ij")
    visited = (rr * w + cc).reshape(-1)
    flat = y.reshape(n, h * w, c)
    for _ in range(passes):
        # (dx, dy) ~ randint(-delta, delta): {-1, 0} for delta = 1. Pixel p takes the value of
        # p + (dy, dx) (the view "swap" copies), and for delta = 1 that neighbour is always one
        # the bottom-right-first loop has not visited yet, so one gather per pass is exact.
        shift = rng.integers(-delta, delta, size=(n, visited.size, 2))
        source = visited[None, :] + shift[..., 1] * w + shift[..., 0]
        source = source + (np.arange(n) * (h * w))[:, None]
        flat[:, visited] = np.take(flat.reshape(n * h * w, c), source, axis=0)  # reads first
    y = flat.reshape(n, h, w, c) / 255.0
    return np.clip(_gaussian_filter(y, sigma, "nearest", 4.0), 0, 1) * 255


def _motion(x, severity, rng, from_uint8):
    radius, sigma = _MOTION[severity - 1]
    angles = rng.uniform(*_MOTION_ANGLE, size=len(x))
    y = _motion_blur((x * 255).astype(np.float32), radius, sigma, angles).astype(np.float64)
    if from_uint8:
        y = np.rint(y)  # ImageMagick writes 8-bit PNG
    return np.clip(y, 0, 255)


def _zoom_blur(x, severity, rng, from_uint8):
    del rng, from_uint8  # deterministic
    # As in the reference, float round-off puts the stop itself into the first two ranges:
    # 7, 12, 16, 21, 26 factors.
    factors = [float(f) for f in np.arange(1, _ZOOM_STOPS[severity - 1], 0.01)]
    h, w = x.shape[1:3]
    weight = 1.0 / (len(factors) + 1)

    def terms() -> Terms:  # (x + sum of clipped zooms) / (count + 1), one linear operator
        return ((weight, np.eye(h), np.eye(w)),) + tuple(
            (weight, _zoom_matrix(h, f), _zoom_matrix(w, f)) for f in factors)

    out = _apply_linear(x.astype(np.float32), ("zoom_blur", severity, h, w), terms)
    return np.clip(out, 0, 1) * 255  # the reference works in float32 here


def _snow(x, severity, rng, from_uint8):
    del from_uint8
    mean, std, zoom, threshold, radius, sigma, keep = _SNOW[severity - 1]
    n, h, w, _ = x.shape
    x = x.astype(np.float32)
    layer = rng.normal(mean, std, size=(n, h, w, 1))
    layer = _clipped_zoom(layer, zoom)
    layer[layer < threshold] = 0
    layer = (np.clip(layer, 0, 1) * 255).astype(np.uint8).astype(np.float64)  # 8-bit 'L' image
    angles = rng.uniform(*_SNOW_ANGLE, size=n)
    layer = np.clip(np.rint(_motion_blur(layer, radius, sigma, angles)), 0, 255) / 255.0
    gray = x[..., 0:1] * np.float32(0.299) + x[..., 1:2] * np.float32(0.587) \
        + x[..., 2:3] * np.float32(0.114)
    x = keep * x + (1 - keep) * np.maximum(x, gray * 1.5 + 0.5)
    return np.clip(x + layer + layer[:, ::-1, ::-1], 0, 1) * 255


def _fog(x, severity, rng, from_uint8):
    del from_uint8
    strength, decay = _FOG[severity - 1]
    n, h, w, _ = x.shape
    size = 1 << max(h - 1, w - 1, 1).bit_length()  # next power of two >= max(h, w); 32 for CIFAR
    max_val = x.max(axis=(1, 2, 3), keepdims=True)
    x = x + strength * _plasma_fractal(rng, n, size, decay)[:, :h, :w, None]
    return np.clip(x * max_val / (max_val + strength), 0, 1) * 255


def _brightness(x, severity, rng, from_uint8):
    del rng, from_uint8  # deterministic
    value = x.max(axis=-1, keepdims=True)  # HSV V
    raised = np.clip(value + _BRIGHTNESS[severity - 1], 0, 1)
    # Keeping H and S while V -> V' scales RGB by V'/V; black (V = 0, S = 0) becomes grey V'.
    scale = np.divide(raised, value, out=np.zeros_like(value), where=value > 0)
    y = np.where(value > 0, x * scale, raised)
    return np.clip(y, 0, 1) * 255


def _contrast(x, severity, rng, from_uint8):
    del rng, from_uint8  # deterministic
    means = x.mean(axis=(1, 2), keepdims=True)  # per channel (CIFAR-10-C; ImageNet-C uses one)
    return np.clip((x - means) * _CONTRAST[severity - 1] + means, 0, 1) * 255


def _frost(x, severity, rng, from_uint8):
    del from_uint8
    keep, weight = _FROST[severity - 1]
    n, h, w, _ = x.shape
    textures = [_fit_texture(t, h, w) for t in _frost_textures()[0]]
    which = rng.integers(len(textures), size=n)
    frost = np.empty((n, h, w, 3), np.float64)
    for k, texture in enumerate(textures):
        idx = np.flatnonzero(which == k)
        if idx.size == 0:
            continue
        top = rng.integers(0, max(texture.shape[0] - h, 1), size=idx.size)
        left = rng.integers(0, max(texture.shape[1] - w, 1), size=idx.size)
        rows = top[:, None] + np.arange(h)[None, :]
        cols = left[:, None] + np.arange(w)[None, :]
        frost[idx] = texture[rows[:, :, None], cols[:, None, :]]
    return np.clip(keep * x * 255 + weight * frost, 0, 255)


def _elastic_transform(x, severity, rng, from_uint8):
    del from_uint8
    n, h, w, _ = x.shape
    size = min(h, w)  # the reference's IMSIZE = 32
    alpha, sigma, jitter = (size * f for f in _ELASTIC[severity - 1])
    x = x.astype(np.float32)

    # 1. Random affine: three control points around the centre each move by U(-jitter, jitter).
    centre = np.float32([w, h]) // 2
    half = size // 3
    src = np.float32([centre + half, [centre[0] + half, centre[1] - half], centre - half])
    dst = src[None] + rng.uniform(-jitter, jitter, size=(n, 3, 2)).astype(np.float32)
    # cv2.getAffineTransform: [x y 1] @ coef = dst; then warpAffine samples at the inverse map.
    src_h = np.concatenate([src, np.ones((3, 1), np.float32)], axis=1).astype(np.float64)
    coef = np.linalg.solve(src_h[None], dst.astype(np.float64))  # (N, 3, 2)
    forward = np.zeros((n, 3, 3))
    forward[:, :2, :] = coef.transpose(0, 2, 1)
    forward[:, 2, 2] = 1.0
    inverse = np.linalg.inv(forward)[:, :2, :]  # (N, 2, 3)
    warped = _warp_affine(x, inverse)

    # 2. Smooth random displacement field (skimage gaussian, mode 'reflect', truncate 3).
    shift_x = (_gaussian_filter(rng.uniform(-1, 1, size=(n, h, w)), sigma, "reflect", 3.0)
               * alpha).astype(np.float32)
    shift_y = (_gaussian_filter(rng.uniform(-1, 1, size=(n, h, w)), sigma, "reflect", 3.0)
               * alpha).astype(np.float32)
    # 3. scipy.ndimage.map_coordinates(order=1, mode='reflect') at (y + dy, x + dx).
    yy = np.arange(h)[None, :, None] + shift_y.astype(np.float64)
    xx = np.arange(w)[None, None, :] + shift_x.astype(np.float64)
    y0, x0 = np.floor(yy), np.floor(xx)
    out = _bilinear(warped, y0.astype(np.int64), x0.astype(np.int64), yy - y0, xx - x0,
                    "reflect")
    return np.clip(out, 0, 1) * 255


def _warp_affine(x: np.ndarray, inverse: np.ndarray) -> np.ndarray:
    """cv2.warpAffine(INTER_LINEAR, BORDER_REFLECT_101) of float images, one map per image.

    `inverse` (N, 2, 3) maps output (x, y, 1) to input coordinates. OpenCV evaluates it in fixed
    point (1/1024 px, rounded) and samples at multiples of 1/32 px; both are reproduced.
    """
    n, h, w, _ = x.shape
    scale, round_delta = 1024, 16  # AB_SCALE, AB_SCALE / INTER_TAB_SIZE / 2
    ys = np.arange(h, dtype=np.float64)[None, :, None]
    xs = np.arange(w, dtype=np.float64)[None, None, :]
    m = inverse[:, :, :, None, None]  # (N, 2, 3, 1, 1)
    fixed_x = (np.rint((m[:, 0, 1] * ys + m[:, 0, 2]) * scale).astype(np.int64) + round_delta
               + np.rint(m[:, 0, 0] * xs * scale).astype(np.int64)) >> 5
    fixed_y = (np.rint((m[:, 1, 1] * ys + m[:, 1, 2]) * scale).astype(np.int64) + round_delta
               + np.rint(m[:, 1, 0] * xs * scale).astype(np.int64)) >> 5
    return _bilinear(x.astype(np.float32), fixed_y >> 5, fixed_x >> 5, (fixed_y & 31) / 32.0,
                     (fixed_x & 31) / 32.0, "reflect101")


def _pillow_each(x: np.ndarray, fn: Callable[[Any], Any]) -> np.ndarray:
    from PIL import Image  # pylint: disable=g-import-not-at-top

    images = _to_uint8(x)
    out = np.empty_like(images)
    for i, image in enumerate(images):
        out[i] = np.asarray(fn(Image.fromarray(image)))
    return out.astype(np.float64)


def _pixelate(x, severity, rng, from_uint8):
    from PIL import Image  # pylint: disable=g-import-not-at-top

    del rng, from_uint8  # deterministic
    factor = _PIXELATE[severity - 1]
    h, w = x.shape[1:3]
    small = (max(int(w * factor), 1), max(int(h * factor), 1))
    box = Image.Resampling.BOX
    return _pillow_each(x, lambda im: im.resize(small, box).resize((w, h), box))


def _jpeg_compression(x, severity, rng, from_uint8):
    from PIL import Image  # pylint: disable=g-import-not-at-top

    del rng, from_uint8  # deterministic
    quality = _JPEG_QUALITY[severity - 1]

    def encode_decode(image):
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=quality)
        buffer.seek(0)
        with Image.open(buffer) as decoded:
            return decoded.convert("RGB")

    return _pillow_each(x, encode_decode)


_FUNCTIONS: dict[str, CorruptionFn] = {
    "defocus_blur": _defocus_blur,
    "glass_blur": _glass_blur,
    "motion_blur": _motion,
    "zoom_blur": _zoom_blur,
    "snow": _snow,
    "frost": _frost,
    "fog": _fog,
    "brightness": _brightness,
    "contrast": _contrast,
    "elastic_transform": _elastic_transform,
    "pixelate": _pixelate,
    "jpeg_compression": _jpeg_compression,
}


# --------------------------------------------------------------------------
# Frost textures.


def _imagecorruptions_frost_dir() -> str | None:
    """The frost/ folder of an installed `imagecorruptions`, found without importing it.

    Importing the package would import scikit-image and OpenCV; only its image files are used.
    """
    try:
        spec = importlib.util.find_spec("imagecorruptions")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        directory = os.path.join(location, "frost")
        if all(os.path.isfile(os.path.join(directory, f)) for f in _FROST_FILES):
            return directory
    return None


@functools.lru_cache(maxsize=1)
def _frost_textures() -> tuple[tuple[np.ndarray, ...], str]:
    """The five frost textures (uint8 RGB, downscaled as the reference does) and their source."""
    from PIL import Image  # pylint: disable=g-import-not-at-top

    directory = _imagecorruptions_frost_dir()
    if directory is None:
        logging.warning("imagecorruptions is not installed: frost uses a procedural texture, not "
                        "CIFAR-10-C's photos (pip install imagecorruptions --no-deps)")
        return _procedural_frost_textures(), "procedural"
    textures = []
    for filename in _FROST_FILES:
        with Image.open(os.path.join(directory, filename)) as image:
            rgb = np.asarray(image.convert("RGB"))  # drops alpha like cv2.imread
        h, w = rgb.shape[:2]
        # cv2.resize(fx=fy=0.2, INTER_LINEAR) samples source pixel 5 i + 2 with weight 1.
        out_h, out_w = int(round(h / _FROST_DOWNSCALE)), int(round(w / _FROST_DOWNSCALE))
        rows = np.minimum(np.arange(out_h) * _FROST_DOWNSCALE + 2, h - 1)
        cols = np.minimum(np.arange(out_w) * _FROST_DOWNSCALE + 2, w - 1)
        textures.append(np.ascontiguousarray(rgb[rows][:, cols]))
    return tuple(textures), "imagecorruptions"


def _procedural_frost_textures() -> tuple[np.ndarray, ...]:
    """Five fixed frost-like textures (96x128): plasma haze plus blurred crystal streaks."""
    rng = np.random.default_rng(20190101)  # fixed: the textures are data, not per-call noise
    textures = []
    for _ in range(len(_FROST_FILES)):
        haze = _plasma_fractal(rng, 1, 128, 2.0)[0, :96, :]
        streaks = np.zeros((96, 128))
        for _ in range(3):
            seeds = (rng.random((1, 96, 128, 1)) < 0.03).astype(np.float64)
            streaks += _motion_blur(seeds, 8, 4.0, rng.uniform(0, 360, size=1))[0, ..., 0]
        luminance = 0.5 * (haze - haze.mean()) / haze.std() \
            + 0.5 * (streaks - streaks.mean()) / streaks.std()
        luminance /= luminance.std()
        rgb = np.asarray(_FROST_FALLBACK_MEAN)[None, None, :] \
            + _FROST_FALLBACK_STD * luminance[..., None]
        textures.append(np.clip(np.rint(rgb), 0, 255).astype(np.uint8))
    return tuple(textures)


def _fit_texture(texture: np.ndarray, h: int, w: int) -> np.ndarray:
    """Enlarges a texture (bilinear) when it is smaller than an image; otherwise float64 as is."""
    th, tw = texture.shape[:2]
    if th > h and tw > w:
        return texture.astype(np.float64)
    from PIL import Image  # pylint: disable=g-import-not-at-top

    scale = max((h + 1) / th, (w + 1) / tw)
    size = (int(math.ceil(tw * scale)), int(math.ceil(th * scale)))
    return np.asarray(Image.fromarray(texture).resize(size, Image.Resampling.BILINEAR),
                      np.float64)


def frost_texture_source() -> str:
    """Which frost textures `corrupt` uses: "imagecorruptions" (CIFAR-10-C's) or "procedural"."""
    return _frost_textures()[1]


# --------------------------------------------------------------------------
# corrupt / generate.


def _as_batch(images: Any) -> tuple[np.ndarray, bool]:
    x = np.asarray(images)
    single = x.ndim == 3
    if single:
        x = x[None]
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"images must be RGB (N, H, W, 3) or (H, W, 3), got shape {x.shape}")
    if x.shape[1] < _MIN_SIZE or x.shape[2] < _MIN_SIZE:
        raise ValueError(f"images must be at least {_MIN_SIZE}x{_MIN_SIZE}, got "
                         f"{x.shape[1]}x{x.shape[2]}")
    if x.dtype != np.uint8:
        if not np.issubdtype(x.dtype, np.floating):
            raise ValueError(f"images must be uint8 in [0, 255] or float in [0, 1], "
                             f"got dtype {x.dtype}")
        if x.size and (not np.all(np.isfinite(x)) or x.min() < 0 or x.max() > 1):
            raise ValueError("float images must be finite and in [0, 1]")
    return x, single


def corrupt(images: Any, name: str, severity: int, seed: int = 0) -> np.ndarray:
    """Applies one CIFAR-10-C corruption at one severity.

    Re-implements hendrycks/robustness ``ImageNet-C/create_c/make_cifar_c.py`` with its
    constants (see the module docstring for what is exact and what deviates).

    Args:
      images: (N, H, W, 3) or (H, W, 3) RGB, uint8 in [0, 255] or float in [0, 1]. CIFAR-10-C's
        constants are for 32x32; any size from 8x8 up runs (not CIFAR-10-C then).
      name: one of `CORRUPTIONS` (or an alias, see `canonical_name`).
      severity: 1..5.
      seed: non-negative integer; the same images, name, severity and seed give the same
        output. Images are processed in chunks of 1,000, chunk k drawing from
        ``np.random.SeedSequence(seed, spawn_key=(k,))``.

    Returns:
      The corrupted images: same shape and dtype; uint8 stays in [0, 255], float in [0, 1].

    Raises:
      ValueError: bad images, name, severity or seed.
    """
    name = canonical_name(name)
    severity = _check_severity(severity)
    seed = _check_seed(seed)
    batch, single = _as_batch(images)
    from_uint8 = batch.dtype == np.uint8
    fn = _FUNCTIONS[name]
    out = np.empty(batch.shape, batch.dtype)
    for k, start in enumerate(range(0, len(batch), _CHUNK)):
        chunk = batch[start:start + _CHUNK]
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(k,)))
        x = chunk.astype(np.float64)
        if from_uint8:
            x /= 255.0
        y = np.clip(np.asarray(fn(x, severity, rng, from_uint8), np.float64), 0, 255)
        if from_uint8:
            out[start:start + _CHUNK] = np.floor(y + _TRUNCATION_SLACK).astype(np.uint8)
        else:
            out[start:start + _CHUNK] = np.clip(y / 255.0, 0, 1)
    return out[0] if single else out


def _task_seed(seed: int, name: str, severity: int) -> int:
    """An independent seed per (name, severity), as CIFAR-10-C draws each set separately."""
    entropy = [seed, zlib.crc32(name.encode()), severity]
    return int(np.random.SeedSequence(entropy).generate_state(1, np.uint64)[0])


def _images_digest(images: np.ndarray) -> str:
    h = hashlib.sha256()
    h.update(f"{images.dtype.str}{images.shape}".encode())
    h.update(memoryview(np.ascontiguousarray(images)).cast("B"))
    return h.hexdigest()


def _cache_path(cache_dir: str, digest: str, name: str, severity: int, seed: int) -> str:
    key = {"version": CACHE_VERSION, "images": digest, "name": name, "severity": severity,
           "seed": seed}
    if name == "frost":
        key["frost_textures"] = frost_texture_source()
    h = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]
    return os.path.join(cache_dir, f"{name}-{severity}-{h}.npy")


def _read_cache(path: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray | None:
    if not os.path.isfile(path):
        return None
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as e:  # pylint: disable=broad-except  # truncated or foreign: regenerate
        logging.warning("ignoring unreadable corruption cache %s: %s", path, e)
        return None
    if array.shape != shape or array.dtype != dtype:
        logging.warning("ignoring corruption cache %s: %s %s, expected %s %s", path, array.dtype,
                        array.shape, dtype, shape)
        return None
    return array


def generate(
    images: Any,
    names: Iterable[str] = CORRUPTIONS,
    severities: Iterable[int] = SEVERITIES,
    seed: int = 0,
    cache_dir: str | None = None,
    *,
    num_workers: int | None = None,
) -> dict[tuple[str, int], np.ndarray]:
    """All corrupted copies of `images`, optionally cached on disk.

    Set (name, severity) is ``corrupt(images, name, severity, s)`` with s derived from
    (seed, name, severity), so the sets are independent draws as in CIFAR-10-C and a subset of
    names or severities reproduces the same arrays.

    With `cache_dir`, each set is one ``<name>-<severity>-<key>.npy`` file, the key a hash of the
    images, name, severity, seed and `CACHE_VERSION` (and, for frost, the texture source),
    written atomically (temporary file + os.replace); a later call loads it instead of
    recomputing. Cached sets are returned as read-only memory maps.

    Args:
      images: (N, H, W, 3) uint8 or float in [0, 1] (e.g. the CIFAR-10 test set).
      names: corruption names (or a comma-separated string); default all 12.
      severities: severities in 1..5; default all.
      seed: non-negative integer.
      cache_dir: directory for the cache; None computes in memory only.
      num_workers: threads computing sets concurrently (numpy and Pillow release the GIL);
        None uses the number of CPUs. Results do not depend on it.

    Returns:
      {(name, severity): images} in the order of `names`, then `severities`.
    """
    names = _check_names(names)
    severities = _check_severities(severities)
    seed = _check_seed(seed)
    batch, single = _as_batch(images)
    if single:
        raise ValueError("generate() needs a batch (N, H, W, 3)")
    tasks = [(n, s) for n in names for s in severities]
    results: dict[tuple[str, int], np.ndarray] = {}
    digest = _images_digest(batch) if cache_dir else ""
    if cache_dir:
        cache_dir = os.path.abspath(os.path.expanduser(cache_dir))
        for task in tasks:
            cached = _read_cache(_cache_path(cache_dir, digest, *task, seed), batch.shape,
                                 batch.dtype)
            if cached is not None:
                results[task] = cached
        if results:
            logging.info("corruptions: %d of %d sets loaded from %s", len(results), len(tasks),
                         cache_dir)

    def compute(task: tuple[str, int]) -> np.ndarray:
        name, severity = task
        out = corrupt(batch, name, severity, _task_seed(seed, name, severity))
        if not cache_dir:
            return out
        path = _cache_path(cache_dir, digest, name, severity, seed)
        try:
            files.atomic_write(path, lambda f: np.save(f, out, allow_pickle=False), mode="wb")
        except OSError as e:  # a read-only cache is not fatal
            logging.warning("could not write corruption cache %s: %s", path, e)
            return out
        return np.load(path, mmap_mode="r", allow_pickle=False)

    missing = [t for t in tasks if t not in results]
    workers = max(1, min(len(missing), num_workers or os.cpu_count() or 1))
    if missing:
        logging.info("corruptions: generating %d sets of %d images with %d threads",
                     len(missing), len(batch), workers)
    if workers == 1:
        for task in missing:
            results[task] = compute(task)
    else:
        with concurrent.futures.ThreadPoolExecutor(workers, "rat_tf-corrupt") as pool:
            for task, out in zip(missing, pool.map(compute, missing)):
                results[task] = out
    return {task: results[task] for task in tasks}


# --------------------------------------------------------------------------
# Published data: .npy directory and TFDS.

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
    names = _check_names(names)
    severities = _check_severities(severities)
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
    return f"cifar10_corrupted/{TFDS_NAMES[canonical_name(name)]}_{_check_severity(severity)}"


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


# --------------------------------------------------------------------------
# Scoring and reporting.


def _sort_key(key: tuple[str, int]) -> tuple[int, str, int]:
    name, severity = key
    return (CORRUPTIONS.index(name) if name in CORRUPTIONS else len(CORRUPTIONS), name, severity)


def corruption_accuracy(
    predict_fn: Callable[[np.ndarray], Any],
    images_by_corruption: Mapping[tuple[str, int], Any],
    labels: Any,
    *,
    batch_size: int = 500,
) -> dict[str, Any]:
    """Accuracy per (corruption, severity), mean over severities per corruption, and mCA.

    Args:
      predict_fn: float32 images in [0, 1] (B, H, W, C) -> logits or probabilities (B, K), or
        predicted labels (B,); e.g. ``lambda x: model(x, training=False)``.
      images_by_corruption: {(name, severity): images (N, H, W, C)}, uint8 or float in [0, 1],
        as returned by `generate`, `load_npy_dir` or built from `load_tfds`.
      labels: (N,) integer labels, shared by every set.
      batch_size: images per `predict_fn` call.

    Returns:
      {"accuracy": {name: {severity: accuracy}}, "mean": {name: mean over its severities},
       "mca": mean of the per-corruption means, "num_examples": N}; accuracies in [0, 1],
      names in `CORRUPTIONS` order.

    Raises:
      ValueError: empty input, unknown names, or sizes that do not match the labels.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    labels = np.asarray(labels).reshape(-1)
    if not np.issubdtype(labels.dtype, np.integer) or len(labels) == 0:
        raise ValueError(f"labels must be non-empty integers, got {labels.dtype} {labels.shape}")
    if not images_by_corruption:
        raise ValueError("images_by_corruption is empty")
    sets = {(canonical_name(n), _check_severity(s)): images
            for (n, s), images in images_by_corruption.items()}
    accuracy: dict[str, dict[int, float]] = {}
    for name, severity in sorted(sets, key=_sort_key):
        images = sets[(name, severity)]
        if len(images) != len(labels):
            raise ValueError(f"{name} severity {severity}: {len(images)} images but "
                             f"{len(labels)} labels")
        correct = 0
        for start in range(0, len(labels), batch_size):
            batch = data_lib.to_float(np.asarray(images[start:start + batch_size]))
            outputs = np.asarray(predict_fn(batch))
            predicted = outputs.argmax(axis=-1) if outputs.ndim == 2 else outputs.reshape(-1)
            correct += int(np.sum(predicted == labels[start:start + batch_size]))
        accuracy.setdefault(name, {})[severity] = correct / len(labels)
    mean = {name: float(np.mean(list(by_severity.values())))
            for name, by_severity in accuracy.items()}
    return {"accuracy": accuracy, "mean": mean, "mca": float(np.mean(list(mean.values()))),
            "num_examples": int(len(labels))}


def markdown_table(rows: Mapping[str, Mapping[str, Any]] | Sequence[tuple[str, Mapping]]) -> str:
    """A Table-2-like markdown table: one row per model, accuracy (%) per corruption, mCA last.

    Args:
      rows: model name -> its `corruption_accuracy` result (a mapping, or (name, result)
        pairs). Cells are the means over severities; a corruption a model lacks shows "–".

    Returns:
      The table, one line per row, ending with a newline.
    """
    items = list(rows.items()) if isinstance(rows, Mapping) else list(rows)
    present: list[str] = []
    for _, result in items:
        for name in result.get("mean", {}):
            if name not in present:
                present.append(name)
    present.sort(key=lambda n: (CORRUPTIONS.index(n) if n in CORRUPTIONS else len(CORRUPTIONS), n))

    def percent(value: Any) -> str:
        return "–" if value is None or not math.isfinite(float(value)) else f"{100 * value:.2f}"

    header = [DISPLAY_NAMES.get(n, n) for n in present] + ["mCA"]
    lines = ["| model | " + " | ".join(header) + " |", "|---|" + "---:|" * len(header)]
    for model, result in items:
        cells = [percent(result.get("mean", {}).get(n)) for n in present]
        cells.append(percent(result.get("mca")))
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
