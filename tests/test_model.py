import keras
import numpy as np
import pytest
import tensorflow as tf

import rat_tf
from rat_tf import methods

from helpers import digits, tiny_cnn

RAT_ARGS = dict(epsilon=0.1, step_size=0.025, num_steps=3, num_samples=2, max_scale=2.0,
                scale_step=0.1, beta_max=1.0, beta_min=0.1)


def _dataset(n=256, batch=64):
    x, y, _, _ = digits()
    return tf.data.Dataset.from_tensor_slices((x[:n], y[:n])).batch(batch)


def _train(strategy=None, method="rat", steps_epochs=2, **kwargs):
    strategy = strategy or tf.distribute.get_strategy()
    with strategy.scope():
        keras.utils.set_random_seed(0)
        model = rat_tf.RATModel(tiny_cnn(seed=0), method, seed=3, weight_decay=1e-3, **kwargs)
        model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9), metrics=["accuracy"])
    history = model.fit(_dataset(), epochs=steps_epochs, verbose=0)
    return model, history.history


def test_get_config_is_exact_and_round_trips():
    model = rat_tf.RATModel(tiny_cnn(), seed=5, weight_decay=2e-4, eval_pgd_steps=7, **RAT_ARGS)
    config = model.get_config()
    classifier = config.pop("classifier")
    assert config == dict(name="rat_model", method="rat", seed=5, weight_decay=2e-4, eval_pgd_steps=7,
                          eval_epsilon=None, eval_step_size=None, num_classes=None, epsilon_warmup=0,
                          awp_gamma=0.0, awp_warmup=0,
                          end_point_fraction=0.0, smooth_from_scale=0.0, **RAT_ARGS)
    clone = rat_tf.RATModel.from_config(dict(config, classifier=classifier))
    assert clone.get_config() == model.get_config()
    assert isinstance(clone.method, methods.RAT) and clone.method.region == model.method.region


def test_fit_trains_and_logs_the_expected_metrics():
    x, y, xt, yt = digits()
    keras.utils.set_random_seed(0)
    model = rat_tf.RATModel(tiny_cnn(), eval_pgd_steps=5, **RAT_ARGS)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), metrics=["accuracy"])
    history = model.fit(x, y, batch_size=64, epochs=4, validation_data=(xt, yt), verbose=0).history
    assert set(history) == {"loss", "accuracy", "val_loss", "val_accuracy", "val_pgd_accuracy"}
    assert history["loss"][-1] < history["loss"][0]
    assert history["val_accuracy"][-1] > 0.7
    assert history["val_pgd_accuracy"][-1] < history["val_accuracy"][-1]
    # evaluation matches a direct computation of clean accuracy
    results = model.evaluate(xt, yt, verbose=0, return_dict=True)
    clean = np.mean(np.argmax(model.classifier.predict(xt, verbose=0), -1) == yt)
    assert results["accuracy"] == pytest.approx(clean, abs=1e-6)


def test_loss_includes_coupled_weight_decay_exactly():
    model = rat_tf.RATModel(tiny_cnn(), "st", weight_decay=0.01)
    x, y, _, _ = digits()
    logits = model(x[:8])
    targets = tf.one_hot(y[:8], 10)
    ce = keras.losses.CategoricalCrossentropy(from_logits=True)(targets, logits)
    l2 = sum(float(np.sum(w.numpy() ** 2)) for w in model.classifier.trainable_weights)
    assert float(model.compute_loss(y=targets, y_pred=logits)) == pytest.approx(float(ce) + 0.005 * l2, rel=1e-5)


def test_two_trainings_from_one_seed_end_with_identical_weights():
    a, _ = _train(steps_epochs=1)
    b, _ = _train(steps_epochs=1)
    for wa, wb in zip(a.classifier.weights, b.classifier.weights):
        np.testing.assert_array_equal(wa.numpy(), wb.numpy())


