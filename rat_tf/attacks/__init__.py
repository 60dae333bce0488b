"""Adversarial attacks as pure, in-graph functions (inference mode, explicit seeds).

Every attack is `attack(logits_fn, x, y, config, seed)` with a frozen config dataclass, and
returns a result whose `adversarial` holds the attack's images (`rat_tf.attacks.common`).
"""

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
from rat_tf.attacks.common import LogitsFn, QueryFn, as_seed, check_images, margin, project
from rat_tf.attacks.fab import FABConfig, FABResult, fab, fab_targeted
from rat_tf.attacks.nattack import NAttackConfig, nattack
from rat_tf.attacks.pgd import (
    LOSSES,
    FGSMConfig,
    PGDConfig,
    PGDResult,
    cross_entropy,
    cw_inf,
    cw_margin,
    fgsm,
    pgd,
    random_start,
)
from rat_tf.attacks.square import QueryAttackResult, SquareConfig, square_attack

__all__ = ["ADTConfig", "adt_sample", "fit_distribution", "LOSSES", "FGSMConfig", "PGDConfig", "PGDResult",
           "cross_entropy", "cw_inf", "cw_margin", "fgsm", "pgd", "project", "random_start",
           "APGD_LOSSES", "APGDConfig", "APGDResult", "apgd", "apgd_checkpoints", "apgd_targeted",
           "dlr_loss", "dlr_targeted_loss", "FABConfig", "FABResult", "fab", "fab_targeted",
           "LogitsFn", "QueryFn", "as_seed", "check_images", "margin", "NAttackConfig", "nattack",
           "QueryAttackResult", "SquareConfig", "square_attack"]
