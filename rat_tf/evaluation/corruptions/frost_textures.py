"""Frost textures: CIFAR-10-C's photos when `imagecorruptions` is installed, else procedural."""

from __future__ import annotations

import functools
import importlib.util
import math
import os

from absl import logging
import numpy as np

from rat_tf.evaluation.corruptions import filters

# Frost textures: make_cifar_c.py lists six and draws `randint(5)`, i.e. the first five.
_FROST_FILES = ("frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg")
_FROST_DOWNSCALE = 5  # cv2.resize(fx=fy=0.2)
_FROST_FALLBACK_MEAN = (146.0, 167.0, 179.0)
_FROST_FALLBACK_STD = 28.0


def imagecorruptions_frost_dir() -> str | None:
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
def textures() -> tuple[tuple[np.ndarray, ...], str]:
    """The five frost textures (uint8 RGB, downscaled as the reference does) and their source."""
    from PIL import Image  # pylint: disable=g-import-not-at-top

    directory = imagecorruptions_frost_dir()
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
        haze = filters.plasma_fractal(rng, 1, 128, 2.0)[0, :96, :]
        streaks = np.zeros((96, 128))
        for _ in range(3):
            seeds = (rng.random((1, 96, 128, 1)) < 0.03).astype(np.float64)
            streaks += filters.motion_blur(seeds, 8, 4.0, rng.uniform(0, 360, size=1))[0, ..., 0]
        luminance = 0.5 * (haze - haze.mean()) / haze.std() \
            + 0.5 * (streaks - streaks.mean()) / streaks.std()
        luminance /= luminance.std()
        rgb = np.asarray(_FROST_FALLBACK_MEAN)[None, None, :] \
            + _FROST_FALLBACK_STD * luminance[..., None]
        textures.append(np.clip(np.rint(rgb), 0, 255).astype(np.uint8))
    return tuple(textures)


def fit_texture(texture: np.ndarray, h: int, w: int) -> np.ndarray:
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
    return textures()[1]

