"""benchmarks/step_cost.py: the method names it times; benchmarks/step_timer.py: the timer."""
import sys

import numpy as np
import pytest

from benchmarks import step_cost
from benchmarks.step_timer import interleaved, step_timer


def test_rat_configuration_names():
    assert step_cost.rat_config("rat_e0.5") == ("rat", {"end_point_fraction": 0.5})
    assert step_cost.rat_config("rat_m1_e0.5_s1") == (
        "rat", {"num_samples": 1, "end_point_fraction": 0.5, "smooth_from_scale": 1.0})
    for name in ("rat", "sat", "sat_ars", "avmixup"):
        assert step_cost.rat_config(name) == (name, {})
    with pytest.raises(ValueError, match="--methods: 'rat_mx'"):
        step_cost.rat_config("rat_mx")
    assert step_cost.rat_config("sat_awp") == ("sat", {"awp_gamma": 0.01})
    assert step_cost.rat_config("trades_awp") == ("trades", {"awp_gamma": 0.005})
    assert step_cost.rat_config("rat_e0.5_awp") == ("rat", {"end_point_fraction": 0.5, "awp_gamma": 0.01})


def test_the_timed_model_has_the_configuration():
    model = step_cost.build_model("rat_m1_e0.5_s1", (28, 28, 1), 0.3, 0.075, 2, num_samples=2)
    config = model.method.get_config()
    assert config["num_samples"] == 1 and config["end_point_fraction"] == 0.5
    assert config["smooth_from_scale"] == 1.0 and config["num_steps"] == 2
    assert step_cost.build_model("sat_awp", (28, 28, 1), 0.3, 0.075, 2, num_samples=2).awp_gamma == 0.01


def test_an_unknown_method_is_a_one_line_error(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["step_cost.py", "--methods=sat,ratt"])
    with pytest.raises(SystemExit) as exit_info:
        step_cost.main()
    assert exit_info.value.code == 2
    assert "--methods: 'ratt' is neither a method" in capsys.readouterr().err


def test_the_timer_runs_the_compiled_training_step():
    model = step_cost.build_model("sat", (28, 28, 1), 0.3, 0.075, 1, num_samples=2)
    x = np.random.default_rng(0).uniform(0, 1, (8, 28, 28, 1)).astype("float32")
    y = np.arange(8, dtype="int32") % 10
    run = step_timer(model, x, y, steps=2, warmup_steps=1)
    assert int(model.optimizer.iterations.numpy()) == 1           # the warm-up step of fit
    times = interleaved({"a": run, "b": run}, repeats=2)
    assert [len(t) for t in times.values()] == [2, 2] and all(t > 0 for ts in times.values() for t in ts)
    assert int(model.optimizer.iterations.numpy()) == 1 + 4 * 2   # 4 timed runs of 2 steps each
