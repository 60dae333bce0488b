"""Adversarial attacks as pure, in-graph functions (inference mode, explicit seeds)."""

from rat_tf.attacks.adt import ADTConfig, adt_sample, fit_distribution

from rat_tf.attacks.pgd import (LOSSES, PGDConfig, PGDResult, cross_entropy, cw_inf, cw_margin,
                                fgsm, pgd, project, random_start)

__all__ = ["ADTConfig", "adt_sample", "fit_distribution", "LOSSES", "PGDConfig", "PGDResult", "cross_entropy", "cw_inf", "cw_margin", "fgsm",
           "pgd", "project", "random_start"]
