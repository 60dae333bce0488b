"""FAB-T and untargeted FAB, Linf and L2: the exact Linf and L2 projections, exact distances on
affine models, the closest of several class boundaries, bounds, untouched examples, restarts,
validation, and a small nonlinear Keras model under `tf.function`.

Everything is tiny (4x4x1 or 3x3x2 images, <= 10 classes), so the file runs in about a minute
on one core.
"""

import dataclasses

import keras
import numpy as np
import pytest
from scipy.optimize import linprog, minimize
import tensorflow as tf

from rat_tf.attacks.fab import FABConfig, FABResult, _random_start, fab, fab_targeted, project_l2_box, project_linf_box

SEED = tf.constant([3, 7])
SHAPE = (4, 4, 1)
D = 16


def _affine(w, b):
    """logits = flatten(x) @ w.T + b, w (C, D)."""
    w_t = tf.constant(np.asarray(w, np.float32).T)
    bias = tf.constant(np.asarray(b, np.float32))
    return lambda images: tf.reshape(images, [tf.shape(images)[0], -1]) @ w_t + bias


def _min_linf_lp(x, normal, offset):
    """Exact min ||d||_inf with normal . (x + d) + offset <= 0 and x + d in [0, 1] (an LP)."""
    n = x.size
    cost = np.r_[np.zeros(n), 1.0]
    bounds_ = np.block([[np.eye(n), -np.ones((n, 1))], [-np.eye(n), -np.ones((n, 1))]])
    a_ub = np.vstack([bounds_, np.r_[normal, 0.0][None]])
    b_ub = np.r_[np.zeros(2 * n), -offset - normal @ x]
    res = linprog(cost, A_ub=a_ub, b_ub=b_ub,
                  bounds=[(-xi, 1.0 - xi) for xi in x] + [(0.0, None)], method="highs")
    assert res.status == 0
    return res.x[-1]


@pytest.fixture(scope="module")
def affine_case():
    """Three classes; class 2 is never close (bias -100), so the 0-vs-1 boundary is the only
    one. Four examples of label 0 at chosen distances d* from it, x within [0.3, 0.7] so the
    box is not active at those distances."""
    rng = np.random.default_rng(1)
    w = rng.normal(size=(3, D)).astype(np.float32)
    b = np.array([0.0, 0.0, -100.0], np.float32)
    normal = w[0] - w[1]
    l1 = np.abs(normal).sum()
    wanted = np.array([0.02, 0.03, 0.035, 0.04])
    x = rng.uniform(0.45, 0.55, size=(4, D))
    # Move each x along sign(normal) so that z_0 - z_1 = d* ||w_0 - w_1||_1.
    x = x + ((wanted * l1 - x @ normal) / l1)[:, None] * np.sign(normal)
    x = x.astype(np.float32)
    logits_fn = _affine(w, b)
    z = logits_fn(tf.constant(x)).numpy()
    d_star = (z[:, 0] - z[:, 1]) / l1  # the exact answer, in float32 arithmetic
    assert np.all(np.argmax(z, 1) == 0) and np.all(np.argsort(-z, 1)[:, 1] == 1)
    assert x.min() - d_star.max() > 0.0 and x.max() + d_star.max() < 1.0  # box not active
    return logits_fn, x.reshape((4,) + SHAPE), np.zeros(4, np.int32), d_star


def _norms(flat, norm):
    return np.abs(flat).max(axis=1) if norm == "Linf" else np.sqrt(np.square(flat).sum(axis=1))


def _check_result(result, logits_fn, x, y, eps, norm="Linf"):
    assert isinstance(result, FABResult)
    adv, robust, dist = (np.asarray(t) for t in result)
    flat = (adv - x).reshape(len(x), -1)
    assert adv.dtype == np.float32 and adv.shape == x.shape
    assert adv.min() >= 0.0 and adv.max() <= 1.0
    assert np.all(_norms(flat, norm) <= eps * (1.0 + 1e-6) + 1e-7)
    pred = np.argmax(np.asarray(logits_fn(tf.constant(adv))), -1)
    np.testing.assert_array_equal(pred != y, ~robust)  # flags are what the model does
    np.testing.assert_array_equal(adv[robust], x[robust])  # robust: returned unchanged
    assert np.all(np.isinf(dist[robust]))
    np.testing.assert_allclose(dist[~robust], _norms(flat[~robust], norm), rtol=1e-6, atol=0)
    return adv, robust, dist


