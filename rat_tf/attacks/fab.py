"""Fast Adaptive Boundary attack (FAB, Croce & Hein 2020), Linf and L2: FAB-T and FAB of AutoAttack.

"Minimally distorted adversarial examples with a fast adaptive boundary attack" (ICML 2020).
FAB looks for the adversarial point closest to x in the chosen norm (Linf or L2). At the
current iterate x_k it linearises a decision boundary of the label y,
{z : f(x_k) + <grad f(x_k), z - x_k> = 0} with f = z_j - z_y, where j is
  * the target class t (targeted FAB, `fab_targeted`: FAB-T), or
  * among all classes j != y, the one whose linearised boundary is closest to x_k:
    argmin_j |f_j(x_k)| / ||grad f_j(x_k)||_* with ||.||_* the dual norm (L1 for Linf, L2 for
    L2) (untargeted FAB, `fab`; this needs the gradients of all C logits),
projects both x_k and the clean point x onto that hyperplane intersected with the [0, 1] box
(minimal steps d_k and d_0 in the norm), and moves to a biased combination of the two
projections, extrapolated by eta:
  alpha = min(||d_k|| / (||d_k|| + ||d_0||), alpha_max),      (each norm floored at 1e-8)
  x_{k+1} = clip((x_k + eta d_k)(1 - alpha) + (x + eta d_0) alpha, 0, 1).
When x_{k+1} is misclassified it is kept if it is the closest found so far, and the iterate
steps back towards x: x_{k+1} <- (1 - beta) x + beta x_{k+1}. With epsilon given, the attack
succeeds on an example when the closest point found is within distance epsilon.

The reference implementation is fra31/auto-attack `autoattack/fab_base.py` (`attack_single_run`
and `perturb`, targeted and untargeted branches, `autoattack/fab_pt.py` for the gradients) with
the projections `projection_linf` and `projection_l2` of `autoattack/fab_projections.py`.
`autoattack/autoattack.py` runs it with 100 iterations, alpha_max = 0.1, eta = 1.05, beta = 0.9
(this module's defaults): version='standard' as FAB-T with 9 target classes and 1 restart,
version='plus' also as untargeted FAB with 5 restarts. Restarts after the first start from
x + (eps / 2) u, with u a uniform [-1, 1] draw rescaled to Linf norm 1 (Linf) or a Gaussian
draw rescaled to L2 norm 1 (L2), clipped to [0, 1]; every restart attacks only the examples not
yet broken. The code here is a TensorFlow re-implementation: one `tf.while_loop` over runs
(target classes x restarts), one over iterations, per-example state tensors, batched.
Deviations from the reference:
  * An optional final search along the segment from x to the closest adversarial point found
    (`FABConfig.final_search_steps`, default 0: off, as in AutoAttack) can be added after the
    iterations. It is not part of AutoAttack (the original fra31/fab-attack code has an
    optional linear-approximation search, off by default). Steps alternate a false-position
    step (interpolating the margins z_y - max_{j != y} z_j at the two ends; exact on an affine
    model) and a bisection step. It only ever moves a found point closer to x (the returned
    point is one the model was seen to misclassify), so it can only turn failures into
    successes.
  * Both projections find the active piece of their piecewise-linear constraint by counting
    the breakpoints below the target instead of by bisection over them: the same answer (the
    function is monotone), with no data-dependent loop. The residual of the clean point on the
    hyperplane is computed as f(x_k) + <grad, x - x_k> instead of <grad, x> - b with
    b = <grad, x_k> - f(x_k), which is the same number without the cancellation. The L2
    projection leaves coordinates with a zero gradient entry where they are (the reference:
    entries below 1e-8 in absolute value, a scale-dependent threshold).
  * The target classes are ranked once on the clean logits of the whole batch (the reference
    re-ranks the still-robust subset before each run: the same classes for a deterministic
    model). The random generator differs, so random restarts match the reference in
    distribution, not bit for bit.
  * Untargeted FAB computes the C logit gradients with C backward passes in a `tf.while_loop`
    (as the reference's C `backward` calls) and excludes the label class with +inf instead of
    the reference's 1e10 logit difference.
  * Everything is float32 (inputs are cast).

Like every attack in `rat_tf.attacks`, the functions here are pure: they call `logits_fn` (which
must run the model in inference mode), change no model state, and return
`tf.stop_gradient`-ed tensors. They run eagerly or inside `tf.function` (recommended).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable, NamedTuple, Optional

import tensorflow as tf

from rat_tf import randomness
from rat_tf.attacks.common import (
    LogitsFn,
    check_count,
    check_images,
    check_norm,
    check_radius,
    label_logit,
    margin,
    ranked_targets,
)

# The reference's floor on the size of the two projection steps before their ratio is taken.
_MIN_STEP = 1e-8
# The reference's guard on the dual norm of a gradient when ranking the boundaries by distance.
_MIN_DUAL = 1e-12
# A finite cap on the L2 breakpoints |room / w_i|, so that a tiny w_i gives no inf (and no inf * 0).
_MAX_BREAKPOINT = 1e30


@dataclasses.dataclass(frozen=True)
class FABConfig:
    """A FAB attack (pixel units; images in [0, 1]).

    Attributes:
      epsilon: the radius (in `norm`) within which an adversarial point counts as a success;
        also sets the random starts of restarts after the first (random directions of size
        epsilon / 2, as the reference). In [0, 1] for Linf, any finite value >= 0 for L2.
      num_steps: iterations per run (each one forward-backward pass at the iterate, or one
        forward and C backward passes for untargeted FAB, and one forward pass at the new
        point). AutoAttack uses 100.
      num_restarts: runs per target class (targeted) or in all (untargeted); the first starts
        at the clean point (as the reference), later ones from random points; each attacks
        only the examples still robust. AutoAttack: 1 for FAB-T, 5 for FAB ('plus' version).
      alpha_max: the largest weight of the projection of the clean point in a step.
      eta: the extrapolation (overshoot) factor of the projection steps, >= 1.
      beta: the backward step: after finding a misclassified point x_adv the iterate becomes
        (1 - beta) x + beta x_adv.
      final_search_steps: steps of the search along the segment from x to the closest
        adversarial point found, after the iterations (not in AutoAttack's FAB; 0, the
        default, disables it).
      norm: the distance minimised and bounded by epsilon, "Linf" or "L2".
      num_target_classes: the target classes FAB-T tries (`fab_targeted`; AutoAttack: 9); more
        than C - 1 are clamped to C - 1 with a warning, as AutoAttack does. Untargeted FAB
        ignores it.
    """

    epsilon: float
    num_steps: int = 100
    num_restarts: int = 1
    alpha_max: float = 0.1
    eta: float = 1.05
    beta: float = 0.9
    final_search_steps: int = 0
    norm: str = "Linf"
    num_target_classes: int = 9

    def __post_init__(self):
        check_radius(self.epsilon, check_norm(self.norm))
        check_count("num_steps", self.num_steps)
        check_count("num_restarts", self.num_restarts)
        if isinstance(self.alpha_max, bool) or not 0.0 < self.alpha_max <= 1.0:
            raise ValueError(f"alpha_max must be in (0, 1], got {self.alpha_max}")
        if isinstance(self.eta, bool) or not 1.0 <= self.eta < math.inf:
            raise ValueError(f"eta must be a finite number >= 1, got {self.eta}")
        if isinstance(self.beta, bool) or not 0.0 < self.beta <= 1.0:
            raise ValueError(f"beta must be in (0, 1], got {self.beta}")
        check_count("final_search_steps", self.final_search_steps, 0)
        check_count("num_target_classes", self.num_target_classes)


class FABResult(NamedTuple):
    """The outcome of a FAB attack, per example.

    Attributes:
      adversarial: float32, the closest misclassified point found where it is within epsilon
        of `x` (over all target classes and restarts; the first run that succeeds on an example
        decides it), otherwise `x` itself, unchanged. Always inside B(x, eps) and [0, 1].
      robust: bool (N,), False where the clean input is misclassified or a misclassified point
        within epsilon was found. The model (if deterministic) misclassifies `adversarial`
        exactly where `robust` is False.
      distance: float32 (N,), the norm (`FABConfig.norm`) of `adversarial - x` where the attack
        succeeded, 0 where the clean input is misclassified, +inf where the example is robust (a
        misclassified point farther than epsilon is not reported).
    """

    adversarial: tf.Tensor
    robust: tf.Tensor
    distance: tf.Tensor


def _fill_to_level(weight: tf.Tensor, room: tf.Tensor, delta: tf.Tensor) -> tf.Tensor:
    """Row by row, min(lambda, room_i) for the lambda >= 0 solving sum_i weight_i min(lambda, room_i)
    = delta; `room` itself (every coordinate at its bound) where even that sum stays below delta.

    h(lambda) = sum_i weight_i min(lambda, room_i) is nondecreasing and piecewise linear with
    breakpoints at the sorted room_i. Counting the breakpoints with h(room_(k)) < delta gives
    the linear piece holding h(lambda) = delta, solved exactly.

    Args:
      weight: (M, D) slopes, >= 0.
      room: (M, D) breakpoints, finite and >= 0.
      delta: (M,) levels, >= 0.
    """
    order = tf.argsort(room, axis=1, stable=True)
    room_sorted = tf.gather(room, order, batch_dims=1)
    weight_sorted = tf.gather(weight, order, batch_dims=1)
    # After breakpoint k (0-based, sorted ascending): the part of h from the coordinates already
    # at their bound, and the total weight of those still moving with lambda.
    done = tf.cumsum(weight_sorted * room_sorted, axis=1)
    total = tf.reduce_sum(weight, axis=1)
    moving = tf.maximum(total[:, None] - tf.cumsum(weight_sorted, axis=1), 0.0)
    h_at_breakpoints = done + room_sorted * moving

    below = tf.reduce_sum(tf.cast(h_at_breakpoints < delta[:, None], tf.int32), axis=1)
    last = tf.maximum(below - 1, 0)
    done_k = tf.where(below > 0, tf.gather(done, last, batch_dims=1), 0.0)
    moving_k = tf.where(below > 0, tf.gather(moving, last, batch_dims=1), total)
    # moving_k > 0 whenever the level is reachable, up to rounding: there, every bound.
    safe = tf.where(moving_k > 0.0, moving_k, 1.0)
    lam = tf.where(moving_k > 0.0, tf.maximum(delta - done_k, 0.0) / safe, math.inf)
    reachable = delta < done[:, -1]
    return tf.where(reachable[:, None], tf.minimum(lam[:, None], room), room)


def _oriented(points: tf.Tensor, w: tf.Tensor, residual: tf.Tensor):
    """The normal oriented so that <w, d> must decrease by delta = |residual| >= 0, and each
    coordinate's room to move in the direction that decreases it (towards 0 where w_i > 0,
    towards 1 where w_i < 0)."""
    decrease = tf.where(residual[:, None] >= 0.0, w, -w)
    room = tf.maximum(tf.where(decrease < 0.0, 1.0 - points, points), 0.0)
    return decrease, room, tf.abs(residual)


def project_linf_box(points: tf.Tensor, w: tf.Tensor, residual: tf.Tensor) -> tf.Tensor:
    """Minimal Linf steps onto hyperplanes within the [0, 1] box, row by row.

    For each row, the step d minimising ||d||_inf subject to residual + <w, d> = 0 and
    points + d in [0, 1]^D, i.e. the Linf projection of `points` onto {z : <w, z - points> =
    -residual} intersected with the box (the reference's `projection_linf`, whose hyperplane
    <w, z> = b has residual <w, points> - b). Where the box does not meet the hyperplane, the
    step to the box corner that gets closest to it. Coordinates with w = 0 do not move.

    Solution: orient w so that <w, d> must decrease by delta = |residual|. Coordinate i then
    moves towards 0 (w_i > 0) or 1 (w_i < 0) by min(lambda, c_i), with c_i its room to move,
    so <w, d> decreases by h(lambda) = sum_i |w_i| min(lambda, c_i), solved for h = delta.

    Args:
      points: (M, D) points in [0, 1].
      w: (M, D) hyperplane normals.
      residual: (M,) signed offsets: the hyperplane is where residual + <w, z - points> = 0.

    Returns:
      (M, D) steps d.
    """
    decrease, room, delta = _oriented(points, w, residual)
    size = _fill_to_level(tf.abs(decrease), room, delta)
    step = tf.where(decrease < 0.0, size, -size)
    return tf.where(decrease != 0.0, step, tf.zeros_like(step))


def project_l2_box(points: tf.Tensor, w: tf.Tensor, residual: tf.Tensor) -> tf.Tensor:
    """Minimal L2 steps onto hyperplanes within the [0, 1] box, row by row.

    For each row, the step d minimising ||d||_2 subject to residual + <w, d> = 0 and
    points + d in [0, 1]^D (the reference's `projection_l2`, with the same conventions as
    `project_linf_box`). Where the box does not meet the hyperplane, the step to the box corner
    that gets closest to it. Coordinates with w = 0 do not move. Where the box is not active
    this is the orthogonal projection, d = -residual w / ||w||^2.

    Solution (KKT): orient w so that <w, d> must decrease by delta = |residual|. The optimum is
    d_i = -w_i min(lambda, r_i) for a lambda >= 0, with r_i = c_i / |w_i| the lambda at which
    coordinate i reaches its bound (c_i its room to move towards 0 where w_i > 0, towards 1
    where w_i < 0). <w, d> then decreases by h(lambda) = sum_i w_i^2 min(lambda, r_i), solved
    for h = delta.

    Args:
      points: (M, D) points in [0, 1].
      w: (M, D) hyperplane normals.
      residual: (M,) signed offsets: the hyperplane is where residual + <w, z - points> = 0.

    Returns:
      (M, D) steps d.
    """
    decrease, room, delta = _oriented(points, w, residual)
    magnitude = tf.abs(decrease)
    moves = magnitude > 0.0
    breakpoint = tf.where(moves, tf.minimum(room / tf.where(moves, magnitude, 1.0), _MAX_BREAKPOINT), 0.0)
    size = _fill_to_level(tf.square(decrease), breakpoint, delta)
    return tf.where(moves, -decrease * size, tf.zeros_like(decrease))


def _linf(flat: tf.Tensor) -> tf.Tensor:
    return tf.reduce_max(tf.abs(flat), axis=1)


def _l1(flat: tf.Tensor) -> tf.Tensor:
    return tf.reduce_sum(tf.abs(flat), axis=-1)


def _l2(flat: tf.Tensor) -> tf.Tensor:
    return tf.sqrt(tf.reduce_sum(tf.square(flat), axis=-1))


class _Geometry(NamedTuple):
    """What a norm changes in FAB: the distance, the dual norm ranking the boundaries, the
    projection onto a hyperplane within the box."""

    distance: Callable[[tf.Tensor], tf.Tensor]
    dual: Callable[[tf.Tensor], tf.Tensor]
    project: Callable[[tf.Tensor, tf.Tensor, tf.Tensor], tf.Tensor]


_GEOMETRY = {"Linf": _Geometry(_linf, _l1, project_linf_box), "L2": _Geometry(_l2, _l2, project_l2_box)}


def _no_gradient_error(name: str) -> ValueError:
    return ValueError(f"{name}: logits_fn gives no gradient with respect to its input; "
                      "use a query-only attack (square_attack, nattack) for such models")


def _class_gradients(tape: tf.GradientTape, logits: tf.Tensor, flat: tf.Tensor) -> tf.Tensor:
    """The gradients of every logit with respect to `flat`, (C, N, D): one backward pass per
    class on a persistent tape (the reference's loop of `backward` calls), in sequence so that
    memory stays that of one backward pass."""
    num_classes = tf.shape(logits)[1]

    def body(j, grads):
        grad = tape.gradient(logits, flat, output_gradients=tf.one_hot(
            tf.fill(tf.shape(logits)[:1], j), num_classes, dtype=logits.dtype))
        if grad is None:
            raise _no_gradient_error("fab")
        return j + 1, grads.write(j, grad)

    grads = tf.TensorArray(flat.dtype, size=num_classes, element_shape=flat.shape)
    _, grads = tf.while_loop(lambda j, _: j < num_classes, body, (tf.constant(0), grads),
                             parallel_iterations=1)
    return grads.stack()


def _single_run(logits_fn: LogitsFn, x: tf.Tensor, y: tf.Tensor, targets: Optional[tf.Tensor],
                start: tf.Tensor, clean_margin: tf.Tensor, config: FABConfig):
    """One FAB run from `start` (the reference's `attack_single_run`): towards `targets`, or
    untargeted (the closest linearised boundary at each iteration) where `targets` is None.

    Returns (closest, found, distance): the closest misclassified point found (after the final
    search; `x` where none was found), whether one was found, and its distance to `x`.
    """
    shape = tf.shape(x)
    n = shape[0]
    x0 = tf.reshape(x, [n, -1])
    geometry = _GEOMETRY[config.norm]
    rows = tf.range(n)

    def logits_at(flat):
        return tf.cast(logits_fn(tf.reshape(flat, shape)), tf.float32)

    def targeted_boundary(flat):
        with tf.GradientTape() as tape:
            tape.watch(flat)
            logits = logits_at(flat)
            difference = label_logit(logits, targets) - label_logit(logits, y)
            total = tf.reduce_sum(difference)
        grad = tape.gradient(total, flat)
        if grad is None:
            raise _no_gradient_error("fab_targeted")
        return difference, grad

    def closest_boundary(flat):
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(flat)
            logits = logits_at(flat)
        grads = _class_gradients(tape, logits, flat)  # (C, N, D)
        del tape
        differences = logits - label_logit(logits, y)[:, None]  # (N, C)
        label_grad = tf.gather_nd(grads, tf.stack([y, rows], axis=1))
        grad_differences = grads - label_grad[None]
        # The distance to each linearised boundary: |f_j| / ||grad f_j||_dual (j = y excluded).
        distances = tf.abs(differences) / (tf.transpose(geometry.dual(grad_differences)) + _MIN_DUAL)
        is_label = tf.range(tf.shape(logits)[1])[None, :] == y[:, None]
        nearest = tf.argmin(tf.where(is_label, math.inf, distances), axis=1, output_type=tf.int32)
        return (tf.gather(differences, nearest, batch_dims=1),
                tf.gather_nd(grad_differences, tf.stack([nearest, rows], axis=1)))

    boundary = closest_boundary if targets is None else targeted_boundary
    alpha_max = tf.constant(config.alpha_max, tf.float32)
    eta = tf.constant(config.eta, tf.float32)
    beta = tf.constant(config.beta, tf.float32)

    def body(i, x_k, closest, best, closest_margin):
        f, grad = boundary(x_k)
        # Residuals of x_k and of x on the linearised boundary f(x_k) + <grad, z - x_k> = 0.
        residual = tf.concat([f, f + tf.reduce_sum(grad * (x0 - x_k), axis=1)], axis=0)
        steps = geometry.project(tf.concat([x_k, x0], axis=0), tf.concat([grad, grad], axis=0), residual)
        step_k, step_0 = tf.split(steps, 2, axis=0)
        size_k = tf.maximum(geometry.distance(step_k), _MIN_STEP)
        size_0 = tf.maximum(geometry.distance(step_0), _MIN_STEP)
        alpha = tf.minimum(size_k / (size_k + size_0), alpha_max)[:, None]
        x_new = tf.clip_by_value((x_k + eta * step_k) * (1.0 - alpha) + (x0 + eta * step_0) * alpha,
                                 0.0, 1.0)
        logits = logits_at(x_new)
        wrong = tf.argmax(logits, axis=-1, output_type=tf.int32) != y
        distance = geometry.distance(x_new - x0)
        closer = tf.logical_and(wrong, distance < best)
        closest = tf.where(closer[:, None], x_new, closest)
        best = tf.where(closer, distance, best)
        closest_margin = tf.where(closer, margin(logits, y), closest_margin)
        x_next = tf.where(wrong[:, None], (1.0 - beta) * x0 + beta * x_new, x_new)
        return i + 1, x_next, closest, best, closest_margin

    steps_total = int(config.num_steps)
    state = (tf.constant(0), tf.reshape(start, [n, -1]), x0, tf.fill([n], math.inf),
             tf.zeros([n], tf.float32))
    _, _, closest, best, closest_margin = tf.while_loop(
        lambda i, *_: i < steps_total, body, state, maximum_iterations=steps_total)
    found = best < math.inf

    # Final search on the segment x + s (closest - x): s = lo is classified y, s = hi is not.
    segment = closest - x0

    def search_body(j, lo, hi, margin_lo, margin_hi, point):
        gap = margin_lo - margin_hi
        false_position = lo + (hi - lo) * margin_lo / tf.where(gap > 0.0, gap, 1.0)
        use_fp = tf.logical_and(tf.equal(j % 2, 0), gap > 0.0)
        use_fp = tf.logical_and(use_fp, tf.logical_and(false_position > lo, false_position < hi))
        s = tf.where(use_fp, false_position, 0.5 * (lo + hi))
        candidate = tf.clip_by_value(x0 + s[:, None] * segment, 0.0, 1.0)
        logits = logits_at(candidate)
        wrong = tf.argmax(logits, axis=-1, output_type=tf.int32) != y
        current_margin = margin(logits, y)
        point = tf.where(wrong[:, None], candidate, point)
        return (j + 1, tf.where(wrong, lo, s), tf.where(wrong, s, hi),
                tf.where(wrong, margin_lo, current_margin), tf.where(wrong, current_margin, margin_hi),
                point)

    search_steps = int(config.final_search_steps)
    search = (tf.constant(0), tf.zeros([n]), tf.ones([n]), clean_margin, closest_margin, closest)
    *_, point = tf.while_loop(lambda j, *_: j < search_steps, search_body, search,
                              maximum_iterations=search_steps)
    point = tf.where(found[:, None], point, x0)
    distance = tf.where(found, geometry.distance(point - x0), math.inf)
    return tf.reshape(point, shape), found, distance


def _random_start(x: tf.Tensor, noise: tf.Tensor, config: FABConfig) -> tf.Tensor:
    """The reference's random start: x + (eps / 2) u, u the noise rescaled to norm 1, clipped."""
    axes = tf.range(1, tf.rank(noise))
    if config.norm == "L2":
        size = tf.sqrt(tf.reduce_sum(tf.square(noise), axis=axes, keepdims=True))
    else:
        size = tf.reduce_max(tf.abs(noise), axis=axes, keepdims=True)
    direction = noise / (size + 1e-12)
    return tf.clip_by_value(x + 0.5 * tf.constant(config.epsilon, tf.float32) * direction, 0.0, 1.0)


def _attack_robust(logits_fn: LogitsFn, x: tf.Tensor, y: tf.Tensor, targets: Optional[tf.Tensor],
                   clean_margin: tf.Tensor, config: FABConfig, seed, restart, state):
    """Runs `_single_run` on the examples still robust in `state` and merges the successes."""
    adversarial, robust, distance = state
    eps = tf.constant(config.epsilon, tf.float32)
    # Noise is drawn for the whole batch and gathered, so an example's start does not depend on
    # which other examples are still being attacked. The reference's directions: uniform in
    # [-1, 1]^D for Linf, Gaussian for L2.
    if config.norm == "L2":
        noise = randomness.normal(seed, tf.shape(x), dtype=tf.float32)
    else:
        noise = randomness.uniform(seed, tf.shape(x), -1.0, 1.0, dtype=tf.float32)
    index = tf.where(robust)[:, 0]  # not empty: the caller stops once no example is robust
    sub_x = tf.gather(x, index)
    start = tf.where(restart > 0, _random_start(sub_x, tf.gather(noise, index), config), sub_x)
    point, found, sub_distance = _single_run(
        logits_fn, sub_x, tf.gather(y, index), None if targets is None else tf.gather(targets, index),
        start, tf.gather(clean_margin, index), config)
    success = tf.logical_and(found, sub_distance <= eps)
    where = index[:, None]
    success_mask = tf.reshape(success, [-1] + [1] * (x.shape.rank - 1))
    adversarial = tf.tensor_scatter_nd_update(adversarial, where,
                                              tf.where(success_mask, point, sub_x))
    distance = tf.tensor_scatter_nd_update(distance, where,
                                           tf.where(success, sub_distance, math.inf))
    robust = tf.tensor_scatter_nd_update(robust, where, tf.logical_not(success))
    return adversarial, robust, distance


def _inputs(name: str, logits_fn: LogitsFn, x, y, seed):
    """Checks and casts the inputs; returns them with the clean logits."""
    x = tf.cast(check_images(x), tf.float32)
    y = tf.cast(tf.reshape(y, [-1]), tf.int32)
    seed = tf.cast(tf.convert_to_tensor(seed), tf.int32)
    clean_logits = tf.cast(logits_fn(x), tf.float32)
    num_classes = clean_logits.shape[-1]
    if num_classes is not None and num_classes < 2:
        raise ValueError(f"{name} needs at least 2 classes, got {num_classes}")
    return x, y, seed, clean_logits


def _runs(logits_fn: LogitsFn, x: tf.Tensor, y: tf.Tensor, clean_logits: tf.Tensor, config: FABConfig,
          num_runs, run: Callable[[tf.Tensor], tuple]) -> FABResult:
    """The loop over runs r = 0 .. num_runs - 1 (`run(r)` gives the run's targets or None, its
    seed and its restart index), each on the examples still robust, stopping when none is."""
    robust = tf.argmax(clean_logits, axis=-1, output_type=tf.int32) == y
    clean_margin = margin(clean_logits, y)
    distance = tf.where(robust, math.inf, 0.0)

    def body(r, adversarial, robust, distance):
        targets, run_seed, restart = run(r)
        return (r + 1,) + tuple(_attack_robust(logits_fn, x, y, targets, clean_margin, config, run_seed,
                                               restart, (adversarial, robust, distance)))

    def cond(r, adversarial, robust, distance):
        return tf.logical_and(r < num_runs, tf.reduce_any(robust))

    _, adversarial, robust, distance = tf.while_loop(
        cond, body, (tf.constant(0), x, robust, distance))
    return FABResult(tf.stop_gradient(adversarial), tf.stop_gradient(robust),
                     tf.stop_gradient(distance))


def fab_targeted(logits_fn: LogitsFn, x: tf.Tensor, y: tf.Tensor, config: FABConfig, seed) -> FABResult:
    """FAB-T (Croce & Hein 2020), Linf or L2, as AutoAttack runs it.

    For k = 2, ..., K + 1 (K = `config.num_target_classes`, at most C - 1), the target of each
    example is the class with the k-th largest clean logit, and `config.num_restarts` FAB runs
    towards that target attack the examples not yet broken (a run breaks an example when it
    finds a misclassified point within distance epsilon). The first run per target starts at
    the clean point, later ones at random points. Examples misclassified clean are not attacked.
    See the module docstring for the iteration and the deviations from the reference.

    Cost: one clean forward pass, then per run and attacked example `num_steps` forward-backward
    passes plus `num_steps + final_search_steps` forward passes. Wrap the call in `tf.function`
    (fixed shapes) for speed.

    Args:
      logits_fn: images -> logits; must run the model in inference mode and be differentiable.
      x: clean images, float NHWC (or any (N, ...) shape) in [0, 1]; cast to float32.
      y: integer labels (N,).
      config: the attack, with its `num_target_classes`.
      seed: stateless seed of shape (2,) for the random starts of restarts after the first.

    Returns:
      A `FABResult` (adversarial points, per-example robust flags, distances in
      `config.norm`), all `tf.stop_gradient`-ed.
    """
    x, y, seed, clean_logits = _inputs("fab_targeted", logits_fn, x, y, seed)
    # Column k - 2 holds the class of the k-th largest clean logit.
    targets = ranked_targets("fab_targeted", clean_logits, config.num_target_classes)
    restarts = int(config.num_restarts)

    def run(r):
        target_column, restart = r // restarts, r % restarts
        run_seed = randomness.fold_in(randomness.fold_in(seed, target_column), restart)
        return tf.gather(targets, target_column, axis=1), run_seed, restart

    return _runs(logits_fn, x, y, clean_logits, config, tf.shape(targets)[1] * restarts, run)


def fab(logits_fn: LogitsFn, x: tf.Tensor, y: tf.Tensor, config: FABConfig, seed) -> FABResult:
    """Untargeted FAB (Croce & Hein 2020), Linf or L2, as AutoAttack's 'plus' version runs it.

    Each iteration projects onto the linearised boundary, among those of all classes j != y,
    closest to the iterate (|f_j| / ||grad f_j||_dual, f_j = z_j - z_y). `config.num_restarts`
    runs (AutoAttack 'plus': 5) attack the examples not yet broken, the first from the clean
    point, later ones from random points; each run keeps the closest misclassified point it
    finds, and an example counts as broken when that point is within distance epsilon (the
    first run that breaks an example decides its point). Examples misclassified clean are not
    attacked. See the module docstring for the iteration and the deviations from the reference.

    Cost: one clean forward pass, then per run and attacked example `num_steps` times one
    forward and C backward passes (the gradients of all C logits), plus
    `num_steps + final_search_steps` forward passes. Wrap the call in `tf.function` (fixed
    shapes) for speed.

    Args:
      logits_fn: images -> logits; must run the model in inference mode and be differentiable.
      x: clean images, float NHWC (or any (N, ...) shape) in [0, 1]; cast to float32.
      y: integer labels (N,).
      config: the attack.
      seed: stateless seed of shape (2,) for the random starts of restarts after the first.

    Returns:
      A `FABResult` (adversarial points, per-example robust flags, distances in
      `config.norm`), all `tf.stop_gradient`-ed.
    """
    x, y, seed, clean_logits = _inputs("fab", logits_fn, x, y, seed)

    def run(r):
        return None, randomness.fold_in(seed, r), r

    return _runs(logits_fn, x, y, clean_logits, config, int(config.num_restarts), run)
