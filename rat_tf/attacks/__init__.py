"""Adversarial attacks as pure, in-graph functions (inference mode, explicit seeds)."""

from rat_tf.attacks.adt import ADTConfig, adt_sample, fit_distribution
from rat_tf.attacks.apgd import (
    APGD_LOSSES,
    APGDConfig,
    APGDResult,
    apgd,
    apgd_checkpoints,
    apgd_targeted,
    dlr_loss,
    dlr_targeted_loss,
)
from rat_tf.attacks.common import LogitsFn, QueryFn, as_seed, project
from rat_tf.attacks.fab import FABConfig, FABResult, fab, fab_targeted
from rat_tf.attacks.nattack import NAttackConfig, nattack, nattack_result
from rat_tf.attacks.pgd import LOSSES, PGDConfig, PGDResult, cross_entropy, cw_inf, cw_margin, fgsm, pgd, random_start
from rat_tf.attacks.square import QueryAttackResult, SquareConfig, square_attack, square_attack_result

__all__ = ["ADTConfig", "adt_sample", "fit_distribution", "LOSSES", "PGDConfig", "PGDResult",
           "cross_entropy", "cw_inf", "cw_margin", "fgsm", "pgd", "project", "random_start",
           "APGD_LOSSES", "APGDConfig", "APGDResult", "apgd", "apgd_checkpoints", "apgd_targeted",
           "dlr_loss", "dlr_targeted_loss", "FABConfig", "FABResult", "fab", "fab_targeted",
           "LogitsFn", "QueryFn", "as_seed", "NAttackConfig", "nattack", "nattack_result",
           "QueryAttackResult", "SquareConfig", "square_attack", "square_attack_result"]
