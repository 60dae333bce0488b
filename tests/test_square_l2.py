"""Square Attack, L2: the window pattern and the start against hand and reference values, the
update's invariants, bounds, query-only strength, eps = 0, determinism and argument checks.

The model is the tiny digits CNN of test_strong_attacks.py, put behind a numpy-only interface
(8-bit quantised inputs, numpy logits) so that no gradient is usable.
"""

import numpy as np
import pytest
import tensorflow as tf

from rat_tf import attacks
from rat_tf.attacks.square import (
    SquareConfig,
    _propose_l2,
    l2_initial_perturbation,
    l2_window_pattern,
    square_side,
)

from helpers import digits, trained_digits_classifier

EPS = 1.0  # L2, pixel units: about Linf 0.125 spread over an 8x8 digit
NUM_IMAGES = 100
QUERIES = 300


class NumpyOnlyModel:
    """A model behind a numpy-only interface (8-bit inputs, numpy logits) that counts its images."""

    def __init__(self, logits_fn):
        self._logits_fn = logits_fn
        self.images_seen = 0

    def __call__(self, images):
        images = np.round(np.asarray(images, dtype=np.float32) * 255.0) / 255.0
        self.images_seen += images.shape[0]
        return np.asarray(self._logits_fn(tf.constant(images, tf.float32)))


def _accuracy(model, images, labels):
    return float(np.mean(np.argmax(np.asarray(model(tf.constant(images))), -1) == labels))


def _l2(delta):
    return np.sqrt(np.sum(np.square(delta, dtype=np.float64), axis=(1, 2, 3)))


@pytest.fixture(scope="module")
def data():
    _, _, x, y = digits()
    return x[:NUM_IMAGES], y[:NUM_IMAGES]


@pytest.fixture(scope="module")
def logits_fn():
    model = trained_digits_classifier()
    return tf.function(lambda images: model(images, training=False), reduce_retracing=True)


@pytest.fixture(scope="module")
def numpy_run(logits_fn, data):
    x, y = data
    model = NumpyOnlyModel(logits_fn)
    result = attacks.square_attack(model, x, y, SquareConfig(EPS, QUERIES, norm="L2"), seed=1)
    return model, result, model.images_seen


