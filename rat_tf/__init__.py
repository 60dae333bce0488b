"""rat_tf: Regional Adversarial Training (Song et al., AAAI 2022) and its baselines in Keras 3."""

from rat_tf import attacks, labels, methods, randomness, region
from rat_tf.methods import METHOD_NAMES
from rat_tf.model import RATModel

__version__ = "0.1.0"
__all__ = ["METHOD_NAMES", "RATModel", "attacks", "labels", "methods", "randomness", "region"]