def _in_graph(attack, logits_fn, x, y, *args):
    """`attack` inside `tf.function` (100 eager iterations are slow)."""
    return tf.function(lambda: attack(logits_fn, tf.constant(x), tf.constant(y), *args))()


def test_projection_is_the_exact_linf_projection_onto_hyperplane_and_box():
    rng = np.random.default_rng(0)
    points, normals, residuals = [], [], []
    for case in range(60):
        t = rng.uniform(0.0, 1.0, 8)
        if case % 3 == 0:  # points on the box's faces
            t[rng.uniform(size=8) < 0.4] = rng.choice([0.0, 1.0])
        w = rng.normal(size=8)
        w[rng.uniform(size=8) < 0.2] = 0.0
        points.append(t)
        normals.append(w)
        residuals.append(rng.normal() * rng.choice([0.1, 1.0, 4.0]))
    points, normals = np.array(points, np.float32), np.array(normals, np.float32)
    residuals = np.array(residuals, np.float32)
    steps = project_linf_box(tf.constant(points), tf.constant(normals),
                             tf.constant(residuals)).numpy().astype(np.float64)
    reached = 0
    for t, w, r, d in zip(points.astype(float), normals.astype(float), residuals, steps):
        assert np.all(t + d >= -1e-6) and np.all(t + d <= 1.0 + 1e-6)
        assert np.all(d[w == 0] == 0.0)
        down = -np.sign(r) * np.sign(w) if r != 0 else -np.sign(w)
        corner = np.where(down > 0, 1.0 - t, -t) * (w != 0)
        if r * (r + w @ corner) > 0:  # the hyperplane misses the box: the closest corner
            np.testing.assert_allclose(d, corner, atol=1e-6)
            continue
        reached += 1
        assert abs(r + w @ d) < 1e-4 * (1.0 + np.abs(w).sum())
        # The LP optimum for the equality-constrained problem, via the inequality on the side
        # the point is not on.
        sign = 1.0 if r >= 0 else -1.0
        optimum = _min_linf_lp(t, sign * w, sign * (r - w @ t))
        assert abs(np.abs(d).max() - optimum) < 1e-5
    assert reached > 30


def _project_l2(points, normals, residuals):
    return project_l2_box(tf.constant(np.asarray(points, np.float32)), tf.constant(np.asarray(normals, np.float32)),
                          tf.constant(np.asarray(residuals, np.float32))).numpy()


def test_l2_projection_by_hand():
    # Box not active: the orthogonal projection onto <w, z> + b = 0, x - (<w, x> + b) / ||w||^2 w.
    x, w, b = np.array([0.5, 0.4, 0.6]), np.array([1.0, -2.0, 0.5]), -0.3
    expected = x - (w @ x + b) / (w @ w) * w
    assert np.all((expected > 0.0) & (expected < 1.0))
    np.testing.assert_allclose(x + _project_l2([x], [w], [w @ x + b])[0], expected, atol=1e-6)
    # Box active: from (0.9, 0.5) onto z_1 + z_2 = 1.8, the orthogonal projection (1.1, 0.9)
    # leaves the box; the answer is (1, 0.8): z_1 stops at its face, z_2 moves the rest.
    np.testing.assert_allclose(_project_l2([[0.9, 0.5]], [[1.0, 1.0]], [-0.4])[0], [0.1, 0.3], atol=1e-6)
    # The same from the other side of the hyperplane, with the normal flipped: the same step.
    np.testing.assert_allclose(_project_l2([[0.9, 0.5]], [[-1.0, -1.0]], [0.4])[0], [0.1, 0.3], atol=1e-6)
    # Out of reach (z_1 + z_2 = 2.1 > 2 in the box): the closest corner.
    np.testing.assert_allclose(_project_l2([[0.9, 0.5]], [[1.0, 1.0]], [-0.7])[0], [0.1, 0.5], atol=1e-6)
    # Coordinates with w_i = 0 stay; a point on the hyperplane stays.
    np.testing.assert_allclose(_project_l2([[0.3, 0.7, 0.5]], [[0.0, 2.0, 0.0]], [0.4])[0], [0.0, -0.2, 0.0],
                               atol=1e-6)
    np.testing.assert_array_equal(_project_l2([[0.3, 0.7]], [[1.0, 2.0]], [0.0])[0], [0.0, 0.0])


