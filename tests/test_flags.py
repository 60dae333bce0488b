"""Flags -> config: defaults, the "auto" rules, fraction parsing, validation, flagfiles."""

import dataclasses

from absl import app, flags
import pytest

import flags as rat_flags
from rat_tf import config as config_lib
from rat_tf import methods


def parse(*argv):
    flag_values = flags.FlagValues()
    rat_flags.define_flags(flag_values)
    flag_values(["train_main.py", *argv])
    return flag_values


def config(*argv):
    return rat_flags.config_from_flags(parse(*argv))


def error(*argv) -> str:
    """The one-line error of `train_main.py *argv`: absl's (syntax) or the library's (values)."""
    with pytest.raises((flags.Error, app.UsageError)) as info:
        config(*argv)
    return str(info.value)


@pytest.mark.parametrize("text, value", [
    ("8/255", 8 / 255), ("0.031", 0.031), (" 8 / 255 ", 8 / 255), ("2/255.0", 2 / 255),
    ("1e-2", 0.01), (".5", 0.5), ("3", 3.0), ("16/255", 16 / 255)])
def test_parse_fraction(text, value):
    assert rat_flags.parse_fraction(text) == pytest.approx(value, rel=1e-12)


@pytest.mark.parametrize("text", ["8/0", "abc", "1/2/3", "inf", "nan", "", "8/", "/255"])
def test_parse_fraction_rejects(text):
    with pytest.raises(ValueError):
        rat_flags.parse_fraction(text)


def test_epsilon_flag_takes_fractions():
    cfg = config("--epsilon=8/255", "--step_size=2/255", "--dataset=cifar10")
    assert cfg.method.kwargs()["epsilon"] == 8 / 255
    assert cfg.method.kwargs()["step_size"] == 2 / 255
    assert config("--epsilon=0.031").method.kwargs()["epsilon"] == 0.031


def test_embedded_default():
    cfg = config()
    assert cfg.data.dataset == "digits" and cfg.data.augment is False
    assert cfg.model.arch == "small_cnn"
    assert cfg.method.method == "rat"
    assert cfg.method.kwargs() == {"epsilon": 0.1, "step_size": 0.025, "num_steps": 10,
                                   "num_samples": 2, "max_scale": 2.0, "scale_step": 0.1,
                                   "beta_max": 1.0, "beta_min": 0.1,
                                   "end_point_fraction": 0.0, "smooth_from_scale": 0.0}
    assert (cfg.eval.eval_epsilon, cfg.eval.eval_step_size) == (0.1, 0.025)
    assert cfg.optim.epochs == config_lib.DIGITS_EPOCHS and cfg.optim.train_steps is None
    assert cfg.run.model_dir == "runs/digits-rat"
    assert cfg.run.export_dir == "runs/digits-rat/export"


def test_paper_cifar_setting():
    cfg = config("--dataset=cifar10")
    assert cfg.model.arch == "wrn-34-10" and cfg.data.augment is True
    assert cfg.method.kwargs() == methods.METHODS["rat"].hyperparameters()
    assert cfg.method.kwargs()["epsilon"] == 8 / 255
    assert cfg.method.kwargs()["step_size"] == 2 / 255
    assert dataclasses.asdict(cfg.optim) == {
        "optimizer": "sgd", "batch_size": 128, "train_steps": 80_000, "epochs": None,
        "steps_per_epoch": None, "learning_rate": 0.1, "lr_boundaries": (0.375, 0.5625),
        "momentum": 0.9, "weight_decay": 2e-4, "epsilon_warmup": "0", "awp_gamma": 0.0,
        "awp_warmup": "0"}
    assert cfg.eval.eval_epsilon == 8 / 255 and cfg.eval.eval_step_size == 2 / 255


@pytest.mark.parametrize("argv, gamma, warmup", [
    (["--method=sat", "--awp_gamma=auto"], 0.01, "0"),
    (["--method=rat", "--awp_gamma=auto"], 0.01, "0"),
    (["--method=trades", "--awp_gamma=auto"], 0.005, "0.05"),
    (["--method=trades"], 0.0, "0"),
    (["--method=avmixup", "--awp_gamma=0.02", "--awp_warmup=2epochs"], 0.02, "2epochs"),
])
def test_awp_flags_resolve_to_the_official_defaults(argv, gamma, warmup):
    cfg = config("--dataset=cifar10", *argv)
    assert (cfg.optim.awp_gamma, cfg.optim.awp_warmup) == (gamma, warmup)


