"""evaluate_main.py's flags (`rat_tf.cli.evaluate_flags`), by their name in the repository."""

from rat_tf.cli.evaluate_flags import config_from_flags, define_flags

__all__ = ["config_from_flags", "define_flags"]