def _min_l2_qp(t, w, r):
    """The step d minimising ||d||_2 with r + <w, d> = 0 and t + d in [0, 1] (a QP, by SLSQP)."""
    res = minimize(lambda d: 0.5 * d @ d, np.zeros_like(t), jac=lambda d: d, method="SLSQP",
                   bounds=[(-ti, 1.0 - ti) for ti in t],
                   constraints=[{"type": "eq", "fun": lambda d: r + w @ d, "jac": lambda d: w}],
                   options={"ftol": 1e-14, "maxiter": 500})
    assert res.success, res.message
    return res.x


def test_projection_is_the_exact_l2_projection_onto_hyperplane_and_box():
    rng = np.random.default_rng(4)
    points, normals, residuals = [], [], []
    for case in range(60):
        t = rng.uniform(0.0, 1.0, 8)
        if case % 3 == 0:  # points on the box's faces
            t[rng.uniform(size=8) < 0.4] = rng.choice([0.0, 1.0])
        w = rng.normal(size=8)
        w[rng.uniform(size=8) < 0.2] = 0.0
        points.append(t)
        normals.append(w)
        residuals.append(rng.normal() * rng.choice([0.1, 1.0, 4.0]))
    points, normals = np.array(points, np.float32), np.array(normals, np.float32)
    residuals = np.array(residuals, np.float32)
    steps = _project_l2(points, normals, residuals).astype(np.float64)
    # Scale invariance: the hyperplane is the same with w and the residual scaled together.
    for scale in (1e-6, 1e6):
        np.testing.assert_allclose(_project_l2(points, normals * scale, residuals * scale), steps, atol=1e-4)
    reached = active = 0
    for t, w, r, d in zip(points.astype(float), normals.astype(float), residuals, steps):
        assert np.all(t + d >= -1e-6) and np.all(t + d <= 1.0 + 1e-6)
        assert np.all(d[w == 0] == 0.0)
        down = -np.sign(r) * np.sign(w) if r != 0 else -np.sign(w)
        corner = np.where(down > 0, 1.0 - t, -t) * (w != 0)
        if r * (r + w @ corner) > 0:  # the hyperplane misses the box: the closest corner
            np.testing.assert_allclose(d, corner, atol=1e-6)
            continue
        reached += 1
        assert abs(r + w @ d) < 1e-4 * (1.0 + np.abs(w).sum())
        exact = _min_l2_qp(t, w, float(r))
        np.testing.assert_allclose(d, exact, atol=2e-5)
        orthogonal = t - r / (w @ w) * w
        active += not np.all((orthogonal >= 0.0) & (orthogonal <= 1.0))
    assert reached > 30 and active > 10


def test_exact_distance_on_an_affine_classifier(affine_case):
    # With the (optional) final search, FAB lands on the boundary point itself.
    logits_fn, x, y, d_star = affine_case
    result = fab_targeted(logits_fn, x, y, FABConfig(0.1, final_search_steps=10, num_target_classes=1), SEED)
    _, robust, dist = _check_result(result, logits_fn, x, y, 0.1)
    assert not robust.any()
    np.testing.assert_allclose(dist, d_star, rtol=1e-3)
    assert np.all(dist >= d_star * (1.0 - 1e-5))  # nothing closer can be misclassified
    # Success exactly when d* <= epsilon: epsilon just above / just below the second d*.
    for eps, broken in ((d_star[1] * 1.002, [True, True, False, False]),
                        (d_star[1] * 0.998, [True, False, False, False])):
        config = FABConfig(float(eps), final_search_steps=10, num_target_classes=1)
        result = fab_targeted(logits_fn, x, y, config, SEED)
        _, robust, dist = _check_result(result, logits_fn, x, y, eps)
        np.testing.assert_array_equal(~robust, broken)
        np.testing.assert_allclose(dist[~robust], d_star[~robust], rtol=1e-3)


def test_without_the_final_search_fab_stays_just_above_the_boundary(affine_case):
    # AutoAttack's FAB-T (no final search, the default): the backward step keeps the iterate
    # ~ beta of the way to the boundary, and the overshoot of the next step lands about 0.5%
    # beyond it.
    logits_fn, x, y, d_star = affine_case
    config = FABConfig(0.1)
    assert config.final_search_steps == 0 and config.norm == "Linf"
    result = fab_targeted(logits_fn, x, y, dataclasses.replace(config, num_target_classes=1), SEED)
    _, robust, dist = _check_result(result, logits_fn, x, y, 0.1)
    assert not robust.any()
    assert np.all(dist > d_star * 1.001) and np.all(dist < d_star * 1.01)