@pytest.mark.parametrize("argv, message", [
    (["--awp_gamma=-0.01"], "awp_gamma must be >= 0"),
    (["--awp_warmup=-3"], "AWP warm-up '-3' must be"),
])
def test_bad_awp_flags_are_one_line_errors(argv, message):
    assert message in error(*argv)


def test_dataset_auto_rules():
    imagenette = config("--dataset=imagenette/160px")
    assert imagenette.model.arch == "preact_resnet18"
    assert imagenette.method.kwargs()["max_scale"] == 3.0
    mnist = config("--dataset=mnist")
    assert mnist.model.arch == "small_cnn" and mnist.data.augment is False
    assert mnist.method.kwargs()["epsilon"] == 0.3
    assert mnist.method.kwargs()["step_size"] == pytest.approx(0.075)
    custom = config("--dataset=npz:/data/my_images.npz")
    assert custom.model.arch == "auto" and custom.data.augment is None
    assert custom.run.model_dir == "runs/npz-my_images-rat"
    rgb = config_lib.resolve_for_data(custom, (32, 32, 3))
    assert rgb.model.arch == "preact_resnet18" and rgb.data.augment is True
    gray = config_lib.resolve_for_data(custom, (28, 28, 1))
    assert gray.model.arch == "small_cnn" and gray.data.augment is False
    explicit = config_lib.resolve_for_data(config("--dataset=folder:/x", "--arch=wrn-16-2",
                                                 "--augment=false"), (64, 64, 3))
    assert explicit.model.arch == "wrn-16-2" and explicit.data.augment is False


def test_rat_takes_half_end_points_on_mnist_only():
    def fraction(cfg):
        return cfg.method.kwargs()["end_point_fraction"]

    assert config_lib.MNIST_METHOD_RULES == {"end_point_fraction": 0.5}
    assert fraction(config("--dataset=mnist")) == 0.5
    for dataset in ("digits", "cifar10", "cifar100", "imagenette/160px"):
        assert fraction(config(f"--dataset={dataset}")) == 0.0, dataset
    custom = config("--dataset=npz:/data/x.npz")
    assert fraction(custom) == "auto"  # open until the image shape is known
    assert fraction(config_lib.resolve_for_data(custom, (28, 28, 1))) == 0.5
    for shape in ((32, 32, 3), (28, 28, 3), (8, 8, 1)):
        assert fraction(config_lib.resolve_for_data(custom, shape)) == 0.0, shape
    assert fraction(config("--dataset=mnist", "--end_point_fraction=0")) == 0.0
    gray = config_lib.resolve_for_data(config("--dataset=npz:/x.npz", "--end_point_fraction=0.25"),
                                       (28, 28, 1))
    assert fraction(gray) == 0.25
    # Methods without the hyperparameter are untouched; the rest of RAT stays the paper's.
    assert "end_point_fraction" not in config("--dataset=mnist", "--method=sat").method.kwargs()
    rat = config_lib.resolve_for_data(custom, (28, 28, 1)).method.kwargs()
    paper = methods.METHODS["rat"].hyperparameters()
    assert {k: v for k, v in rat.items() if k not in ("epsilon", "step_size", "end_point_fraction")} == \
        {k: v for k, v in paper.items() if k not in ("epsilon", "step_size", "end_point_fraction")}


PAPER = {"optimizer": "sgd", "learning_rate": 0.1, "lr_boundaries": (0.375, 0.5625), "weight_decay": 2e-4,
         "epsilon_warmup": "0"}
MNIST = {"optimizer": "adam", "learning_rate": 1e-3, "lr_boundaries": (0.75,), "weight_decay": 0.0,
         "epsilon_warmup": "1epochs"}


def recipe(cfg):
    return {name: getattr(cfg.optim, name) for name in PAPER}


