"""train_main.py end to end on digits: train, export, reload, resume, and usage errors.

Runs are tiny (a 128-image subset, batch 32, 2-step attacks) to keep the file fast on a CPU.
"""

import csv
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import flags as rat_flags
from rat_tf import export as export_lib
from rat_tf import training
from rat_tf.config import ConfigError

from helpers import BAD_FLAGS_DRIVER, TINY_TRAIN, train_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = TINY_TRAIN


make_config = train_config


def csv_epochs(model_dir):
    with open(os.path.join(model_dir, training.METRICS_CSV), newline="") as f:
        return [int(row["epoch"]) for row in csv.DictReader(f)]


def weights_of(model):
    return [np.array(w) for w in model.classifier.weights]


def test_train_export_reload(tmp_path):
    model_dir = str(tmp_path / "run")
    result = training.train(make_config("--train_steps=6", "--epsilon_warmup=0.5",
                                        f"--model_dir={model_dir}"))

    assert result.trained_steps == 6
    assert result.model.epsilon_warmup == 3   # half of the 6 steps
    assert set(result.metrics) == {"clean_accuracy", "clean_loss", "pgd_accuracy"}
    assert 0.0 <= result.metrics["pgd_accuracy"] <= 1.0
    assert result.export_path == os.path.abspath(os.path.join(model_dir, "export"))

    # The SavedModel computes what the in-memory classifier computes, at any batch size.
    loaded = tf.saved_model.load(result.export_path)
    x = result.data.x_test.astype(np.float32)
    for batch in (48, 1, 5):
        np.testing.assert_allclose(
            loaded.serve(tf.constant(x[:batch])).numpy(),
            result.model.classifier(x[:batch], training=False).numpy(), rtol=1e-5, atol=1e-5)
    (default_output,) = loaded.signatures["serving_default"](images=tf.constant(x[:3])).values()
    np.testing.assert_allclose(default_output.numpy(), loaded.serve(x[:3]).numpy(), rtol=1e-6)

    serve, metadata = export_lib.load_exported(result.export_path)
    assert metadata["dataset"] == "digits"
    assert metadata["class_names"] == [str(i) for i in range(10)]
    assert metadata["input_shape"] == [8, 8, 1]
    assert metadata["epsilon"] == pytest.approx(0.1)
    assert metadata["method"] == "rat"
    assert metadata["arch"] == "small_cnn"
    assert metadata["trained_steps"] == 6
    assert metadata["epsilon_warmup_steps"] == 3
    assert metadata["config"] == json.loads(json.dumps(result.config.to_dict()))
    assert metadata["test_metrics"]["pgd_accuracy"] == pytest.approx(
        result.metrics["pgd_accuracy"])
    assert metadata["method_hyperparameters"]["num_steps"] == 2
    predictions = np.argmax(serve(x).numpy(), axis=-1)
    assert np.mean(predictions == result.data.y_test) == pytest.approx(
        result.metrics["clean_accuracy"], abs=1e-6)

    # The run directory: resolved flags, config, metrics (epoch 0 full, epoch 1 partial).
    assert csv_epochs(model_dir) == [0, 1]
    assert os.path.exists(os.path.join(model_dir, "backup", "latest.weights.h5"))
    with open(os.path.join(model_dir, training.CONFIG_JSON)) as f:
        assert json.load(f) == metadata["config"]
    assert make_config(f"--flagfile={os.path.join(model_dir, training.FLAGFILE)}") == \
        result.config


class Interrupt(Exception):
    pass


class CrashInEpoch(keras.callbacks.Callback):
    """Raises in the middle of `epoch` (after one batch of it), like a preempted job."""

    def __init__(self, epoch):
        super().__init__()
        self.crash_epoch, self.epoch = epoch, None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        if self.epoch == self.crash_epoch and batch == 1:
            raise Interrupt()


def test_resume_continues_where_it_stopped(tmp_path):
    flags_ = ["--train_steps=8", "--steps_per_epoch=2"]
    straight = training.train(make_config(*flags_, f"--model_dir={tmp_path / 'a'}"))

    model_dir = str(tmp_path / "b")
    with pytest.raises(Interrupt):
        training.train(make_config(*flags_, f"--model_dir={model_dir}"),
                       extra_callbacks=[CrashInEpoch(2)])
    assert csv_epochs(model_dir) == [0, 1]
    resumed = training.train(make_config(*flags_, f"--model_dir={model_dir}"))

    # Same step count, same metrics rows, same weights as the uninterrupted run: optimizer,
    # schedule, data stream and training randomness all continued.
    assert resumed.trained_steps == 8
    assert csv_epochs(model_dir) == [0, 1, 2, 3]
    for got, want in zip(weights_of(resumed.model), weights_of(straight.model)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)

    # Asking for more steps continues from step 8; nothing is trained twice.
    longer = training.train(make_config("--train_steps=12", "--steps_per_epoch=2",
                                        f"--model_dir={model_dir}"))
    assert longer.trained_steps == 12
    assert csv_epochs(model_dir) == [0, 1, 2, 3, 4, 5]
    assert export_lib.read_metadata(longer.export_path)["trained_steps"] == 12

    # A complete run re-evaluates and re-exports without training.
    again = training.train(make_config("--train_steps=12", "--steps_per_epoch=2",
                                       f"--model_dir={model_dir}"))
    assert again.trained_steps == 12
    assert csv_epochs(model_dir) == [0, 1, 2, 3, 4, 5]

    # The checkpoint belongs to these flags: other training flags are a usage error.
    with pytest.raises(ConfigError, match=r"--epsilon \(0\.1 there, 0\.2 now\)"):
        training.prepare(make_config("--train_steps=12", "--steps_per_epoch=2",
                                       "--epsilon=0.2", f"--model_dir={model_dir}"))