def test_graph_and_eager_agree(affine_case):
    logits_fn, x, y, _ = affine_case
    config = FABConfig(0.1, num_steps=20, final_search_steps=10, num_target_classes=2)
    eager = fab_targeted(logits_fn, x, y, config, SEED)
    graph = tf.function(lambda a, b: fab_targeted(logits_fn, a, b, config, SEED))(x, y)
    np.testing.assert_array_equal(eager.robust, graph.robust)
    np.testing.assert_allclose(eager.distance, graph.distance, rtol=1e-5)
    np.testing.assert_allclose(eager.adversarial, graph.adversarial, atol=1e-6)


def test_box_constraint_active():
    # Half of the coordinates start 0.005 from the face of the box the shortest unconstrained
    # path would push them through, so the box binds; the answer is the LP optimum.
    rng = np.random.default_rng(5)
    w = rng.normal(size=(2, D)).astype(np.float32)
    normal = w[0] - w[1]
    pinned = rng.uniform(size=D) < 0.5
    base = np.where(pinned, np.where(normal < 0, 0.995, 0.005), rng.uniform(0.4, 0.6, D))
    x = base + ~pinned * rng.uniform(-0.05, 0.05, size=(3, D))
    x = x.astype(np.float32)
    # The bias puts the examples about 0.06 * ||w_0 - w_1||_1 on the side of class 0.
    b = np.array([0.06 * np.abs(normal).sum() - np.mean(x @ normal), 0.0], np.float32)
    logits_fn = _affine(w, b)
    z = logits_fn(tf.constant(x)).numpy()
    y = np.zeros(3, np.int32)
    assert np.all(np.argmax(z, 1) == 0)
    unconstrained = (z[:, 0] - z[:, 1]) / np.abs(normal).sum()
    exact = np.array([_min_linf_lp(xi.astype(float), normal.astype(float), float(b[0]))
                      for xi in x])
    assert np.all(exact > 1.1 * unconstrained)  # the box is active
    images = x.reshape((3,) + SHAPE)
    eps = 0.3
    config = FABConfig(eps, final_search_steps=10)
    result = fab_targeted(logits_fn, images, y, dataclasses.replace(config, num_target_classes=1), SEED)
    adv, robust, dist = _check_result(result, logits_fn, images, y, eps)
    assert not robust.any()
    # The pinned coordinates are pushed (about) onto their faces, much less than `dist` away.
    face = np.where(normal < 0, 1.0, 0.0)[pinned]
    assert np.abs(adv.reshape(3, D)[:, pinned] - face).max() < 1e-3
    np.testing.assert_allclose(dist, exact, rtol=1e-3)


def test_clean_misclassified_examples_are_returned_unchanged(affine_case):
    logits_fn, x, y, d_star = affine_case
    y = np.array([0, 1, 0, 2], np.int32)  # examples 1 and 3 are misclassified clean
    eps = float(d_star[0] * 1.01)  # breaks example 0 (d* = 0.02), not example 2 (0.035)
    result = fab_targeted(logits_fn, x, y, FABConfig(eps, num_target_classes=2), SEED)
    adv, robust, dist = _check_result(result, logits_fn, x, y, eps)
    np.testing.assert_array_equal(robust, [False, False, True, False])
    assert np.array_equal(adv[[1, 2, 3]], x[[1, 2, 3]])  # bit for bit
    np.testing.assert_array_equal(dist[[1, 3]], [0.0, 0.0])
    assert np.isinf(dist[2]) and dist[0] < eps


def _gap_and_normal(logits_fn, x, label, other):
    """z_label - z_other at x (float64 from the float32 logits) and its gradient (the normal)."""
    images = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(images)
        z = logits_fn(images)
        gap = z[:, label] - z[:, other]
        total = tf.reduce_sum(gap)
    normal = tape.gradient(total, images).numpy().reshape(len(x), -1)
    return gap.numpy().astype(np.float64), normal.astype(np.float64)


