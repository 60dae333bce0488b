import keras
import numpy as np
import pytest
import tensorflow as tf

from rat_tf import labels, methods, region
from rat_tf.attacks import pgd

from helpers import digits, tiny_cnn

SEED = tf.constant([4, 2])


def _setup(n=16):
    x, y, _, _ = digits()
    model = tiny_cnn()
    logits_fn = lambda z: model(z, training=False)  # noqa: E731
    return model, logits_fn, tf.constant(x[:n]), tf.constant(y[:n])


def _loss(method, model, batch):
    return float(method.loss()(batch.targets, method.forward(model, batch.inputs)))


def test_sat_is_rat_special_case_exactly():
    """Scales {1}, beta = 1, m = 1, x'_f := x'_e: Madry's batch and loss, bit for bit."""
    model, logits_fn, x, y = _setup()
    sat = methods.get("sat", epsilon=0.1, step_size=0.025, num_steps=5)
    special = methods.get("rat", epsilon=0.1, step_size=0.025, num_steps=5, num_samples=1,
                          beta_max=1.0, beta_min=1.0)
    special.region = region.RegionConfig(num_samples=1, scales=(1.0,), max_scale=1.0, use_first_point=False)
    a = sat.training_batch(logits_fn, x, y, 10, SEED)
    b = special.training_batch(logits_fn, x, y, 10, SEED)
    np.testing.assert_array_equal(a.inputs.numpy(), b.inputs.numpy())
    np.testing.assert_array_equal(a.targets.numpy(), b.targets.numpy())
    np.testing.assert_array_equal(a.labels.numpy(), b.labels.numpy())
    assert _loss(sat, model, a) == _loss(special, model, b)
    # and SAT's batch is PGD's end point with the documented seed split
    madry = pgd(logits_fn, x, y, sat.attack, methods.split_seed(SEED)[0]).end
    np.testing.assert_array_equal(a.inputs.numpy(), madry.numpy())
    np.testing.assert_array_equal(a.targets.numpy(), np.eye(10)[y.numpy()])


def test_rat_batch_follows_the_path_the_draws_and_the_labels():
    model, logits_fn, x, y = _setup()
    rat = methods.get("rat", epsilon=0.1, step_size=0.025, num_steps=5)
    batch = rat.training_batch(logits_fn, x, y, 10, SEED)
    attack_seed, region_seed = methods.split_seed(SEED)
    path = pgd(logits_fn, x, y, rat.attack, attack_seed)
    draw = region.draw(rat.region, 16, region_seed)
    assert batch.inputs.shape == (32, 8, 8, 1)
    np.testing.assert_array_equal(batch.labels.numpy(), np.tile(y.numpy(), 2))
    expected = region.sample(x, path.first, path.end, draw, rat.region)
    np.testing.assert_array_equal(batch.inputs.numpy(), expected.numpy())
    s = draw.scale.numpy().reshape(-1)
    beta = 1.0 - s * 0.9 / 2.0
    np.testing.assert_allclose(batch.targets.numpy().max(-1), np.maximum(beta, (1 - beta) / 9), atol=1e-6)
    np.testing.assert_allclose(batch.targets.numpy(), labels.distance_aware_labels(
        batch.labels, 10, s, 2.0, 1.0, 0.1).numpy(), atol=1e-7)
    # the loss is the mean soft-label cross-entropy over the n * m points
    logits = model(batch.inputs, training=True).numpy()
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    assert _loss(rat, model, batch) == pytest.approx(-np.mean(np.sum(batch.targets.numpy() * log_p, -1)), rel=1e-5)


def test_sat_ars_uses_hard_labels():
    _, logits_fn, x, y = _setup()
    batch = methods.get("sat_ars", epsilon=0.1, step_size=0.025, num_steps=3).training_batch(
        logits_fn, x, y, 10, SEED)
    np.testing.assert_array_equal(batch.targets.numpy(), np.eye(10)[np.tile(y.numpy(), 2)])