def test_training_recipe_auto_follows_the_dataset():
    assert config_lib.PAPER_RECIPE == PAPER and config_lib.MNIST_RECIPE == MNIST
    for dataset in ("digits", "cifar10", "cifar100", "imagenette/160px"):
        assert recipe(config_lib.resolve({"dataset": dataset})) == PAPER, dataset
    assert recipe(config_lib.resolve({"dataset": "mnist"})) == MNIST
    assert recipe(config("--dataset=mnist")) == MNIST
    assert recipe(config()) == PAPER   # the digits default run is unchanged
    # npz:/folder: data: open until the image shape is known.
    custom = config_lib.resolve({"dataset": "npz:/data/x.npz"})
    assert recipe(custom) == dict.fromkeys(PAPER, "auto")
    assert recipe(config_lib.resolve_for_data(custom, (28, 28, 1))) == MNIST
    for shape in ((32, 32, 3), (28, 28, 3), (32, 32, 1), (8, 8, 1), (160, 160, 3)):
        assert recipe(config_lib.resolve_for_data(custom, shape)) == PAPER, shape
    # A resolved dataset's recipe does not change with the shape.
    cifar = config_lib.resolve({"dataset": "cifar10"})
    assert recipe(config_lib.resolve_for_data(cifar, (28, 28, 1))) == PAPER
    mnist = config_lib.resolve({"dataset": "mnist", "image_size": 32})
    assert recipe(config_lib.resolve_for_data(mnist, (32, 32, 1))) == MNIST


def test_explicit_recipe_values_win():
    cfg = config("--dataset=mnist", "--optimizer=sgd", "--learning_rate=0.05")
    assert recipe(cfg) == {**MNIST, "optimizer": "sgd", "learning_rate": 0.05}
    assert config("--dataset=mnist", "--lr_boundaries=").optim.lr_boundaries == ()
    assert config("--dataset=cifar10", "--lr_boundaries=0.5,900").optim.lr_boundaries == (0.5, 900.0)
    cfg = config("--dataset=cifar10", "--weight_decay=0", "--epsilon_warmup=2epochs")
    assert recipe(cfg) == {**PAPER, "weight_decay": 0.0, "epsilon_warmup": "2epochs"}
    custom = config("--dataset=folder:/x", "--optimizer=sgd", "--weight_decay=5e-4",
                    "--epsilon_warmup=0")
    gray = config_lib.resolve_for_data(custom, (28, 28, 1))
    assert recipe(gray) == {**MNIST, "optimizer": "sgd", "weight_decay": 5e-4, "epsilon_warmup": "0"}
    rgb = config_lib.resolve_for_data(config("--dataset=folder:/x", "--learning_rate=1e-3"),
                                      (32, 32, 3))
    assert recipe(rgb) == {**PAPER, "learning_rate": 1e-3}
    library = config_lib.resolve({"dataset": "mnist", "learning_rate": "0.01", "optimizer": "SGD"})
    assert recipe(library) == {**MNIST, "optimizer": "sgd", "learning_rate": 0.01}


def test_flagfile_records_the_resolved_recipe(tmp_path):
    resolved = config_lib.resolve_for_data(config("--dataset=npz:/data/mnist.npz"), (28, 28, 1))
    text = config_lib.to_flagfile(resolved)
    for line in ("--optimizer=adam", "--learning_rate=0.001", "--lr_boundaries=0.75",
                 "--weight_decay=0.0", "--epsilon_warmup=1epochs"):
        assert line in text.splitlines()
    assert "auto" not in "".join(line for line in text.splitlines()
                                 if line.split("=")[0] in {f"--{n}" for n in PAPER})
    flagfile = tmp_path / "flags.txt"
    flagfile.write_text(text)
    # The flagfile's explicit values win over any shape: the same recipe on RGB data too.
    assert config(f"--flagfile={flagfile}") == resolved
    assert config_lib.resolve_for_data(config(f"--flagfile={flagfile}"), (32, 32, 3)).optim == \
        resolved.optim
    assert resolved.to_dict()["optim"]["optimizer"] == "adam"


