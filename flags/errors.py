"""Turning library errors into one-line absl usage errors that name the flag."""

from __future__ import annotations

from collections.abc import Callable, Iterator
import contextlib
import os
import sys
from typing import Any

from absl import app


@contextlib.contextmanager
def flag_errors(flag: str, value: Any, *errors: type[BaseException]) -> Iterator[None]:
    """Turns `errors` raised inside into a one-line usage error naming --flag=value."""
    try:
        yield
    except errors as err:
        message = " ".join(str(err).split())  # one line
        raise app.UsageError(f"--{flag}={value}: {message}") from None


def run(main: Callable[[list[str]], None]) -> None:
    """absl's `app.run`, with a usage error printed as one line and a pointer to --help.

    absl would print the usage text with every flag (some 180 lines) before the one line that
    says what is wrong. Flag-parsing errors are already two lines in absl.
    """
    program = os.path.basename(sys.argv[0])

    def main_with_short_errors(argv: list[str]) -> None:
        try:
            main(argv)
        except app.UsageError as err:
            print(f"{program}: error: {' '.join(str(err).split())}\n"
                  f"(python {program} --help lists the flags)", file=sys.stderr, flush=True)
            sys.exit(1)

    app.run(main_with_short_errors)
