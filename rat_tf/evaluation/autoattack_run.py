"""AutoAttack in one call: `autoattack(model, x, y, epsilon)`, its result, and its self-checks.

The attacks and the cascade are `rat_tf.evaluation.robustness.evaluate` on the version's suite
(`rat_tf.evaluation.suite.SuiteConfig.for_version`); the self-checks are
`rat_tf.evaluation.checks.for_autoattack`.
"""

from __future__ import annotations

from typing import NamedTuple

import keras
import numpy as np
import tensorflow as tf

from rat_tf.evaluation import checks as checks_lib
from rat_tf.evaluation import robustness
from rat_tf.evaluation import suite as suite_lib

__all__ = ["AutoAttackResult", "autoattack"]


class AutoAttackResult(NamedTuple):
    """AutoAttack on one set of examples.

    Attributes:
      robust: bool (N,), correctly classified clean and under every attack of the cascade.
      broken_by: (N,) str: "clean", the attack that first broke the example, or "" (robust).
      accuracy: robust accuracy, `robust.mean()`.
      clean_accuracy: clean accuracy.
      seconds: attack -> wall time.
      after: attack -> robust accuracy after it and the attacks before it (the cascade's stages).
      version, norm: the AutoAttack version and norm that ran.
      budgets: attack -> its config as it ran.
      checks: the self-checks (`rat_tf.evaluation.checks.Check`), empty with checks=False.
      flagged: the names of the checks that fired: the number may not be reliable.
    """

    robust: np.ndarray
    broken_by: np.ndarray
    accuracy: float
    clean_accuracy: float
    seconds: dict[str, float]
    after: dict[str, float] = {}
    version: str = "standard"
    norm: str = "Linf"
    budgets: dict = {}
    checks: list = []
    flagged: tuple[str, ...] = ()


def autoattack(logits_fn, x, y, epsilon: float, norm: str = "Linf", version: str = "standard", *,
               outputs: str = "logits", batch_size: int = 200, seed: int = 0, verbose: bool = False,
               checks: bool = True, **budgets) -> AutoAttackResult:
    """AutoAttack (Croce & Hein 2020) for any Keras classifier or SavedModel endpoint, in TensorFlow.

    The versions and budgets are the official code's (`rat_tf.evaluation.suite.VERSIONS`):
    "standard" runs APGD-CE, APGD-T (9 targets), FAB-T (9 targets), 100 iterations each, and
    Square (5,000 queries), each attack on the examples still robust after the previous ones;
    "plus" adds APGD-DLR and FAB with 5 restarts; "rand" is APGD-CE and APGD-DLR with EOT over
    20 calls, for randomised models.

        result = rat_tf.evaluation.autoattack(model, x_test, y_test, epsilon=8 / 255)
        print(result.accuracy, result.flagged)

    Args:
      logits_fn: a `keras.Model` returning logits (run with training=False), or any callable
        images -> logits such as `tf.saved_model.load(path).serve`.
      x: float32 NHWC images in [0, 1]; y: integer labels.
      epsilon: the radius in pixel units (Linf or L2).
      norm: "Linf" or "L2".
      version: "standard", "plus" or "rand".
      outputs: "logits", or "probabilities" for a model ending in a softmax (the attacks then
        use their logarithm; Square its margin on the probabilities). Outputs that look like
        probabilities are refused unless declared.
      batch_size: examples per attack call.
      seed: root seed.
      verbose: draw a progress bar with an ETA per attack.
      checks: run the self-checks (randomised outputs, zero gradients, and on Linf whether PGD-20
        on cross-entropy is far above AutoAttack) and name the ones that fired in `flagged`.
      **budgets: `SuiteConfig` fields to change (e.g. `square_queries=1000`), for quicker runs
        that are no longer the version's (the result's `budgets` record what ran).

    Raises:
      ValueError: images outside [0, 1], probabilities not declared, or a bad argument.
    """
    x = robustness.check_images(x)
    y = np.asarray(y).astype(np.int32).reshape(-1)
    if isinstance(logits_fn, keras.Model):
        model = logits_fn
        logits_fn = tf.function(lambda images: model(images, training=False), reduce_retracing=True)
    attack_fn = robustness.attack_view(logits_fn, x[:batch_size], outputs)
    suite = suite_lib.SuiteConfig.for_version(version, norm, epsilon, **budgets)
    result = robustness.evaluate(attack_fn, x, y, suite, batch_size=batch_size, seed=seed,
                                 progress=robustness.progress_bars() if verbose else None)
    robust = result.autoattack
    found = []
    if checks:
        found = checks_lib.for_autoattack(attack_fn, x, y, result, suite, batch_size=batch_size, seed=seed)
    num_classes = int(np.asarray(attack_fn(tf.constant(x[:1]))).shape[-1]) if len(x) else 2
    return AutoAttackResult(robust, result.broken_by, float(robust.mean()), result.accuracy("clean"),
                            result.seconds, {name: result.accuracy(name) for name in result.cascade},
                            version, norm, suite.budgets(num_classes), found,
                            tuple(c.name for c in found if c.fired))
