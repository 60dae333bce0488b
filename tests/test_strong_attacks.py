"""APGD-CE / APGD-T, Square and NAttack on a tiny CNN trained on sklearn's digits.

The attacks run once per module (fixture `results`) on 200 test images at eps = 0.15; the
tests then check bounds, relative strength, query-only operation, determinism, exact loss
values and argument validation.
"""

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from rat_tf import attacks
from rat_tf.attacks import APGDConfig, NAttackConfig, PGDConfig, SquareConfig
from rat_tf.attacks.square import square_size_fraction

from helpers import Linear, digits, tiny_cnn, trained_digits_classifier

EPS = 0.15
NUM_IMAGES = 200
APGD_STEPS = 30
SQUARE_QUERIES = 500
NATTACK_ITERATIONS, NATTACK_POPULATION = 30, 100
SEED = tf.constant([0, 11])


def _predict(logits_fn, images):
    return np.argmax(np.asarray(logits_fn(tf.constant(images))), axis=-1)


def _accuracy(logits_fn, images, labels):
    return float(np.mean(_predict(logits_fn, images) == labels))


class NumpyOnlyModel:
    """The trained model behind a numpy-only interface whose gradient is unusable.

    Inputs are quantised to 8 bits in numpy and the logits come back as a numpy array, so no
    tape can see through it; it counts the images it is asked about.
    """

    def __init__(self, logits_fn):
        self._logits_fn = logits_fn
        self.images_seen = 0

    def __call__(self, images):
        images = np.round(np.asarray(images, dtype=np.float32) * 255.0) / 255.0
        self.images_seen += images.shape[0]
        return np.asarray(self._logits_fn(tf.constant(images, tf.float32)))


@pytest.fixture(scope="module")
def data():
    _, _, x, y = digits()
    return x[:NUM_IMAGES], y[:NUM_IMAGES]


@pytest.fixture(scope="module")
def logits_fn():
    model = trained_digits_classifier()
    # reduce_retracing: the query attacks call the model on shrinking batches.
    return tf.function(lambda images: model(images, training=False), reduce_retracing=True)


@pytest.fixture(scope="module")
def results(logits_fn, data):
    x, y = data
    pgd = tf.function(lambda a, b: attacks.pgd(logits_fn, a, b, PGDConfig(EPS, EPS / 4, 10),
                                               seed=SEED).end)
    apgd_ce = tf.function(lambda a, b: attacks.apgd(logits_fn, a, b, APGDConfig(EPS, APGD_STEPS),
                                                    seed=SEED))
    apgd_t = tf.function(lambda a, b: attacks.apgd_targeted(logits_fn, a, b,
                                                            APGDConfig(EPS, APGD_STEPS), seed=SEED))
    numpy_model = NumpyOnlyModel(logits_fn)
    square = attacks.square_attack(numpy_model, x, y, SquareConfig(EPS, SQUARE_QUERIES), seed=1)
    square_images = numpy_model.images_seen
    nattack = attacks.nattack(numpy_model, x, y, NAttackConfig(EPS, NATTACK_ITERATIONS, NATTACK_POPULATION,
                                                                max_batch=5000), seed=2)
    return {
        "numpy_model": numpy_model,
        "square_images_seen": square_images,
        "pgd": pgd(x, y).numpy(),
        "apgd_ce": apgd_ce(x, y),
        "apgd_t": apgd_t(x, y),
        "square": square,
        "nattack": nattack,
    }


def _adversarial(result):
    return np.asarray(result) if isinstance(result, np.ndarray) else result[0].numpy()


@pytest.mark.parametrize("name", ["pgd", "apgd_ce", "apgd_t", "square", "nattack"])
def test_outputs_stay_in_the_ball_and_the_unit_box(results, data, name):
    x, _ = data
    adv = _adversarial(results[name])
    assert adv.shape == x.shape and adv.dtype == np.float32
    assert np.abs(adv - x).max() <= EPS + 1e-6
    assert adv.min() >= 0.0 and adv.max() <= 1.0


