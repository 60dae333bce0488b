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
        scale_step=0.1, beta_max=1.0, beta_min=0.1)
    assert methods.get("rat").region.scales == region.scale_grid(2.0, 0.1)
    assert methods.get("avmixup").get_config() == dict(
        epsilon=8 / 255, step_size=2 / 255, num_steps=10, gamma=2.0, lambda1=1.0, lambda2=0.1)
    assert set(methods.METHOD_NAMES) >= {"st", "sat", "sat_ars", "rat", "avmixup"}


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
])
def test_bad_hyperparameters_raise(name, kwargs, match):
    with pytest.raises(ValueError, match=match):
        methods.get(name, **kwargs)
