"""The same classifier in PyTorch: a rat_tf export's weights in an equivalent torch module.

    classifier = keras_from_export("runs/digits-rat/export")     # the Keras model, weights and all
    module = to_torch(classifier)                                  # NCHW images in [0, 1] -> logits
    check_equal(classifier, module, x_test)                        # max |logit difference| <= 1e-4

The official AutoAttack is PyTorch code. To run it on *the same weights* as our TensorFlow
AutoAttack (rather than on TensorFlow through a bridge, which mixes the two frameworks' numerics
into the comparison), the Keras functional graph is walked layer by layer (each layer's `input`
and `output` tensors; every layer of rat_tf's architectures is called once) and each layer becomes
its torch operation with the Keras weights: input normalisation, convolutions (with TensorFlow's
"same" padding, the extra pixel after), BatchNorm in inference mode with Keras' epsilon, ReLU, max pooling, flatten (in
Keras' NHWC order), dense layers, additions and global average pooling. Anything else is refused.

torch is an optional benchmark dependency (benchmarks/requirements.txt); nothing in rat_tf or the
tests imports this module.
"""

from __future__ import annotations

import json
import os
from typing import Any

import keras
import numpy as np
import tensorflow as tf
import torch
import torch.nn.functional as F  # noqa: N812

from rat_tf import architectures
from rat_tf import export as export_lib


def keras_from_export(path: str) -> keras.Model:
    """The Keras classifier of a rat_tf export: rebuilt from its metadata, weights from the SavedModel.

    Raises:
      ValueError: the export has no rat_tf metadata, or a weight is missing or of another shape.
    """
    with open(os.path.join(path, export_lib.METADATA_FILENAME), encoding="utf-8") as f:
        metadata = json.load(f)
    norm = metadata.get("normalization") or {}
    classifier = architectures.build(metadata["arch"], tuple(metadata["input_shape"]), metadata["num_classes"],
                                     mean=norm.get("mean"), std=norm.get("std"))
    saved = {v.name.split(":")[0]: v for v in tf.saved_model.load(path).variables}
    for weight in classifier.weights:
        if weight.path not in saved:
            if weight.path.startswith("input_normalization/"):
                continue  # rebuilt from the metadata's mean and std
            raise ValueError(f"{path}: no saved weight {weight.path!r}")
        value = saved[weight.path].numpy()
        if tuple(value.shape) != tuple(weight.shape):
            raise ValueError(f"{path}: {weight.path} has shape {value.shape}, the model {weight.shape}")
        weight.assign(value)
    return classifier


def _t(value) -> torch.Tensor:
    return torch.from_numpy(np.asarray(value, np.float32).copy())


