"""Atomic file writes: a reader sees the old file or the new one, never half of one."""

from __future__ import annotations

from collections.abc import Callable
import json
import os
import tempfile
from typing import IO, Any


def atomic_write(path: str, write: Callable[[IO], None], mode: str = "w") -> str:
    """Writes `path` through `write(file)` into a temporary sibling, then renames it into place.

    Args:
      path: the target file.
      write: called with the open temporary file.
      mode: "w" (text, UTF-8) or "wb".

    Returns:
      The absolute path written.
    """
    path = os.path.abspath(path)
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    prefix, suffix = temporary_names(path)
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=directory)
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def temporary_names(path: str) -> tuple[str, str]:
    """The (prefix, suffix) of the temporary siblings `atomic_write` makes for `path`."""
    return f".{os.path.basename(path)}.", ".tmp"


def remove_leftovers(directory: str, prefix: str, suffix: str) -> list[str]:
    """Deletes the files in `directory` named `prefix...suffix`: what a writer killed mid-write
    left. Only for a directory no other process writes into at the same time.

    Returns:
      The names removed.
    """
    try:
        names = [n for n in os.listdir(directory) if n.startswith(prefix) and n.endswith(suffix)]
    except FileNotFoundError:
        return []
    for name in names:
        try:
            os.remove(os.path.join(directory, name))
        except FileNotFoundError:
            pass
    return names


def atomic_write_text(path: str, text: str) -> str:
    """Writes `text` to `path` atomically."""
    return atomic_write(path, lambda f: f.write(text))


def atomic_savez(path: str, **arrays) -> str:
    """Writes `arrays` to `path` as one uncompressed `.npz` file (`np.savez`), atomically."""
    import numpy as np  # pylint: disable=g-import-not-at-top  (this module stays stdlib-only)

    return atomic_write(path, lambda f: np.savez(f, **arrays), mode="wb")


def read_json_object(path: str) -> dict[str, Any] | None:
    """The JSON object in `path`, or None when it is missing, unreadable or not an object."""
    try:
        with open(path, encoding="utf-8") as f:
            value = json.load(f)
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None
