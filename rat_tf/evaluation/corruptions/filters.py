"""Linear filters and resampling: numpy re-implementations of the library calls make_cifar_c.py makes.

scipy.ndimage (gaussian_filter, zoom, map_coordinates), OpenCV (filter2D borders, warpAffine)
and ImageMagick (MotionBlurImage), each with the reference library's kernels, coordinates and
boundary rules; the tests compare them with scipy where scipy has the same function.
"""

from __future__ import annotations

import math
import threading
from typing import Any, Callable

import numpy as np


def _fold(v: np.ndarray) -> np.ndarray:
    """v for v >= 0, -v - 1 for v < 0 (integer arrays)."""
    return v ^ (v >> 63)


def boundary(index: np.ndarray, size: int, mode: str) -> np.ndarray:
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


def gaussian_kernel1d(sigma: float, truncate: float) -> np.ndarray:
    """scipy.ndimage's Gaussian taps: radius int(truncate * sigma + 0.5), normalised."""
    if sigma <= 1e-15:  # scipy skips such an axis entirely
        return np.ones(1)
    radius = int(truncate * sigma + 0.5)
    t = np.arange(-radius, radius + 1, dtype=np.float64)
    taps = np.exp(-0.5 * (t / sigma) ** 2)
    return taps / taps.sum()


def filter_matrix(size: int, taps: np.ndarray, mode: str) -> np.ndarray:
    """The (size x size) matrix of a 1-D correlation with `taps` (centred) under `mode`.

    Boundary handling is folded into the matrix, so kernels longer than the signal work as in
    scipy (which reflects as often as needed).
    """
    radius = len(taps) // 2
    rows = np.arange(size)[:, None]
    cols = boundary(rows + np.arange(-radius, radius + 1)[None, :], size, mode)
    matrix = np.zeros((size, size))
    np.add.at(matrix, (np.broadcast_to(rows, cols.shape), cols), np.broadcast_to(taps, cols.shape))
    return matrix


def zoom_matrix(size: int, factor: float) -> np.ndarray:
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


def apply_linear(x: np.ndarray, key: Any, terms_fn: Callable[[], Terms]) -> np.ndarray:
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


def gaussian_filter(x: np.ndarray, sigma: float, mode: str, truncate: float) -> np.ndarray:
    """scipy.ndimage.gaussian_filter over axes 1 and 2 of an (N, H, W[, C]) array."""
    taps = gaussian_kernel1d(sigma, truncate)
    if len(taps) == 1:
        return x.copy()
    squeeze = x.ndim == 3
    if squeeze:
        x = x[..., None]
    h, w = x.shape[1:3]
    out = apply_linear(x, ("gaussian", sigma, mode, truncate, h, w), lambda: (
        (1.0, filter_matrix(h, taps, mode), filter_matrix(w, taps, mode)),))
    return out[..., 0] if squeeze else out


def clipped_zoom(x: np.ndarray, factor: float) -> np.ndarray:
    """The reference's `clipped_zoom` of an (N, H, W, C) batch."""
    h, w = x.shape[1:3]
    return apply_linear(x, ("zoom", factor, h, w), lambda: (
        (1.0, zoom_matrix(h, factor), zoom_matrix(w, factor)),))


def bilinear(x: np.ndarray, row0: np.ndarray, col0: np.ndarray, row_frac: np.ndarray,
              col_frac: np.ndarray, mode: str) -> np.ndarray:
    """Bilinear samples of an (N, H, W, C) batch at (row0 + row_frac, col0 + col_frac).

    Index arrays are (N, H', W'); each of the four taps is mapped into the image by `mode`.
    Computed in x's dtype.
    """
    n, h, w, c = x.shape
    base = (np.arange(n, dtype=np.int64) * (h * w)).reshape(n, 1, 1)
    r0 = boundary(row0, h, mode) * w + base
    r1 = boundary(row0 + 1, h, mode) * w + base
    c0, c1 = boundary(col0, w, mode), boundary(col0 + 1, w, mode)
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


def motion_blur(x: np.ndarray, radius: float, sigma: float, angles: np.ndarray) -> np.ndarray:
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


def plasma_fractal(rng: np.random.Generator, n: int, size: int,
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


def to_uint8(x01: np.ndarray) -> np.ndarray:
    """[0, 1] floats to uint8 by rounding (exact for images that came in as uint8)."""
    return np.clip(np.rint(x01 * 255.0), 0, 255).astype(np.uint8)



def shift_matrix(size: int, offset: int, mode: str) -> np.ndarray:
    """(size x size) matrix reading index i + offset, mapped into the image by `mode`."""
    matrix = np.zeros((size, size))
    matrix[np.arange(size), boundary(np.arange(size) + offset, size, mode)] = 1.0
    return matrix



def warp_affine(x: np.ndarray, inverse: np.ndarray) -> np.ndarray:
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
    return bilinear(x.astype(np.float32), fixed_y >> 5, fixed_x >> 5, (fixed_y & 31) / 32.0,
                     (fixed_x & 31) / 32.0, "reflect101")

