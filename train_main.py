"""Trains a classifier with RAT (or a baseline) and exports it as a SavedModel.

Usage: python train_main.py [--dataset=digits] [--method=rat] [--flagfile=FILE] ...
Flags and their defaults: python train_main.py --help, or docs/TRAINING.md.
"""

# The program is `rat_tf.cli.train` (installed as `rat-train`): flags -> config ->
# `rat_tf.training.train` -> summary line / exit status.

from __future__ import annotations

from rat_tf.cli.train import main, run

__all__ = ["main", "run"]

if __name__ == "__main__":
    run()
