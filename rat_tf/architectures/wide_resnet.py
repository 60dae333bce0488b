"""WideResNet-D-K as in the Madry / TRADES code (yaodongyu/TRADES models/wideresnet.py).

A 3x3 stem with 16 channels, three groups of n = (D - 4) / 6 pre-activation basic blocks with
16K, 32K and 64K channels (strides 1, 2, 2), a final BN-ReLU, global average pooling and a
linear head. Dropout rate 0. WRN-34-10 with 10 classes has 46,160,474 trainable parameters,
the TRADES reference count (the reference's unused `sub_block1` is not built).
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

from rat_tf import validation
from rat_tf.architectures import layers as _arch


def wide_basic_block(x: keras.KerasTensor,
                     filters: int,
                     strides: int,
                     name: str,
                     synchronized_bn: bool = False) -> keras.KerasTensor:
    """One WRN basic block with the reference's "equalInOut" shortcut logic.

    When input and output channels are equal, the shortcut is the raw input and the residual
    branch is BN-ReLU-conv3x3(stride)-BN-ReLU-conv3x3. Otherwise the input is pre-activated
    (BN-ReLU) once, and both the residual branch and a 1x1 shortcut convolution (stride
    `strides`, no bias) read the pre-activated tensor. Arguments as `layers.preact_basic_block`.
    """
    return _arch.preact_basic_block(x, filters, strides, name, synchronized_bn,
                                    project=x.shape[-1] != filters)


def wide_resnet(input_shape: Sequence[int],
                num_classes: int,
                *,
                depth: int = 34,
                widen_factor: int = 10,
                mean: Sequence[float] | None = None,
                std: Sequence[float] | None = None,
                synchronized_bn: bool = False,
                name: str | None = None) -> keras.Model:
    """Builds WideResNet-`depth`-`widen_factor`, mapping [0, 1] images to logits.

    Args:
        input_shape: (height, width, channels). Any size works (global average pooling).
        num_classes: Number of logits, at least 2.
        depth: Depth D, with (D - 4) % 6 == 0 and D >= 10.
        widen_factor: Widen factor K >= 1.
        mean: Optional per-channel mean for the in-model input normalisation.
        std: Optional per-channel standard deviation for the in-model input normalisation.
        synchronized_bn: Whether BatchNorm is synchronised across replicas.
        name: Model name; defaults to "wrn_{depth}_{widen_factor}".

    Returns:
        A functional `keras.Model`.

    Raises:
        ValueError: On a bad depth, widen factor, shape, class count, mean or std.
    """
    try:
        ok = validation.check_int("depth", depth, minimum=10) % 6 == 4
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(
            f"depth must be 6n + 4 with n >= 1 (10, 16, 22, 28, 34, ...), got {depth!r}.")
    widen_factor = validation.check_int("widen_factor", widen_factor, minimum=1)
    inputs, x = _arch.model_inputs(input_shape, num_classes, mean, std)
    blocks_per_group = (depth - 4) // 6
    x = _arch.conv2d(x, 16, 3, 1, "stem_conv")
    for group, (filters, strides) in enumerate(
            zip((16 * widen_factor, 32 * widen_factor, 64 * widen_factor), (1, 2, 2))):
        for block in range(blocks_per_group):
            x = wide_basic_block(x, filters, strides if block == 0 else 1,
                                 f"group{group + 1}_block{block + 1}", synchronized_bn)
    x = _arch.batch_norm("final_bn", synchronized_bn)(x)
    x = keras.layers.ReLU(name="final_relu")(x)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    # float32 logits even under a mixed-precision policy.
    logits = keras.layers.Dense(num_classes, dtype="float32", name="logits")(x)
    return keras.Model(inputs, logits, name=name or f"wrn_{depth}_{widen_factor}")
