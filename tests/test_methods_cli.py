"""Every training method trains a few steps through train_main.py and exports."""

from absl import flags
import pytest

import flags as rat_flags
from rat_tf import export as export_lib
from rat_tf import methods, training


@pytest.mark.parametrize("method", methods.METHOD_NAMES)
def test_each_method_trains_and_exports(method, tmp_path):
    flag_values = flags.FlagValues()
    rat_flags.define_flags(flag_values)
    flag_values(["train_main.py", f"--method={method}", "--max_train_examples=64", "--max_test_examples=16",
                 "--batch_size=32", "--train_steps=2", "--eval_pgd_steps=2", f"--model_dir={tmp_path}"]
                + (["--num_steps=2"] if "num_steps" in methods.METHODS[method].hyperparameters() else []))
    result = training.train(rat_flags.config_from_flags(flag_values))
    assert result.trained_steps == 2
    _, metadata = export_lib.load_exported(result.export_path)
    assert metadata["method"] == method
    assert metadata["method_hyperparameters"] == result.model.method.get_config()
