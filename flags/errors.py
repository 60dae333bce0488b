"""Turning library errors into one-line absl usage errors that name the flag."""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

from absl import app


@contextlib.contextmanager
def flag_errors(flag: str, value: Any, *errors: type[BaseException]) -> Iterator[None]:
    """Turns `errors` raised inside into a one-line usage error naming --flag=value."""
    try:
        yield
    except errors as err:
        message = " ".join(str(err).split())  # one line
        raise app.UsageError(f"--{flag}={value}: {message}") from None
