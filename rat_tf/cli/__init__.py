"""The command-line programs: `rat-train` and `rat-evaluate` once installed (`pip install .`).

In the repository, `python train_main.py` and `python evaluate_main.py` run the same code, and
the top-level `flags/` package re-exports the flag modules for the tests and benchmarks.

- `train`, `evaluate`: the programs (`main`, and `run` for the console scripts).
- `train_flags`, `evaluate_flags`: their absl flags, turned into the library's configs.
- `errors`: the one path from a library `ConfigError` to a flag error, and the short failure.
"""