def test_exact_l2_distance_on_an_affine_classifier(affine_case):
    logits_fn, x, y, _ = affine_case
    gap, normal = _gap_and_normal(logits_fn, x, 0, 1)
    d_star = gap / np.linalg.norm(normal, axis=1)  # the L2 distance to the 0-vs-1 boundary
    foot = x.reshape(4, -1) - 1.05 * (gap / (normal ** 2).sum(axis=1))[:, None] * normal
    assert foot.min() > 0.0 and foot.max() < 1.0  # the box is not active
    config = FABConfig(1.0, norm="L2", final_search_steps=10, num_target_classes=1)
    result = _in_graph(fab_targeted, logits_fn, x, y, config, SEED)
    _, robust, dist = _check_result(result, logits_fn, x, y, 1.0, "L2")
    assert not robust.any()
    np.testing.assert_allclose(dist, d_star, rtol=1e-3)
    assert np.all(dist >= d_star * (1.0 - 1e-5))  # nothing closer can be misclassified
    # Success exactly when d* <= epsilon.
    for eps, broken in ((d_star[1] * 1.002, [True, True, False, False]),
                        (d_star[1] * 0.998, [True, False, False, False])):
        config = FABConfig(float(eps), norm="L2", final_search_steps=10, num_target_classes=1)
        result = _in_graph(fab_targeted, logits_fn, x, y, config, SEED)
        _, robust, dist = _check_result(result, logits_fn, x, y, eps, "L2")
        np.testing.assert_array_equal(~robust, broken)
        np.testing.assert_allclose(dist[~robust], d_star[~robust], rtol=1e-3)
    # Without the search (AutoAttack's FAB), just beyond the boundary, as in Linf.
    result = _in_graph(fab_targeted, logits_fn, x, y, FABConfig(1.0, norm="L2", num_target_classes=1), SEED)
    _, robust, dist = _check_result(result, logits_fn, x, y, 1.0, "L2")
    assert not robust.any()
    assert np.all(dist > d_star * 1.001) and np.all(dist < d_star * 1.01)


def _multiclass_affine(norm):
    """Four classes, label 0, logits affine: class 1 has the second-largest logit but class 2
    the closest boundary (its logit gap is 5x larger, its weights 10x larger); class 3 is
    farther still. Returns logits_fn, images, labels, and the distances (N, 3) to the
    boundaries of classes 1..3 (in `norm`; the box is not active)."""
    rng = np.random.default_rng(8)
    directions = rng.normal(size=(3, D))
    dual = np.abs(directions).sum(1) if norm == "Linf" else np.linalg.norm(directions, axis=1)
    wanted, scale = (np.array([0.04, 0.02, 0.06]), np.array([1.0, 10.0, 1.0]))
    if norm == "L2":
        wanted = 4.0 * wanted
    center = rng.uniform(0.45, 0.55, D)
    x = (center + rng.uniform(-0.003, 0.003, (4, D))).astype(np.float32)
    # z_0 = 0 and z_j = -s_j (<v_j, x> - d_j ||v_j||_*): at the center, z_0 - z_j = s_j d_j ||v_j||_*.
    w = np.vstack([np.zeros(D), -scale[:, None] * directions])
    b = np.r_[0.0, scale * (directions @ center - wanted * dual)]
    logits_fn = _affine(w, b)
    z = logits_fn(tf.constant(x)).numpy()
    distances = np.stack([_gap_and_normal(logits_fn, x, 0, j)[0] / (scale[j - 1] * dual[j - 1])
                          for j in (1, 2, 3)], axis=1)
    assert np.all(np.argmax(z, 1) == 0) and np.all(np.argsort(-z, 1)[:, 1] == 1)
    assert np.all(np.argmin(distances, 1) == 1)
    assert x.min() - 1.1 * distances.max() > 0.0 and x.max() + 1.1 * distances.max() < 1.0
    return logits_fn, x.reshape((4,) + SHAPE), np.zeros(4, np.int32), distances