# In a fresh process: collectives of a second MirroredStrategy in the same process can clash
# with those of strategies other tests build (TF reuses collective instance keys).
_MIRRORED = """
import sys
import numpy as np
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from absl import flags
import flags as rat_flags
from rat_tf import training
from rat_tf import export
flag_values = flags.FlagValues()
rat_flags.define_flags(flag_values)
flag_values(["train_main.py", *sys.argv[1:]])
result = training.train(rat_flags.config_from_flags(flag_values))
assert result.model.distribute_strategy.num_replicas_in_sync == 2
assert result.trained_steps == 2
serve, _ = export.load_exported(result.export_path)
x = result.data.x_test[:4].astype(np.float32)
np.testing.assert_allclose(serve(x).numpy(), result.model.classifier(x).numpy(), rtol=1e-5,
                           atol=1e-5)
print("MIRRORED OK")
"""


def test_mirrored_strategy_on_two_logical_cpus(tmp_path):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    out = subprocess.run(
        [sys.executable, "-c", _MIRRORED, *TINY, "--strategy=mirrored", "--train_steps=2",
         f"--model_dir={tmp_path / 'run'}"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "MIRRORED OK" in out.stdout


def run_cli(*argv):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.Popen([sys.executable, "train_main.py", *argv], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_script_runs_and_prints_the_summary(tmp_path):
    model_dir = tmp_path / "run"
    proc = run_cli("--max_train_examples=64", "--max_test_examples=32", "--batch_size=32",
                   "--train_steps=2", "--num_steps=1", "--eval_pgd_steps=1",
                   f"--model_dir={model_dir}")
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr[-3000:]
    assert "Traceback" not in stderr
    summary = stdout.strip().splitlines()[-1]
    assert "clean test accuracy" in summary and "PGD-1 test accuracy" in summary
    assert summary.endswith(f"SavedModel: {model_dir / 'export'}")
    assert os.path.exists(model_dir / "export" / "saved_model.pb")
    assert os.path.exists(model_dir / "flags.txt")


BAD_FLAGS = [
    (["--dataset=imagenet"], "--dataset=imagenet: unknown dataset; allowed: digits"),
    (["--method=pgd"], "--method=pgd: unknown method; allowed: st, sat"),
    (["--arch=resnet50"], "--arch=resnet50: Unknown architecture name"),
    (["--epsilon=2"], "epsilon must be in [0, 1]"),
    (["--beta_min=0.5", "--beta_max=0.2"], "--beta_min=0.5: beta_min (0.5) must be <= beta_max (0.2)"),
    (["--epsilon=8/0"], "--epsilon=8/0: '8/0' divides by zero"),
    (["--dataset=npz:/nonexistent/data.npz"], "--dataset=npz:/nonexistent/data.npz: npz file "
                                              "not found"),
    (["--batch_size=5000"], "--batch_size=5000: batch size 5000 is larger than"),
    (["unexpected"], "unexpected arguments: unexpected"),
]



def test_bad_flags_fail_with_a_usage_message(tmp_path):
    cases = [argv + [f"--model_dir={tmp_path / str(i)}"] if argv != ["unexpected"] else argv
             for i, (argv, _) in enumerate(BAD_FLAGS)]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    driver = subprocess.Popen([sys.executable, "-c", BAD_FLAGS_DRIVER, json.dumps(cases)], cwd=REPO,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # And one real process, for the exit status the shell sees.
    script = run_cli("--epsilon=2")
    _, stderr = script.communicate(timeout=300)
    assert script.returncode == 1
    assert "Traceback" not in stderr
    assert "train_main.py: error: --epsilon=2.0: epsilon must be in [0, 1]" in stderr

    stdout, stderr = driver.communicate(timeout=300)
    assert driver.returncode == 0, stderr[-3000:]
    for (argv, message), result in zip(BAD_FLAGS, json.loads(stdout.strip().splitlines()[-1])):
        assert result["escaped"] is None, (argv, result)
        assert result["code"] not in (0, None), (argv, result)
        assert "Traceback" not in result["stderr"], (argv, result["stderr"])
        assert message in result["stderr"], (argv, result["stderr"])
    assert not any(os.path.exists(tmp_path / str(i)) for i in range(len(BAD_FLAGS) - 2))


@pytest.mark.parametrize("argv, message", [
    (["--lr_boundaries=0.5,3"], "--lr_boundaries=0.5,3: learning-rate boundaries must not "
                                "decrease, got [5, 3]"),
])
def test_values_checked_against_the_data_are_usage_errors(tmp_path, argv, message):
    with pytest.raises(ConfigError) as info:
        training.prepare(make_config("--train_steps=10", *argv,
                                     f"--model_dir={tmp_path / 'run'}"))
    assert message in str(rat_flags.usage_error(info.value))  # what train_main.py prints


def test_unwritable_export_dir_is_a_usage_error_before_training(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match="is a file, not a directory"):
        training.prepare(make_config(f"--export_dir={blocker / 'export'}",
                                       f"--model_dir={tmp_path / 'run'}"))
    assert not os.path.exists(tmp_path / "run")
