"""Square Attack, Linf (Andriushchenko et al. 2020): a query-only random search.

"Square Attack: a query-efficient black-box adversarial attack via random search" (ECCV 2020);
the reference is fra31/auto-attack `autoattack/square.py` (the version AutoAttack runs), with
the original max-andr/square-attack code for the per-image sampling. The attack only *calls*
`logits_fn` (never differentiates it), so it measures robustness that does not rest on useful
gradients: a model whose gradients are masked or obfuscated falls to it when it is not robust.

The search runs as a Python loop over queries (a query attack is sequential by nature, and the
model may sit behind a numpy interface); the work of each iteration is one batched call of
`logits_fn` on the examples not yet misclassified (early stop per example) between two compiled
tensor functions. Randomness is stateless TF, derived from one seed, so a run is reproducible.
Do not wrap the functions in `tf.function`; for speed, pass a compiled model call such as
`tf.function(lambda x: model(x, training=False), reduce_retracing=True)`.

Also home of `QueryAttackResult`, shared by the query-only attacks (Square and NAttack).
"""

from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple, Optional

import tensorflow as tf

from rat_tf import randomness
from rat_tf.attacks.common import ProgressFn, QueryFn, SeedLike, as_seed, batch_mask, check_count, check_epsilon, margin

# The square-size schedule is written for this many iterations (Andriushchenko et al. 2020).
SCHEDULE_ITERATIONS = 10_000


@dataclasses.dataclass(frozen=True)
class SquareConfig:
    """Square Attack, Linf (pixel units).

    Attributes:
      epsilon: Linf radius.
      num_queries: query budget per example (AutoAttack's standard version: 5,000).
      p_init: initial fraction of pixels in a square (AutoAttack, Linf: 0.8).
      rescale_schedule: compress the square-size schedule, written for 10,000 iterations, into
        `num_queries` (AutoAttack's `resc_schedule=True`). Off by default, as AutoAttack's
        standard version runs it: with a smaller budget the attack then simply stops earlier in
        the same schedule, and spends its queries on large squares.
    """

    epsilon: float
    num_queries: int = 5000
    p_init: float = 0.8
    rescale_schedule: bool = False

    def __post_init__(self):
        check_epsilon(self.epsilon)
        check_count("num_queries", self.num_queries)
        if isinstance(self.p_init, bool) or not 0.0 < self.p_init <= 1.0:
            raise ValueError(f"p_init must be in (0, 1], got {self.p_init!r}")


class QueryAttackResult(NamedTuple):
    """The outcome of a query-only attack, per example.

    Attributes:
      adversarial: the returned images (inside B(x, eps) and [0, 1]).
      success: bool (N,), True where the attack saw the model misclassify `adversarial` (also
        True for examples misclassified on clean inputs, which are not attacked).
      queries: int32 (N,), the calls of the model spent on each example (the clean check is not
        counted).
    """

    adversarial: tf.Tensor
    success: tf.Tensor
    queries: tf.Tensor


def query_logits(logits_fn: QueryFn, images: tf.Tensor, probabilities: bool = False,
                 max_batch: Optional[int] = None) -> tf.Tensor:
    """Calls the model on `images` (in slices of `max_batch`) and returns float32 logits.

    Outputs may be tensors or numpy arrays; with `probabilities=True` they are taken as softmax
    outputs and turned into log-probabilities (logits up to a per-example constant, which
    changes neither margins nor predictions).
    """
    n = int(images.shape[0])
    if max_batch is None or n <= max_batch:
        parts = [logits_fn(images)]
    else:
        parts = [logits_fn(images[i:i + max_batch]) for i in range(0, n, max_batch)]
    out = tf.concat([tf.cast(tf.convert_to_tensor(p), tf.float32) for p in parts], axis=0)
    if probabilities:
        out = tf.math.log(tf.maximum(out, 1e-30))
    return out


def square_size_fraction(iteration: int, num_queries: int, p_init: float,
                         rescale_schedule: bool = False) -> float:
    """p, the fraction of pixels a square covers at `iteration` (0-based, after the start).

    The published schedule: p_init, halved after 10, 50, 200, 500, 1000, 2000, 4000, 6000 and
    8000 iterations. With `rescale_schedule` the iteration is first mapped onto the 10,000
    iterations the schedule was written for (AutoAttack's `resc_schedule=True`).
    """
    it = int(iteration / num_queries * SCHEDULE_ITERATIONS) if rescale_schedule else int(iteration)
    for divisor, start in ((512, 8000), (256, 6000), (128, 4000), (64, 2000), (32, 1000),
                           (16, 500), (8, 200), (4, 50), (2, 10)):
        if it > start:
            return p_init / divisor
    return p_init


