"""The one path from a library error to a flag error, and the entry points' short failure.

A library error is a `rat_tf.config.ConfigError` naming its config field; fields are named
after the flags, and `usage_error` turns it into absl's usage error `--flag=value: message`
(one line). `run` prints a usage error as one line with a pointer to --help, without the usage
text absl would print first.
"""

from __future__ import annotations

from collections.abc import Callable
import os
import sys
import types

from absl import app, flags

from rat_tf.config import ConfigError


def usage_error(err: ConfigError) -> app.UsageError:
    """The one-line usage error `--flag=value: message` for a library `ConfigError`.

    The config's fields are named after the flags (`rat_tf.config.DEFAULTS`, the method
    hyperparameters, `rat_tf.config.EvaluateConfig`), so the field is the flag.
    """
    return app.UsageError(f"--{err.field}={err.value}: {err.message}")


def fail(program: str, message: str) -> None:
    """Ends the program with one line on stderr and exit status 1 (no traceback)."""
    print(f"{program}: error: {' '.join(str(message).split())}", file=sys.stderr, flush=True)
    sys.exit(1)


def run(main: Callable[[list[str]], None], argv: list[str], flags_module: types.ModuleType,
        doc: str) -> None:
    """absl's `app.run`, with a usage error printed as one line and a pointer to --help.

    absl would print the usage text with every flag (some 180 lines) before the one line that
    says what is wrong. Flag-parsing errors are already two lines in absl.

    Args:
      main: the program, called with the arguments left after the flags.
      argv: the command line (argv[0]: the program).
      flags_module: the module that defined the program's flags; --help lists them (absl lists
        the flags of the main module, which is train_main.py or a console script's wrapper).
      doc: the program's description, for --help when the main module has none (an installed
        console script).
    """
    program = os.path.basename(argv[0])
    for flag in flags.FLAGS.get_key_flags_for_module(flags_module):
        flags.FLAGS.register_key_flag_for_module(sys.argv[0], flag)  # the name absl's --help looks up
    main_module = sys.modules["__main__"]
    if not getattr(main_module, "__doc__", None):
        main_module.__doc__ = doc

    def main_with_short_errors(args: list[str]) -> None:
        try:
            main(args)
        except app.UsageError as err:
            print(f"{program}: error: {' '.join(str(err).split())}\n"
                  f"({_help_command(program)} --help lists the flags)", file=sys.stderr, flush=True)
            sys.exit(1)

    app.run(main_with_short_errors, argv=argv)


def _help_command(program: str) -> str:
    """How the user ran the program: `python train_main.py`, or an installed `rat-train`."""
    return f"python {program}" if program.endswith(".py") else program
