"""`ConfigError`: a value that cannot be used, naming its field (= the flag of the same name)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
import contextlib
import re
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


def named_field(message: str, values: Mapping[str, Any], default: str, prefer: set[str] = frozenset()) -> str:
    """The field of `values` a library message is about: the first one it names.

    The library's checks name the argument at fault ("beta_min (0.5) must be <= beta_max (0.2)",
    "square_queries must be an integer >= 1"); arguments are named after the fields. Among the
    names in the message, the first of `prefer` (e.g. the values the user gave) wins, else the
    first named; `default` when it names none.
    """
    named = sorted((match.start(), name) for name in values
                   for match in [re.search(rf"\b{re.escape(name)}\b", message)] if match)
    names = [name for _, name in named]
    return next((n for n in names if n in prefer), names[0] if names else default)


@contextlib.contextmanager
def named_field_errors(values: Mapping[str, Any], default: str, *errors: type[BaseException],
                       prefer: set[str] = frozenset(), default_value: Any = None) -> Iterator[None]:
    """Turns `errors` raised inside into a `ConfigError` for the field the message names (`named_field`).

    The error shows the field's value from `values` (`default_value` for `default`).
    """
    try:
        yield
    except ConfigError:
        raise
    except errors as err:
        field = named_field(str(err), values, default, prefer)
        raise ConfigError(field, str(err), values.get(field, default_value)) from None
