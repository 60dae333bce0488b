"""Model architectures behind one registry of name -> builder.

Every builder returns a functional `keras.Model` that maps float32 NHWC images in [0, 1] to
logits (no softmax). Optional per-channel input normalisation `(x - mean) / std` is the model's
first layer, so a model (and its SavedModel export) takes raw [0, 1] images and attacks work in
pixel space.

Names (case-insensitive):
  * "small_cnn": the TRADES SmallCNN for MNIST-sized inputs (8x8 and up).
  * "preact_resnet18": PreActResNet-18.
  * "wrn-D-K": WideResNet of depth D ((D - 4) % 6 == 0) and widen factor K, e.g. "wrn-34-10";
    "wide_resnet" is an alias of "wrn-34-10".

Example:
    model = build("wrn-16-2", (32, 32, 3), 10,
                  mean=(0.4914, 0.4822, 0.4465), std=(0.2471, 0.2435, 0.2616))
"""

from __future__ import annotations

from collections.abc import Sequence
import dataclasses
import re

import keras

from rat_tf.architectures import preact_resnet, small_cnn, wide_resnet

# Canonical names. "wrn-D-K" accepts any valid depth and width; the one listed is the one used
# in the literature and the target of the "wide_resnet" alias.
ARCHITECTURES: tuple[str, ...] = ("small_cnn", "preact_resnet18", "wrn-34-10")

_ALIASES = {
    "wide_resnet": "wrn-34-10",
    "wideresnet": "wrn-34-10",
    "preactresnet18": "preact_resnet18",
    "preact-resnet18": "preact_resnet18",
    "preact_resnet_18": "preact_resnet18",
    "small-cnn": "small_cnn",
    "smallcnn": "small_cnn",
}
_WRN_PATTERN = re.compile(r"^wrn[-_](\d+)[-_](\d+)$")
_ALLOWED = (
    "allowed: small_cnn, preact_resnet18, wrn-D-K with (D - 4) % 6 == 0 and K >= 1 "
    "(e.g. wrn-34-10, wrn-28-10, wrn-16-2), wide_resnet (= wrn-34-10)"
)

@dataclasses.dataclass(frozen=True)
class ArchitectureSpec:
    """A parsed architecture name.

    Attributes:
        name: Canonical name, e.g. "wrn-34-10".
        family: One of "small_cnn", "preact_resnet", "wide_resnet".
        depth: Network depth (18 for PreActResNet-18, D for WRN-D-K); None for small_cnn.
        widen_factor: The WRN widen factor K; None for the other families.
    """

    name: str
    family: str
    depth: int | None = None
    widen_factor: int | None = None


def parse(name: str) -> ArchitectureSpec:
    """Validates an architecture name and returns its parsed, canonical form.

    Args:
        name: An architecture name or alias (case-insensitive, surrounding spaces ignored).

    Returns:
        The `ArchitectureSpec` of the architecture.

    Raises:
        ValueError: If the name is unknown or a WRN depth or width is invalid.
    """
    if not isinstance(name, str):
        raise ValueError(f"architecture name must be a string, got {name!r}; {_ALLOWED}.")
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key == "small_cnn":
        return ArchitectureSpec(name="small_cnn", family="small_cnn")
    if key == "preact_resnet18":
        return ArchitectureSpec(name="preact_resnet18", family="preact_resnet", depth=18)
    match = _WRN_PATTERN.match(key)
    if match:
        depth, widen = int(match.group(1)), int(match.group(2))
        if depth < 10 or (depth - 4) % 6 != 0:
            raise ValueError(
                f"architecture name {name!r}: WideResNet depth must be 6n + 4 with n >= 1 "
                f"(10, 16, 22, 28, 34, ...), got {depth}; {_ALLOWED}.")
        if widen < 1:
            raise ValueError(
                f"architecture name {name!r}: WideResNet widen factor must be >= 1, "
                f"got {widen}; {_ALLOWED}.")
        return ArchitectureSpec(
            name=f"wrn-{depth}-{widen}", family="wide_resnet", depth=depth, widen_factor=widen)
    raise ValueError(f"Unknown architecture name {name!r}; {_ALLOWED}.")


def build(name: str,
          input_shape: Sequence[int],
          num_classes: int,
          *,
          mean: Sequence[float] | None = None,
          std: Sequence[float] | None = None,
          synchronized_bn: bool = False) -> keras.Model:
    """Builds an architecture by name.

    Args:
        name: Architecture name, see `parse`.
        input_shape: (height, width, channels) of one image.
        num_classes: Number of output logits, at least 2.
        mean: Optional per-channel mean (length `channels`) subtracted inside the model; None
            means 0 (no normalisation layer at all when `std` is None too).
        std: Optional per-channel standard deviation (length `channels`, all > 0) dividing
            inside the model; None means 1.
        synchronized_bn: Whether BatchNorm layers synchronise their batch statistics across
            replicas. small_cnn has no BatchNorm and ignores it.

    Returns:
        A functional `keras.Model` mapping [0, 1] images to logits.

    Raises:
        ValueError: On an unknown name, a bad input shape, `num_classes < 2` or malformed
            `mean` / `std`.
    """
    spec = parse(name)
    if spec.family == "small_cnn":
        return small_cnn.small_cnn(input_shape, num_classes, mean=mean, std=std)
    if spec.family == "preact_resnet":
        return preact_resnet.preact_resnet18(
            input_shape, num_classes, mean=mean, std=std, synchronized_bn=synchronized_bn)
    return wide_resnet.wide_resnet(
        input_shape, num_classes, depth=spec.depth, widen_factor=spec.widen_factor,
        mean=mean, std=std, synchronized_bn=synchronized_bn)


__all__ = [
    "ARCHITECTURES",
    "ArchitectureSpec",
    "build",
    "parse",
]
