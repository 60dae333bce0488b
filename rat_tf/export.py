"""SavedModel export of a classifier (atomic), and loading it back for evaluation.

    path = export_classifier(model.classifier, "runs/x/export", {"dataset": "digits", ...})
    serve, metadata = load_exported(path)
    logits = serve(images)          # float32 NHWC in [0, 1], any batch size

The SavedModel holds the classifier alone (any input normalisation is inside it) with two
endpoints, `serve` and `serving_default` (the name TF Serving calls), both
`float32[None, H, W, C] images in [0, 1] -> float32[None, num_classes] logits`. Beside the
SavedModel files, `rat_tf_metadata.json` (`METADATA_FILENAME`) holds the metadata dict.

Atomicity: the export is written into a temporary sibling directory and renamed into place.
An existing export at the target is first renamed aside, then deleted once the new one is in
place, so the target path holds either the old complete export or the new complete export,
never a half-written one (between the two renames it briefly does not exist).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from typing import Any, Callable, Mapping, Optional, Sequence
import uuid

import keras
import numpy as np
import tensorflow as tf

METADATA_FILENAME = "rat_tf_metadata.json"
ENDPOINTS: tuple[str, ...] = ("serve", "serving_default")
_SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")


class ExportError(OSError):
    """The export target cannot be written (or holds something that must not be replaced)."""


def _is_replaceable(path: str) -> bool:
    """An existing target may be replaced only if it is an empty dir or an earlier export."""
    if not os.path.isdir(path) or os.path.islink(path):
        return False
    entries = os.listdir(path)
    return not entries or any(name in entries for name in _SAVED_MODEL_FILES + (METADATA_FILENAME,))


def check_export_target(export_dir: str) -> str:
    """Checks, without writing a model, that `export_dir` can receive an export.

    Creates the parent directory if needed and probes it with a temporary directory (a real
    write, so it also works where permission bits do not tell the whole story).

    Args:
      export_dir: the target path.

    Returns:
      The absolute target path.

    Raises:
      ExportError: with a one-line reason, if the target cannot be written or already holds
        something other than an empty directory or an earlier export.
    """
    if not export_dir:
        raise ExportError("export directory must be a non-empty path")
    target = os.path.abspath(os.path.expanduser(export_dir))
    if os.path.lexists(target) and not _is_replaceable(target):
        raise ExportError(f"cannot export to {target}: it exists and is neither an empty "
                          "directory nor an earlier SavedModel export; refusing to replace it")
    parent = os.path.dirname(target)
    blocker = parent
    while blocker and not os.path.exists(blocker):
        blocker = os.path.dirname(blocker) if os.path.dirname(blocker) != blocker else ""
    if blocker and not os.path.isdir(blocker):
        raise ExportError(f"cannot export to {target}: {blocker} is a file, not a directory")
    try:
        os.makedirs(parent, exist_ok=True)
        probe = tempfile.mkdtemp(prefix=f".{os.path.basename(target)}.probe-", dir=parent)
        os.rmdir(probe)
    except OSError as err:
        raise ExportError(f"cannot export to {target}: directory {parent} is not writable "
                          f"({err.strerror or err})") from None
    return target


def _jsonable(value: Any) -> Any:
    """Converts numpy scalars/arrays, tuples and non-finite floats into plain JSON values."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def _input_shape(classifier: keras.Model, input_shape: Optional[Sequence[int]]) -> tuple[int, ...]:
    if input_shape is None:
        try:
            input_shape = tuple(classifier.input_shape[1:])
        except (AttributeError, TypeError, ValueError) as err:
            raise ValueError("cannot infer the classifier's input shape; pass input_shape="
                             ) from err
    shape = tuple(int(d) for d in input_shape)
    if len(shape) != 3 or any(d < 1 for d in shape):
        raise ValueError(f"input_shape must be (height, width, channels), got {input_shape}")
    return shape


def _replace_directory(source: str, target: str) -> None:
    """Renames `source` to `target`; an existing `target` is moved aside, then deleted."""
    if not os.path.lexists(target):
        os.rename(source, target)
        return
    aside = os.path.join(os.path.dirname(target),
                         f".{os.path.basename(target)}.old-{uuid.uuid4().hex[:8]}")
    os.rename(target, aside)
    try:
        os.rename(source, target)
    except BaseException:
        os.rename(aside, target)  # put the old export back
        raise
    shutil.rmtree(aside, ignore_errors=True)


