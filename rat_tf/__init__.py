"""rat_tf: Regional Adversarial Training (Song et al., AAAI 2022) and its baselines in Keras 3.

The package imports lazily: `import rat_tf` is cheap, and `rat_tf.RATModel`, `rat_tf.attacks`
and the other names below load their modules (and TensorFlow) on first use.
"""

import importlib

__version__ = "0.1.0"
_SUBMODULES = ("attacks", "labels", "methods", "randomness", "region")
__all__ = ["METHOD_NAMES", "RATModel", *_SUBMODULES]


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"rat_tf.{name}")
    if name == "RATModel":
        return importlib.import_module("rat_tf.model").RATModel
    if name == "METHOD_NAMES":
        return importlib.import_module("rat_tf.methods").METHOD_NAMES
    raise AttributeError(f"module 'rat_tf' has no attribute {name!r}")
