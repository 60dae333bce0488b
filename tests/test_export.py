"""SavedModel export: round trip, any batch size, metadata, atomic replacement, clear errors."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from rat_tf import export as export_lib


def make_classifier(seed, input_shape=(8, 8, 1), num_classes=10):
    """A tiny functional classifier with in-model normalisation, like the real ones."""
    init = keras.initializers.GlorotUniform(seed=seed)
    inputs = keras.Input(input_shape)
    x = keras.layers.Normalization(axis=-1, mean=[0.3], variance=[0.16])(inputs)
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", kernel_initializer=init)(x)
    x = keras.layers.Flatten()(x)
    logits = keras.layers.Dense(num_classes, kernel_initializer=init)(x)
    return keras.Model(inputs, logits)


def images(n, seed=0):
    return np.random.default_rng(seed).uniform(size=(n, 8, 8, 1)).astype(np.float32)


def leftovers(parent):
    return [name for name in os.listdir(parent) if name.startswith(".")]


def test_round_trip_any_batch_size_and_metadata(tmp_path):
    classifier = make_classifier(0)
    metadata = {"dataset": "digits", "class_names": [str(i) for i in range(10)],
                "input_shape": (8, 8, 1), "epsilon": np.float32(0.1), "steps": np.int64(3)}
    target = str(tmp_path / "export")
    path = export_lib.export_classifier(classifier, target, metadata)
    assert path == os.path.abspath(target)
    assert leftovers(tmp_path) == []

    loaded = tf.saved_model.load(path)
    for batch in (1, 5, 64):
        x = images(batch, seed=batch)
        expected = classifier(x, training=False).numpy()
        np.testing.assert_allclose(loaded.serve(tf.constant(x)).numpy(), expected,
                                   rtol=1e-5, atol=1e-5)
        outputs = loaded.signatures["serving_default"](images=tf.constant(x))
        (output,) = outputs.values()
        np.testing.assert_allclose(output.numpy(), expected, rtol=1e-5, atol=1e-5)
    assert set(loaded.signatures) >= {"serve", "serving_default"}

    serve, meta = export_lib.load_exported(path)
    x = images(7)
    np.testing.assert_allclose(serve(x).numpy(), classifier(x, training=False).numpy(),
                               rtol=1e-5, atol=1e-5)
    assert meta == {"dataset": "digits", "class_names": [str(i) for i in range(10)],
                    "input_shape": [8, 8, 1], "epsilon": pytest.approx(0.1), "steps": 3}
    with open(os.path.join(path, export_lib.METADATA_FILENAME)) as f:
        assert json.load(f)["dataset"] == "digits"


def test_replaces_an_earlier_export(tmp_path):
    target = str(tmp_path / "export")
    export_lib.export_classifier(make_classifier(0), target, {"version": 1})
    new = make_classifier(1)
    export_lib.export_classifier(new, target, {"version": 2})
    serve, meta = export_lib.load_exported(target)
    assert meta["version"] == 2
    x = images(3)
    np.testing.assert_allclose(serve(x).numpy(), new(x).numpy(), rtol=1e-5, atol=1e-5)
    assert leftovers(tmp_path) == []


def _failing_write_out(self, filepath, options=None, verbose=True):
    # A crash half-way through writing the SavedModel.
    with open(os.path.join(filepath, "saved_model.pb"), "wb") as f:
        f.write(b"partial")
    raise RuntimeError("simulated crash mid-export")


def test_crash_mid_export_keeps_the_old_model(tmp_path, monkeypatch):
    target = str(tmp_path / "export")
    old = make_classifier(0)
    export_lib.export_classifier(old, target, {"version": 1})

    archive_class = type(keras.export.ExportArchive())
    monkeypatch.setattr(archive_class, "write_out", _failing_write_out)
    with pytest.raises(RuntimeError, match="simulated crash"):
        export_lib.export_classifier(make_classifier(1), target, {"version": 2})
    monkeypatch.undo()

    serve, meta = export_lib.load_exported(target)
    assert meta["version"] == 1
    x = images(4)
    np.testing.assert_allclose(serve(x).numpy(), old(x).numpy(), rtol=1e-5, atol=1e-5)
    assert leftovers(tmp_path) == []


def test_crash_mid_first_export_leaves_no_target(tmp_path, monkeypatch):
    target = str(tmp_path / "export")
    monkeypatch.setattr(type(keras.export.ExportArchive()), "write_out", _failing_write_out)
    with pytest.raises(RuntimeError):
        export_lib.export_classifier(make_classifier(0), target, {})
    assert not os.path.exists(target)
    assert leftovers(tmp_path) == []


def test_failed_swap_puts_the_old_model_back(tmp_path, monkeypatch):
    target = str(tmp_path / "export")
    export_lib.export_classifier(make_classifier(0), target, {"version": 1})
    real_rename = os.rename

    def rename(src, dst):
        if os.path.basename(src).startswith(".export.tmp-"):
            raise OSError("simulated failure while moving the new export into place")
        return real_rename(src, dst)

    monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(OSError, match="simulated"):
        export_lib.export_classifier(make_classifier(1), target, {"version": 2})
    monkeypatch.undo()
    assert export_lib.read_metadata(target)["version"] == 1
    assert leftovers(tmp_path) == []


def test_refuses_to_replace_other_directories(tmp_path):
    target = tmp_path / "results"
    target.mkdir()
    (target / "notes.txt").write_text("precious")
    with pytest.raises(export_lib.ExportError, match="refusing to replace"):
        export_lib.export_classifier(make_classifier(0), str(target), {})
    assert (target / "notes.txt").read_text() == "precious"


def test_unwritable_target_is_a_one_line_error(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(export_lib.ExportError) as info:
        export_lib.check_export_target(str(blocker / "sub" / "export"))
    assert "is a file, not a directory" in str(info.value)
    assert "\n" not in str(info.value)


def test_empty_directory_target_is_fine(tmp_path):
    target = tmp_path / "export"
    target.mkdir()
    export_lib.export_classifier(make_classifier(0), str(target), {})
    assert os.path.exists(target / "saved_model.pb")


def test_load_exported_rejects_non_savedmodels(tmp_path):
    with pytest.raises(ValueError, match="not a SavedModel"):
        export_lib.load_exported(str(tmp_path))