class _Op(torch.nn.Module):
    """One Keras layer as a torch operation on NCHW (or flat) tensors."""

    def __init__(self, layer: keras.layers.Layer):
        super().__init__()
        self.kind = type(layer).__name__
        config = layer.get_config()
        self.activation = config.get("activation", "linear")
        if self.activation not in ("linear", "relu"):
            raise ValueError(f"{layer.name}: activation {self.activation!r} is not ported")
        if self.kind == "Normalization":
            mean = np.asarray(layer.mean).reshape(-1)
            std = np.sqrt(np.asarray(layer.variance).reshape(-1))
            self.register_buffer("mean", _t(mean).view(1, -1, 1, 1))
            self.register_buffer("std", _t(np.maximum(std, keras.backend.epsilon())).view(1, -1, 1, 1))
        elif self.kind == "Conv2D":
            kernel = layer.kernel.numpy()                         # (kh, kw, in, out) -> (out, in, kh, kw)
            self.weight = torch.nn.Parameter(_t(kernel.transpose(3, 2, 0, 1)), requires_grad=False)
            self.bias = (torch.nn.Parameter(_t(layer.bias.numpy()), requires_grad=False)
                         if layer.use_bias else None)
            self.stride = tuple(config["strides"])
            self.kernel_size = tuple(kernel.shape[:2])
            self.same = config["padding"] == "same"
            if tuple(config.get("dilation_rate", (1, 1))) != (1, 1) or config.get("groups", 1) != 1:
                raise ValueError(f"{layer.name}: dilated or grouped convolutions are not ported")
        elif self.kind == "ZeroPadding2D":
            (top, bottom), (left, right) = config["padding"]
            self.pad = (left, right, top, bottom)
        elif self.kind == "BatchNormalization":
            if config["axis"] not in (-1, 3, [3], [-1]):
                raise ValueError(f"{layer.name}: BatchNorm over axis {config['axis']} is not ported")
            self.register_buffer("moving_mean", _t(layer.moving_mean.numpy()))
            self.register_buffer("moving_variance", _t(layer.moving_variance.numpy()))
            self.register_buffer("gamma", _t(layer.gamma.numpy()) if layer.scale else None)
            self.register_buffer("beta", _t(layer.beta.numpy()) if layer.center else None)
            self.epsilon = float(config["epsilon"])
        elif self.kind == "MaxPooling2D":
            if config["padding"] != "valid":
                raise ValueError(f"{layer.name}: only 'valid' max pooling is ported")
            self.pool, self.stride = tuple(config["pool_size"]), tuple(config["strides"])
        elif self.kind == "Dense":
            self.weight = torch.nn.Parameter(_t(layer.kernel.numpy().T), requires_grad=False)
            self.bias = (torch.nn.Parameter(_t(layer.bias.numpy()), requires_grad=False)
                         if layer.use_bias else None)
        elif self.kind not in ("ReLU", "Flatten", "Add", "GlobalAveragePooling2D", "Activation"):
            raise ValueError(f"{layer.name}: layer type {self.kind} is not ported")
        if self.kind == "ReLU" and (config.get("max_value") is not None or config.get("negative_slope", 0.0)
                                    or config.get("threshold", 0.0)):
            raise ValueError(f"{layer.name}: only the plain ReLU is ported")

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        x = inputs[0]
        kind = self.kind
        if kind == "Normalization":
            out = (x - self.mean) / self.std
        elif kind == "Conv2D":
            if self.same:  # TensorFlow's "same": the extra pixel, if any, after
                pads = []
                for size, k, stride in zip(x.shape[2:], self.kernel_size, self.stride):
                    total = max((-(-size // stride) - 1) * stride + k - size, 0)
                    pads.append((total // 2, total - total // 2))
                x = F.pad(x, (*pads[1], *pads[0]))
            out = F.conv2d(x, self.weight, self.bias, stride=self.stride)
        elif kind == "ZeroPadding2D":
            out = F.pad(x, self.pad)
        elif kind == "BatchNormalization":
            out = F.batch_norm(x, self.moving_mean, self.moving_variance, self.gamma, self.beta,
                               training=False, eps=self.epsilon)
        elif kind == "ReLU":
            out = F.relu(x)
        elif kind == "MaxPooling2D":
            out = F.max_pool2d(x, self.pool, self.stride)
        elif kind == "Flatten":
            out = x.permute(0, 2, 3, 1).reshape(x.shape[0], -1) if x.dim() == 4 else x.reshape(x.shape[0], -1)
        elif kind == "Dense":
            out = F.linear(x, self.weight, self.bias)
        elif kind == "Add":
            out = inputs[0]
            for other in inputs[1:]:
                out = out + other
        elif kind == "GlobalAveragePooling2D":
            out = x.mean(dim=(2, 3))
        else:  # Activation
            out = x
        return F.relu(out) if self.activation == "relu" else out


class TorchClassifier(torch.nn.Module):
    """A Keras functional classifier as a torch module: NCHW float images in [0, 1] -> logits."""

    def __init__(self, model: keras.Model):
        super().__init__()
        self.ops = torch.nn.ModuleDict()
        self.graph: list[tuple[str, list[int], int]] = []   # (layer name, input ids, output id)
        self.input_id = id(model.inputs[0])
        self.output_id = id(model.outputs[0])
        for layer in model.layers:
            if isinstance(layer, keras.layers.InputLayer):
                continue
            sources = layer.input if isinstance(layer.input, (list, tuple)) else [layer.input]
            self.ops[layer.name] = _Op(layer)
            self.graph.append((layer.name, [id(t) for t in sources], id(layer.output)))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        values: dict[int, Any] = {self.input_id: images.float()}
        for name, sources, output in self.graph:
            values[output] = self.ops[name](*[values[s] for s in sources])
        return values[self.output_id]


def to_torch(model: keras.Model) -> TorchClassifier:
    """The classifier as an equivalent torch module, in eval mode."""
    return TorchClassifier(model).eval()


def max_logit_difference(model: keras.Model, module: torch.nn.Module, x: np.ndarray,
                         batch_size: int = 250) -> float:
    """max |Keras logits - torch logits| over the NHWC images `x`."""
    worst = 0.0
    for start in range(0, len(x), batch_size):
        xb = np.asarray(x[start:start + batch_size], np.float32)
        ours = model(xb, training=False).numpy()
        with torch.no_grad():
            theirs = module(torch.from_numpy(xb.transpose(0, 3, 1, 2).copy())).numpy()
        worst = max(worst, float(np.max(np.abs(ours - theirs))))
    return worst


def check_equal(model: keras.Model, module: torch.nn.Module, x: np.ndarray, tolerance: float = 1e-4) -> float:
    """The largest logit difference; raises AssertionError above `tolerance`."""
    worst = max_logit_difference(model, module, x)
    if worst > tolerance:
        raise AssertionError(f"the torch port's logits differ by {worst:.3g} (> {tolerance:g}) from Keras'")
    return worst
