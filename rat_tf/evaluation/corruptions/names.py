"""The 12 corruption names, their TFDS and display names, and argument checks."""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np

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


def check_severity(severity: Any) -> int:
    if isinstance(severity, bool) or not isinstance(severity, (int, np.integer)) \
            or not 1 <= int(severity) <= 5:
        raise ValueError(f"severity must be an integer in 1..5, got {severity!r}")
    return int(severity)


def check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or int(seed) < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def check_names(names: Iterable[str]) -> tuple[str, ...]:
    if isinstance(names, str):
        if names.strip().lower() == "all":
            return CORRUPTIONS
        names = [n for n in names.split(",") if n.strip()]
    out = tuple(dict.fromkeys(canonical_name(n) for n in names))
    if not out:
        raise ValueError("no corruption names given")
    return out


def check_severities(severities: Iterable[int]) -> tuple[int, ...]:
    out = tuple(dict.fromkeys(check_severity(s) for s in severities))
    if not out:
        raise ValueError("no severities given")
    return out