@pytest.mark.parametrize("method", ["rat", "sat"])
def test_one_and_two_replicas_agree(method):
    kwargs = {k: v for k, v in RAT_ARGS.items() if k in methods.METHODS[method].hyperparameters()}
    single, h1 = _train(method=method, **kwargs)
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert mirrored.num_replicas_in_sync == 2
    double, h2 = _train(mirrored, method=method, **kwargs)
    np.testing.assert_allclose(h1["loss"], h2["loss"], rtol=1e-5)
    np.testing.assert_allclose(h1["accuracy"], h2["accuracy"], atol=1e-6)
    for w1, w2 in zip(single.classifier.weights, double.classifier.weights):
        np.testing.assert_allclose(w1.numpy(), w2.numpy(), rtol=1e-4, atol=1e-5)


def test_replicas_draw_different_random_numbers():
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])

    def draw():
        return rat_tf.randomness.uniform(tf.constant([0, 1]), [2, 3])

    values = mirrored.experimental_local_results(mirrored.run(draw))
    assert not np.array_equal(values[0].numpy(), values[1].numpy())
    whole = rat_tf.randomness.uniform(tf.constant([0, 1]), [4, 3]).numpy()
    np.testing.assert_array_equal(np.concatenate([v.numpy() for v in values]), whole)


def test_export_serves_logits():
    model = rat_tf.RATModel(tiny_cnn(), **RAT_ARGS)
    x, _, _, _ = digits()
    expected = model(x[:5]).numpy()
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        model.export(tmp + "/sm", verbose=False)
        loaded = tf.saved_model.load(tmp + "/sm")  # keep a reference: it owns the variables
        served = loaded.serve(tf.constant(x[:5]))
    np.testing.assert_allclose(served.numpy(), expected, rtol=1e-5, atol=1e-5)


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="beta_min"):
        rat_tf.RATModel(tiny_cnn(), beta_min=0.9, beta_max=0.5)
    with pytest.raises(ValueError, match="epsilon"):
        rat_tf.RATModel(tiny_cnn(), epsilon=-1)
    with pytest.raises(ValueError, match="weight_decay"):
        rat_tf.RATModel(tiny_cnn(), weight_decay=-1)
    with pytest.raises(ValueError, match="eval_epsilon"):
        rat_tf.RATModel(tiny_cnn(), "st", eval_pgd_steps=3)
    with pytest.raises(ValueError, match="classifier"):
        rat_tf.RATModel("not a model")
    with pytest.raises(ValueError, match="loss"):
        rat_tf.RATModel(tiny_cnn()).compile(optimizer="sgd", loss="mse")


def test_epsilon_warmup_ramps_the_training_attack():
    """Step t attacks with eps * min(1, t / warmup): step 0 trains on clean points."""
    x, y, _, _ = digits()
    model = rat_tf.RATModel(tiny_cnn(), "sat", epsilon=0.1, step_size=0.025, num_steps=3, epsilon_warmup=4)
    model.compile(optimizer=keras.optimizers.SGD(0.0))
    model.optimizer.build(model.trainable_variables)
    xs, ys = tf.constant(x[:8]), tf.constant(y[:8])
    for step, scale in ((0, 0.0), (2, 0.5), (4, 1.0), (9, 1.0)):
        model.optimizer.iterations.assign(step)
        assert float(model._epsilon_scale()) == scale
        batch = model.method.training_batch(model._logits, xs, ys, 10, tf.constant([0, 0]),
                                            epsilon_scale=model._epsilon_scale())
        distance = float(tf.reduce_max(tf.abs(batch.inputs - xs)))
        assert distance <= 0.1 * scale + 1e-6 and (scale == 0 or distance > 0.1 * scale - 1e-3)
    with pytest.raises(ValueError, match="epsilon_warmup"):
        rat_tf.RATModel(tiny_cnn(), epsilon_warmup=-1)
