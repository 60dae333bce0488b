"""Adversarial attacks as pure, in-graph functions (inference mode, explicit seeds)."""

from rat_tf.attacks.adt import ADTConfig, adt_sample, fit_distribution
from rat_tf.attacks.apgd import (APGD_LOSSES, APGDConfig, APGDResult, apgd, apgd_checkpoints,
                                 apgd_targeted, dlr_loss, dlr_targeted_loss)
from rat_tf.attacks.nattack import nattack, nattack_result
from rat_tf.attacks.square import QueryAttackResult, square_attack, square_attack_result

from rat_tf.attacks.pgd import (LOSSES, PGDConfig, PGDResult, cross_entropy, cw_inf, cw_margin,
                                fgsm, pgd, project, random_start)

__all__ = ["ADTConfig", "adt_sample", "fit_distribution", "LOSSES", "PGDConfig", "PGDResult", "cross_entropy", "cw_inf", "cw_margin", "fgsm",
           "pgd", "project", "random_start",
           "APGD_LOSSES", "APGDConfig", "APGDResult", "apgd", "apgd_checkpoints", "apgd_targeted",
           "dlr_loss", "dlr_targeted_loss", "nattack", "nattack_result", "QueryAttackResult",
           "square_attack", "square_attack_result"]
