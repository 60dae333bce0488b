"""PreActResNet-18 as used in the adversarial-training literature.

Follows kuangliu/pytorch-cifar `models/preact_resnet.py` (He et al. 2016, "Identity Mappings in
Deep Residual Networks"): a 3x3 stride-1 stem convolution without bias or BN, pre-activation
basic blocks ([2, 2, 2, 2] blocks of 64, 128, 256, 512 channels), average pooling and a linear
head. With 10 classes and 32x32x3 inputs it has 11,171,146 trainable parameters, the PyTorch
reference count.

Differences from the reference:
  * Global average pooling replaces `avg_pool2d(4)` (the same on 32x32 inputs, where the last
    feature map is 4x4), so larger inputs (e.g. 160px ImageNette) work.
  * Like the reference, there is no BN-ReLU between the last block and the pooling; some
    later variants add one (+1,024 parameters), which this module does not.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

from rat_tf.architectures import layers as _arch


def preact_block(x: keras.KerasTensor,
                 filters: int,
                 strides: int,
                 name: str,
                 synchronized_bn: bool = False) -> keras.KerasTensor:
    """One pre-activation basic block: BN-ReLU-conv3x3-BN-ReLU-conv3x3 plus shortcut.

    The shortcut is a 1x1 convolution (no bias, no BN) of the pre-activated input when the
    stride or the channel count changes, and the raw input otherwise. Arguments as
    `layers.preact_basic_block`.
    """
    project = strides != 1 or x.shape[-1] != filters
    return _arch.preact_basic_block(x, filters, strides, name, synchronized_bn, project)


def preact_resnet(input_shape: Sequence[int],
                  num_classes: int,
                  *,
                  blocks_per_stage: Sequence[int] = (2, 2, 2, 2),
                  mean: Sequence[float] | None = None,
                  std: Sequence[float] | None = None,
                  synchronized_bn: bool = False,
                  name: str = "preact_resnet") -> keras.Model:
    """Builds a pre-activation ResNet with basic blocks, mapping [0, 1] images to logits.

    Args:
        input_shape: (height, width, channels). Any size works (global average pooling).
        num_classes: Number of logits, at least 2.
        blocks_per_stage: Blocks in each of the four stages (64, 128, 256, 512 channels).
        mean: Optional per-channel mean for the in-model input normalisation.
        std: Optional per-channel standard deviation for the in-model input normalisation.
        synchronized_bn: Whether BatchNorm is synchronised across replicas.
        name: Model name.

    Returns:
        A functional `keras.Model`.

    Raises:
        ValueError: On a bad shape, class count, mean, std or `blocks_per_stage`.
    """
    inputs, x = _arch.model_inputs(input_shape, num_classes, mean, std)
    blocks_per_stage = tuple(blocks_per_stage)
    if len(blocks_per_stage) != 4 or any(
            not isinstance(n, int) or n < 1 for n in blocks_per_stage):
        raise ValueError(
            f"blocks_per_stage must be four integers >= 1, got {blocks_per_stage!r}.")
    x = _arch.conv2d(x, 64, 3, 1, "stem_conv")
    for stage, (filters, num_blocks) in enumerate(zip((64, 128, 256, 512), blocks_per_stage)):
        for block in range(num_blocks):
            strides = 2 if stage > 0 and block == 0 else 1
            x = preact_block(x, filters, strides, f"stage{stage + 1}_block{block + 1}",
                             synchronized_bn)
    # No BN-ReLU after the last block, as in the reference (see the module docstring).
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    # float32 logits even under a mixed-precision policy.
    logits = keras.layers.Dense(num_classes, dtype="float32", name="logits")(x)
    return keras.Model(inputs, logits, name=name)


def preact_resnet18(input_shape: Sequence[int],
                    num_classes: int,
                    *,
                    mean: Sequence[float] | None = None,
                    std: Sequence[float] | None = None,
                    synchronized_bn: bool = False) -> keras.Model:
    """Builds PreActResNet-18 ([2, 2, 2, 2] blocks), named "preact_resnet18".

    Args:
        input_shape: (height, width, channels).
        num_classes: Number of logits, at least 2.
        mean: Optional per-channel mean for the in-model input normalisation.
        std: Optional per-channel standard deviation for the in-model input normalisation.
        synchronized_bn: Whether BatchNorm is synchronised across replicas.

    Returns:
        A functional `keras.Model`.
    """
    return preact_resnet(input_shape, num_classes, blocks_per_stage=(2, 2, 2, 2), mean=mean,
                         std=std, synchronized_bn=synchronized_bn, name="preact_resnet18")