def test_apgd_is_at_least_as_strong_as_pgd_and_apgd_t_as_apgd_ce(results, logits_fn, data):
    x, y = data
    clean = _accuracy(logits_fn, x, y)
    pgd = _accuracy(logits_fn, results["pgd"], y)
    apgd_ce = _accuracy(logits_fn, results["apgd_ce"].adversarial.numpy(), y)
    apgd_t = _accuracy(logits_fn, results["apgd_t"].adversarial.numpy(), y)
    assert clean > 0.85
    assert pgd < clean - 0.4
    assert apgd_ce <= pgd + 0.02
    assert apgd_t <= apgd_ce + 0.02


@pytest.mark.parametrize("name", ["apgd_ce", "apgd_t"])
def test_apgd_robust_flags_agree_with_the_model(results, logits_fn, data, name):
    x, y = data
    result = results[name]
    robust = _predict(logits_fn, result.adversarial.numpy()) == y
    np.testing.assert_array_equal(result.robust.numpy(), robust)
    clean_wrong = _predict(logits_fn, x) != y
    np.testing.assert_array_equal(result.adversarial.numpy()[clean_wrong], x[clean_wrong])


def test_query_only_attacks_fool_a_model_without_usable_gradients(results, data):
    x, y = data
    numpy_model = results["numpy_model"]
    # The wrapper really hides the gradient: no tape sees through it, and APGD says so.
    xt = tf.constant(x[:4])
    with tf.GradientTape() as tape:
        tape.watch(xt)
        out = tf.convert_to_tensor(numpy_model(xt))
    assert tape.gradient(out, xt) is None
    with pytest.raises(ValueError, match="gradient"):
        attacks.apgd(numpy_model, x[:4], y[:4], APGDConfig(EPS, 2), seed=SEED)

    clean = _accuracy(numpy_model, x, y)
    square, nattack = results["square"], results["nattack"]
    square_acc = _accuracy(numpy_model, square.adversarial.numpy(), y)
    nattack_acc = _accuracy(numpy_model, nattack.adversarial.numpy(), y)
    assert square_acc < clean - 0.4
    assert nattack_acc < clean - 0.15
    for result, accuracy in ((square, square_acc), (nattack, nattack_acc)):
        # The attacks' success flags are the model's verdict on the returned images.
        np.testing.assert_array_equal(result.success.numpy(),
                                      _predict(numpy_model, result.adversarial.numpy()) != y)
        assert accuracy == pytest.approx(1.0 - result.success.numpy().mean())

    # Query accounting: budgets hold, and the counts add up to what the model saw.
    assert square.queries.numpy().max() <= SQUARE_QUERIES
    assert results["square_images_seen"] == NUM_IMAGES + square.queries.numpy().sum()
    per_example = NATTACK_ITERATIONS * NATTACK_POPULATION + NATTACK_ITERATIONS + 1
    assert nattack.queries.numpy().max() <= per_example
    fooled_early = nattack.success.numpy() & (nattack.queries.numpy() < per_example // 2)
    assert fooled_early.any()  # early stop per example


def test_epsilon_zero_changes_nothing(logits_fn, data):
    x, y = data[0][:32], data[1][:32]
    clean = _accuracy(logits_fn, x, y)
    outputs = [
        attacks.apgd(logits_fn, x, y, APGDConfig(0.0, 3), seed=SEED).adversarial,
        attacks.apgd(logits_fn, x, y, APGDConfig(0.0, 3, loss="dlr"), seed=SEED).adversarial,
        attacks.apgd_targeted(logits_fn, x, y, APGDConfig(0.0, 3, num_target_classes=2), seed=SEED).adversarial,
        attacks.square_attack(logits_fn, x, y, SquareConfig(0.0, 20)).adversarial,
        attacks.nattack(logits_fn, x, y, NAttackConfig(0.0, 3, 10)).adversarial,
    ]
    for out in outputs:
        np.testing.assert_array_equal(out.numpy(), x)
        assert _accuracy(logits_fn, out.numpy(), y) == clean


def test_attacks_are_deterministic_given_the_seed(logits_fn, data):
    x, y = data[0][:24], data[1][:24]

    def runs(attack):
        return attack(0).numpy(), attack(0).numpy(), attack(1).numpy()

    cases = [
        lambda s: attacks.apgd(logits_fn, x, y, APGDConfig(0.1, 4),
                               seed=tf.constant([s, 5])).adversarial,
        lambda s: attacks.square_attack(logits_fn, x, y, SquareConfig(0.1, 15), seed=s).adversarial,
        lambda s: attacks.nattack(logits_fn, x, y, NAttackConfig(0.1, 2, 8), seed=s).adversarial,
    ]
    for attack in cases:
        a, b, c = runs(attack)
        np.testing.assert_array_equal(a, b)
        assert not np.array_equal(a, c)


def test_apgd_runs_in_graph_and_changes_no_model_state(data):
    keras.utils.set_random_seed(1)
    x, y = data[0][:16], data[1][:16]
    model = tiny_cnn(batch_norm=True)
    model(x, training=True)
    before = [w.numpy().copy() for w in model.weights]
    fn = lambda z: model(z, training=False)  # noqa: E731
    config = APGDConfig(0.1, 6, loss="dlr", num_restarts=2)
    eager = attacks.apgd(fn, x, y, config, seed=SEED)
    graph = tf.function(lambda a, b: attacks.apgd(fn, a, b, config, seed=SEED))(x, y)
    np.testing.assert_allclose(graph.adversarial.numpy(), eager.adversarial.numpy(), atol=1e-6)
    np.testing.assert_array_equal(graph.robust.numpy(), eager.robust.numpy())
    for w, b in zip(model.weights, before):
        np.testing.assert_array_equal(w.numpy(), b)


def test_restarts_keep_the_worst_case(logits_fn, data):
    x, y = data[0][:100], data[1][:100]
    one = attacks.apgd(logits_fn, x, y, APGDConfig(0.1, 5), seed=SEED).robust.numpy()
    three = attacks.apgd(logits_fn, x, y, APGDConfig(0.1, 5, num_restarts=3),
                         seed=SEED).robust.numpy()
    # The first restart uses the same start as the single run; later ones only add successes.
    assert not np.any(three & ~one)


def test_dlr_losses_exact_values():
    logits = tf.constant([[3.0, 1.0, 2.0, 0.0],
                          [3.0, 1.0, 2.0, 0.0],
                          [0.0, 4.0, 4.0, 1.0]])
    labels = tf.constant([0, 1, 2])
    # Sorted rows: (3, 2, 1, 0), (3, 2, 1, 0), (4, 4, 1, 0).
    # -(z_y - max_{j != y} z_j) / (z_pi1 - z_pi3): -(3 - 2) / 2, -(1 - 3) / 2, -(4 - 4) / 3.
    np.testing.assert_allclose(attacks.dlr_loss(logits, labels).numpy(), [-0.5, 1.0, 0.0],
                               atol=1e-6)
    # -(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2): -(3 - 0) / 2.5, -(1 - 2) / 2.5, -(4 - 1) / 3.5.
    targets = tf.constant([3, 2, 3])
    np.testing.assert_allclose(attacks.dlr_targeted_loss(logits, labels, targets).numpy(),
                               [-1.2, 0.4, -3.0 / 3.5], atol=1e-6)
    # DLR is invariant to shifting and scaling the logits (why it resists saturated softmaxes).
    np.testing.assert_allclose(attacks.dlr_loss(7.0 * logits - 5.0, labels).numpy(),
                               attacks.dlr_loss(logits, labels).numpy(), atol=1e-6)
    with pytest.raises(ValueError, match="classes"):
        attacks.dlr_targeted_loss(logits[:, :3], labels, targets)


def test_apgd_checkpoints_follow_the_paper():
    checkpoints = attacks.apgd_checkpoints(100)
    assert checkpoints == [22, 41, 57, 70, 80, 87, 93, 99]
    p = [0.0, 0.22]
    while True:
        step = max(p[-1] - p[-2] - 0.03, 0.06)
        if p[-1] + step > 1.0:
            break
        p.append(p[-1] + step)
    assert checkpoints == [int(round(100 * q)) for q in p[1:]]
    assert attacks.apgd_checkpoints(1) == [1]


def test_square_size_schedule():
    frac = square_size_fraction
    assert frac(0, 10000, 0.8) == 0.8 and frac(10, 10000, 0.8) == 0.8
    assert frac(11, 10000, 0.8) == 0.4 and frac(51, 10000, 0.8) == 0.2
    assert frac(9000, 10000, 0.8) == 0.8 / 512
    # AutoAttack's standard version: the schedule does not depend on the budget.
    assert frac(50, 500, 0.8) == frac(50, 10000, 0.8) == 0.8 / 2
    # On 32x32 images with 5,000 queries about 20% of them use squares of side <= 3 px.
    small = sum(round((frac(i, 5000, 0.8) * 1024) ** 0.5) <= 3 for i in range(5000))
    assert 0.15 < small / 5000 < 0.25
    # The rescaled schedule, on request: the budget is mapped onto the 10,000 iterations.
    assert frac(50, 500, 0.8, rescale_schedule=True) == frac(1000, 10000, 0.8) == 0.8 / 16
    assert sum(round((frac(i, 5000, 0.8, True) * 1024) ** 0.5) <= 3 for i in range(5000)) > 2500


def test_nattack_update_is_the_spec_formula_with_a_per_sample_max():
    # Class 0 has a constant logit 3; classes 1 and 2 read one pixel each: z = (3, 4a - 2, 4b - 2).
    # SPEC's per-sample loss log p_0 - max_j log p_j = 3 - max(z_1, z_2) rewards raising the
    # larger pixel only; the official code's single max over the population makes the loss
    # log p_0 - const, which rewards raising both, so its update differs.
    model = Linear(w=[[0.0, 4.0, 0.0], [0.0, 0.0, 4.0]], b=[3.0, -2.0, -2.0])
    x = tf.constant([[[[0.5, 0.5]]]])
    y = np.array([0])
    eps, sigma, lr, pop = 0.3, 0.5, 0.2, 16
    out = attacks.nattack(model, x, y, NAttackConfig(eps, num_iterations=1, population=pop, sigma=sigma,
                                                     learning_rate=lr), seed=3).adversarial.numpy()

    # Re-derive the draws (this also pins the seed layout: mu_0 from fold_in(seed, 0), the
    # population of iteration t from fold_in(fold_in(seed, t + 1), chunk)).
    seed = tf.constant([0, 3])
    fold = tf.random.experimental.stateless_fold_in
    mu0 = 0.001 * tf.random.stateless_normal(x.shape, fold(seed, 0)).numpy()
    xi = tf.random.stateless_normal([1, pop, 1, 1, 2], fold(fold(seed, 1), 0)).numpy()[0]
    xn = x.numpy()
    z0 = np.arctanh((2 * xn - 1) * (1 - 1e-6))

    def mean_image(mu):
        return np.clip(xn + np.clip(0.5 * np.tanh(z0 + mu) + 0.5 - xn, -eps, eps), 0, 1)

    samples = mean_image(mu0 + sigma * xi)  # the same map, applied to each sample
    logits = samples.reshape(pop, 2) @ model.w.numpy() + model.b.numpy()
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))

    def update(loss):
        reward = -loss
        advantage = (reward - reward.mean()) / (reward.std() + 1e-7)
        return mu0 + lr / (pop * sigma) * np.tensordot(advantage, xi, axes=1)

    per_sample = np.maximum(0.0, log_p[:, 0] - log_p[:, 1:].max(-1))
    one_max = np.maximum(0.0, log_p[:, 0] - log_p[:, 1:].max())  # the official code's version
    assert len(set(log_p[:, 1:].argmax(-1))) == 2  # the runner-up does change
    assert np.all(log_p.argmax(-1) == 0) and per_sample.min() > 0
    np.testing.assert_allclose(out, mean_image(update(per_sample)), atol=1e-5)
    assert np.abs(mean_image(update(one_max)) - out).max() > 0.01


