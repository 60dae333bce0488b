"""Building blocks shared by the architecture builders: argument checks, input normalisation,
PyTorch-style convolutions and BatchNorm.

Kept apart from the registry in `rat_tf.architectures` so that the builders import these
without importing the package that imports them.
"""

from __future__ import annotations

from collections.abc import Sequence
import math

import keras

from rat_tf import validation

# PyTorch's BatchNorm2d defaults; PyTorch's momentum=0.1 is Keras' momentum=0.9.
BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5


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
        dims = tuple(validation.check_int("input_shape", d, minimum=1) for d in input_shape)
        ok = len(dims) == 3
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(
            "input_shape must be (height, width, channels), three positive integers, "
            f"got {input_shape!r}.")
    return dims


def validate_num_classes(num_classes: int) -> int:
    """Checks that `num_classes` is an integer of at least 2.

    Args:
        num_classes: Number of classes.

    Returns:
        `num_classes` as a Python int.

    Raises:
        ValueError: If it is not an integer >= 2.
    """
    return validation.check_int("num_classes", num_classes, minimum=2)


def input_normalization(channels: int,
                        mean: Sequence[float] | None = None,
                        std: Sequence[float] | None = None) -> keras.layers.Layer | None:
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
                 mean: Sequence[float] | None,
                 std: Sequence[float] | None) -> tuple[keras.KerasTensor, keras.KerasTensor]:
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




def preact_basic_block(x: keras.KerasTensor, filters: int, strides: int, name: str,
                       synchronized_bn: bool, project: bool) -> keras.KerasTensor:
    """A pre-activation basic block: BN-ReLU, then conv3x3(stride)-BN-ReLU-conv3x3, plus shortcut.

    Args:
        x: Input tensor (NHWC).
        filters: Output channels.
        strides: Stride of the first convolution and of the shortcut.
        name: Prefix of the layer names.
        synchronized_bn: Whether BatchNorm is synchronised across replicas.
        project: Whether the shortcut is a 1x1 convolution (no bias, no BN) of the
            pre-activated input; otherwise it is the raw input.

    Returns:
        The block's output tensor.
    """
    preact = batch_norm(f"{name}_bn1", synchronized_bn)(x)
    preact = keras.layers.ReLU(name=f"{name}_relu1")(preact)
    shortcut = conv2d(preact, filters, 1, strides, f"{name}_shortcut") if project else x
    out = conv2d(preact, filters, 3, strides, f"{name}_conv1")
    out = batch_norm(f"{name}_bn2", synchronized_bn)(out)
    out = keras.layers.ReLU(name=f"{name}_relu2")(out)
    out = conv2d(out, filters, 3, 1, f"{name}_conv2")
    return keras.layers.Add(name=f"{name}_add")([out, shortcut])
