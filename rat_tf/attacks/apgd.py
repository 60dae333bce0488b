"""Auto-PGD (APGD, Croce & Hein 2020) in the Linf and L2 norms: APGD-CE, APGD-DLR and APGD-T.

"Reliable evaluation of adversarial robustness with an ensemble of diverse parameter-free
attacks" (ICML 2020). APGD is PGD with momentum whose step size needs no tuning: it starts at
2 eps and is halved at checkpoints when progress stalls, restarting from the best point found.
The reference implementation is fra31/auto-attack `autoattack/autopgd_base.py`; this module
re-implements its Linf and L2 branches, and its expectation over transformation (EOT, for
randomised models: the gradient averaged over `eot_iter` calls), in TensorFlow (one
`tf.while_loop` over iterations, per-example state tensors, batched). Where it deviates, the docstrings say so and why.

Like every attack in `rat_tf.attacks`, the functions here are pure: they call `logits_fn` (which
must run the model in inference mode), change no model state, and return
`tf.stop_gradient`-ed tensors. They run eagerly or inside `tf.function` (recommended).

Losses (per example, from logits z, sorted descending z_pi1 >= z_pi2 >= ...):
  ce            cross-entropy on the label y.
  dlr           -(z_y - max_{j != y} z_j) / (z_pi1 - z_pi3 + 1e-12)     (needs >= 3 classes)
  dlr_targeted  -(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2 + 1e-12)    (needs >= 4 classes)
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple, Optional

import tensorflow as tf

from rat_tf import randomness
from rat_tf.attacks.common import (
    LogitsFn,
    batch_mask,
    check_count,
    check_images,
    check_norm,
    check_radius,
    l2_norm,
    label_logit,
    margin,
    project_l2,
    ranked_targets,
)
from rat_tf.attacks.pgd import cross_entropy

APGD_LOSSES = ("ce", "dlr", "dlr_targeted")
# The denominators' 1e-12 follow the reference: DLR is invariant to shifts and scalings of the
# logits, and the constant only guards an exact tie of the top logits.
_DLR_DELTA = 1e-12


@dataclasses.dataclass(frozen=True)
class APGDConfig:
    """An APGD attack (pixel units; images in [0, 1]).

    Attributes:
      epsilon: radius of the ball (Linf: in [0, 1]; L2: any finite radius >= 0).
      num_steps: N_iter, the number of iterations (each one forward-backward pass; the random
        start costs one more). AutoAttack uses 100.
      loss: "ce" (APGD-CE), "dlr" (untargeted DLR, APGD-DLR) or "dlr_targeted" (the loss of
        APGD-T; see `apgd_targeted`, which picks the target classes).
      num_restarts: random restarts; later restarts attack only the examples still robust, and
        the worst case per example is kept.
      rho: the step-size halving threshold on the fraction of iterations since the last
        checkpoint that increased the loss.
      norm: "Linf" (signed steps, box projection) or "L2" (normalised gradient steps, the
        reference's rescale-then-clip projection `common.project_l2`).
      eot_iter: gradients averaged per iteration (expectation over transformation, for models
        with random outputs; AutoAttack's version "rand" uses 20). Each costs a forward-backward.
      num_target_classes: the target classes APGD-T tries (`apgd_targeted`; AutoAttack: 9);
        more than C - 1 are clamped to C - 1 with a warning, as AutoAttack does. The untargeted
        losses ignore it.
    """

    epsilon: float
    num_steps: int = 100
    loss: str = "ce"
    num_restarts: int = 1
    rho: float = 0.75
    norm: str = "Linf"
    eot_iter: int = 1
    num_target_classes: int = 9

    def __post_init__(self):
        check_radius(self.epsilon, check_norm(self.norm))
        check_count("eot_iter", self.eot_iter)
        check_count("num_target_classes", self.num_target_classes)
        check_count("num_steps", self.num_steps)
        if self.loss not in APGD_LOSSES:
            raise ValueError(f"loss must be one of {', '.join(APGD_LOSSES)}, got {self.loss!r}")
        check_count("num_restarts", self.num_restarts)
        if not 0.0 < self.rho <= 1.0:
            raise ValueError(f"rho must be in (0, 1], got {self.rho}")


class APGDResult(NamedTuple):
    """The outcome of an APGD attack, per example.

    Attributes:
      adversarial: the attack's point: the last misclassified iterate where one was found (over
        all restarts / target classes), otherwise the iterate of highest loss. Examples the
        model already misclassifies on clean inputs are not attacked and are returned as `x`.
        Always inside B(x, eps) and [0, 1].
      robust: bool (N,), True where the clean input and every iterate evaluated were classified
        as `y`. `robust` is what the attack observed; the model's prediction on `adversarial`
        agrees with it for a deterministic model.
      loss: float32 (N,), the highest loss reached by the attack's loss (for non-robust examples
        of the last run that attacked them; 0 for examples misclassified clean).
    """

    adversarial: tf.Tensor
    robust: tf.Tensor
    loss: tf.Tensor


def _check_classes(logits: tf.Tensor, needed: int, loss: str) -> None:
    num_classes = logits.shape[-1]
    if num_classes is not None and num_classes < needed:
        raise ValueError(f"the {loss} loss needs at least {needed} classes, got {num_classes}")


def dlr_loss(logits: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    """Untargeted Difference of Logits Ratio, per example (float32).

    DLR(z, y) = -(z_y - max_{j != y} z_j) / (z_pi1 - z_pi3 + 1e-12), with z_pi the logits sorted
    in decreasing order. Positive exactly when the example is misclassified; invariant to
    shifting and (positively) scaling the logits, so it is not fooled by saturated softmaxes.

    Args:
      logits: (N, C) logits, C >= 3.
      labels: (N,) integer labels.

    Returns:
      (N,) float32 losses.
    """
    logits = tf.cast(logits, tf.float32)
    _check_classes(logits, 3, "dlr")
    labels = tf.cast(tf.reshape(labels, [-1]), tf.int32)
    top = tf.math.top_k(logits, k=3).values
    return -margin(logits, labels) / (top[:, 0] - top[:, 2] + _DLR_DELTA)


def dlr_targeted_loss(logits: tf.Tensor, labels: tf.Tensor, targets: tf.Tensor) -> tf.Tensor:
    """Targeted DLR (the loss of APGD-T), per example (float32).

    DLR_t(z, y) = -(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2 + 1e-12).

    Args:
      logits: (N, C) logits, C >= 4.
      labels: (N,) integer labels y.
      targets: (N,) integer target classes t.

    Returns:
      (N,) float32 losses.
    """
    logits = tf.cast(logits, tf.float32)
    _check_classes(logits, 4, "dlr_targeted")
    labels = tf.cast(tf.reshape(labels, [-1]), tf.int32)
    targets = tf.cast(tf.reshape(targets, [-1]), tf.int32)
    top = tf.math.top_k(logits, k=4).values
    numerator = label_logit(logits, labels) - label_logit(logits, targets)
    return -numerator / (top[:, 0] - 0.5 * (top[:, 2] + top[:, 3]) + _DLR_DELTA)


def apgd_checkpoints(num_steps: int) -> list[int]:
    """The iteration counts w_j after which APGD may halve its step size.

    The paper's checkpoints are w_j = ceil(p_j N) with p_0 = 0, p_1 = 0.22 and
    p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06). As the reference implementation does, the
    period lengths are computed in integers: the first is max(int(0.22 N), 1), each next one is
    the previous minus max(int(0.03 N), 1), but at least max(int(0.06 N), 1). For N = 100 both
    give 22, 41, 57, 70, 80, 87, 93, 99; for other N they can differ by an iteration.

    Args:
      num_steps: N, the number of iterations.

    Returns:
      The increasing list of checkpoints w_1, w_2, ... <= N (iterations completed).
    """
    period = max(int(0.22 * num_steps), 1)
    decrement = max(int(0.03 * num_steps), 1)
    shortest = max(int(0.06 * num_steps), 1)
    checkpoints, w = [], period
    while w <= num_steps:
        checkpoints.append(w)
        period = max(period - decrement, shortest)
        w += period
    return checkpoints


def _make_loss(loss: str, labels: tf.Tensor, targets: Optional[tf.Tensor]):
    if loss == "ce":
        return lambda logits: cross_entropy(logits, labels)
    if loss == "dlr":
        return lambda logits: dlr_loss(logits, labels)
    return lambda logits: dlr_targeted_loss(logits, labels, targets)


def _single_run(logits_fn: LogitsFn, x: tf.Tensor, y: tf.Tensor, targets: Optional[tf.Tensor],
                noise: tf.Tensor, config: APGDConfig):
    """One APGD run from one random start (Croce & Hein 2020, Algorithm 1; Linf or L2).

    Returns (adversarial, found, best_loss): the last misclassified iterate where `found`, else
    the point of highest loss.
    """
    eps = tf.cast(config.epsilon, x.dtype)
    lower = tf.maximum(x - eps, 0.0)
    upper = tf.minimum(x + eps, 1.0)
    loss_fn = _make_loss(config.loss, y, targets)

    def one_gradient(x_t):
        with tf.GradientTape() as tape:
            tape.watch(x_t)
            logits = logits_fn(x_t)
            loss = loss_fn(logits)
            total = tf.reduce_sum(loss)
        grad = tape.gradient(total, x_t)
        if grad is None:
            raise ValueError("apgd: logits_fn gives no gradient with respect to its input; "
                             "use a query-only attack (square_attack, nattack) for such models")
        wrong = tf.argmax(logits, axis=-1, output_type=tf.int32) != y
        return loss, grad, wrong

    def evaluate(x_t):
        loss, grad, wrong = one_gradient(x_t)
        if config.eot_iter == 1:
            return loss, grad, wrong

        # EOT as the reference: the mean gradient of eot_iter calls; the loss and the prediction
        # are the last call's.
        def draw(j, total, loss, wrong):
            loss, grad, wrong = one_gradient(x_t)
            return j + 1, total + grad, loss, wrong

        _, total, loss, wrong = tf.while_loop(lambda j, *_: j < config.eot_iter, draw,
                                              (tf.constant(1), grad, loss, wrong))
        return loss, total / float(config.eot_iter), wrong

    l2 = config.norm == "L2"
    # Random start as the reference. Linf: a uniform direction rescaled so that its largest
    # coordinate has size eps (a corner-heavy start); L2: a Gaussian direction of L2 norm eps.
    # Then clipped to [0, 1].
    if l2:
        direction = noise / (l2_norm(noise) + 1e-12)
    else:
        direction = noise / (tf.reduce_max(tf.abs(noise), axis=tf.range(1, tf.rank(noise)),
                                           keepdims=True) + 1e-12)
    x0 = tf.clip_by_value(x + eps * direction, 0.0, 1.0)

    def step_towards(x_cur, x_prev, grad, step, a):
        """The momentum step and its projection (Linf: box; L2: rescale, then clip)."""
        step = tf.cast(batch_mask(step, x), x.dtype)
        if l2:
            z = project_l2(x_cur + step * grad / (l2_norm(grad) + 1e-12), x, eps)
            return project_l2(x_cur + a * (z - x_cur) + (1.0 - a) * (x_cur - x_prev), x, eps)
        z = tf.clip_by_value(x_cur + step * tf.sign(grad), lower, upper)
        return tf.clip_by_value(x_cur + a * (z - x_cur) + (1.0 - a) * (x_cur - x_prev), lower, upper)
    loss0, grad0, wrong0 = evaluate(x0)

    n = config.num_steps
    checkpoints = apgd_checkpoints(n)
    is_checkpoint = tf.constant([i + 1 in checkpoints for i in range(n)])
    periods = [0] * n
    previous = 0
    for w in checkpoints:
        periods[w - 1] = w - previous
        previous = w
    period_at = tf.constant(periods, tf.float32)
    rho = tf.constant(config.rho, tf.float32)
    per_example = tf.shape(y)

    def body(i, x_cur, x_prev, grad, loss_prev, x_best, loss_best, grad_best, x_adv, found,
             step, increases, loss_best_at_check, reduced_at_check):
        # Momentum step (the first step has none).
        a = tf.where(i > 0, tf.constant(0.75, x.dtype), tf.constant(1.0, x.dtype))
        x_new = step_towards(x_cur, x_prev, grad, step, a)
        loss, grad, wrong = evaluate(x_new)
        x_adv = tf.where(batch_mask(wrong, x), x_new, x_adv)
        found = tf.logical_or(found, wrong)
        improved = loss > loss_best
        x_best = tf.where(batch_mask(improved, x), x_new, x_best)
        grad_best = tf.where(batch_mask(improved, x), grad, grad_best)
        loss_best = tf.where(improved, loss, loss_best)
        increases = increases + tf.cast(loss > loss_prev, tf.float32)

        # Checkpoint: halve the step and restart from the best point where
        # (1) at most a fraction rho of the iterations since the last checkpoint increased the
        #     loss, or (2) the step was not halved at the last checkpoint and the best loss has
        #     not improved since.
        check = tf.gather(is_checkpoint, i)
        oscillating = increases <= tf.gather(period_at, i) * rho
        stalled = tf.logical_and(tf.logical_not(reduced_at_check), loss_best_at_check >= loss_best)
        halve = tf.logical_and(check, tf.logical_or(oscillating, stalled))
        reduced_at_check = tf.where(check, halve, reduced_at_check)
        loss_best_at_check = tf.where(check, loss_best, loss_best_at_check)
        increases = tf.where(check, tf.zeros_like(increases), increases)
        step = tf.where(halve, step / 2.0, step)
        x_next = tf.where(batch_mask(halve, x), x_best, x_new)
        grad = tf.where(batch_mask(halve, x), grad_best, grad)
        return (i + 1, x_next, x_cur, grad, loss, x_best, loss_best, grad_best, x_adv, found,
                step, increases, loss_best_at_check, reduced_at_check)

    # The loss the first iterate is compared with when counting increases. The reference keeps
    # the losses in a zero-initialised buffer of N rows and, at the first checkpoint, compares
    # the first iterate's loss with the buffer's last row, still 0 (for N = 1, with itself).
    # So the first step counts as an increase when its loss is above 0, not above the loss at
    # the random start: for the targeted DLR loss, negative while an example is robust, it
    # never counts, which makes halving at the first checkpoint more likely.
    first_loss_prev = tf.zeros_like(loss0) if n > 1 else tf.fill(tf.shape(loss0), float("inf"))
    state = (tf.constant(0), x0, x0, grad0, first_loss_prev, x0, loss0, grad0, x0, wrong0,
             tf.fill(per_example, 2.0 * tf.cast(eps, tf.float32)),
             tf.zeros(per_example, tf.float32), loss0,
             tf.ones(per_example, tf.bool))  # no "stalled" test at the first checkpoint
    state = tf.while_loop(lambda i, *_: i < n, body, state, maximum_iterations=n)
    _, _, _, _, _, x_best, loss_best, _, x_adv, found, *_ = state
    return tf.where(batch_mask(found, x), x_adv, x_best), found, loss_best


def _attack_robust(logits_fn: LogitsFn, x: tf.Tensor, y: tf.Tensor, targets: Optional[tf.Tensor],
                   config: APGDConfig, seed, state):
    """Runs `_single_run` on the examples still robust in `state` and merges the worst case."""
    adversarial, robust, best_loss = state
    # Noise is drawn for the whole batch and gathered, so an example's start does not depend on
    # which other examples are still being attacked.
    if config.norm == "L2":
        noise = randomness.normal(seed, tf.shape(x), dtype=x.dtype)
    else:
        noise = randomness.uniform(seed, tf.shape(x), -1.0, 1.0, dtype=x.dtype)
    index = tf.where(robust)[:, 0]  # not empty: `_run_all` stops once no example is robust
    sub_targets = None if targets is None else tf.gather(targets, index)
    sub_adv, sub_found, sub_loss = _single_run(logits_fn, tf.gather(x, index), tf.gather(y, index),
                                               sub_targets, tf.gather(noise, index), config)
    # Per example: a success replaces the point; otherwise keep the higher loss.
    take = tf.logical_or(sub_found, sub_loss > tf.gather(best_loss, index))
    where = index[:, None]
    merged = tf.where(batch_mask(take, sub_adv), sub_adv, tf.gather(adversarial, index))
    adversarial = tf.tensor_scatter_nd_update(adversarial, where, merged)
    best_loss = tf.tensor_scatter_nd_update(
        best_loss, where, tf.where(take, sub_loss, tf.gather(best_loss, index)))
    robust = tf.tensor_scatter_nd_update(robust, where, tf.logical_not(sub_found))
    return adversarial, robust, best_loss


def _prepare(x, y):
    return tf.convert_to_tensor(check_images(x)), tf.cast(tf.reshape(y, [-1]), tf.int32)


def _initial_state(logits_fn: LogitsFn, x: tf.Tensor, y: tf.Tensor):
    clean_logits = logits_fn(x)
    robust = tf.argmax(clean_logits, axis=-1, output_type=tf.int32) == y
    best_loss = tf.where(robust, tf.fill(tf.shape(y), float("-inf")), tf.zeros(tf.shape(y)))
    return clean_logits, (x, robust, best_loss)


def _finish(state) -> APGDResult:
    adversarial, robust, best_loss = state
    return APGDResult(tf.stop_gradient(adversarial), tf.stop_gradient(robust),
                      tf.stop_gradient(best_loss))


def _run_all(logits_fn: LogitsFn, x: tf.Tensor, y: tf.Tensor, config: APGDConfig, seed,
             state, targets_per_run: Optional[tf.Tensor]):
    """All runs (restarts, and target classes for APGD-T) in one loop, so the graph holds one
    copy of the attack; it stops early once no example is robust.

    `targets_per_run` is None (untargeted) or (N, num_targets): column k holds the targets of
    target run k; run r uses target column r // num_restarts and restart r % num_restarts.
    """
    restarts = config.num_restarts
    num_targets = 1 if targets_per_run is None else tf.shape(targets_per_run)[1]
    seed = tf.cast(tf.convert_to_tensor(seed), tf.int32)

    def body(r, adversarial, robust, best_loss):
        target_row, restart = r // restarts, r % restarts
        if targets_per_run is None:
            targets, run_seed = None, randomness.fold_in(seed, restart)
        else:
            targets = tf.gather(targets_per_run, target_row, axis=1)
            run_seed = randomness.fold_in(randomness.fold_in(seed, target_row), restart)
        return (r + 1,) + tuple(_attack_robust(logits_fn, x, y, targets, config, run_seed,
                                               (adversarial, robust, best_loss)))

    def cond(r, adversarial, robust, best_loss):
        return tf.logical_and(r < num_targets * restarts, tf.reduce_any(robust))

    _, *state = tf.while_loop(cond, body, (tf.constant(0),) + tuple(state))
    return _finish(state)


def apgd(logits_fn: LogitsFn,
         x: tf.Tensor,
         y: tf.Tensor,
         config: APGDConfig,
         seed,
         *,
         targets: Optional[tf.Tensor] = None) -> APGDResult:
    """APGD (Croce & Hein 2020): APGD-CE, APGD-DLR, or targeted DLR with given targets.

    Per iteration k (step size eta per example, starting at 2 eps; momentum alpha = 0.75):
      z = P(x_k + eta sign(grad L(x_k)));
      x_{k+1} = P(x_k + alpha (z - x_k) + (1 - alpha)(x_k - x_{k-1}))   (alpha = 1 at k = 0),
    with P the projection onto B(x, eps) and [0, 1]; in L2 the step is eta grad / ||grad||_2 and
    P rescales onto the L2 ball, then clips to [0, 1], as the reference. At each checkpoint (`apgd_checkpoints`),
    for examples where at most rho of the iterations since the last checkpoint increased the
    loss, or where the step was not halved at the last checkpoint and the best loss has not
    improved since, eta is halved and the iterate restarts from the best point (with its
    gradient). Each example's best-loss point and its last misclassified iterate are tracked.

    Only examples the model classifies correctly on clean inputs are attacked. With
    `config.num_restarts > 1`, each restart starts from a fresh random point and attacks only the
    examples still robust (the reference's protocol); per example, the worst case is kept.

    The first window's "did the loss increase" test compares iteration 1 with 0, as the
    reference does (it reads an unfilled entry of its zero-initialised loss history), not with
    the random start as the paper writes it; tests/test_apgd_reference.py runs a transcription
    of the reference's loop beside this one. The one deviation: the random generator differs,
    so results match the reference in distribution, not bit for bit.

    Cost: one clean forward pass, then per run and attacked example N_iter + 1 forward-backward
    passes. Wrap the call in `tf.function` for speed.

    Args:
      logits_fn: images -> logits; must run the model in inference mode and be differentiable.
      x: clean images, float NHWC in [0, 1].
      y: integer labels (N,).
      config: the attack.
      seed: stateless seed of shape (2,) for the random starts.
      targets: (N,) target classes for `config.loss == "dlr_targeted"`; if None, the class with
        the second-largest clean logit. Ignored by the other losses. (`apgd_targeted` runs the
        APGD-T protocol over several targets.)

    Returns:
      An `APGDResult` (adversarial points, per-example robust flags, best losses), all
      `tf.stop_gradient`-ed.
    """
    x, y = _prepare(x, y)
    clean_logits, state = _initial_state(logits_fn, x, y)
    targets_per_run = None
    if config.loss == "dlr_targeted":
        _check_classes(clean_logits, 4, "dlr_targeted")
        if targets is None:
            targets = tf.math.top_k(clean_logits, k=2).indices[:, 1]
        targets_per_run = tf.cast(tf.reshape(targets, [-1, 1]), tf.int32)
    elif config.loss == "dlr":
        _check_classes(clean_logits, 3, "dlr")
    return _run_all(logits_fn, x, y, config, seed, state, targets_per_run)


def apgd_targeted(logits_fn: LogitsFn,
                  x: tf.Tensor,
                  y: tf.Tensor,
                  config: APGDConfig,
                  seed) -> APGDResult:
    """APGD-T (Croce & Hein 2020): APGD on the targeted DLR loss over several target classes.

    For k = 2, ..., K + 1 (K = `config.num_target_classes`, at most C - 1), the target of each
    example is the class with the k-th largest clean logit, and APGD on the targeted DLR loss
    (with `config.num_restarts` restarts per target) attacks the examples not yet misclassified.
    An example counts as robust only if every run failed (per-example worst case), as in
    AutoAttack.

    Args:
      logits_fn: images -> logits; must run the model in inference mode and be differentiable.
      x: clean images, float NHWC in [0, 1].
      y: integer labels (N,).
      config: the attack, with its `num_target_classes`; its `loss` is replaced by
        "dlr_targeted" (the loss that defines APGD-T), so `APGDConfig(eps, num_steps)` is enough.
      seed: stateless seed of shape (2,).

    Returns:
      An `APGDResult`, all tensors `tf.stop_gradient`-ed.
    """
    config = dataclasses.replace(config, loss="dlr_targeted")
    x, y = _prepare(x, y)
    clean_logits, state = _initial_state(logits_fn, x, y)
    _check_classes(clean_logits, 4, "dlr_targeted")
    targets_per_run = ranked_targets("apgd_targeted", clean_logits, config.num_target_classes)
    return _run_all(logits_fn, x, y, config, seed, state, targets_per_run)