def export_classifier(classifier: keras.Model, export_dir: str, metadata: Mapping[str, Any], *,
                      input_shape: Optional[Sequence[int]] = None) -> str:
    """Writes `classifier` as a SavedModel with `serve` / `serving_default`, atomically.

    Args:
      classifier: a Keras model mapping float32 NHWC images in [0, 1] to logits. It is called
        with `training=False`.
      export_dir: the target directory (replaced if it holds an earlier export).
      metadata: JSON-serialisable dict (numpy values and tuples are converted) written to
        `<export_dir>/rat_tf_metadata.json`.
      input_shape: (H, W, C); default: the classifier's input shape.

    Returns:
      The absolute path of the export.

    Raises:
      ExportError: the target is not writable or holds something else.
      ValueError: the input shape cannot be determined.
    """
    target = check_export_target(export_dir)
    shape = _input_shape(classifier, input_shape)
    signature = [tf.TensorSpec((None,) + shape, tf.float32, name="images")]
    metadata_text = json.dumps(_jsonable(dict(metadata)), indent=2, sort_keys=True)

    staging = tempfile.mkdtemp(prefix=f".{os.path.basename(target)}.tmp-",
                               dir=os.path.dirname(target))
    try:
        archive = keras.export.ExportArchive()
        archive.track(classifier)

        def logits(images):
            return classifier(images, training=False)

        for name in ENDPOINTS:
            archive.add_endpoint(name, logits, input_signature=signature)
        archive.write_out(staging, verbose=False)
        with open(os.path.join(staging, METADATA_FILENAME), "w", encoding="utf-8") as f:
            f.write(metadata_text + "\n")
        _replace_directory(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def read_metadata(path: str) -> dict[str, Any]:
    """Returns the metadata dict of an export ({} if it has no metadata file)."""
    file = os.path.join(path, METADATA_FILENAME)
    if not os.path.exists(file):
        return {}
    with open(file, encoding="utf-8") as f:
        return json.load(f)


def load_exported(path: str, endpoint: str = "serve", output_key: Optional[str] = None
                  ) -> tuple[Callable[[Any], tf.Tensor], dict[str, Any]]:
    """Loads a SavedModel endpoint for evaluation: the one loader of the project.

    Args:
      path: a directory written by `export_classifier`, or any SavedModel.
      endpoint: the endpoint (a restored function or a signature) mapping images to outputs.
      output_key: the output to take when the endpoint returns a dict of several.

    Returns:
      `(serve, metadata)`: `serve(images)` maps float32 NHWC images in [0, 1] (numpy or tensor,
      any batch size) to the endpoint's output; `metadata` is the dict written beside the model
      ({} for a SavedModel that rat_tf did not write).

    Raises:
      ValueError: `path` is not a SavedModel directory, has no such endpoint, or returns a dict
        without a usable key.
    """
    path = os.path.abspath(os.path.expanduser(path))
    if not any(os.path.exists(os.path.join(path, f)) for f in _SAVED_MODEL_FILES):
        raise ValueError(f"{path} is not a SavedModel directory (no saved_model.pb)")
    loaded = tf.saved_model.load(path)
    signatures = getattr(loaded, "signatures", {})
    fn = getattr(loaded, endpoint, None)
    if fn is None and endpoint in signatures:
        fn = signatures[endpoint]
    if fn is None:
        available = sorted(set(signatures) | {a for a in ENDPOINTS if hasattr(loaded, a)})
        raise ValueError(f"SavedModel has no endpoint {endpoint!r}; available: {', '.join(available) or 'none'}")

    def serve(images):
        out = fn(tf.convert_to_tensor(images, tf.float32))
        if isinstance(out, dict):
            if output_key is None and len(out) != 1:
                raise ValueError(f"endpoint {endpoint!r} returns {sorted(out)}; pass --output_key")
            out = out[output_key] if output_key is not None else next(iter(out.values()))
        return out

    serve.saved_model = loaded  # type: ignore[attr-defined]  # keeps the variables alive with `serve`
    return serve, read_metadata(path)
