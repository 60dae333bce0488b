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

import dataclasses
import math
import numbers
import re
from typing import Optional, Sequence

import keras

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

# PyTorch's BatchNorm2d defaults; PyTorch's momentum=0.1 is Keras' momentum=0.9.
BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5


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
    depth: Optional[int] = None
    widen_factor: Optional[int] = None


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
          mean: Optional[Sequence[float]] = None,
          std: Optional[Sequence[float]] = None,
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
    # Imported here so that the submodules can import the helpers below from this package
    # without a circular import.
    if spec.family == "small_cnn":
        from rat_tf.architectures import small_cnn
        return small_cnn.small_cnn(input_shape, num_classes, mean=mean, std=std)
    if spec.family == "preact_resnet":
        from rat_tf.architectures import preact_resnet
        return preact_resnet.preact_resnet18(
            input_shape, num_classes, mean=mean, std=std, synchronized_bn=synchronized_bn)
    from rat_tf.architectures import wide_resnet
    return wide_resnet.wide_resnet(
        input_shape, num_classes, depth=spec.depth, widen_factor=spec.widen_factor,
        mean=mean, std=std, synchronized_bn=synchronized_bn)


# -------------------------------------------------------------------------------------------
# Helpers shared by the builders.
# -------------------------------------------------------------------------------------------


def validate_input_shape(input_shape: Sequence[int]) -> tuple[int, int, int]:
    """Checks that `input_shape` is (height, width, channels) of positive integers.

    Args:
        input_shape: The shape of one image.

    Returns:
        The shape as a tuple of three Python ints.

    Raises:
        ValueError: If the shape is not three positive integers.
    """
    try:
        ok = len(input_shape) == 3 and all(
            isinstance(d, numbers.Integral) and not isinstance(d, bool) and d > 0
            for d in input_shape)
    except TypeError:
        ok = False
    if not ok:
        raise ValueError(
            "input_shape must be (height, width, channels), three positive integers, "
            f"got {input_shape!r}.")
    return tuple(int(d) for d in input_shape)


def validate_num_classes(num_classes: int) -> int:
    """Checks that `num_classes` is an integer of at least 2.

    Args:
        num_classes: Number of classes.

    Returns:
        `num_classes` as a Python int.

    Raises:
        ValueError: If it is not an integer >= 2.
    """
    if (not isinstance(num_classes, numbers.Integral) or isinstance(num_classes, bool)
            or num_classes < 2):
        raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}.")
    return int(num_classes)


def input_normalization(channels: int,
                        mean: Optional[Sequence[float]] = None,
                        std: Optional[Sequence[float]] = None) -> Optional[keras.layers.Layer]:
    """Returns a fixed `(x - mean) / std` layer, or None when no normalisation is asked for.

    The layer is a `keras.layers.Normalization` built from constants: it has no weights, is
    part of the model config and survives `model.export`.

    Args:
        channels: Number of image channels.
        mean: Per-channel mean, or None for 0.
        std: Per-channel standard deviation, or None for 1.

    Returns:
        The layer, or None when both `mean` and `std` are None.

    Raises:
        ValueError: If `mean` or `std` does not hold `channels` finite numbers, or an entry
            of `std` is not positive.
    """
    if mean is None and std is None:
        return None

    def as_floats(values, arg):
        if values is None:
            return None
        try:
            floats = [float(v) for v in values]
        except (TypeError, ValueError):
            raise ValueError(
                f"{arg} must be a sequence of {channels} numbers (one per channel), "
                f"got {values!r}.") from None
        if len(floats) != channels or not all(math.isfinite(v) for v in floats):
            raise ValueError(
                f"{arg} must hold {channels} finite numbers (one per channel), got {values!r}.")
        return floats

    mean_values = as_floats(mean, "mean") or [0.0] * channels
    std_values = as_floats(std, "std") or [1.0] * channels
    if any(s <= 0.0 for s in std_values):
        raise ValueError(f"std entries must all be > 0, got {std!r}.")
    return keras.layers.Normalization(
        axis=-1, mean=mean_values, variance=[s * s for s in std_values],
        name="input_normalization")


def model_inputs(input_shape: Sequence[int],
                 num_classes: int,
                 mean: Optional[Sequence[float]],
                 std: Optional[Sequence[float]]) -> tuple[keras.KerasTensor, keras.KerasTensor]:
    """Validates the common arguments and returns the input tensor and the normalised input.

    Args:
        input_shape: (height, width, channels) of one image.
        num_classes: Number of classes.
        mean: Per-channel mean or None.
        std: Per-channel standard deviation or None.

    Returns:
        `(inputs, x)`: the `keras.Input` and the tensor after input normalisation (the input
        itself when there is none).

    Raises:
        ValueError: On a bad shape, class count, mean or std.
    """
    input_shape = validate_input_shape(input_shape)
    validate_num_classes(num_classes)
    normalization = input_normalization(input_shape[-1], mean, std)
    inputs = keras.Input(shape=input_shape, dtype="float32", name="images")
    x = inputs if normalization is None else normalization(inputs)
    return inputs, x


def batch_norm(name: str, synchronized: bool = False) -> keras.layers.BatchNormalization:
    """BatchNormalization with PyTorch's defaults translated to Keras.

    Args:
        name: Layer name.
        synchronized: Whether to synchronise batch statistics across replicas.

    Returns:
        The layer.
    """
    return keras.layers.BatchNormalization(
        momentum=BN_MOMENTUM, epsilon=BN_EPSILON, synchronized=synchronized, name=name)


def conv2d(x: keras.KerasTensor, filters: int, kernel_size: int, strides: int,
           name: str) -> keras.KerasTensor:
    """A bias-free convolution with PyTorch's symmetric `padding=kernel_size // 2`.

    For stride 1 this is padding="same". For stride 2 an explicit ZeroPadding2D keeps
    PyTorch's alignment (output pixel i centred on input pixel 2i, like the 1x1 shortcut);
    Keras' "same" would pad only the bottom/right and shift the window by one pixel.

    Args:
        x: Input tensor (NHWC).
        filters: Output channels.
        kernel_size: Square kernel size (odd).
        strides: Stride.
        name: Layer name (the padding layer, if any, gets a "_pad" suffix).

    Returns:
        The output tensor.
    """
    padding = "same"
    if strides != 1 and kernel_size > 1:
        x = keras.layers.ZeroPadding2D(kernel_size // 2, name=f"{name}_pad")(x)
        padding = "valid"
    return keras.layers.Conv2D(
        filters, kernel_size, strides=strides, padding=padding, use_bias=False,
        kernel_initializer=conv_initializer(), name=name)(x)


def conv_initializer() -> keras.initializers.Initializer:
    """He-normal with fan_out, N(0, 2 / (k * k * out_channels)), as in the reference code.

    Returns:
        A fresh initializer.
    """
    return keras.initializers.VarianceScaling(
        scale=2.0, mode="fan_out", distribution="untruncated_normal")


__all__ = [
    "ARCHITECTURES",
    "ArchitectureSpec",
    "build",
    "parse",
]
