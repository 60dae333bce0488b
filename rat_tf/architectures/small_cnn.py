"""The TRADES "SmallCNN" for MNIST-sized images (yaodongyu/TRADES models/small_cnn.py)."""

from __future__ import annotations

from collections.abc import Sequence

import keras

from rat_tf.architectures import layers as _arch


def small_cnn(input_shape: Sequence[int],
              num_classes: int,
              *,
              mean: Sequence[float] | None = None,
              std: Sequence[float] | None = None,
              name: str = "small_cnn") -> keras.Model:
    """Builds the TRADES SmallCNN, mapping [0, 1] images to logits.

    conv32-conv32-maxpool-conv64-conv64-maxpool-flatten-dense200-dense200-dense(num_classes),
    3x3 convolutions and ReLU throughout, no BatchNorm.

    Differences from the reference:
      * Convolutions use padding="same" (the reference uses no padding), so 8x8 inputs (sklearn
        digits) shrink only by pooling: 8x8 -> 4x4 -> 2x2. Inputs of 28x28x1 and 32x32x3 work
        too; the first dense layer is wider than the reference's on 28x28.
      * The reference's dropout(0.5) between the two 200-unit layers is omitted: adversarial
        training of tiny models works better without it.
      * The logits layer keeps Keras' default init (the reference zero-initialises it, which
        gives zero input gradients, and so a powerless first attack, at initialisation).

    Args:
        input_shape: (height, width, channels), height and width at least 4.
        num_classes: Number of logits, at least 2.
        mean: Optional per-channel mean for the in-model input normalisation.
        std: Optional per-channel standard deviation for the in-model input normalisation.
        name: Model name.

    Returns:
        A functional `keras.Model`.

    Raises:
        ValueError: On a bad shape (or one smaller than 4x4), class count, mean or std.
    """
    inputs, x = _arch.model_inputs(input_shape, num_classes, mean, std)
    if input_shape[0] < 4 or input_shape[1] < 4:
        raise ValueError(
            f"small_cnn needs images of at least 4x4 (two 2x2 poolings), got {input_shape!r}.")

    def conv(filters, layer_name):
        # Kaiming normal with fan_in, the reference's nn.init.kaiming_normal_ default.
        return keras.layers.Conv2D(
            filters, 3, padding="same", activation="relu", kernel_initializer="he_normal",
            name=layer_name)

    x = conv(32, "conv1")(x)
    x = conv(32, "conv2")(x)
    x = keras.layers.MaxPooling2D(2, name="pool1")(x)
    x = conv(64, "conv3")(x)
    x = conv(64, "conv4")(x)
    x = keras.layers.MaxPooling2D(2, name="pool2")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(200, activation="relu", name="fc1")(x)
    x = keras.layers.Dense(200, activation="relu", name="fc2")(x)
    # float32 logits even under a mixed-precision policy.
    logits = keras.layers.Dense(num_classes, dtype="float32", name="logits")(x)
    return keras.Model(inputs, logits, name=name)
