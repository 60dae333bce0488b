"""curves.png: the trainer draws metrics.csv at the end of a run; plot_curves on any metrics.csv."""

import json
import os

import keras
import pytest

from rat_tf import training
from rat_tf.config import ConfigError
from rat_tf.training import curves

from helpers import TINY_TRAIN, train_config, write_mnist_like_npz

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TINY = TINY_TRAIN


make_config = train_config


def assert_png(path):
    with open(path, "rb") as f:
        assert f.read(8) == PNG_MAGIC
    leftovers = [name for name in os.listdir(os.path.dirname(path)) if name.endswith(".tmp")]
    assert not leftovers, leftovers


def test_a_run_draws_its_curves_and_a_finished_run_redraws_them(tmp_path):
    model_dir = str(tmp_path / "run")
    training.train(make_config("--train_steps=6", f"--model_dir={model_dir}"))
    png = os.path.join(model_dir, training.CURVES_PNG)
    assert_png(png)
    assert os.path.exists(os.path.join(model_dir, training.METRICS_CSV))

    os.remove(png)  # the run is complete: running it again only re-evaluates, and redraws
    result = training.train(make_config("--train_steps=6", f"--model_dir={model_dir}"))
    assert result.trained_steps == 6
    assert_png(png)


def test_plot_curves_without_validation_columns(tmp_path):
    csv_path = tmp_path / "metrics.csv"
    csv_path.write_text("epoch,accuracy,loss\n0,0.2,2.1\n1,0.5,1.4\n2,0.7,0.9\n")
    png = tmp_path / "curves.png"
    assert curves.plot_curves(str(csv_path), str(png)) == str(png)
    assert_png(str(png))


def test_plot_curves_with_gaps_and_without_pgd(tmp_path):
    # validation_freq=2: rows without validation; eval_pgd_steps=0: no PGD column.
    csv_path = tmp_path / "metrics.csv"
    csv_path.write_text("epoch,accuracy,loss,val_accuracy,val_loss\n"
                        "0,0.2,2.1,NA,NA\n1,0.5,1.4,0.55,1.3\n2,0.7,nan,NA,NA\n3,0.8,0.6,0.8,0.7\n")
    metrics = curves.read_metrics(str(csv_path))
    assert metrics["epoch"] == [0.0, 1.0, 2.0, 3.0]
    assert metrics["val_accuracy"][1] == 0.55
    png = tmp_path / "curves.png"
    png.write_bytes(b"old")
    curves.plot_curves(str(csv_path), str(png))
    assert_png(str(png))


def test_plot_curves_on_an_empty_csv_writes_nothing(tmp_path):
    csv_path = tmp_path / "metrics.csv"
    csv_path.write_text("epoch,accuracy,loss\n")
    assert curves.plot_curves(str(csv_path), str(tmp_path / "curves.png")) is None
    assert not (tmp_path / "curves.png").exists()
    with pytest.raises(OSError):
        curves.plot_curves(str(tmp_path / "missing.csv"), str(tmp_path / "curves.png"))


def test_a_28x28_grayscale_run_records_the_mnist_recipe(tmp_path):
    npz = str(tmp_path / "mnist_like.npz")
    write_mnist_like_npz(npz, num_train=64, num_test=32)
    model_dir = str(tmp_path / "run")
    argv = [f"--dataset=npz:{npz}", "--train_steps=2", "--validation_freq=0",
            f"--model_dir={model_dir}"]
    result = training.train(make_config(*argv))
    recipe = {"optimizer": "adam", "learning_rate": 1e-3, "weight_decay": 0.0,
              "epsilon_warmup": "1epochs"}
    assert {name: getattr(result.config.optim, name) for name in recipe} == recipe
    with open(os.path.join(model_dir, training.CONFIG_JSON)) as f:
        recorded = json.load(f)["optim"]
    assert {name: recorded[name] for name in recipe} == recipe
    with open(os.path.join(model_dir, training.FLAGFILE)) as f:
        lines = f.read().splitlines()
    assert {"--optimizer=adam", "--learning_rate=0.001", "--weight_decay=0.0",
            "--epsilon_warmup=1epochs", "--end_point_fraction=0.5"} <= set(lines)
    assert result.model.method.end_point_fraction == 0.5
    assert result.model.epsilon_warmup == 2   # one epoch: 64 images // batch 32
    assert isinstance(result.model.optimizer, keras.optimizers.Adam)
    assert_png(os.path.join(model_dir, training.CURVES_PNG))

    # Resuming with the same (auto) flags works; another recipe is a different experiment.
    training.train(make_config(*argv))
    with pytest.raises(ConfigError, match="optimizer"):
        training.train(make_config(*argv, "--optimizer=sgd"))
