"""Self-checks of an evaluation (after fra31/auto-attack's `checks.py`).

Each check returns a `Check` with the numbers behind it; `fired` means the evaluation may be
unreliable (or, for the soft-label signature, that PGD on cross-entropy flatters the model).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from rat_tf import attacks
from rat_tf.attacks.common import LogitsFn
from rat_tf.evaluation import robustness
from rat_tf.evaluation import suite as suite_lib


@dataclasses.dataclass
class Check:
    name: str
    fired: bool
    message: str
    numbers: dict

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def probabilities(logits_fn: LogitsFn, x: np.ndarray) -> Check:
    """Fires when outputs look like probabilities (in [0, 1], rows summing to 1), not logits.

    `robustness.attack_view` refuses such a model unless its outputs are declared; a model
    declared so is attacked through `FromProbabilities`, whose outputs this check sees as logits.
    """
    out = np.asarray(logits_fn(tf.constant(x)), np.float64)
    in_unit = bool(np.all((out >= 0) & (out <= 1)))
    fired, row_error = robustness.looks_like_probabilities(out)
    return Check("probabilities", fired,
                 "outputs look like probabilities, not logits: CE and margin attacks lose strength"
                 if fired else "outputs look like logits",
                 {"all_in_unit_interval": in_unit, "max_row_sum_error": row_error})


def gradients(logits_fn: LogitsFn, x: np.ndarray, y: np.ndarray, max_fraction: float = 0.1) -> Check:
    """Fires when many inputs have an all-zero or non-finite input gradient of the CE loss."""
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        loss = tf.reduce_sum(attacks.cross_entropy(logits_fn(xt), tf.constant(y, tf.int32)))
    grad = tape.gradient(loss, xt)
    if grad is None:
        return Check("gradients", True, "no gradient flows from the outputs to the inputs",
                     {"zero_fraction": 1.0, "nonfinite_fraction": 0.0})
    grad = grad.numpy().reshape(len(x), -1)
    zero = float(np.mean(np.all(grad == 0, axis=1)))
    nonfinite = float(np.mean(~np.all(np.isfinite(grad), axis=1)))
    fired = zero + nonfinite > max_fraction
    return Check("gradients", fired,
                 f"{100 * zero:.1f}% of inputs have a zero gradient and {100 * nonfinite:.1f}% a "
                 "non-finite one: gradient-based attacks are unreliable (obfuscated gradients)"
                 if fired else "input gradients are finite and non-zero",
                 {"zero_fraction": zero, "nonfinite_fraction": nonfinite})


def randomness(logits_fn: LogitsFn, x: np.ndarray) -> Check:
    """Fires when two identical calls give different outputs (a randomised defence)."""
    a = np.asarray(logits_fn(tf.constant(x)))
    b = np.asarray(logits_fn(tf.constant(x)))
    diff = float(np.max(np.abs(a - b)))
    fired = diff > 1e-5
    return Check("randomness", fired,
                 "the model is randomised: use EOT-style attacks, single-sample numbers are optimistic"
                 if fired else "the model is deterministic", {"max_abs_difference": diff})


def one_step_vs_iterative(fgsm: float, pgd: float, tolerance: float = 0.01) -> Check:
    """Fires when FGSM is stronger than PGD (the paper's first obfuscated-gradient check)."""
    fired = fgsm < pgd - tolerance
    return Check("one_step_beats_iterative", fired,
                 f"FGSM ({100 * fgsm:.1f}%) beats PGD ({100 * pgd:.1f}%): gradients may be masked"
                 if fired else "iterative attacks are at least as strong as one-step ones",
                 {"fgsm": fgsm, "pgd": pgd})


def query_vs_white_box(result: robustness.RobustnessResult, tolerance: float = 0.01) -> Check:
    """Fires when a query-only attack finds more adversarial examples than all white-box ones.

    Compared on the examples the query attack ran on, against the white-box worst case there.
    """
    white = [a for a in result.per_attack if a in suite_lib.WHITE_BOX]
    numbers, fired_by = {}, []
    for name in (a for a in result.per_attack if a in suite_lib.QUERY_ONLY):
        covered = result.coverage[name]
        if not white or not covered.any():
            continue
        white_worst = result.clean[covered].copy()
        for w in white:
            white_worst &= result.per_attack[w][covered]
        query = float(result.per_attack[name][covered].mean())
        numbers[name] = query
        numbers[f"white_box_worst_on_{name}_examples"] = float(white_worst.mean())
        if query < white_worst.mean() - tolerance:
            fired_by.append(name)
    fired = bool(fired_by)
    return Check("query_beats_white_box", fired,
                 f"query-only {', '.join(fired_by)} beats every white-box attack: gradient masking likely"
                 if fired else "white-box attacks are at least as strong as query-only ones", numbers)


def large_epsilon(logits_fn: LogitsFn, x: np.ndarray, y: np.ndarray, epsilon: float,
                  max_accuracy: float = 0.1, batch_size: int = 200, seed: int = 0) -> Check:
    """Fires when PGD at a large radius (max(0.5, 4 eps), capped at 1) leaves accuracy above 10%."""
    big = float(min(1.0, max(0.5, 4 * epsilon)))
    accuracy = robustness.pgd_accuracy(logits_fn, x, y, attacks.PGDConfig(big, big / 8, 20),
                                       batch_size=batch_size, seed=seed)
    fired = accuracy > max_accuracy
    return Check("large_epsilon", fired,
                 f"accuracy stays at {100 * accuracy:.1f}% under PGD at eps={big:.3f}: robustness should "
                 "fall to ~0 as eps grows; the attack is not working" if fired
                 else f"robustness falls to {100 * accuracy:.1f}% at eps={big:.3f}",
                 {"epsilon": big, "accuracy": accuracy})


def soft_label_signature(pgd: float, worst_case: float, points: float = 3.0,
                         signature_points: float = 10.0) -> Check:
    """Fires when PGD-CE accuracy exceeds the worst case by more than `points` percentage points.

    A few points are usual for any adversarially trained model (PGD-20 is one attack, the worst
    case an ensemble); above `signature_points` the message names the soft-label signature (RAT,
    AVmixup: PGD on cross-entropy against a flat loss surface).
    """
    gap = 100 * (pgd - worst_case)
    fired = gap > points
    why = (" (the soft-label signature)" if gap > signature_points
           else f" (under {signature_points:g} points: the usual distance between one attack and an ensemble)")
    return Check("pgd_flatters", fired,
                 f"PGD-CE accuracy is {gap:.1f} points above the worst case: cross-entropy PGD flatters "
                 f"this model{why}; trust the worst case" if fired
                 else f"PGD-CE is within {gap:.1f} points of the worst case", {"gap_points": gap})


def run_all(logits_fn: LogitsFn, x: np.ndarray, y: np.ndarray, result: robustness.RobustnessResult,
            epsilon: float, *, num_examples: int = 200, batch_size: int = 200,
            seed: int = 0) -> list[Check]:
    """Every check that the evaluated attacks allow, on the first `num_examples` examples."""
    xs, ys = x[:num_examples], y[:num_examples]
    checks = [probabilities(logits_fn, xs), gradients(logits_fn, xs, ys), randomness(logits_fn, xs),
              large_epsilon(logits_fn, xs, ys, epsilon, batch_size=batch_size, seed=seed)]
    if "fgsm" in result.per_attack and "pgd" in result.per_attack:
        checks.append(one_step_vs_iterative(result.accuracy("fgsm"), result.accuracy("pgd")))
    checks.append(query_vs_white_box(result))
    if "pgd" in result.per_attack and len(result.per_attack) > 1:
        checks.append(soft_label_signature(result.accuracy("pgd"), result.accuracy("worst_case")))
    return checks


def for_autoattack(logits_fn: LogitsFn, x: np.ndarray, y: np.ndarray, result: robustness.RobustnessResult,
                   suite: suite_lib.SuiteConfig, *, num_examples: int = 200, batch_size: int = 200,
                   seed: int = 0) -> list[Check]:
    """The checks of a plain AutoAttack run (`rat_tf.evaluation.autoattack`).

    Randomised outputs (unless the version is "rand", made for them), probability outputs and
    zero gradients on the first `num_examples` examples; on Linf, also PGD-20 on cross-entropy
    over all examples against AutoAttack (`soft_label_signature`): PGD-CE far above AutoAttack
    marks a model that PGD-based numbers flatter.
    """
    xs, ys = x[:num_examples], y[:num_examples]
    found = [probabilities(logits_fn, xs), gradients(logits_fn, xs, ys)]
    if suite.version != "rand":
        found.append(randomness(logits_fn, xs))
    if suite.norm == "Linf" and result.has_autoattack:
        pgd = robustness.pgd_accuracy(logits_fn, x, y, attacks.PGDConfig(suite.epsilon, suite.pgd_step_size,
                                                                         suite.pgd_steps),
                                      batch_size=batch_size, seed=seed)
        found.append(soft_label_signature(pgd, result.accuracy("autoattack")))
    return found


def warnings(checks: list[Check]) -> list[str]:
    return [f"[{c.name}] {c.message}" for c in checks if c.fired]


__all__ = ["Check", "for_autoattack", "gradients", "large_epsilon", "one_step_vs_iterative", "probabilities",
           "query_vs_white_box", "randomness", "run_all", "soft_label_signature", "warnings"]