@pytest.mark.parametrize("norm", ["Linf", "L2"])
def test_untargeted_fab_finds_the_closest_class_boundary(norm):
    logits_fn, x, y, distances = _multiclass_affine(norm)
    closest = distances.min(axis=1)
    eps = 1.0
    config = FABConfig(eps, norm=norm, final_search_steps=10)
    adv, robust, dist = _check_result(_in_graph(fab, logits_fn, x, y, config, SEED), logits_fn, x, y, eps, norm)
    assert not robust.any()
    np.testing.assert_allclose(dist, closest, rtol=1e-3)
    assert np.all(dist >= closest * (1.0 - 1e-5))
    np.testing.assert_array_equal(np.argmax(logits_fn(tf.constant(adv)).numpy(), 1), 2)
    # Without the search: just beyond that boundary.
    result = _in_graph(fab, logits_fn, x, y, FABConfig(eps, norm=norm), SEED)
    _, robust, plain = _check_result(result, logits_fn, x, y, eps, norm)
    assert not robust.any() and np.all(plain > closest * 1.001) and np.all(plain < closest * 1.01)
    # FAB-T towards the second-largest logit (class 1) stops at that farther boundary.
    _, _, targeted = _check_result(_in_graph(fab_targeted, logits_fn, x, y,
                                             dataclasses.replace(config, num_target_classes=1), SEED),
                                   logits_fn, x, y, eps, norm)
    np.testing.assert_allclose(targeted, distances[:, 0], rtol=1e-3)
    assert np.all(targeted > 1.5 * dist)


@pytest.mark.parametrize("norm", ["Linf", "L2"])
def test_untargeted_with_one_boundary_in_reach_is_fab_t(affine_case, norm):
    # Class 2 is never close, so the closest boundary is always 0-vs-1: the FAB-T run with target 1.
    logits_fn, x, y, _ = affine_case
    config = FABConfig(1.0, num_steps=30, norm=norm)
    untargeted = fab(logits_fn, x, y, config, SEED)
    targeted = fab_targeted(logits_fn, x, y, dataclasses.replace(config, num_target_classes=1), SEED)
    np.testing.assert_array_equal(untargeted.robust, targeted.robust)
    np.testing.assert_allclose(untargeted.distance, targeted.distance, rtol=1e-5)
    np.testing.assert_allclose(untargeted.adversarial, targeted.adversarial, atol=1e-6)


@pytest.mark.parametrize("norm", ["Linf", "L2"])
def test_random_starts_are_half_epsilon_from_x(norm):
    # The reference's restarts: x + (eps / 2) u with u uniform (Linf) or Gaussian (L2), rescaled
    # to norm 1, then clipped to [0, 1].
    config = FABConfig(0.2, norm=norm)
    x = tf.fill([3, 4, 4, 2], 0.5)
    noise = tf.random.stateless_normal([3, 4, 4, 2], [1, 2])
    start = _random_start(x, noise, config).numpy()
    np.testing.assert_allclose(_norms((start - 0.5).reshape(3, -1), norm), 0.1, rtol=1e-5)
    flat_noise = noise.numpy().reshape(3, -1)
    np.testing.assert_allclose((start - 0.5).reshape(3, -1) / 0.1, flat_noise / _norms(flat_noise, norm)[:, None],
                               atol=1e-5)
    near_face = _random_start(tf.fill([3, 4, 4, 2], 0.99), noise, config).numpy()
    assert near_face.min() >= 0.0 and near_face.max() <= 1.0 and near_face.max() == 1.0


def _dead_relu_model():
    """z_0 = 0, z_1 = sum_i relu(x_i - 0.5) - 0.16 on 4x4x1 images; at x < 0.5 every gradient is
    0, so a run from x cannot move, but one from a random start reaching past 0.5 can."""
    def logits_fn(images):
        flat = tf.reshape(images, [tf.shape(images)[0], -1])
        score = tf.reduce_sum(tf.nn.relu(flat - 0.5), axis=1) - 0.16
        return tf.stack([0.0 * score, score], axis=1)
    x = (0.48 + np.random.default_rng(3).uniform(-0.003, 0.003, (3,) + SHAPE)).astype(np.float32)
    return logits_fn, x, np.zeros(3, np.int32)


@pytest.mark.parametrize("norm, eps, bound", [("Linf", 0.1, 0.03 - 0.003), ("L2", 0.5, 0.113 - 0.012)])
@pytest.mark.parametrize("targeted", [False, True])
def test_restarts_break_what_the_clean_start_cannot(norm, eps, bound, targeted):
    # Exact minima at x = 0.48: Linf 0.03 (every pixel to 0.51), L2 2 sqrt(0.16 * 0.02) = 0.113
    # (8 pixels to 0.54); the bounds allow for the +-0.003 jitter of x.
    logits_fn, x, y = _dead_relu_model()

    def attack(restarts):
        config = FABConfig(eps, num_steps=20, num_restarts=restarts, norm=norm, num_target_classes=1)
        if targeted:
            return fab_targeted(logits_fn, x, y, config, SEED)
        return fab(logits_fn, x, y, config, SEED)

    _, robust, _ = _check_result(attack(1), logits_fn, x, y, eps, norm)
    assert robust.all()
    _, robust, dist = _check_result(attack(4), logits_fn, x, y, eps, norm)
    assert not robust.any() and np.all(dist > bound)


