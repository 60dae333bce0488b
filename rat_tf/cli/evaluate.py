"""Robustness evaluation of an exported classifier: the paper's attacks, stronger ones, checks.

    rat-evaluate --saved_model=runs/digits-rat/export
    (in the repository: python evaluate_main.py --saved_model=...)

Loads the SavedModel (endpoint `serve`: float32 NHWC images in [0, 1] -> logits), the test set
named in its metadata (or --dataset), runs the attack suite with per-example robust flags
(default: AutoAttack's standard version, APGD-CE, APGD-T, FAB-T and Square as a cascade, plus
FGSM, PGD-20 and CW-inf), and reports the per-example worst case over all of them as "robust
accuracy" and AutoAttack's number on its own. Optional analyses: --sweep_steps,
--sweep_epsilon, --gaps. Self-checks print warnings with the numbers behind them. Writes
report.json, report.md and PNG plots into --output_dir (atomically).
"""

from __future__ import annotations

from collections.abc import Sequence
import os
import sys

from rat_tf import startup


def main(argv: Sequence[str]) -> None:
    """The program after absl parsed the flags (defined by `rat_tf.cli.evaluate_flags`)."""
    from absl import app, flags  # noqa: PLC0415  (TensorFlow: after the quiet start)

    from rat_tf import config as config_lib  # noqa: PLC0415
    from rat_tf import export as export_lib  # noqa: PLC0415
    from rat_tf.cli import errors, evaluate_flags  # noqa: PLC0415
    from rat_tf.evaluation import pipeline  # noqa: PLC0415

    fv = flags.FLAGS
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    try:
        with config_lib.field_errors("saved_model", fv.saved_model, ValueError, OSError):
            logits_fn, metadata = export_lib.load_exported(fv.saved_model, fv.endpoint, fv.output_key)
        output_dir = fv.output_dir or os.path.join(os.path.dirname(os.path.abspath(fv.saved_model)), "eval")
        config = evaluate_flags.config_from_flags(fv, metadata, output_dir)
        report = pipeline.evaluate_saved_model(config, logits_fn, metadata)
    except config_lib.ConfigError as err:
        raise errors.usage_error(err) from None
    with open(os.path.join(config.output_dir, pipeline.REPORT_MD), encoding="utf-8") as f:
        print(f.read())
    print(f"robust accuracy (worst case over {', '.join(config.suite.names) or 'no attacks'}): "
          f"{100 * report['robust_accuracy']:.2f}% on {report['num_examples']} examples; report: "
          f"{os.path.join(config.output_dir, pipeline.REPORT_JSON)}", flush=True)


def run(argv: list[str] | None = None) -> None:
    """The program: the `rat-evaluate` console script, and evaluate_main.py's `__main__`."""
    argv = list(sys.argv if argv is None else argv)
    startup.import_tensorflow(argv)
    from rat_tf.cli import errors, evaluate_flags  # noqa: PLC0415  (TensorFlow: after the quiet start)

    evaluate_flags.define_flags()
    errors.run(main, argv, evaluate_flags, __doc__)
