"""Mixed precision: PGD finds the same adversarial labels, training and loss scaling work.

mixed_bfloat16 runs at a usable speed on this CPU; mixed_float16 runs too, but TensorFlow's
float16 CPU kernels are slow (about 0.05 s per image for an eager PGD-10 on the small CNN), so
its attack test uses 40 images in a tf.function.
"""

import os

from absl import flags
import keras
import numpy as np
import pytest
import tensorflow as tf

import flags as rat_flags
import rat_tf
from rat_tf import architectures, training
from rat_tf import export as export_lib
from rat_tf.attacks import PGDConfig, pgd
from rat_tf.training import precision

from helpers import digits

ATTACK = PGDConfig(epsilon=0.1, step_size=0.025, num_steps=10)


@pytest.fixture(scope="module")
def trained_float32():
    """The small CNN trained for a few epochs on digits (about 90% clean accuracy)."""
    x, y, _, _ = digits()
    keras.utils.set_random_seed(0)
    model = architectures.build("small_cnn", (8, 8, 1), 10)
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, batch_size=64, epochs=3, verbose=0)
    return model


def adversarial_labels(model, x, y):
    attack = tf.function(lambda a, b: pgd(lambda z: model(z, training=False), a, b, ATTACK,
                                          tf.constant([1, 2])).end)
    adversarial = attack(tf.constant(x), tf.constant(y))
    return adversarial, np.argmax(model(adversarial, training=False).numpy(), axis=-1)


@pytest.mark.parametrize("policy, num_images", [("mixed_bfloat16", 200), ("mixed_float16", 40)])
def test_pgd_finds_the_same_adversarial_labels_as_float32(trained_float32, policy, num_images):
    _, _, x, y = digits()
    x, y = x[:num_images], y[:num_images]
    with precision.policy_scope(policy):
        low = architectures.build("small_cnn", (8, 8, 1), 10)
    assert keras.mixed_precision.global_policy().name == "float32"  # restored
    low.set_weights(trained_float32.get_weights())
    assert low.get_layer("conv1").compute_dtype == policy.split("_")[1]
    assert low(x[:2]).dtype == tf.float32  # float32 logits

    reference, want = adversarial_labels(trained_float32, x, y)
    adversarial, got = adversarial_labels(low, x, y)
    # The attack works (far below the clean accuracy) ...
    clean = np.argmax(trained_float32(x).numpy(), axis=-1)
    assert np.mean(want == y) < np.mean(clean == y) - 0.3
    # ... and lands on the same labels in low precision, in the same ball and box.
    assert np.mean(got == want) >= 0.9
    assert adversarial.dtype == tf.float32
    assert float(tf.reduce_max(tf.abs(adversarial - x))) <= ATTACK.epsilon + 1e-6
    assert float(tf.reduce_min(adversarial)) >= 0.0 and float(tf.reduce_max(adversarial)) <= 1.0


def test_training_loss_is_float32_under_mixed_precision():
    x, y, _, _ = digits()
    with precision.policy_scope("mixed_bfloat16"):
        model = rat_tf.RATModel(architectures.build("small_cnn", (8, 8, 1), 10), "rat",
                                epsilon=0.1, step_size=0.025, num_steps=2)
    logits = model(x[:4])
    targets = tf.one_hot(y[:4], 10)
    assert model.compute_dtype == "bfloat16" and logits.dtype == tf.float32
    assert model.compute_loss(y=targets, y_pred=logits).dtype == tf.float32


def test_loss_scale_optimizer_counts_a_skipped_step():
    weights = keras.Variable([1.0, 2.0])
    optimizer = precision.loss_scaled(keras.optimizers.SGD(0.5), "mixed_float16")
    assert isinstance(optimizer, precision.LossScaleOptimizer)
    optimizer.build([weights])
    scale = float(optimizer.dynamic_scale.numpy())
    optimizer.apply([tf.constant([np.inf, 1.0])], [weights])
    # Skipped (weights unchanged, scale halved), but counted: iterations = batches seen.
    np.testing.assert_array_equal(weights.numpy(), [1.0, 2.0])
    assert float(optimizer.dynamic_scale.numpy()) == scale / 2
    assert int(optimizer.iterations.numpy()) == 1
    optimizer.apply([tf.constant([1.0, 1.0]) * scale / 2], [weights])
    np.testing.assert_allclose(weights.numpy(), [0.5, 1.5])
    assert int(optimizer.iterations.numpy()) == 2
    # Keras' own LossScaleOptimizer does not count it (hence the subclass).
    plain = keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(0.5))
    plain.apply([tf.constant([np.inf, 1.0])], [keras.Variable([1.0, 2.0])])
    assert int(plain.iterations.numpy()) == 0
    # Other precisions keep the optimizer as it is.
    sgd = keras.optimizers.SGD(0.1)
    assert precision.loss_scaled(sgd, "mixed_bfloat16") is sgd
    with pytest.raises(ValueError, match="allowed: float32, mixed_float16, mixed_bfloat16"):
        precision.loss_scaled(sgd, "float64")


def make_config(*argv):
    flag_values = flags.FlagValues()
    rat_flags.define_flags(flag_values)
    flag_values(["train_main.py", "--max_train_examples=64", "--max_test_examples=16",
                 "--batch_size=16", "--num_steps=1", "--eval_pgd_steps=0", "--validation_freq=0",
                 *argv])
    return rat_flags.config_from_flags(flag_values)


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_train_main_trains_resumes_and_exports_in_mixed_precision(tmp_path, policy):
    model_dir = tmp_path / "run"
    result = training.train(make_config(f"--precision={policy}", "--train_steps=2",
                                        f"--model_dir={model_dir}"))
    assert keras.mixed_precision.global_policy().name == "float32"  # not leaked
    assert result.trained_steps == 2
    assert result.model.classifier.get_layer("conv1").compute_dtype == policy.split("_")[1]
    assert isinstance(result.model.optimizer, precision.LossScaleOptimizer) == (
        policy == "mixed_float16")
    assert np.isfinite(result.metrics["clean_loss"])
    serve, metadata = export_lib.load_exported(result.export_path)
    assert metadata["config"]["model"]["precision"] == policy
    x = result.data.x_test[:4].astype(np.float32)
    logits = serve(x)
    assert logits.dtype == tf.float32
    # Equal up to low-precision rounding (the SavedModel's graph may fuse ops differently).
    np.testing.assert_allclose(logits.numpy(), result.model.classifier(x).numpy(), rtol=0.02,
                               atol=0.1)

    # Resuming restores the (loss-scaled) optimizer and continues at step 2.
    longer = training.train(make_config(f"--precision={policy}", "--train_steps=3",
                                        f"--model_dir={model_dir}"))
    assert longer.trained_steps == 3
    # The precision belongs to the checkpoint.
    with pytest.raises(Exception, match=r"--precision \('%s' there, 'float32' now\)" % policy):
        training.prepare(make_config("--train_steps=3", f"--model_dir={model_dir}"))
    assert os.path.exists(model_dir / "backup" / "latest.weights.h5")
