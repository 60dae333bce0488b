"""Robustness evaluation: attack suites with per-example worst case, sweeps, gaps, self-checks, reports.

`autoattack(logits_fn, x, y, epsilon)` is AutoAttack's standard version for any Keras classifier
or SavedModel endpoint.
"""

from rat_tf.evaluation.autoattack_run import AutoAttackResult, autoattack
from rat_tf.evaluation.robustness import evaluate

__all__ = ["AutoAttackResult", "autoattack", "evaluate"]