@pytest.mark.parametrize("values, field, fragment", [
    ({"learning_rate": 0}, "learning_rate", "must be > 0"),
    ({"learning_rate": float("inf")}, "learning_rate", "finite"),
    ({"learning_rate": "fast"}, "learning_rate", "fast"),
    ({"weight_decay": -1e-4}, "weight_decay", "must be >= 0"),
    ({"weight_decay": float("nan")}, "weight_decay", "finite"),
    ({"epsilon_warmup": "1 epoch please"}, "epsilon_warmup", "such as 2epochs"),
    ({"optimizer": "rmsprop"}, "optimizer", "allowed: sgd, adam"),
    ({"lr_boundaries": ["0.5", "x"]}, "lr_boundaries", "x"),
    ({"lr_boundaries": [-1]}, "lr_boundaries", "integer step number >= 1"),
])
def test_library_checks_explicit_recipe_values(values, field, fragment):
    with pytest.raises(config_lib.ConfigError) as info:
        config_lib.resolve({"dataset": "mnist", **values})
    assert info.value.field == field and fragment in info.value.message
    assert "\n" not in str(rat_flags.usage_error(info.value))


def test_each_method_gets_only_its_hyperparameters():
    for name in methods.METHOD_NAMES:
        taken = methods.METHODS[name].hyperparameters()
        assert set(config(f"--method={name}", "--dataset=cifar10").method.kwargs()) == set(taken)
    assert config("--method=st").method.kwargs() == {}
    sat = config("--method=sat", "--num_samples=5", "--dataset=cifar10").method.kwargs()
    assert sat == {"epsilon": 8 / 255, "step_size": 2 / 255, "num_steps": 10}


def test_step_size_follows_epsilon():
    assert config("--epsilon=16/255").method.kwargs()["step_size"] == pytest.approx(4 / 255)
    assert config("--epsilon=16/255", "--step_size=1/255").method.kwargs()["step_size"] == \
        pytest.approx(1 / 255)


def test_explicit_values_override_auto():
    cfg = config("--arch=WRN-16-2", "--augment=true", "--train_steps=50", "--max_scale=1.5",
                 "--num_samples=3", "--eval_epsilon=0.2", "--eval_pgd_steps=20",
                 "--model_dir=/tmp/run", "--lr_boundaries=")
    assert cfg.model.arch == "wrn-16-2" and cfg.data.augment is True
    assert cfg.optim.train_steps == 50 and cfg.optim.epochs is None
    assert cfg.method.kwargs()["max_scale"] == 1.5 and cfg.method.kwargs()["num_samples"] == 3
    assert cfg.eval.eval_epsilon == 0.2 and cfg.eval.eval_step_size == pytest.approx(0.05)
    assert cfg.optim.lr_boundaries == ()
    assert cfg.run.export_dir == "/tmp/run/export"