def test_avmixup_equals_its_formula():
    _, logits_fn, x, y = _setup()
    avm = methods.get("avmixup", epsilon=0.1, step_size=0.025, num_steps=3, gamma=2.0, lambda1=1.0, lambda2=0.1)
    batch = avm.training_batch(logits_fn, x, y, 10, SEED)
    attack_seed, region_seed = methods.split_seed(SEED)
    end = pgd(logits_fn, x, y, avm.attack, attack_seed).end.numpy()
    s = region.draw(avm.region, 16, region_seed).scale.numpy()[0]
    w = 1.0 - s / 2.0
    vertex = np.clip(x.numpy() + 2.0 * (end - x.numpy()), 0, 1)
    wb = w[:, None, None, None]
    np.testing.assert_allclose(batch.inputs.numpy(), wb * x.numpy() + (1 - wb) * vertex, atol=1e-6)
    onehot = np.eye(10)[y.numpy()]
    ls = lambda lam: onehot * lam + (1 - onehot) * (1 - lam) / 9  # noqa: E731
    expected = w[:, None] * ls(1.0) + (1 - w[:, None]) * ls(0.1)
    np.testing.assert_allclose(batch.targets.numpy(), expected, atol=1e-6)


def test_st_trains_on_clean_points():
    _, logits_fn, x, y = _setup()
    batch = methods.get("st").training_batch(logits_fn, x, y, 10, SEED)
    np.testing.assert_array_equal(batch.inputs.numpy(), x.numpy())


def test_defaults_are_the_papers():
    assert methods.METHODS["rat"].hyperparameters() == dict(
        epsilon=8 / 255, step_size=2 / 255, num_steps=10, num_samples=2, max_scale=2.0,
        scale_step=0.1, beta_max=1.0, beta_min=0.1, end_point_fraction=0.0, smooth_from_scale=0.0)
    assert methods.get("rat").region.scales == region.scale_grid(2.0, 0.1)
    assert methods.get("avmixup").get_config() == dict(
        epsilon=8 / 255, step_size=2 / 255, num_steps=10, gamma=2.0, lambda1=1.0, lambda2=0.1)
    assert methods.get("trades").get_config() == dict(epsilon=0.031, step_size=0.007, num_steps=10, beta=6.0)
    assert methods.get("adt").get_config() == dict(epsilon=8 / 255, num_steps=7, num_samples=5,
                                                   step_size=0.3, entropy_weight=0.01)
    assert set(methods.METHOD_NAMES) == {"st", "sat", "sat_ars", "rat", "avmixup", "trades", "adt"}


@pytest.mark.parametrize("name, kwargs, match", [
    ("pgd", {}, "unknown method"),
    ("st", {"epsilon": 0.1}, "does not take epsilon"),
    ("rat", {"beta_min": 0.5, "beta_max": 0.4}, "beta_min"),
    ("rat", {"beta_max": 1.5}, "beta_max"),
    ("rat", {"epsilon": -1.0}, "epsilon"),
    ("rat", {"num_samples": 0}, "num_samples"),
    ("rat", {"max_scale": 2.0, "scale_step": 0.3}, "multiple"),
    ("sat", {"num_steps": -2}, "num_steps"),
    ("avmixup", {"gamma": 0.0}, "gamma"),
    ("trades", {"beta": -1.0}, "beta"),
    ("adt", {"num_samples": 0}, "num_samples"),
    ("adt", {"step_size": 0.0}, "step_size"),
])
def test_bad_hyperparameters_raise(name, kwargs, match):
    with pytest.raises(ValueError, match=match):
        methods.get(name, **kwargs)


def test_trades_loss_equals_a_direct_recomputation():
    model, logits_fn, x, y = _setup()
    trades = methods.get("trades", epsilon=0.1, step_size=0.02, num_steps=4, beta=6.0)
    batch = trades.training_batch(logits_fn, x, y, 10, SEED)
    # reference: the official loop, written out in eager Python
    p_clean = tf.nn.softmax(model(x, training=False))
    noise = methods.randomness.normal(methods.split_seed(SEED)[0], tf.shape(x))
    x_adv = x + 0.001 * noise
    for _ in range(4):
        with tf.GradientTape() as tape:
            tape.watch(x_adv)
            log_q = tf.nn.log_softmax(model(x_adv, training=False))
            kl = tf.reduce_sum(p_clean * (tf.math.log(p_clean) - log_q))
        x_adv = x_adv + 0.02 * tf.sign(tape.gradient(kl, x_adv))
        x_adv = tf.clip_by_value(tf.clip_by_value(x_adv, x - 0.1, x + 0.1), 0.0, 1.0)
    np.testing.assert_allclose(batch.inputs[1].numpy(), x_adv.numpy(), atol=1e-6)
    np.testing.assert_array_equal(batch.inputs[0].numpy(), x.numpy())
    clean, adv = model(x, training=True).numpy(), model(x_adv, training=True).numpy()
    log_p, log_q = (z - np.log(np.exp(z).sum(-1, keepdims=True)) for z in (clean, adv))
    onehot = np.eye(10)[y.numpy()]
    expected = np.mean(-np.sum(onehot * log_p, -1)) + 6.0 * np.mean(np.sum(np.exp(log_p) * (log_p - log_q), -1))
    assert _loss(trades, model, batch) == pytest.approx(expected, rel=1e-5)


