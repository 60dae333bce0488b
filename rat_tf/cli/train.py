"""Trains a classifier with RAT (or a baseline) and exports it as a SavedModel.

Usage: rat-train [--dataset=digits] [--method=rat] [--flagfile=FILE] ...
(in the repository: python train_main.py ...). Flags and their defaults: --help, or
docs/TRAINING.md.
"""

# The trainer is `rat_tf.training.train`; this program turns flags into its config, and its
# errors into one line and an exit status. TensorFlow is imported by `run` after the quiet start
# (`rat_tf.startup`), so the imports that load it are inside the functions.

from __future__ import annotations

from collections.abc import Sequence
import os
import sys

from rat_tf import startup


def main(argv: Sequence[str]) -> None:
    """The program after absl parsed the flags (defined by `rat_tf.cli.train_flags`)."""
    from absl import app, flags  # noqa: PLC0415  (TensorFlow: after the quiet start)

    from rat_tf import config as config_lib  # noqa: PLC0415
    from rat_tf import training  # noqa: PLC0415
    from rat_tf.cli import errors, train_flags  # noqa: PLC0415

    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    config = train_flags.config_from_flags(flags.FLAGS)
    program = os.path.basename(argv[0]) if argv else "rat-train"
    try:
        result = training.train(config)
    except config_lib.ConfigError as err:
        raise errors.usage_error(err) from None
    except training.NonFiniteLossError as err:
        errors.fail(program, str(err))
    except OSError as err:  # e.g. a full or read-only disk while training or exporting
        errors.fail(program, str(err))
    print(training.summary_line(result), flush=True)


def run(argv: list[str] | None = None) -> None:
    """The program: the `rat-train` console script, and train_main.py's `__main__`."""
    argv = list(sys.argv if argv is None else argv)
    startup.import_tensorflow(argv)
    from rat_tf.cli import errors, train_flags  # noqa: PLC0415  (TensorFlow: after the quiet start)

    train_flags.define_flags()
    errors.run(main, argv, train_flags, __doc__)