@pytest.mark.parametrize("argv, fragment", [
    (["--dataset=imagenet"], "--dataset=imagenet: unknown dataset"),
    (["--dataset=npz:"], "unknown dataset"),
    (["--method=pgd"], "--method=pgd: unknown method; allowed: st, sat"),
    (["--arch=resnet50"], "--arch=resnet50: Unknown architecture"),
    (["--arch=wrn-33-10"], "depth"),
    (["--epsilon=2"], "--epsilon=2.0: epsilon must be in [0, 1]"),
    (["--epsilon=8/0"], "divides by zero"),
    (["--epsilon=eight"], "fraction"),
    (["--beta_min=0.5", "--beta_max=0.2"], "beta_min (0.5) must be <= beta_max (0.2)"),
    (["--beta_max=0.05"], "--beta_max=0.05: beta_min (0.1) must be <= beta_max (0.05)"),
    (["--num_samples=0"], "--num_samples=0: num_samples must be an integer >= 1"),
    (["--num_steps=2.5"], "integer"),
    (["--max_scale=2.05"], "--max_scale=2.05: max_scale (2.05) must be a multiple of scale_step"),
    (["--smooth_from_scale=2"], "--smooth_from_scale=2.0: smooth_from_scale must be in [0, max_scale"),
    (["--method=trades", "--beta=-1"], "--beta=-1.0: beta must be >= 0"),
    (["--method=adt", "--step_size=0"], "--step_size=0.0: step_size must be > 0"),
    (["--batch_size=0"], "--batch_size=0: batch_size must be an integer >= 1"),
    (["--image_size=0"], "--image_size=0: image_size must be an integer >= 1"),
    (["--eval_pgd_steps=-1"], "--eval_pgd_steps=-1: eval_pgd_steps must be an integer >= 0"),
    (["--epochs=0"], "--epochs=0.0: epochs must be > 0"),
    (["--train_steps=5", "--epochs=2"], "not both"),
    (["--lr_boundaries=0.5,abc"], "not a number"),
    (["--lr_boundaries=1.5"], "fraction in (0, 1)"),
    (["--momentum=1"], "--momentum=1.0: momentum must be in [0, 1)"),
    (["--learning_rate=0"], "--learning_rate=0.0: learning_rate must be > 0"),
    (["--learning_rate=-0.1"], "learning_rate must be > 0"),
    (["--learning_rate=inf"], "--learning_rate"),
    (["--learning_rate=fast"], "--learning_rate"),
    (["--weight_decay=-1"], "weight_decay must be >= 0"),
    (["--weight_decay=nan"], "--weight_decay"),
    (["--optimizer=rmsprop"], "--optimizer=rmsprop: unknown optimizer; allowed: sgd, adam, auto"),
    (["--epsilon_warmup=-3"], "epsilon warm-up '-3' must be an integer number of steps"),
    (["--epsilon_warmup=1.5"], "a fraction in (0, 1)"),
    (["--epsilon_warmup=two epochs"], "such as 2epochs"),
    (["--epsilon_warmup=0epochs"], "epsilon warm-up"),
    (["--eval_epsilon=1.5"], "--eval_epsilon=1.5: eval_epsilon must be in [0, 1]"),
    (["--eval_step_size=-0.1"], "--eval_step_size=-0.1: eval_step_size must be >= 0"),
    (["--augment=maybe"], "--augment=maybe: must be auto, true or false"),
    (["--precision=float64"], "--precision=float64: unknown precision; allowed: float32"),
    (["--strategy=horovod"], "--strategy=horovod: unknown strategy"),
    (["--tpu=grpc://1.2.3.4:8470"], "only applies with strategy=tpu"),
    (["--model_dir= "], "--model_dir= : must not be empty"),
])
def test_bad_flags_raise_one_line_errors(argv, fragment):
    message = error(*argv)
    assert fragment in message
    assert "\n" not in message.strip()


@pytest.mark.parametrize("argv", [["--epsilon=2"], ["--beta_max=0.05"], ["--lr_boundaries=1.5"],
                                  ["--epsilon_warmup=-3"], ["--batch_size=0"], ["--method=pgd"]])
def test_the_flags_parse_syntax_and_the_library_checks_the_values(argv):
    """A value rule is checked once, by rat_tf.config: the flags parse it, resolution refuses it."""
    parse(*argv)
    with pytest.raises(app.UsageError):
        config(*argv)


def test_flagfile_reproduces_the_config(tmp_path):
    original = config_lib.resolve_for_data(
        config("--dataset=npz:/data/x.npz", "--method=avmixup", "--epsilon=4/255",
               "--train_steps=123", "--lr_boundaries=0.5,900", "--seed=7"), (32, 32, 3))
    flagfile = tmp_path / "flags.txt"
    flagfile.write_text(config_lib.to_flagfile(original))
    assert config(f"--flagfile={flagfile}") == original


def test_config_is_frozen():
    cfg = config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.optim.batch_size = 1  # type: ignore[misc]


def test_training_docs_flags_table_lists_every_flag():
    import os
    page = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "docs", "TRAINING.md")
    with open(page, encoding="utf-8") as f:
        text = f.read()
    missing = [name for name in parse() if name not in ("flagfile", "undefok")
               and f"| `--{name}` |" not in text]
    assert not missing, f"docs/TRAINING.md's flags table lacks {missing}"


def test_the_library_defaults_are_the_flag_defaults():
    flag_values = parse()
    for name, value in config_lib.DEFAULTS.items():
        assert flag_values[name].default == value, name
    assert config_lib.resolve({}) == config()
    assert config_lib.resolve({"dataset": "cifar10", "method": "trades"}) == \
        config("--dataset=cifar10", "--method=trades")


def test_library_config_errors_name_the_field():
    with pytest.raises(config_lib.ConfigError) as info:
        config_lib.resolve({"method": "pgd"})
    assert info.value.field == "method" and info.value.value == "pgd"
    assert str(rat_flags.usage_error(info.value)).startswith("--method=pgd: unknown method")