def _reference_rectangles(rows, cols):
    """AutoAttack's `eta_rectangles` (L2), transcribed loop for loop in numpy."""
    delta = np.zeros((rows, cols))
    centre = [rows // 2, cols // 2]
    for k in range(max(rows // 2 + 1, cols // 2 + 1)):
        delta[max(centre[0], 0):min(centre[0] + 2 * k + 1, rows),
              max(centre[1], 0):min(centre[1] + 2 * k + 1, cols)] += 1.0 / (k + 1) ** 2
        centre[0] -= 1
        centre[1] -= 1
    with np.errstate(invalid="ignore"):  # 0 / 0 on the empty top half of a 1-pixel window
        return delta / np.sqrt(np.sum(delta ** 2))


def test_window_pattern_matches_a_hand_computation_and_the_reference_loops():
    # side 3: top row [1/4, 5/4, 1/4], bottom rows -[[1,1,1],[1,5,1]]/4, each half of unit norm.
    expected = np.array([[1, 5, 1] / np.sqrt(54), [-1, -1, -1] / np.sqrt(60), [-1, -5, -1] / np.sqrt(60)])
    np.testing.assert_allclose(l2_window_pattern(3), expected, atol=1e-15)
    np.testing.assert_array_equal(l2_window_pattern(1), [[-1.0]])
    for side in range(1, 36):
        reference = np.zeros((side, side))
        reference[:side // 2] = _reference_rectangles(side // 2, side)
        reference[side // 2:] = -_reference_rectangles(side - side // 2, side)
        reference /= np.sqrt(np.sum(reference ** 2))
        np.testing.assert_allclose(l2_window_pattern(side), reference, atol=1e-14, err_msg=f"side {side}")


def test_l2_square_sides_are_odd_at_least_three_and_fit_the_image():
    l2 = SquareConfig(1.0, 5000, norm="L2")
    linf = SquareConfig(0.1, 5000)
    # 32x32, p = 0.8: round(sqrt(819.2)) = 29; p = 0.4 after 10 iterations: 20, made odd for L2.
    assert (square_side(0, 32, 32, l2), square_side(0, 32, 32, linf)) == (29, 29)
    assert (square_side(11, 32, 32, l2), square_side(11, 32, 32, linf)) == (21, 20)
    # 8x8 late in the schedule: round(sqrt(0.8 / 512 * 64)) = 0, raised to 3 (L2) or 1 (Linf).
    assert (square_side(9000, 8, 8, l2), square_side(9000, 8, 8, linf)) == (3, 1)
    assert square_side(0, 28, 28, l2) == 25
    # Never wider than the image, even if that makes it even (as AutoAttack's min(s, h, w)).
    assert square_side(0, 4, 4, l2) == 4 and square_side(0, 2, 2, l2) == 2
    assert all(square_side(i, 32, 32, l2) % 2 == 1 for i in range(0, 10_000, 37))


@pytest.mark.parametrize("shape, epsilon", [((3, 32, 32, 3), 0.5), ((2, 8, 8, 1), 3.0), ((2, 28, 20, 2), 1.0)])
def test_initial_perturbation_has_l2_norm_epsilon(shape, epsilon):
    delta = l2_initial_perturbation(shape, tf.constant([4, 2]), epsilon).numpy()
    assert delta.shape == shape and delta.dtype == np.float32
    np.testing.assert_allclose(_l2(delta), epsilon, rtol=1e-6)


def test_initial_perturbation_is_a_grid_of_signed_transposed_patterns():
    # 32x32: tiles of side 32 // 5 = 6, five per axis from pixel 1 (AutoAttack's grid).
    delta = l2_initial_perturbation((4, 32, 32, 3), tf.constant([0, 7]), 2.0).numpy()
    pattern = l2_window_pattern(6)
    assert np.all(delta[:, [0, 31]] == 0) and np.all(delta[:, :, [0, 31]] == 0)
    scale = 2.0 / np.sqrt(25 * 3)  # 75 unit-norm tiles per image, rescaled to norm 2
    signs, flips = set(), set()
    for n in range(4):
        for i in range(5):
            for j in range(5):
                for ch in range(3):
                    tile = delta[n, 1 + 6 * i:7 + 6 * i, 1 + 6 * j:7 + 6 * j, ch] / scale
                    matches = [(s, t) for s in (1.0, -1.0) for t in (False, True)
                               if np.allclose(tile, s * (pattern.T if t else pattern), atol=1e-5)]
                    assert len(matches) == 1, (n, i, j, ch)
                    signs.add(matches[0][0])
                    flips.add(matches[0][1])
    assert signs == {1.0, -1.0} and flips == {False, True}


def _covered_by_two_squares(changed, side):
    """Whether the True pixels of an (H, W) mask fit inside two side x side squares."""
    h, w = changed.shape
    for top in range(h - side + 1):
        for left in range(w - side + 1):
            rest = changed.copy()
            rest[top:top + side, left:left + side] = False
            rows, cols = np.nonzero(rest)
            if rows.size == 0 or (np.ptp(rows) < side and np.ptp(cols) < side):
                return True
    return False


def test_update_moves_mass_between_two_windows_and_keeps_the_norm_exactly_epsilon():
    # Mid-grey images: nothing is clipped, so AutoAttack's update is exact and checkable.
    n, side, eps = 6, 5, 1.0
    x = tf.fill([n, 16, 16, 3], 0.5)
    start = x + l2_initial_perturbation(x.shape, tf.constant([1, 1]), eps)
    padded = np.zeros((7, 7))
    padded[:side, :side] = l2_window_pattern(side)
    propose = lambda best, seed: _propose_l2(best, x, tf.range(n, dtype=tf.int64), tf.constant([seed, 3]),  # noqa: E731
                                             tf.constant(side), tf.constant(eps), tf.constant(padded, tf.float32))
    candidate = propose(start, 0).numpy()
    delta, new_delta = start.numpy() - 0.5, candidate - 0.5
    np.testing.assert_allclose(_l2(new_delta), eps, rtol=1e-5)
    # Each channel keeps its L2 mass: the new square takes exactly what both windows held.
    np.testing.assert_allclose(np.sqrt(np.sum(new_delta ** 2, axis=(1, 2))),
                               np.sqrt(np.sum(delta ** 2, axis=(1, 2))), rtol=1e-5)
    changed = np.any(np.abs(new_delta - delta) > 1e-6, axis=-1)
    assert changed.any(axis=(1, 2)).all()
    for k in range(n):
        assert _covered_by_two_squares(changed[k], side)
    # A start shorter than eps (as after a clip) gets the spare budget back: norm eps again.
    refilled = propose(x + 0.5 * (start - x), 1).numpy()
    np.testing.assert_allclose(_l2(refilled - 0.5), eps, rtol=1e-5)


def test_l2_square_fools_a_model_without_usable_gradients(numpy_run, data):
    x, y = data
    model, result, images_seen = numpy_run
    xt = tf.constant(x[:4])
    with tf.GradientTape() as tape:
        tape.watch(xt)
        out = tf.convert_to_tensor(model(xt))
    assert tape.gradient(out, xt) is None

    adversarial = result.adversarial.numpy()
    assert _l2(adversarial - x).max() <= EPS + 1e-5
    assert adversarial.min() >= 0.0 and adversarial.max() <= 1.0
    clean = _accuracy(model, x, y)
    robust = _accuracy(model, adversarial, y)
    assert robust < clean - 0.4
    # Random noise of the same L2 norm barely matters: the search, not the budget, does it.
    noise = np.random.default_rng(0).normal(size=x.shape).astype(np.float32)
    noisy = np.clip(x + EPS * noise / _l2(noise)[:, None, None, None], 0.0, 1.0)
    assert _accuracy(model, noisy, y) > clean - 0.15
    predicted = np.argmax(model(adversarial), -1)
    np.testing.assert_array_equal(result.success.numpy(), predicted != y)
    # Query accounting (early stop per example): budgets hold and the counts add up.
    queries = result.queries.numpy()
    fooled = result.success.numpy() & (queries > 0)
    assert queries.max() <= QUERIES and np.median(queries[fooled]) < QUERIES // 2
    assert images_seen == NUM_IMAGES + queries.sum()


@pytest.mark.parametrize("epsilon", [0.3, 6.0])
def test_outputs_stay_in_the_l2_ball_and_the_unit_box(logits_fn, data, epsilon):
    x, y = data[0][:32], data[1][:32]
    result = attacks.square_attack(logits_fn, x, y, SquareConfig(epsilon, 40, norm="L2"), seed=2)
    adversarial = result.adversarial.numpy()
    assert _l2(adversarial - x).max() <= epsilon + 1e-5
    assert adversarial.min() >= 0.0 and adversarial.max() <= 1.0


def test_in_graph_search_has_the_same_draws_as_the_python_loop(logits_fn, data):
    x, y = data[0][:40], data[1][:40]
    config = SquareConfig(0.6, 60, norm="L2")
    in_graph = attacks.square_attack(logits_fn, x, y, config, seed=3)
    seen = []
    python_loop = attacks.square_attack(logits_fn, x, y, config, seed=3, progress=lambda i, n: seen.append(n))
    assert seen
    np.testing.assert_array_equal(in_graph.success.numpy(), python_loop.success.numpy())
    np.testing.assert_array_equal(in_graph.queries.numpy(), python_loop.queries.numpy())
    np.testing.assert_allclose(in_graph.adversarial.numpy(), python_loop.adversarial.numpy(), atol=1e-6)


def test_epsilon_zero_changes_nothing(logits_fn, data):
    x, y = data[0][:16], data[1][:16]
    result = attacks.square_attack(logits_fn, x, y, SquareConfig(0.0, 20, norm="L2"))
    np.testing.assert_array_equal(result.adversarial.numpy(), x)
    np.testing.assert_array_equal(result.queries.numpy(), 0)


def test_deterministic_given_the_seed(logits_fn, data):
    x, y = data[0][:24], data[1][:24]
    runs = [attacks.square_attack(logits_fn, x, y, SquareConfig(0.8, 15, norm="L2"), seed=s).adversarial.numpy()
            for s in (0, 0, 1)]
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])


def test_argument_validation(logits_fn, data):
    x, y = data[0][:4], data[1][:4]
    for norm in ("L1", "l2", "linf", None):
        with pytest.raises(ValueError, match="norm must be one of Linf, L2") as error:
            SquareConfig(0.5, 2, norm=norm)
        assert "\n" not in str(error.value)
    for epsilon in (-0.1, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="epsilon") as error:
            SquareConfig(epsilon, 2, norm="L2")
        assert "\n" not in str(error.value)
    for bad, match in (((x * 255).astype(np.uint8), "x: uint8 images"),
                       (x * 2.0 - 0.5, r"x: images must lie in \[0, 1\]")):
        with pytest.raises(ValueError, match=match) as error:
            attacks.square_attack(logits_fn, bad, y, SquareConfig(0.1, 2))
        assert "\n" not in str(error.value)
    with pytest.raises(ValueError, match="epsilon"):
        SquareConfig(2.0)  # a Linf radius is at most 1 ...
    assert SquareConfig(2.0, norm="L2").epsilon == 2.0  # ... an L2 radius need not be
    assert SquareConfig(0.1).norm == "Linf" and SquareConfig(0.1).p_init == SquareConfig(1.0, norm="L2").p_init == 0.8
    # The default stays Linf, and the common signature (logits_fn, x, y, config, seed) works positionally.
    np.testing.assert_array_equal(attacks.square_attack(logits_fn, x, y, SquareConfig(0.1, 5, 0.8), 4).adversarial,
                                  attacks.square_attack(logits_fn, x, y, SquareConfig(0.1, num_queries=5, norm="Linf"),
                                                        seed=4).adversarial)


@pytest.mark.parametrize("norm", ["Linf", "L2"])
def test_runs_on_images_of_several_sizes_in_one_process(norm):
    # The compiled proposals relax their shapes after a retrace; image sizes must stay dynamic.
    def model(images):
        return tf.reduce_mean(images, axis=[1, 2])[:, :1] * tf.constant([[-1.0, 1.0]])

    for shape in [(3, 8, 8, 1), (3, 16, 16, 3), (3, 12, 10, 2)]:
        x = tf.fill(shape, 0.5)
        result = attacks.square_attack(model, x, tf.zeros([3], tf.int32), SquareConfig(0.1, 4, norm=norm), seed=0,
                                       progress=lambda i, n: None)
        assert result.adversarial.shape == shape