def test_target_count_is_clamped_with_a_warning(affine_case):
    logits_fn, x, y, _ = affine_case
    config = FABConfig(0.1, num_steps=3, final_search_steps=0, num_target_classes=9)
    with pytest.warns(UserWarning, match="fab_targeted: 9 target classes asked for"):
        result = fab_targeted(logits_fn, x, y, config, SEED)
    _check_result(result, logits_fn, x, y, 0.1)


def test_argument_validation(affine_case):
    logits_fn, x, y, _ = affine_case
    for field, bad in (("epsilon", 1.5), ("epsilon", -0.1), ("epsilon", True),
                       ("num_steps", 0), ("num_steps", True), ("num_steps", 2.5),
                       ("num_restarts", 0), ("num_restarts", False), ("alpha_max", 0.0),
                       ("alpha_max", 1.5), ("eta", 0.5), ("eta", float("inf")), ("beta", 0.0),
                       ("beta", 1.5), ("final_search_steps", -1), ("final_search_steps", True)):
        with pytest.raises(ValueError, match=field):
            dataclasses.replace(FABConfig(0.1), **{field: bad})
    assert FABConfig(0.1, num_steps=5.0).num_steps == 5
    for bad in (0, True, 1.5):
        with pytest.raises(ValueError, match="num_target_classes"):
            FABConfig(0.1, num_target_classes=bad)
    with pytest.raises(ValueError, match=r"x: uint8 images; pass float images in \[0, 1\]"):
        fab_targeted(logits_fn, (x * 255).astype(np.uint8), y, FABConfig(0.1), SEED)
    no_gradient = lambda images: tf.stop_gradient(logits_fn(images))  # noqa: E731
    with pytest.raises(ValueError, match="no gradient"):
        fab_targeted(no_gradient, x, y, FABConfig(0.1, num_steps=1, num_target_classes=1), SEED)
    # The norm, and the radius per norm: an L2 radius may exceed 1.
    for bad in ("L1", "linf", None):
        with pytest.raises(ValueError, match="norm"):
            FABConfig(0.1, norm=bad)
    assert FABConfig(1.5, norm="L2").epsilon == 1.5
    for bad in (-0.1, float("inf"), float("nan"), True):
        with pytest.raises(ValueError, match="epsilon"):
            FABConfig(bad, norm="L2")
    # Untargeted FAB checks its inputs the same way.
    with pytest.raises(ValueError, match="float images"):
        fab(logits_fn, (x * 255).astype(np.uint8), y, FABConfig(0.1), SEED)
    with pytest.raises(ValueError, match="no gradient"):
        fab(no_gradient, x, y, FABConfig(0.1, num_steps=1), SEED)
    one_class = lambda images: logits_fn(images)[:, :1]  # noqa: E731
    with pytest.raises(ValueError, match="at least 2 classes"):
        fab(one_class, x, y, FABConfig(0.1), SEED)


@pytest.fixture(scope="module")
def mlp_case():
    """A tiny random ReLU MLP on 3x3x2 images, 10 classes; labels are its clean predictions,
    except for the first 4 examples (relabelled: misclassified clean)."""
    init = lambda i: keras.initializers.GlorotUniform(seed=10 + i)  # noqa: E731
    model = keras.Sequential([
        keras.Input((3, 3, 2)), keras.layers.Flatten(),
        keras.layers.Dense(32, activation="relu", kernel_initializer=init(0)),
        keras.layers.Dense(32, activation="relu", kernel_initializer=init(1)),
        keras.layers.Dense(10, kernel_initializer=init(2))])
    x = np.random.default_rng(2).uniform(size=(32, 3, 3, 2)).astype(np.float32)
    y = np.argmax(model(x, training=False).numpy(), -1).astype(np.int32)
    y[:4] = (y[:4] + 1) % 10
    return model, x, y


