"""`corrupt` (one corruption at one severity) and `generate` (all sets, seeded, cached on disk)."""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
from typing import Any, Iterable
import zlib

from absl import logging
import numpy as np

from rat_tf import files
from rat_tf.evaluation.corruptions import frost_textures
from rat_tf.evaluation.corruptions.functions import FUNCTIONS, TRUNCATION_SLACK
from rat_tf.evaluation.corruptions.names import (
    CORRUPTIONS,
    SEVERITIES,
    canonical_name,
    check_names,
    check_seed,
    check_severities,
    check_severity,
)

# Bump when any corruption's output changes: it is part of the cache key.
CACHE_VERSION = 1

# Images are corrupted in chunks of this many; chunk k draws from SeedSequence(seed, (k,)).
_CHUNK = 1000
_MIN_SIZE = 8


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
    constants (`rat_tf.evaluation.corruptions.functions` documents what is exact and what
    deviates).

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
    severity = check_severity(severity)
    seed = check_seed(seed)
    batch, single = _as_batch(images)
    from_uint8 = batch.dtype == np.uint8
    fn = FUNCTIONS[name]
    out = np.empty(batch.shape, batch.dtype)
    for k, start in enumerate(range(0, len(batch), _CHUNK)):
        chunk = batch[start:start + _CHUNK]
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(k,)))
        x = chunk.astype(np.float64)
        if from_uint8:
            x /= 255.0
        y = np.clip(np.asarray(fn(x, severity, rng, from_uint8), np.float64), 0, 255)
        if from_uint8:
            out[start:start + _CHUNK] = np.floor(y + TRUNCATION_SLACK).astype(np.uint8)
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
        key["frost_textures"] = frost_textures.frost_texture_source()
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
    names = check_names(names)
    severities = check_severities(severities)
    seed = check_seed(seed)
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