def test_trades_gradient_reaches_the_clean_branch():
    model, logits_fn, x, y = _setup()
    trades = methods.get("trades", epsilon=0.1, step_size=0.02, num_steps=2)
    batch = trades.training_batch(logits_fn, x, y, 10, SEED)
    clean_input = tf.identity(batch.inputs[0])
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(clean_input)
        clean, adv = trades.forward(model, (clean_input, batch.inputs[1]))
        full = trades.loss()(batch.targets, (clean, adv))
        ce_only = keras.losses.CategoricalCrossentropy(from_logits=True)(batch.targets, clean)
    g_full, g_ce = tape.gradient(full, clean_input), tape.gradient(ce_only, clean_input)
    assert np.abs(g_full.numpy() - g_ce.numpy()).max() > 1e-4  # the KL term's gradient flows via x
    assert tape.gradient(full, model.trainable_weights)[0] is not None


def test_adt_update_accumulates_as_specified():
    """Reference: T steps, k samples each, G never reset, param += lr * G / (|G| + 1e-8)."""
    from rat_tf.attacks import adt
    model, _, x, y = _setup(n=8)
    # Scaled logits keep |G| far above the update's 1e-8, where sign-like steps are well posed.
    logits_fn = lambda z: 100.0 * model(z, training=False)  # noqa: E731
    config = adt.ADTConfig(epsilon=0.1, num_steps=3, num_samples=2, step_size=0.3, entropy_weight=0.01)
    seed = tf.constant([1, 1])
    mean, var = tf.zeros_like(x), tf.zeros_like(x)
    g_mean, g_var = tf.zeros_like(x), tf.zeros_like(x)
    official_grads = []
    for t in range(3):
        xi = adt.step_noise(seed, t, 2, x)
        with tf.GradientTape() as tape:  # the k samples in one batched pass
            tape.watch([mean, var])
            std = tf.nn.softplus(var)[None]
            u = mean[None] + std * xi
            x_adv = tf.clip_by_value(x[None] + 0.1 * tf.tanh(u), 0.0, 1.0)
            logits = logits_fn(tf.reshape(x_adv, (-1, 8, 8, 1)))
            ce = tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(
                tf.concat([y, y], 0), logits)) / 8.0  # sum over samples of the batch-mean CE
            entropy = 2 * tf.reduce_mean(xi ** 2 / 2 + tf.math.log(std + 1e-8)
                                         + adt.log_one_minus_tanh_squared(u))
            objective = ce + 0.01 * entropy
        d_mean, d_var = tape.gradient(objective, [mean, var])
        if t == 0:  # the official code: one sample at a time, log(1 - a^2 + 1e-8), grads summed
            official = [tf.zeros_like(x), tf.zeros_like(x)]
            for k in range(2):
                with tf.GradientTape() as tape:
                    tape.watch([mean, var])
                    std1 = tf.nn.softplus(var)
                    a = tf.tanh(mean + std1 * xi[k])
                    loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
                        y, logits_fn(tf.clip_by_value(x + 0.1 * a, 0.0, 1.0))))
                    loss += 0.01 * tf.reduce_mean(xi[k] ** 2 / 2 + tf.math.log(std1 + 1e-8)
                                                  + tf.math.log(1 - a ** 2 + 1e-8))
                official = [o + g for o, g in zip(official, tape.gradient(loss, [mean, var]))]
            official_grads = [official, [d_mean, d_var]]
        g_mean, g_var = g_mean + d_mean, g_var + d_var  # accumulated, never reset
        mean = mean + 0.3 * g_mean / (tf.abs(g_mean) + 1e-8)
        var = var + 0.3 * g_var / (tf.abs(g_var) + 1e-8)
    for o, b in zip(*official_grads):  # batching the k samples changes no gradient
        np.testing.assert_allclose(b.numpy(), o.numpy(), atol=1e-7 + 1e-4 * np.abs(o.numpy()).max())
    fitted = adt.fit_distribution(logits_fn, x, y, config, seed)
    np.testing.assert_allclose(fitted.mean.numpy(), mean.numpy(), atol=1e-4)
    np.testing.assert_allclose(fitted.var.numpy(), var.numpy(), atol=1e-4)
    # the accumulated update moves by at most lr per step, and the sample stays in the ball
    assert np.abs(fitted.mean.numpy()).max() <= 0.9 + 1e-5
    method = methods.get("adt", epsilon=0.1, num_steps=3, num_samples=2)
    batch = method.training_batch(logits_fn, x, y, 10, seed)
    assert np.abs(batch.inputs.numpy() - x.numpy()).max() <= 0.1 + 1e-6
    np.testing.assert_array_equal(batch.targets.numpy(), np.eye(10)[y.numpy()])