def test_fab_t_breaks_a_small_nonlinear_model_in_graph(mlp_case):
    model, x, y = mlp_case
    weights = [v.numpy().copy() for v in model.weights]
    logits_fn = lambda images: model(images, training=False)  # noqa: E731
    eps = 0.1

    @tf.function
    def attack(images, labels, targets, restarts):
        return fab_targeted(logits_fn, images, labels,
                            FABConfig(eps, num_restarts=restarts, num_target_classes=targets), SEED)

    runs = {}
    for targets, restarts in ((1, 1), (9, 1), (9, 2)):
        with tf.GradientTape() as tape:
            images = tf.constant(x)
            tape.watch(images)
            result = attack(images, tf.constant(y), targets, restarts)
        assert tape.gradient(tf.reduce_sum(result.adversarial), images) is None
        runs[targets, restarts] = _check_result(result, logits_fn, x, y, eps)
    _, robust, dist = runs[9, 1]
    assert not robust[:4].any() and np.all(dist[:4] == 0.0)
    # Clean accuracy 28/32; FAB-T at eps = 0.1 breaks most of it (APGD-T leaves 8, too).
    assert robust.sum() <= 10, robust.sum()
    # Per example, later runs only attack what is still robust (and the computation of one
    # example does not depend on the others): more targets or restarts never lose a success.
    assert np.all(runs[9, 1][1] <= runs[1, 1][1]) and runs[9, 1][1].sum() < runs[1, 1][1].sum()
    assert np.all(runs[9, 2][1] <= runs[9, 1][1])
    # Deterministic given the seed.
    again = attack(tf.constant(x), tf.constant(y), 9, 2)
    np.testing.assert_array_equal(again.adversarial, runs[9, 2][0])
    for before, after in zip(weights, model.weights):
        np.testing.assert_array_equal(before, after.numpy())


@pytest.mark.parametrize("norm, eps", [("Linf", 0.05), ("L2", 0.15)])
def test_untargeted_fab_on_a_small_nonlinear_model_in_graph(mlp_case, norm, eps):
    model, x, y = mlp_case
    weights = [v.numpy().copy() for v in model.weights]
    logits_fn = lambda images: model(images, training=False)  # noqa: E731

    @tf.function
    def attack(images, labels, restarts):
        return fab(logits_fn, images, labels, FABConfig(eps, num_restarts=restarts, norm=norm), SEED)

    runs = {}
    for restarts in (1, 3):
        with tf.GradientTape() as tape:
            images = tf.constant(x)
            tape.watch(images)
            result = attack(images, tf.constant(y), restarts)
        assert tape.gradient(tf.reduce_sum(result.adversarial), images) is None
        runs[restarts] = _check_result(result, logits_fn, x, y, eps, norm)
    adv, robust, dist = runs[1]
    assert not robust[:4].any() and np.all(dist[:4] == 0.0)
    np.testing.assert_array_equal(adv[:4], x[:4])
    # Clean accuracy 28/32; about half of it is within these radii of the boundary.
    assert 5 <= robust.sum() <= 18, robust.sum()
    # Restarts never make results worse: the first run is the same, later ones only attack
    # what is still robust, and the first success decides an example's point.
    assert np.all(runs[3][1] <= robust)
    np.testing.assert_array_equal(runs[3][0][~robust], adv[~robust])
    np.testing.assert_array_equal(runs[3][2][~robust], dist[~robust])
    again = attack(tf.constant(x), tf.constant(y), 3)
    np.testing.assert_array_equal(again.adversarial, runs[3][0])
    for before, after in zip(weights, model.weights):
        np.testing.assert_array_equal(before, after.numpy())


@pytest.mark.parametrize("norm", ["Linf", "L2"])
def test_untargeted_graph_and_eager_agree(mlp_case, norm):
    model, x, y = mlp_case
    logits_fn = lambda images: model(images, training=False)  # noqa: E731
    config = FABConfig(0.05 if norm == "Linf" else 0.15, num_steps=10, num_restarts=2, norm=norm)
    x, y = x[:8], y[:8]
    eager = fab(logits_fn, x, y, config, SEED)
    graph = tf.function(lambda a, b: fab(logits_fn, a, b, config, SEED))(x, y)
    np.testing.assert_array_equal(eager.robust, graph.robust)
    np.testing.assert_allclose(eager.distance, graph.distance, rtol=1e-5)
    np.testing.assert_allclose(eager.adversarial, graph.adversarial, atol=1e-6)
