"""Square Attack, Linf and L2 (Andriushchenko et al. 2020): a query-only random search.

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

The L2 version (AutoAttack's `norm='L2'`) starts from a grid of signed "pseudo-Gaussian" tiles
and, at each iteration, moves perturbation mass from a random old window into a random new
square (`l2_initial_perturbation`, `l2_window_pattern`), always at L2 norm exactly eps before
the clip to [0, 1].

Also home of `QueryAttackResult`, shared by the query-only attacks (Square and NAttack).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Callable, NamedTuple, Optional, Sequence
import weakref

import numpy as np
import tensorflow as tf

from rat_tf import randomness
from rat_tf.attacks.common import (
    ProgressFn,
    QueryFn,
    SeedLike,
    as_seed,
    batch_mask,
    check_count,
    check_images,
    check_norm,
    check_radius,
    l2_norm,
    margin,
)

# The square-size schedule is written for this many iterations (Andriushchenko et al. 2020).
SCHEDULE_ITERATIONS = 10_000


@dataclasses.dataclass(frozen=True)
class SquareConfig:
    """Square Attack, Linf or L2 (pixel units).

    Attributes:
      epsilon: the radius: in [0, 1] for Linf, any finite value >= 0 for L2.
      num_queries: query budget per example (AutoAttack's standard version: 5,000).
      p_init: initial fraction of pixels in a square (AutoAttack: 0.8 for both norms).
      rescale_schedule: compress the square-size schedule, written for 10,000 iterations, into
        `num_queries` (AutoAttack's `resc_schedule=True`). Off by default, as AutoAttack's
        standard version runs it: with a smaller budget the attack then simply stops earlier in
        the same schedule, and spends its queries on large squares.
      norm: "Linf" or "L2", the threat model (AutoAttack's spelling).
    """

    epsilon: float
    num_queries: int = 5000
    p_init: float = 0.8
    rescale_schedule: bool = False
    norm: str = "Linf"

    def __post_init__(self):
        check_radius(self.epsilon, check_norm(self.norm))
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


def square_side(iteration: int, height: int, width: int, config: SquareConfig) -> int:
    """The side, in pixels, of the square drawn at `iteration` (0-based, after the start).

    round(sqrt(p * H * W)) for the fraction p of `square_size_fraction`, at most min(H, W); at
    least 1 for Linf, and for L2 at least 3 and odd (AutoAttack's L2 rule: a window wide enough
    for the +- halves of `l2_window_pattern`).
    """
    side = int(round(math.sqrt(square_size_fraction(iteration, config.num_queries, config.p_init,
                                                    config.rescale_schedule) * height * width)))
    if config.norm == "Linf":
        return min(max(side, 1), height, width)
    side = max(side, 3)
    side += 1 - side % 2
    return min(side, height, width)


def _rectangle_pattern(rows: int, cols: int) -> np.ndarray:
    """AutoAttack's `eta_rectangles` for L2: nested rectangles around the centre, unit L2 norm.

    The reference adds 1 / (k + 1)^2 on the rectangle of Chebyshev radius k around the centre
    (rows // 2, cols // 2) for k = 0 .. max(rows // 2, cols // 2); a pixel at Chebyshev distance
    d therefore holds the tail sum over k >= d, computed here in closed form.
    """
    if rows == 0:
        return np.zeros((0, cols))
    levels = max(rows // 2, cols // 2) + 1
    tail = np.cumsum(1.0 / np.arange(levels, 0, -1, dtype=np.float64) ** 2)[::-1]
    distance = np.maximum(np.abs(np.arange(rows) - rows // 2)[:, None],
                          np.abs(np.arange(cols) - cols // 2)[None, :])
    pattern = tail[distance]
    return pattern / np.sqrt(np.sum(pattern ** 2))


def l2_window_pattern(side: int) -> np.ndarray:
    """AutoAttack's L2 `eta(s)` before its random transpose: a (side, side) float64 array of
    unit L2 norm, +rectangles on the top side // 2 rows and -rectangles on the others.

    Pulling opposite signs together concentrates the change on a few pixels like a Gaussian
    bump, while keeping the window's total nearly zero.
    """
    pattern = np.concatenate([_rectangle_pattern(side // 2, side),
                              -_rectangle_pattern(side - side // 2, side)], axis=0)
    return pattern / np.sqrt(np.sum(pattern ** 2))


def _tile_axis(length: int, tile: int):
    """Along one image axis: each pixel's tile, offset inside it, and whether a tile covers it.

    As many whole tiles as fit, centred (the reference's 5 tiles of side H // 5 whenever its
    grid fits the image).
    """
    count = length // tile
    position = np.arange(length) - (length - count * tile) // 2
    inside = (position >= 0) & (position < count * tile)
    return np.clip(position // tile, 0, count - 1), position % tile, inside, count


def l2_initial_perturbation(shape: Sequence[int], seed: tf.Tensor, epsilon,
                            dtype: tf.DType = tf.float32) -> tf.Tensor:
    """The L2 start: a grid of `l2_window_pattern` tiles, each with a random sign per channel and
    a random transpose, rescaled to L2 norm exactly `epsilon` per example (before any clip).

    Tiles have side max(min(H, W) // 5, 1) (AutoAttack: H // 5, a 5 x 5 grid on CIFAR).

    Args:
      shape: (N, H, W, C) of the images.
      seed: a stateless seed of shape (2,).
      epsilon: the L2 radius.
      dtype: a float dtype.

    Returns:
      The perturbation delta, (N, H, W, C), with ||delta_n||_2 = epsilon for every n.
    """
    n, h, w, c = (int(d) for d in shape)
    tile = max(min(h, w) // 5, 1)
    pattern = l2_window_pattern(tile)
    tile_row, row, rows_inside, num_rows = _tile_axis(h, tile)
    tile_col, col, cols_inside, num_cols = _tile_axis(w, tile)
    inside = rows_inside[:, None] & cols_inside[None, :]
    straight = np.where(inside, pattern[row[:, None], col[None, :]], 0.0)
    transposed = np.where(inside, pattern[col[None, :], row[:, None]], 0.0)
    seeds = randomness.split(seed, 2)
    signs = _random_signs(seeds[0], [n, num_rows, num_cols, c], dtype)
    flip = tf.random.stateless_uniform([n, num_rows, num_cols, 1], seeds[1], 0, 2, dtype=tf.int32) == 1
    # From one draw per tile to one per pixel.
    signs = tf.gather(tf.gather(signs, tile_row, axis=1), tile_col, axis=2)
    flip = tf.gather(tf.gather(flip, tile_row, axis=1), tile_col, axis=2)
    delta = tf.where(flip, tf.constant(transposed[None, :, :, None], dtype),
                     tf.constant(straight[None, :, :, None], dtype)) * signs
    return tf.cast(epsilon, dtype) * delta / (l2_norm(delta) + 1e-12)


def _random_signs(seed: tf.Tensor, shape, dtype) -> tf.Tensor:
    """Independent +-1 values, each sign with probability 1/2."""
    coin = tf.random.stateless_uniform(shape, seed, 0, 2, dtype=tf.int32)
    return tf.cast(2 * coin - 1, dtype)


# The work of one iteration around the model call, compiled once (the batch dimension is
# relaxed, so the shrinking set of robust examples does not retrace).
@tf.function(reduce_retracing=True, autograph=False)
def _propose(x_best, lower, upper, index, seed, size, eps):
    """Candidates for the examples `index`: a random square per image moved to the ball's edge."""
    # Dynamic sizes: reduce_retracing relaxes the image dimensions once a second size is seen.
    h, w, c = tf.unstack(tf.shape(x_best)[1:])
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


@tf.function(reduce_retracing=True, autograph=False)
def _propose_l2(x_best, x, index, seed, size, eps, pattern):
    """L2 candidates for the examples `index` (AutoAttack's update, one draw per image).

    Each image draws a new square and an old window of side `size`. The new square gets the
    `pattern` (`l2_window_pattern(size)` zero-padded to (S, S); transposed for half the images)
    with a random sign per channel, plus the perturbation it already holds (normalised per
    channel); the old window is emptied. Per channel, the new square is rescaled to carry what
    both windows held plus an even share of the budget earlier clips left unused, and the whole
    perturbation is rescaled to L2 norm eps before the clip to [0, 1].
    """
    # Dynamic sizes: reduce_retracing relaxes the image dimensions once a second size is seen.
    h, w, c = tf.unstack(tf.shape(x_best)[1:])
    n_active = tf.shape(index)[0]
    seeds = randomness.split(seed, 6)
    top = tf.random.stateless_uniform([n_active, 1, 1, 1], seeds[0], 0, h - size + 1, dtype=tf.int32)
    left = tf.random.stateless_uniform([n_active, 1, 1, 1], seeds[1], 0, w - size + 1, dtype=tf.int32)
    old_top = tf.random.stateless_uniform([n_active, 1, 1, 1], seeds[2], 0, h - size + 1, dtype=tf.int32)
    old_left = tf.random.stateless_uniform([n_active, 1, 1, 1], seeds[3], 0, w - size + 1, dtype=tf.int32)
    signs = _random_signs(seeds[4], [n_active, 1, 1, c], x_best.dtype)
    flip = tf.random.stateless_uniform([n_active, 1, 1, 1], seeds[5], 0, 2, dtype=tf.int32) == 1
    rows = tf.range(h)[None, :, None, None]
    cols = tf.range(w)[None, None, :, None]
    square = (rows >= top) & (rows < top + size) & (cols >= left) & (cols < left + size)
    old = (rows >= old_top) & (rows < old_top + size) & (cols >= old_left) & (cols < old_left + size)
    # The pattern laid on the square: pixel (r, q) of the square reads pattern[r, q] (or [q, r]).
    r = tf.clip_by_value(rows - top, 0, size - 1)
    q = tf.clip_by_value(cols - left, 0, size - 1)
    padded = tf.shape(pattern)[0]
    placed = tf.gather(tf.reshape(pattern, [-1]), tf.where(flip, q * padded + r, r * padded + q))

    clean = tf.gather(x, index)
    delta = tf.gather(x_best, index) - clean

    def channel_norm(values, mask):
        return tf.sqrt(tf.reduce_sum(tf.square(tf.where(mask, values, 0.0)), axis=[1, 2], keepdims=True))

    # L2 budget lost to earlier clips to [0, 1], shared evenly by the channels.
    spare = tf.maximum(tf.square(eps) - tf.square(l2_norm(delta)), 0.0) / tf.cast(c, delta.dtype)
    both = channel_norm(delta, square | old)
    new = placed * signs + delta / (channel_norm(delta, square) + 1e-12)
    new = new / (channel_norm(new, square) + 1e-12) * tf.sqrt(spare + tf.square(both))
    delta = tf.where(square, new, tf.where(old, tf.zeros_like(delta), delta))
    return tf.clip_by_value(clean + eps * delta / (l2_norm(delta) + 1e-12), 0.0, 1.0)


@tf.function(reduce_retracing=True, autograph=False)
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


def square_attack(logits_fn: QueryFn,
                  x: tf.Tensor,
                  y: tf.Tensor,
                  config: SquareConfig,
                  seed: SeedLike = 0,
                  *,
                  probabilities: bool = False,
                  progress: Optional[ProgressFn] = None) -> QueryAttackResult:
    """Square Attack (Linf or L2, untargeted, margin loss), query-only.

    Linf. Start: x + eps * s with random signs s constant along each image column (vertical
    stripes, per channel), clipped to [0, 1]. Iteration i: each example still classified as y
    draws a square of side round(sqrt(p_i * H * W)) at a uniformly random position and a random
    sign per channel; inside the square the current point gets 2 eps * sign added and is
    projected back onto B(x, eps) and [0, 1] (so the square's pixels land on x +- eps, or on the
    [0, 1] bound).

    L2. Start: x + `l2_initial_perturbation` (L2 norm eps), clipped to [0, 1]. Iteration i:
    each example draws two windows of side round(sqrt(p_i * H * W)) (odd, >= 3); the first gets
    a fresh signed `l2_window_pattern` on top of its old content, the second is emptied, and the
    mass of both (plus any budget earlier clips left unused) moves into the first, so the
    perturbation keeps L2 norm eps before the clip to [0, 1] (see `_propose_l2`).

    Both norms keep a candidate if it lowers the margin z_y - max_{j != y} z_j. An example stops
    once its margin is <= 0 (misclassified).

    The square-size schedule p_i is AutoAttack's standard one: fixed for 10,000 iterations
    whatever the budget (`resc_schedule=False` there). `config.rescale_schedule=True`
    compresses it into `config.num_queries` instead.

    Deviations from fra31/auto-attack, chosen for batched strength: each image draws its own
    square position(s) and signs (as the original max-andr code; AutoAttack's version draws one
    square and one sign per channel for the whole batch), and, for L2, its own transposes of
    the window pattern; positions are uniform over all H - s + 1 offsets (the reference never
    samples the last one); the query budget counts the initial query, so no example is queried
    more than `num_queries` times. The L2 start tiles min(H, W) // 5 wide (at least 1) fill the
    image with as many whole tiles as fit, centred on each axis: the reference's grid whenever
    that grid fits a square image (on images smaller than about 25 pixels it runs off the
    image, and it centres the columns by H).

    The search runs as one compiled loop when `logits_fn` can be traced (compiled once per
    model, norm and image shape, for any batch size), else as a Python loop.

    Args:
      logits_fn: images -> logits (tensor or numpy); only called, never differentiated.
      x: clean images, float NHWC in [0, 1].
      y: integer labels (N,).
      config: the attack.
      seed: an int or a stateless seed of shape (2,).
      probabilities: `logits_fn` returns softmax probabilities instead of logits.
      progress: optional callback(iteration, number of examples still robust); it runs the
        Python loop.

    Returns:
      A `QueryAttackResult`: for successful examples the misclassified point; for the others
      the point of lowest margin found (the clean image for examples misclassified clean and
      for epsilon = 0), so the caller's robustness is the model's prediction on `adversarial`.
    """
    x = tf.convert_to_tensor(check_images(x, rank=4))
    y = tf.cast(tf.reshape(y, [-1]), tf.int32)
    seed = as_seed(seed)
    n, h, w, c = (int(d) for d in x.shape)
    eps = tf.cast(config.epsilon, x.dtype)

    clean_margin = margin(query_logits(logits_fn, x, probabilities), y)
    queries = tf.zeros([n], tf.int32)
    if config.epsilon == 0.0:
        return QueryAttackResult(tf.identity(x), clean_margin <= 0, queries)

    sizes = [square_side(i, h, w, config) for i in range(config.num_queries - 1)]
    if config.norm == "Linf":
        lower = tf.maximum(x - eps, 0.0)
        upper = tf.minimum(x + eps, 1.0)
        start = tf.clip_by_value(x + eps * _random_signs(randomness.fold_in(seed, 0), [n, 1, w, c], x.dtype),
                                 0.0, 1.0)
        given = (lower, upper)
    else:
        start = tf.clip_by_value(x + l2_initial_perturbation(x.shape, randomness.fold_in(seed, 0), eps, x.dtype),
                                 0.0, 1.0)
        # One zero-padded pattern per distinct side (a handful), picked by iteration, so the
        # compiled proposal sees one shape throughout.
        sides = sorted(set(sizes))
        padded = max(sides, default=1)
        patterns = np.zeros((max(len(sides), 1), padded, padded))
        for k, side in enumerate(sides):
            patterns[k, :side, :side] = l2_window_pattern(side)
        given = (x, tf.constant(patterns, x.dtype),
                 tf.constant([sides.index(size) for size in sizes] or [0], tf.int32))

    # Examples misclassified clean are returned unchanged and never queried.
    attacked = clean_margin > 0
    x_best = tf.where(batch_mask(attacked, x), start, x)
    best_margin = clean_margin
    index = tf.where(attacked)[:, 0]
    if int(index.shape[0]) > 0:
        start_margin = margin(query_logits(logits_fn, tf.gather(x_best, index), probabilities),
                              tf.gather(y, index))
        best_margin = tf.tensor_scatter_nd_update(best_margin, index[:, None], start_margin)
    queries = tf.cast(attacked, tf.int32)

    search = None if progress is not None else _compiled_search(logits_fn, config.norm, probabilities, x)
    if search is not None:
        x_best, best_margin, queries = search(x_best, best_margin, queries, y, seed, eps,
                                              tf.constant(sizes, tf.int32), *given)
        return QueryAttackResult(tf.stop_gradient(x_best), best_margin <= 0, queries)
    for i, size in enumerate(sizes):
        index = tf.where(best_margin > 0)[:, 0]
        n_active = int(index.shape[0])
        if progress is not None:
            progress(i, n_active)
        if n_active == 0:
            break
        candidate = _propose_for(config.norm, given, x_best, index, randomness.fold_in(seed, i + 1),
                                 tf.constant(size, tf.int32), eps, i)
        logits = query_logits(logits_fn, candidate, probabilities)
        x_best, best_margin, queries = _accept(x_best, best_margin, queries, index, candidate,
                                               logits, y)
    return QueryAttackResult(tf.stop_gradient(x_best), best_margin <= 0, queries)


def _propose_for(norm: str, given: tuple, x_best, index, seed, size, eps, i):
    """The candidates of iteration `i` for the examples `index`: `_propose` (Linf, `given` is
    (lower, upper)) or `_propose_l2` (L2, `given` is (x, patterns, pattern index per iteration))."""
    if norm == "Linf":
        lower, upper = given
        return _propose(x_best, lower, upper, index, seed, size, eps)
    x, patterns, kinds = given
    return _propose_l2(x_best, x, index, seed, size, eps, tf.gather(patterns, kinds[i]))


def _search(model: Callable[[], Optional[QueryFn]], norm: str, probabilities: bool, x_best, best_margin,
            queries, y, seed, eps, sizes, *given):
    """The search loop as one `tf.while_loop`: the same draws and result as the Python loop."""
    logits_fn = model()

    def body(i, x_best, best_margin, queries):
        index = tf.where(best_margin > 0)[:, 0]
        candidate = _propose_for(norm, given, x_best, index, randomness.fold_in(seed, i + 1), sizes[i], eps, i)
        logits = tf.cast(logits_fn(candidate), tf.float32)
        if probabilities:
            logits = tf.math.log(tf.maximum(logits, 1e-30))
        return (i + 1, *_accept(x_best, best_margin, queries, index, candidate, logits, y))

    def cond(i, x_best, best_margin, queries):
        return (i < tf.shape(sizes)[0]) & tf.reduce_any(best_margin > 0)

    _, x_best, best_margin, queries = tf.while_loop(cond, body, (tf.constant(0), x_best, best_margin, queries))
    return x_best, best_margin, queries


# The compiled searches of each model that can be traced (None for one that cannot), by
# (norm, probabilities, image shape and dtype); an entry goes with its model.
_SEARCHES: "weakref.WeakKeyDictionary[object, dict]" = weakref.WeakKeyDictionary()


def _compiled_search(logits_fn: QueryFn, norm: str, probabilities: bool, x: tf.Tensor):
    """`_search` compiled for `logits_fn` and images shaped like `x` (any batch size): traced once
    and kept while the model lives, or None when `logits_fn` cannot be traced (a model behind a
    numpy interface), in which case the caller runs the Python loop."""
    try:
        cache = _SEARCHES.setdefault(logits_fn, {})
        model = weakref.ref(logits_fn)
    except TypeError:  # not weakly referenceable: compiled for this call only
        cache, model = {}, lambda: logits_fn
    key = (norm, probabilities, tuple(x.shape[1:]), x.dtype)
    if key not in cache:
        images = tf.TensorSpec([None, *x.shape[1:]], x.dtype)
        flags = tf.TensorSpec([None], tf.int32)
        given = ([images, images] if norm == "Linf"
                 else [images, tf.TensorSpec([None, None, None], x.dtype), flags])
        signature = [images, tf.TensorSpec([None], tf.float32), flags, flags, tf.TensorSpec([2], tf.int32),
                     tf.TensorSpec([], x.dtype), flags, *given]
        # A partial, not a closure: TensorFlow counts the traces of all functions compiled from
        # one Python function together, and would take one compiled search per model for
        # retracing.
        search = tf.function(functools.partial(_search, model, norm, probabilities), input_signature=signature,
                             autograph=False)
        try:
            search.get_concrete_function()
        except Exception:  # noqa: BLE001 - any failure to trace means "not a TensorFlow function"
            search = None
        cache[key] = search
    return cache[key]
