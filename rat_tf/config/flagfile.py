"""A resolved config back into the flags that reproduce it (`--flagfile=...`)."""

from __future__ import annotations

from typing import Any

from rat_tf.config.sections import TrainConfig


def _format_flag_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(_format_flag_value(v) for v in value)
    if isinstance(value, float):
        return repr(value)
    return str(value)


def to_flagfile(config: TrainConfig) -> str:
    """A flagfile (`--flagfile=...`) that reproduces `config`, one `--name=value` per line.

    Flags whose value is None (their default) are written as comments. The hyperparameters
    the method does not take are left out (they stay "auto").
    """
    lines = ["# Resolved flags of a train_main.py run; rerun with --flagfile=THIS_FILE."]
    for name, value in config.flag_values().items():
        if value is None:
            lines.append(f"# --{name} not set")
        else:
            lines.append(f"--{name}={_format_flag_value(value)}")
    return "\n".join(lines) + "\n"
