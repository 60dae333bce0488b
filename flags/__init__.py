"""The training flags, for code run from the repository: `import flags as rat_flags`.

The code is `rat_tf.cli.train_flags` (installed with the library, where a top-level package
named `flags` would collide with others); this package is its name in the repository, used by
the tests and benchmarks (`usage_error` is `rat_tf.cli.errors`'). `flags.evaluation` is
`rat_tf.cli.evaluate_flags`.
"""

from rat_tf.cli.errors import usage_error
from rat_tf.cli.train_flags import AUGMENT_CHOICES, AUTO, config_from_flags, define_flags, flag_names, parse_fraction

__all__ = ["AUGMENT_CHOICES", "AUTO", "config_from_flags", "define_flags", "flag_names", "parse_fraction",
           "usage_error"]
