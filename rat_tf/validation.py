"""Argument checks shared by the library: one wording, and `True` is never an integer.

    steps = check_int("num_steps", num_steps, minimum=0)             # -> int
    rate = check_float("weight_decay", weight_decay, minimum=0.0)    # -> float
    beta = check_float("beta_min", beta_min, minimum=0.0, maximum=1.0)

Both raise `ValueError` naming the argument, the allowed range and the value given.
"""

from __future__ import annotations

import math
import numbers
from typing import Any


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_int(name: str, value: Any, minimum: int | None = None,
              maximum: int | None = None) -> int:
    """Returns `value` as an int if it is an integer in [minimum, maximum].

    Integral floats (3.0) and numpy integers are accepted; bools, fractions and strings are not.

    Raises:
      ValueError: naming `name`, the range and the value.
    """
    ok = _is_number(value) and math.isfinite(value) and value == int(value)
    if ok and minimum is not None and value < minimum:
        ok = False
    if ok and maximum is not None and value > maximum:
        ok = False
    if not ok:
        bounds = []
        if minimum is not None:
            bounds.append(f">= {minimum}")
        if maximum is not None:
            bounds.append(f"<= {maximum}")
        raise ValueError(f"{name} must be an integer{' ' + ' and '.join(bounds) if bounds else ''}, "
                         f"got {value!r}")
    return int(value)


def check_float(name: str, value: Any, minimum: float | None = None,
                maximum: float | None = None, *, exclude_minimum: bool = False,
                exclude_maximum: bool = False) -> float:
    """Returns `value` as a float if it is a finite number in the given range.

    Args:
      name: the argument's name, for the message.
      value: the value to check (bools are rejected).
      minimum, maximum: the bounds (None: unbounded).
      exclude_minimum, exclude_maximum: make a bound strict.

    Raises:
      ValueError: naming `name`, the range and the value.
    """
    ok = _is_number(value) and math.isfinite(value)
    if ok and minimum is not None:
        ok = value > minimum if exclude_minimum else value >= minimum
    if ok and maximum is not None:
        ok = value < maximum if exclude_maximum else value <= maximum
    if not ok:
        if minimum is not None and maximum is not None:
            allowed = (f"in {'(' if exclude_minimum else '['}{minimum:g}, "
                       f"{maximum:g}{')' if exclude_maximum else ']'}")
        elif minimum is not None:
            allowed = f"{'>' if exclude_minimum else '>='} {minimum:g}"
        elif maximum is not None:
            allowed = f"{'<' if exclude_maximum else '<='} {maximum:g}"
        else:
            allowed = "a finite number"
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    return float(value)
