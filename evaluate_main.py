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

from __future__ import annotations

from collections.abc import Sequence
import os

from rat_tf import startup  # before TensorFlow: drops its start-up probe lines

startup.import_tensorflow()

from absl import app, flags  # noqa: E402

from flags import errors as flag_errors_lib  # noqa: E402
from flags import evaluation as eval_flags  # noqa: E402
from rat_tf import config as config_lib  # noqa: E402
from rat_tf import export as export_lib  # noqa: E402
from rat_tf.evaluation import pipeline  # noqa: E402

FLAGS = flags.FLAGS


def main(argv: Sequence[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    try:
        with config_lib.field_errors("saved_model", FLAGS.saved_model, ValueError, OSError):
            logits_fn, metadata = export_lib.load_exported(FLAGS.saved_model, FLAGS.endpoint, FLAGS.output_key)
        output_dir = FLAGS.output_dir or os.path.join(os.path.dirname(os.path.abspath(FLAGS.saved_model)), "eval")
        with config_lib.field_errors("dataset", FLAGS.dataset, ValueError):
            config = eval_flags.config_from_flags(FLAGS, metadata, output_dir)
        report = pipeline.evaluate_saved_model(config, logits_fn, metadata)
    except config_lib.ConfigError as err:
        raise app.UsageError(f"--{err.field}={err.value}: {err.message}") from None
    with open(os.path.join(config.output_dir, pipeline.REPORT_MD), encoding="utf-8") as f:
        print(f.read())
    print(f"robust accuracy (worst case over {', '.join(config.suite.names) or 'no attacks'}): "
          f"{100 * report['robust_accuracy']:.2f}% on {report['num_examples']} examples; report: "
          f"{os.path.join(config.output_dir, pipeline.REPORT_JSON)}", flush=True)


if __name__ == "__main__":
    eval_flags.define_flags()
    flag_errors_lib.run(main)
