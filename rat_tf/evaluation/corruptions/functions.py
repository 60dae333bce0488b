"""The 12 corruptions, each after hendrycks/robustness ``ImageNet-C/create_c/make_cifar_c.py``.

Each function takes x: float64 (N, H, W, 3) in [0, 1], the severity, a numpy Generator and
whether the input was uint8, and returns the result on the reference's 0..255 scale;
`rat_tf.evaluation.corruptions.generation.corrupt` turns that into the output dtype.

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

import io
from typing import Any, Callable

import numpy as np

from rat_tf.evaluation.corruptions import filters, frost_textures

# np.uint8() truncates; this slack keeps whole numbers computed as k - 1e-13 at k.
TRUNCATION_SLACK = 1e-6

# --------------------------------------------------------------------------
# CIFAR-10-C's constants (hendrycks/robustness ImageNet-C/create_c/make_cifar_c.py), one row
# per severity 1..5.

DEFOCUS = ((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1.0, 0.2), (1.5, 0.1))  # radius, alias sigma
# Glass: Gaussian sigma, max shift (delta), passes of the pixel loop.
GLASS = ((0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2))
MOTION = ((6, 1.0), (6, 1.5), (6, 2.0), (8, 2.0), (9, 2.5))  # radius, sigma (ImageMagick)
ZOOM_STOPS = (1.06, 1.11, 1.16, 1.21, 1.26)  # zoom factors np.arange(1, stop, 0.01)
# Snow: layer mean, layer std, layer zoom, threshold, blur radius, blur sigma, image weight.
SNOW = ((0.1, 0.2, 1.0, 0.6, 8, 3, 0.95),
         (0.1, 0.2, 1.0, 0.5, 10, 4, 0.9),
         (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9),
         (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85),
         (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8))
FROST = ((1.0, 0.2), (1.0, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45))  # image, texture weight
FOG = ((0.2, 3.0), (0.5, 3.0), (0.75, 2.5), (1.0, 2.0), (1.5, 1.75))  # strength, wibble decay
BRIGHTNESS = (0.05, 0.1, 0.15, 0.2, 0.3)  # added to HSV value
CONTRAST = (0.75, 0.5, 0.4, 0.3, 0.15)  # factor around the per-channel mean
# Elastic: (alpha, sigma, affine jitter) as fractions of the image size (32 px).
ELASTIC = ((0.0, 0.0, 0.08), (0.05, 0.2, 0.07), (0.08, 0.06, 0.06), (0.1, 0.04, 0.05),
            (0.1, 0.03, 0.03))
PIXELATE = (0.95, 0.9, 0.85, 0.75, 0.65)  # downscale factor (BOX down, BOX up)
JPEG_QUALITY = (80, 65, 58, 50, 40)

MOTION_ANGLE = (-45.0, 45.0)  # degrees, uniform
SNOW_ANGLE = (-135.0, -45.0)

CorruptionFn = Callable[[np.ndarray, int, np.random.Generator, bool], np.ndarray]


def defocus_kernel(radius: float, alias_blur: float) -> np.ndarray:
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


def defocus_blur(x, severity, rng, from_uint8):
    del rng, from_uint8  # deterministic
    kernel = defocus_kernel(*DEFOCUS[severity - 1])
    kh, kw = kernel.shape
    h, w = x.shape[1:3]

    def terms() -> filters.Terms:  # cv2.filter2D: correlation, BORDER_REFLECT_101
        return tuple((float(kernel[a, b]), filters.shift_matrix(h, a - kh // 2, "reflect101"),
                      filters.shift_matrix(w, b - kw // 2, "reflect101"))
                     for a in range(kh) for b in range(kw) if kernel[a, b] != 0.0)

    out = filters.apply_linear(x, ("defocus", severity, h, w), terms)
    return np.clip(out, 0, 1) * 255


def glass_blur(x, severity, rng, from_uint8):
    sigma, delta, passes = GLASS[severity - 1]
    n, h, w, c = x.shape
    # skimage.filters.gaussian defaults: mode 'nearest', truncate 4.
    y = filters.gaussian_filter(x, sigma, "nearest", 4.0) * 255
    if from_uint8:
        y = np.floor(y + TRUNCATION_SLACK)  # the reference's np.uint8(...) before the loop
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
    return np.clip(filters.gaussian_filter(y, sigma, "nearest", 4.0), 0, 1) * 255


def motion_blur(x, severity, rng, from_uint8):
    radius, sigma = MOTION[severity - 1]
    angles = rng.uniform(*MOTION_ANGLE, size=len(x))
    y = filters.motion_blur((x * 255).astype(np.float32), radius, sigma, angles).astype(np.float64)
    if from_uint8:
        y = np.rint(y)  # ImageMagick writes 8-bit PNG
    return np.clip(y, 0, 255)


def zoom_blur(x, severity, rng, from_uint8):
    del rng, from_uint8  # deterministic
    # As in the reference, float round-off puts the stop itself into the first two ranges:
    # 7, 12, 16, 21, 26 factors.
    factors = [float(f) for f in np.arange(1, ZOOM_STOPS[severity - 1], 0.01)]
    h, w = x.shape[1:3]
    weight = 1.0 / (len(factors) + 1)

    def terms() -> filters.Terms:  # (x + sum of clipped zooms) / (count + 1), one linear operator
        return ((weight, np.eye(h), np.eye(w)),) + tuple(
            (weight, filters.zoom_matrix(h, f), filters.zoom_matrix(w, f)) for f in factors)

    out = filters.apply_linear(x.astype(np.float32), ("zoom_blur", severity, h, w), terms)
    return np.clip(out, 0, 1) * 255  # the reference works in float32 here


def snow(x, severity, rng, from_uint8):
    del from_uint8
    mean, std, zoom, threshold, radius, sigma, keep = SNOW[severity - 1]
    n, h, w, _ = x.shape
    x = x.astype(np.float32)
    layer = rng.normal(mean, std, size=(n, h, w, 1))
    layer = filters.clipped_zoom(layer, zoom)
    layer[layer < threshold] = 0
    layer = (np.clip(layer, 0, 1) * 255).astype(np.uint8).astype(np.float64)  # 8-bit 'L' image
    angles = rng.uniform(*SNOW_ANGLE, size=n)
    layer = np.clip(np.rint(filters.motion_blur(layer, radius, sigma, angles)), 0, 255) / 255.0
    gray = x[..., 0:1] * np.float32(0.299) + x[..., 1:2] * np.float32(0.587) \
        + x[..., 2:3] * np.float32(0.114)
    x = keep * x + (1 - keep) * np.maximum(x, gray * 1.5 + 0.5)
    return np.clip(x + layer + layer[:, ::-1, ::-1], 0, 1) * 255


def fog(x, severity, rng, from_uint8):
    del from_uint8
    strength, decay = FOG[severity - 1]
    n, h, w, _ = x.shape
    size = 1 << max(h - 1, w - 1, 1).bit_length()  # next power of two >= max(h, w); 32 for CIFAR
    max_val = x.max(axis=(1, 2, 3), keepdims=True)
    x = x + strength * filters.plasma_fractal(rng, n, size, decay)[:, :h, :w, None]
    return np.clip(x * max_val / (max_val + strength), 0, 1) * 255


def brightness(x, severity, rng, from_uint8):
    del rng, from_uint8  # deterministic
    value = x.max(axis=-1, keepdims=True)  # HSV V
    raised = np.clip(value + BRIGHTNESS[severity - 1], 0, 1)
    # Keeping H and S while V -> V' scales RGB by V'/V; black (V = 0, S = 0) becomes grey V'.
    scale = np.divide(raised, value, out=np.zeros_like(value), where=value > 0)
    y = np.where(value > 0, x * scale, raised)
    return np.clip(y, 0, 1) * 255


def contrast(x, severity, rng, from_uint8):
    del rng, from_uint8  # deterministic
    means = x.mean(axis=(1, 2), keepdims=True)  # per channel (CIFAR-10-C; ImageNet-C uses one)
    return np.clip((x - means) * CONTRAST[severity - 1] + means, 0, 1) * 255


def frost(x, severity, rng, from_uint8):
    del from_uint8
    keep, weight = FROST[severity - 1]
    n, h, w, _ = x.shape
    textures = [frost_textures.fit_texture(t, h, w) for t in frost_textures.textures()[0]]
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


def elastic_transform(x, severity, rng, from_uint8):
    del from_uint8
    n, h, w, _ = x.shape
    size = min(h, w)  # the reference's IMSIZE = 32
    alpha, sigma, jitter = (size * f for f in ELASTIC[severity - 1])
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
    warped = filters.warp_affine(x, inverse)

    # 2. Smooth random displacement field (skimage gaussian, mode 'reflect', truncate 3).
    shift_x = (filters.gaussian_filter(rng.uniform(-1, 1, size=(n, h, w)), sigma, "reflect", 3.0)
               * alpha).astype(np.float32)
    shift_y = (filters.gaussian_filter(rng.uniform(-1, 1, size=(n, h, w)), sigma, "reflect", 3.0)
               * alpha).astype(np.float32)
    # 3. scipy.ndimage.map_coordinates(order=1, mode='reflect') at (y + dy, x + dx).
    yy = np.arange(h)[None, :, None] + shift_y.astype(np.float64)
    xx = np.arange(w)[None, None, :] + shift_x.astype(np.float64)
    y0, x0 = np.floor(yy), np.floor(xx)
    out = filters.bilinear(warped, y0.astype(np.int64), x0.astype(np.int64), yy - y0, xx - x0,
                    "reflect")
    return np.clip(out, 0, 1) * 255


def _pillow_each(x: np.ndarray, fn: Callable[[Any], Any]) -> np.ndarray:
    from PIL import Image  # pylint: disable=g-import-not-at-top

    images = filters.to_uint8(x)
    out = np.empty_like(images)
    for i, image in enumerate(images):
        out[i] = np.asarray(fn(Image.fromarray(image)))
    return out.astype(np.float64)


def pixelate(x, severity, rng, from_uint8):
    from PIL import Image  # pylint: disable=g-import-not-at-top

    del rng, from_uint8  # deterministic
    factor = PIXELATE[severity - 1]
    h, w = x.shape[1:3]
    small = (max(int(w * factor), 1), max(int(h * factor), 1))
    box = Image.Resampling.BOX
    return _pillow_each(x, lambda im: im.resize(small, box).resize((w, h), box))


def jpeg_compression(x, severity, rng, from_uint8):
    from PIL import Image  # pylint: disable=g-import-not-at-top

    del rng, from_uint8  # deterministic
    quality = JPEG_QUALITY[severity - 1]

    def encode_decode(image):
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=quality)
        buffer.seek(0)
        with Image.open(buffer) as decoded:
            return decoded.convert("RGB")

    return _pillow_each(x, encode_decode)


FUNCTIONS: dict[str, CorruptionFn] = {
    "defocus_blur": defocus_blur,
    "glass_blur": glass_blur,
    "motion_blur": motion_blur,
    "zoom_blur": zoom_blur,
    "snow": snow,
    "frost": frost,
    "fog": fog,
    "brightness": brightness,
    "contrast": contrast,
    "elastic_transform": elastic_transform,
    "pixelate": pixelate,
    "jpeg_compression": jpeg_compression,
}