def _help(flag_values, name):
    return " ".join(flag_values[name].help.split())


def test_the_help_of_auto_is_generated_from_the_rules(monkeypatch):
    """Change a rule's data: the resolution and the flag help change together."""
    from rat_tf.config import rules

    flag_values = parse()
    for name in flag_values:
        if flag_values[name].default in ("auto", ["auto"]):
            assert f"auto: {config_lib.describe_auto(name)}" in _help(flag_values, name), name
    monkeypatch.setitem(rules.DATASET_EPSILON, "digits", 0.15)
    monkeypatch.setitem(rules.MNIST_METHOD_RULES, "end_point_fraction", 0.25)
    monkeypatch.setitem(rules.MNIST_RECIPE, "learning_rate", 5e-4)
    monkeypatch.setitem(rules.AUTO_ARCH, "cifar", "wrn-16-4")
    monkeypatch.setattr(rules, "EVAL_STEP_FRACTION", 0.5)
    changed = parse()
    assert "0.15 on digits" in _help(changed, "epsilon") and "0.1 on digits" not in _help(changed, "epsilon")
    assert "0.25 on MNIST" in _help(changed, "end_point_fraction")
    assert "0.0005 for mnist" in _help(changed, "learning_rate")
    assert "wrn-16-4 for cifar10/cifar100" in _help(changed, "arch")
    assert "eval_epsilon / 2" in _help(changed, "eval_step_size")
    cfg = config()
    assert cfg.method.kwargs()["epsilon"] == 0.15 and cfg.eval.eval_step_size == 0.075
    assert config("--dataset=mnist").method.kwargs()["end_point_fraction"] == 0.25
    assert config("--dataset=mnist").optim.learning_rate == 5e-4
    assert config("--dataset=cifar10").model.arch == "wrn-16-4"


def test_every_rule_of_the_help_is_the_one_resolution_applies():
    """The words of describe_auto, read back, are what resolve gives per dataset family."""
    for dataset, family in (("digits", "digits"), ("mnist", "mnist"), ("cifar10", "cifar10/cifar100"),
                            ("imagenette/160px", "imagenette")):
        cfg = config(f"--dataset={dataset}")
        assert f"{cfg.model.arch} for " in config_lib.describe_auto("arch")
        assert family in config_lib.describe_auto("arch").split(f"{cfg.model.arch} for ")[1].split(",")[0]
        on = config_lib.describe_auto("augment").split("otherwise")
        assert family in (on[0] if cfg.data.augment else on[1]), dataset
    assert "0.3 on mnist" in config_lib.describe_auto("epsilon")
    assert "3 on imagenette" in config_lib.describe_auto("max_scale")
    assert "(not for adt)" in config_lib.describe_auto("step_size")
    assert config("--method=adt", "--dataset=mnist").method.kwargs()["step_size"] == \
        methods.METHODS["adt"].hyperparameters()["step_size"]


@pytest.mark.parametrize("argv, message", [
    (["--square_queries=0"], "--square_queries=0: square_queries must be an integer >= 1"),
    (["--fab_steps=-1"], "--fab_steps=-1: fab_steps must be an integer >= 1"),
    (["--pgd_steps=-2"], "--pgd_steps=-2: pgd_steps must be an integer >= 0"),
    (["--step_size=3"], "--step_size=3: step_size must be in [0, 1]"),
    (["--epsilon=3"], "--epsilon=3: epsilon must be in [0, 1]"),
    (["--norm=L2", "--attacks=pgd"], "--attacks=pgd: pgd have no L2 version"),
    (["--dataset=auto"], "--dataset=auto: auto needs the export's metadata"),
])
def test_evaluation_errors_name_their_flag(argv, message):
    """The attack suite checks its budgets (the library); the error names the flag that set the value."""
    from flags import evaluation as eval_flags

    flag_values = flags.FlagValues()
    eval_flags.define_flags(flag_values)
    flag_values(["evaluate_main.py", "--saved_model=model", *argv])
    metadata = {} if "--dataset=auto" in argv else {"dataset": "digits", "epsilon": 0.1}
    with pytest.raises(config_lib.ConfigError) as info:
        eval_flags.config_from_flags(flag_values, metadata, "out")
    assert message in str(rat_flags.usage_error(info.value))