def test_argument_validation(logits_fn, data):
    x, y = data[0][:4], data[1][:4]
    with pytest.raises(ValueError, match="epsilon"):
        APGDConfig(epsilon=1.5)
    with pytest.raises(ValueError, match="num_steps"):
        APGDConfig(0.1, num_steps=0)
    with pytest.raises(ValueError, match="num_steps"):
        APGDConfig(0.1, num_steps=2.5)
    with pytest.raises(ValueError, match="loss"):
        APGDConfig(0.1, loss="cw")
    with pytest.raises(ValueError, match="num_restarts"):
        APGDConfig(0.1, num_restarts=0)
    with pytest.raises(ValueError, match="rho"):
        APGDConfig(0.1, rho=0.0)
    assert dataclasses.replace(APGDConfig(0.1), loss="dlr").loss == "dlr"
    with pytest.warns(UserWarning, match="using 9, as AutoAttack does"):  # clamped
        clamped = attacks.apgd_targeted(logits_fn, x, y, APGDConfig(0.1, 2, num_target_classes=10), SEED)
    nine = attacks.apgd_targeted(logits_fn, x, y, APGDConfig(0.1, 2, num_target_classes=9), SEED)
    np.testing.assert_array_equal(clamped.adversarial.numpy(), nine.adversarial.numpy())
    for bad in (0, True, 1.5):
        with pytest.raises(ValueError, match="num_target_classes"):
            APGDConfig(0.1, 2, num_target_classes=bad)
    two_classes = lambda z: tf.reshape(z, [tf.shape(z)[0], -1])[:, :2]  # noqa: E731
    with pytest.raises(ValueError, match="classes"):
        attacks.apgd(two_classes, x, y % 2, APGDConfig(0.1, 2, loss="dlr"), SEED)
    with pytest.raises(ValueError, match="epsilon"):
        SquareConfig(-0.1)
    with pytest.raises(ValueError, match="num_queries"):
        SquareConfig(0.1, num_queries=0)
    with pytest.raises(ValueError, match="p_init"):
        SquareConfig(0.1, p_init=1.5)
    with pytest.raises(ValueError, match=r"x: images of rank 4 \(NHWC\)"):
        attacks.square_attack(logits_fn, x[:, :, :, 0], y, SquareConfig(0.1))
    with pytest.raises(ValueError, match="seed"):
        attacks.square_attack(logits_fn, x, y, SquareConfig(0.1), seed=[1, 2, 3])
    with pytest.raises(ValueError, match="epsilon"):
        NAttackConfig(2.0)
    with pytest.raises(ValueError, match="population"):
        NAttackConfig(0.1, population=1)
    with pytest.raises(ValueError, match="sigma"):
        NAttackConfig(0.1, sigma=0.0)
    with pytest.raises(ValueError, match="max_batch"):
        NAttackConfig(0.1, max_batch=0)


def test_square_runs_in_graph_with_the_same_draws_as_its_python_loop(logits_fn, data):
    x, y = data[0][:40], data[1][:40]
    in_graph = attacks.square_attack(logits_fn, x, y, SquareConfig(EPS, 60), seed=3)
    seen = []
    python_loop = attacks.square_attack(logits_fn, x, y, SquareConfig(EPS, 60), seed=3,
                                        progress=lambda i, n: seen.append(n))
    assert seen  # a progress callback runs the Python loop
    np.testing.assert_array_equal(in_graph.success.numpy(), python_loop.success.numpy())
    np.testing.assert_array_equal(in_graph.queries.numpy(), python_loop.queries.numpy())
    np.testing.assert_allclose(in_graph.adversarial.numpy(), python_loop.adversarial.numpy(), atol=1e-6)