def _validate(x):
    x = tf.convert_to_tensor(x)
    if not x.dtype.is_floating:
        raise ValueError(f"expected float images in [0, 1], got dtype {x.dtype}")
    if x.shape.rank != 4:
        raise ValueError(f"expected NHWC images (rank 4), got shape {x.shape}")
    return x


def _random_signs(seed: tf.Tensor, shape, dtype) -> tf.Tensor:
    """Independent +-1 values, each sign with probability 1/2."""
    coin = tf.random.stateless_uniform(shape, seed, 0, 2, dtype=tf.int32)
    return tf.cast(2 * coin - 1, dtype)


# The work of one iteration around the model call, compiled once (the batch dimension is
# relaxed, so the shrinking set of robust examples does not retrace).
@tf.function(reduce_retracing=True)
def _propose(x_best, lower, upper, index, seed, size, eps):
    """Candidates for the examples `index`: a random square per image moved to the ball's edge."""
    h, w, c = x_best.shape[1], x_best.shape[2], x_best.shape[3]
    n_active = tf.shape(index)[0]
    seeds = randomness.split(seed, 3)
    top = tf.random.stateless_uniform([n_active, 1, 1, 1], seeds[0], 0, h - size + 1, dtype=tf.int32)
    left = tf.random.stateless_uniform([n_active, 1, 1, 1], seeds[1], 0, w - size + 1, dtype=tf.int32)
    signs = _random_signs(seeds[2], [n_active, 1, 1, c], x_best.dtype)
    rows = tf.range(h)[None, :, None, None]
    cols = tf.range(w)[None, None, :, None]
    square = (rows >= top) & (rows < top + size) & (cols >= left) & (cols < left + size)
    current = tf.gather(x_best, index)
    candidate = tf.where(square, current + 2.0 * eps * signs, current)
    return tf.clip_by_value(candidate, tf.gather(lower, index), tf.gather(upper, index))


@tf.function(reduce_retracing=True)
def _accept(x_best, best_margin, queries, index, candidate, logits, y):
    """Keeps each candidate that lowers its example's margin; counts one query per example."""
    new_margin = margin(logits, tf.gather(y, index))
    old_margin = tf.gather(best_margin, index)
    improved = new_margin < old_margin  # includes every newly misclassified candidate
    where = index[:, None]
    current = tf.gather(x_best, index)
    x_best = tf.tensor_scatter_nd_update(
        x_best, where, tf.where(batch_mask(improved, candidate), candidate, current))
    best_margin = tf.tensor_scatter_nd_update(best_margin, where,
                                              tf.where(improved, new_margin, old_margin))
    queries = tf.tensor_scatter_nd_add(queries, where, tf.ones_like(index, tf.int32))
    return x_best, best_margin, queries


