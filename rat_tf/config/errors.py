"""`ConfigError`: a value that cannot be used, naming its field (= the flag of the same name)."""

from __future__ import annotations

from collections.abc import Iterator
import contextlib
from typing import Any


class ConfigError(ValueError):
    """A configuration value that cannot be used.

    Attributes:
      field: the config field at fault; fields are named after the command-line flags
        (`rat_tf.cli` turns the error into the flag error `--field=value: message`).
      message: what is wrong, one line.
      value: the value as given (for the message), or None.
    """

    def __init__(self, field: str, message: str, value: Any = None):
        self.field = field
        self.message = " ".join(str(message).split())  # one line
        self.value = value
        super().__init__(f"{field}={value}: {self.message}")


@contextlib.contextmanager
def field_errors(field: str, value: Any, *errors: type[BaseException]) -> Iterator[None]:
    """Turns `errors` raised inside into a `ConfigError` for `field` (and `value`)."""
    try:
        yield
    except ConfigError:
        raise
    except errors as err:
        raise ConfigError(field, str(err), value) from None
