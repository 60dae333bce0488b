"""Tests for rat_tf.architectures: the registry, reference parameter counts, the logits contract,
in-model normalisation and a SavedModel round trip."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from rat_tf import architectures


@pytest.fixture(autouse=True)
def _clear_session():
    keras.backend.clear_session()
    yield
    keras.backend.clear_session()


def _trainable_params(model: keras.Model) -> int:
    return int(sum(np.prod(v.shape) for v in model.trainable_weights))


def _images(shape, batch=4, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(size=(batch, *shape)).astype("float32")


# --- reference parameter counts --------------------------------------------------------------

def test_preact_resnet18_matches_pytorch_parameter_count():
    model = architectures.build("preact_resnet18", (32, 32, 3), 10)
    assert model.name == "preact_resnet18"
    assert _trainable_params(model) == 11_171_146
    # BN moving statistics exist but are not trainable.
    assert model.non_trainable_weights
    assert all("moving" in v.path for v in model.non_trainable_weights)


def test_wrn_34_10_matches_trades_parameter_count():
    model = architectures.build("wrn-34-10", (32, 32, 3), 10)
    assert model.name == "wrn_34_10"
    assert _trainable_params(model) == 46_160_474


def test_wide_resnet_alias_is_wrn_34_10():
    assert architectures.parse("wide_resnet") == architectures.parse("wrn-34-10")
    assert architectures.parse("WRN_34_10").name == "wrn-34-10"
    assert "wrn-34-10" in architectures.ARCHITECTURES


# --- shapes and the logits contract -------------------------------------------------------------

@pytest.mark.parametrize("shape", [(8, 8, 1), (28, 28, 1), (32, 32, 3)])
def test_small_cnn_output_shape(shape):
    model = architectures.build("small_cnn", shape, 10)
    assert model.name == "small_cnn"
    out = model(_images(shape), training=False)
    assert tuple(out.shape) == (4, 10)
    assert out.dtype == tf.float32
    assert not any(isinstance(l, keras.layers.BatchNormalization) for l in model.layers)
    assert not any(isinstance(l, keras.layers.Dropout) for l in model.layers)


def test_small_cnn_outputs_are_logits_not_probabilities():
    model = architectures.build("small_cnn", (8, 8, 1), 10)
    x = _images((8, 8, 1), batch=8)
    # Scale the logits layer up so the outputs are clearly not a distribution.
    logits_layer = model.get_layer("logits")
    kernel, bias = logits_layer.get_weights()
    logits_layer.set_weights([kernel * 10.0, bias - 1.0])
    out = np.asarray(model(x, training=False))
    assert not np.allclose(out.sum(axis=-1), 1.0, atol=1e-3)
    assert (out < 0).any()
    assert model.layers[-1].get_config().get("activation") == "linear"


def test_wrn_16_2_forward_pass():
    model = architectures.build("wrn-16-2", (32, 32, 3), 10)
    assert model.name == "wrn_16_2"
    out = model(_images((32, 32, 3), batch=2), training=False)
    assert tuple(out.shape) == (2, 10)
    assert model.layers[-1].get_config().get("activation") == "linear"


def test_preact_resnet_works_on_larger_inputs_via_global_pooling():
    model = architectures.build("preact_resnet18", (64, 64, 3), 5)
    out = model(_images((64, 64, 3), batch=1), training=False)
    assert tuple(out.shape) == (1, 5)


def test_batchnorm_settings_and_synchronized_flag():
    model = architectures.build("wrn-10-1", (16, 16, 3), 4, synchronized_bn=True)
    bns = [l for l in model.layers if isinstance(l, keras.layers.BatchNormalization)]
    assert bns
    for bn in bns:
        assert bn.momentum == pytest.approx(0.9)
        assert bn.epsilon == pytest.approx(1e-5)
        assert bn.synchronized
    model = architectures.build("preact_resnet18", (8, 8, 3), 4)
    assert not any(l.synchronized for l in model.layers
                   if isinstance(l, keras.layers.BatchNormalization))
    convs = [l for l in model.layers if isinstance(l, keras.layers.Conv2D)]
    assert convs and not any(c.use_bias for c in convs)


# --- input normalisation inside the model -----------------------------------------------------

def test_normalisation_inside_model_equals_normalising_outside():
    mean, std = (0.49, 0.48, 0.45), (0.25, 0.24, 0.26)
    inside = architectures.build("wrn-10-1", (16, 16, 3), 10, mean=mean, std=std)
    outside = architectures.build("wrn-10-1", (16, 16, 3), 10)
    assert isinstance(inside.layers[1], keras.layers.Normalization)
    assert not any(isinstance(l, keras.layers.Normalization) for l in outside.layers)
    # The normalisation layer has no weights, so the weight lists line up.
    outside.set_weights(inside.get_weights())
    x = _images((16, 16, 3))
    x_norm = (x - np.array(mean, "float32")) / np.array(std, "float32")
    np.testing.assert_allclose(
        inside(x, training=False), outside(x_norm, training=False), rtol=1e-5, atol=1e-5)


def test_normalisation_with_only_std_or_only_mean():
    x = _images((8, 8, 1))
    only_std = architectures.build("small_cnn", (8, 8, 1), 3, std=[0.5])
    only_mean = architectures.build("small_cnn", (8, 8, 1), 3, mean=[0.5])
    np.testing.assert_allclose(only_std.layers[1](x), x / 0.5, rtol=1e-6)
    np.testing.assert_allclose(only_mean.layers[1](x), x - 0.5, atol=1e-6)


@pytest.mark.parametrize("kwargs, match", [
    ({"mean": (0.5, 0.5)}, "mean"),
    ({"std": (0.5, 0.0, 0.5)}, "std"),
    ({"std": "abc"}, "std"),
])
def test_bad_mean_or_std_raises(kwargs, match):
    with pytest.raises(ValueError, match=match):
        architectures.build("small_cnn", (8, 8, 3), 10, **kwargs)


# --- validation -------------------------------------------------------------------------------

def test_unknown_name_raises_helpful_error():
    with pytest.raises(ValueError) as info:
        architectures.build("resnet50", (32, 32, 3), 10)
    message = str(info.value)
    assert "resnet50" in message and "\n" not in message
    for allowed in ("small_cnn", "preact_resnet18", "wrn-34-10", "wrn-D-K"):
        assert allowed in message


def test_bad_wrn_depth_raises():
    with pytest.raises(ValueError, match=r"wrn-33-10.*depth.*6n \+ 4"):
        architectures.parse("wrn-33-10")
    with pytest.raises(ValueError, match="widen factor"):
        architectures.parse("wrn-28-0")


@pytest.mark.parametrize("num_classes", [1, 0, 2.5, True])
def test_bad_num_classes_raises(num_classes):
    with pytest.raises(ValueError, match="num_classes"):
        architectures.build("small_cnn", (8, 8, 1), num_classes)


@pytest.mark.parametrize("shape", [(8, 8), (8, 8, 0), (8, -8, 1), None, (8.5, 8, 1),
                                   (2, 2, 1)])
def test_bad_input_shape_raises(shape):
    with pytest.raises(ValueError, match="input_shape|at least 4x4"):
        architectures.build("small_cnn", shape, 10)


# --- export -----------------------------------------------------------------------------------

def test_small_cnn_saved_model_round_trip(tmp_path):
    model = architectures.build("small_cnn", (8, 8, 1), 10, mean=[0.3], std=[0.2])
    path = str(tmp_path / "small_cnn")
    model.export(path)
    restored = tf.saved_model.load(path)
    # A batch size different from any traced one.
    for batch in (3, 5):
        x = _images((8, 8, 1), batch=batch, seed=batch)
        np.testing.assert_allclose(
            restored.serve(tf.constant(x)), model(x, training=False), rtol=1e-5, atol=1e-5)
