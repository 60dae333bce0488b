"""Robustness evaluation of an exported classifier: the paper's attacks, stronger ones, checks.

    python evaluate_main.py --saved_model=runs/digits-rat/export

Loads the SavedModel (endpoint `serve`: float32 NHWC images in [0, 1] -> logits), the test set
named in its metadata (or --dataset), runs the attack suite with per-example robust flags
(default: AutoAttack's standard version, APGD-CE, APGD-T, FAB-T and Square as a cascade, plus
FGSM, PGD-20 and CW-inf), and reports the per-example worst case over all of them as "robust
accuracy" and AutoAttack's number on its own. Optional analyses: --sweep_steps,
--sweep_epsilon, --gaps. Self-checks print warnings with the numbers behind them. Writes
report.json, report.md and PNG plots into --output_dir (atomically).
"""

# The program is `rat_tf.cli.evaluate` (installed as `rat-evaluate`).

from __future__ import annotations

from rat_tf.cli.evaluate import main, run

__all__ = ["main", "run"]

if __name__ == "__main__":
    run()
