"""benchmarks/step_cost.py: the method names it times."""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))

import step_cost  # noqa: E402


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
