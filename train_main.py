"""Trains a classifier with RAT (or a baseline) and exports it as a SavedModel.

Usage: python train_main.py [--dataset=digits] [--method=rat] [--flagfile=FILE] ...
Flags and their defaults: python train_main.py --help, or docs/TRAINING.md.
"""

# The trainer is `rat_tf.training.train`; this script turns flags into its config, and its
# errors into one line and an exit status.

from __future__ import annotations

from collections.abc import Sequence
import sys

from rat_tf import startup  # before TensorFlow: drops its start-up probe lines

startup.import_tensorflow()

from absl import app, flags  # noqa: E402

import flags as rat_flags  # noqa: E402  (the repo's flags/ package, not absl.flags)
from flags import errors as flag_errors_lib  # noqa: E402
from rat_tf import config as config_lib  # noqa: E402
from rat_tf import training  # noqa: E402


def main(argv: Sequence[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    config = rat_flags.config_from_flags(flags.FLAGS)
    try:
        result = training.train(config)
    except config_lib.ConfigError as err:
        raise rat_flags.usage_error(err) from None
    except training.NonFiniteLossError as err:
        _fail(str(err))
    except OSError as err:  # e.g. a full or read-only disk while training or exporting
        _fail(str(err))
    print(training.summary_line(result), flush=True)


def _fail(message: str) -> None:
    """Ends the script with one line on stderr and exit status 1 (no traceback)."""
    print(f"train_main.py: error: {' '.join(message.split())}", file=sys.stderr, flush=True)
    sys.exit(1)


if __name__ == "__main__":
    rat_flags.define_flags()
    flags.adopt_module_key_flags(rat_flags)  # list them in --help / --helpshort
    flag_errors_lib.run(main)