def square_attack_result(logits_fn: QueryFn,
                         x: tf.Tensor,
                         y: tf.Tensor,
                         epsilon: float,
                         num_queries: int = 5000,
                         p_init: float = 0.8,
                         seed: SeedLike = 0,
                         *,
                         rescale_schedule: bool = False,
                         probabilities: bool = False,
                         progress: Optional[ProgressFn] = None) -> QueryAttackResult:
    """Square Attack (Linf, untargeted, margin loss), returning per-example details.

    Start: x + eps * s with random signs s constant along each image column (vertical stripes,
    per channel), clipped to [0, 1]. Iteration i: each example still classified as y draws a
    square of side round(sqrt(p_i * H * W)) at a uniformly random position and a random sign per
    channel; inside the square the current point gets 2 eps * sign added and is projected back
    onto B(x, eps) and [0, 1] (so the square's pixels land on x +- eps, or on the [0, 1] bound).
    The candidate is kept if it lowers the margin z_y - max_{j != y} z_j. An example stops once
    its margin is <= 0 (misclassified).

    The square-size schedule p_i is AutoAttack's standard one: fixed for 10,000 iterations
    whatever the budget (`resc_schedule=False` there). `rescale_schedule=True` compresses it
    into `num_queries` instead.

    Deviations from fra31/auto-attack, chosen for batched strength: each image draws its own
    square position and signs (as the original max-andr code; AutoAttack's version draws one
    square and one sign per channel for the whole batch); positions are uniform over all
    H - s + 1 offsets (the reference never samples the last one); the query budget counts the
    initial query, so no example is queried more than `num_queries` times.

    Args:
      logits_fn: images -> logits (tensor or numpy); only called, never differentiated.
      x: clean images, float NHWC in [0, 1].
      y: integer labels (N,).
      epsilon: Linf radius (pixel units).
      num_queries: query budget per example (AutoAttack's standard version: 5,000).
      p_init: initial fraction of pixels in a square (0.8 for Linf in AutoAttack).
      seed: an int or a stateless seed of shape (2,).
      rescale_schedule: compress the schedule into `num_queries` (see `SquareConfig`).
      probabilities: `logits_fn` returns softmax probabilities instead of logits.
      progress: optional callback(iteration, number of examples still robust).

    Returns:
      A `QueryAttackResult`: for successful examples the misclassified point; for the others
      the point of lowest margin found (the clean image for examples misclassified clean and
      for epsilon = 0).
    """
    config = SquareConfig(epsilon, num_queries, p_init, rescale_schedule)
    x = _validate(x)
    y = tf.cast(tf.reshape(y, [-1]), tf.int32)
    seed = as_seed(seed)
    n, h, w, c = (int(d) for d in x.shape)
    eps = tf.cast(epsilon, x.dtype)
    lower = tf.maximum(x - eps, 0.0)
    upper = tf.minimum(x + eps, 1.0)

    clean_margin = margin(query_logits(logits_fn, x, probabilities), y)
    queries = tf.zeros([n], tf.int32)
    if epsilon == 0.0:
        return QueryAttackResult(tf.identity(x), clean_margin <= 0, queries)

    stripes = _random_signs(randomness.fold_in(seed, 0), [n, 1, w, c], x.dtype)
    # Examples misclassified clean are returned unchanged and never queried.
    attacked = clean_margin > 0
    x_best = tf.where(batch_mask(attacked, x), tf.clip_by_value(x + eps * stripes, 0.0, 1.0), x)
    best_margin = clean_margin
    index = tf.where(attacked)[:, 0]
    if int(index.shape[0]) > 0:
        start_margin = margin(query_logits(logits_fn, tf.gather(x_best, index), probabilities),
                              tf.gather(y, index))
        best_margin = tf.tensor_scatter_nd_update(best_margin, index[:, None], start_margin)
    queries = tf.cast(attacked, tf.int32)

    sizes = [min(max(int(round(math.sqrt(
        square_size_fraction(i, config.num_queries, config.p_init, config.rescale_schedule) * h * w))), 1), h, w)
        for i in range(config.num_queries - 1)]
    state = (x_best, best_margin, queries)
    if progress is None:
        searched = _search_in_graph(logits_fn, y, lower, upper, seed, eps, sizes, probabilities, state)
        if searched is not None:
            return QueryAttackResult(tf.stop_gradient(searched[0]), searched[1] <= 0, searched[2])
    for i, size in enumerate(sizes):
        index = tf.where(best_margin > 0)[:, 0]
        n_active = int(index.shape[0])
        if progress is not None:
            progress(i, n_active)
        if n_active == 0:
            break
        candidate = _propose(x_best, lower, upper, index, randomness.fold_in(seed, i + 1),
                             tf.constant(size, tf.int32), eps)
        logits = query_logits(logits_fn, candidate, probabilities)
        x_best, best_margin, queries = _accept(x_best, best_margin, queries, index, candidate,
                                               logits, y)
    return QueryAttackResult(tf.stop_gradient(x_best), best_margin <= 0, queries)


def square_attack(logits_fn: QueryFn, x: tf.Tensor, y: tf.Tensor, epsilon: float, *args, **kwargs) -> tf.Tensor:
    """Square Attack (Linf), query-only; returns the adversarial images.

    See `square_attack_result` for the algorithm and arguments. For examples the attack does
    not fool, the returned image is the point of lowest margin found (still in the ball), so the
    caller's robustness is the model's prediction on the result.
    """
    return square_attack_result(logits_fn, x, y, epsilon, *args, **kwargs).adversarial

def _search_in_graph(logits_fn, y, lower, upper, seed, eps, sizes, probabilities, state):
    """The search loop as one `tf.while_loop` (same draws and result as the Python loop).

    Returns the final (x_best, best_margin, queries), or None when `logits_fn` cannot be traced
    (a model behind a numpy interface), in which case the caller runs the Python loop.
    """
    sizes = tf.constant(sizes, tf.int32)

    def search(x_best, best_margin, queries):
        def body(i, x_best, best_margin, queries):
            index = tf.where(best_margin > 0)[:, 0]
            candidate = _propose(x_best, lower, upper, index, randomness.fold_in(seed, i + 1), sizes[i], eps)
            logits = tf.cast(logits_fn(candidate), tf.float32)
            if probabilities:
                logits = tf.math.log(tf.maximum(logits, 1e-30))
            return (i + 1, *_accept(x_best, best_margin, queries, index, candidate, logits, y))

        def cond(i, x_best, best_margin, queries):
            return (i < tf.shape(sizes)[0]) & tf.reduce_any(best_margin > 0)

        _, x_best, best_margin, queries = tf.while_loop(cond, body, (tf.constant(0), x_best, best_margin, queries))
        return x_best, best_margin, queries

    try:
        compiled = tf.function(search).get_concrete_function(*state)
    except Exception:  # noqa: BLE001 - any failure to trace means "not a TensorFlow function"
        return None
    return compiled(*state)