def test_adt_log_term_is_stable_where_tanh_saturates():
    from rat_tf.attacks import adt
    u = tf.constant([0.0, 0.5, -3.0, 20.0, -50.0])
    with tf.GradientTape() as tape:
        tape.watch(u)
        value = adt.log_one_minus_tanh_squared(u)
    reference = np.log(1 - np.tanh(np.float64([0.0, 0.5, -3.0])) ** 2)
    np.testing.assert_allclose(value.numpy()[:3], reference, rtol=1e-5)
    assert np.all(np.isfinite(value.numpy())) and np.all(np.isfinite(tape.gradient(value, u).numpy()))


def test_end_point_fraction_and_smooth_from_scale_exact_batches():
    model, logits_fn, x, y = _setup()
    args = dict(epsilon=0.1, step_size=0.025, num_steps=3)
    paper = methods.get("rat", **args).training_batch(logits_fn, x, y, 10, SEED)
    half = methods.get("rat", end_point_fraction=0.5, **args).training_batch(logits_fn, x, y, 10, SEED)
    end = pgd(logits_fn, x, y, methods.get("sat", **args).attack, methods.split_seed(SEED)[0]).end.numpy()
    # rows 0..n-1 (sample slot 0) become x'_e with hard labels; slot 1 is the paper's RAT sample
    np.testing.assert_array_equal(half.inputs.numpy()[:16], end)
    np.testing.assert_array_equal(half.targets.numpy()[:16], np.eye(10)[y.numpy()])
    np.testing.assert_array_equal(half.inputs.numpy()[16:], paper.inputs.numpy()[16:])
    np.testing.assert_array_equal(half.targets.numpy()[16:], paper.targets.numpy()[16:])
    quarter = methods.get("rat", end_point_fraction=0.25, **args).training_batch(logits_fn, x, y, 10, SEED)
    np.testing.assert_array_equal(quarter.inputs.numpy()[:8], end[:8])
    np.testing.assert_array_equal(quarter.inputs.numpy()[8:], paper.inputs.numpy()[8:])
    # end_point_fraction = 1 with m = 1 is SAT, exactly
    sat = methods.get("sat", **args).training_batch(logits_fn, x, y, 10, SEED)
    full = methods.get("rat", num_samples=1, end_point_fraction=1.0, **args).training_batch(logits_fn, x, y, 10, SEED)
    np.testing.assert_array_equal(full.inputs.numpy(), sat.inputs.numpy())
    np.testing.assert_array_equal(full.targets.numpy(), sat.targets.numpy())
    # smooth_from_scale: one-hot up to s0 = 1, then linear to beta_min at S = 2
    smooth = methods.get("rat", smooth_from_scale=1.0, **args)
    s = tf.constant([0.0, 0.5, 1.0, 1.5, 2.0])
    beta = smooth.soft_labels(tf.zeros(5, tf.int32), 10, s).numpy()[:, 0]
    np.testing.assert_allclose(beta, [1.0, 1.0, 1.0, 0.55, 0.1], atol=1e-6)
    with pytest.raises(ValueError, match="smooth_from_scale"):
        methods.get("rat", smooth_from_scale=2.0)
    with pytest.raises(ValueError, match="end_point_fraction"):
        methods.get("rat", end_point_fraction=1.5)
