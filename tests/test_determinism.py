"""--deterministic: two runs from one seed end with bit-identical weights (CPU).

Each run is its own process (op determinism is process-wide and cannot be turned off again);
the two run side by side, so they also compete for the cores as real runs would.
"""

import json
import os
import subprocess
import sys

import numpy as np

from rat_tf.training import fault_tolerance

from helpers import h5_arrays

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_DRIVER = """
import json, sys
from absl import flags
from tensorflow.python.framework import config as tf_config
import flags as rat_flags
from rat_tf import training
flag_values = flags.FlagValues()
rat_flags.define_flags(flag_values)
flag_values(["train_main.py", *sys.argv[1:]])
result = training.train(rat_flags.config_from_flags(flag_values))
print("RESULT", json.dumps({"determinism": tf_config.is_op_determinism_enabled(),
                            "steps": result.trained_steps}))
"""


def test_two_deterministic_runs_from_one_seed_have_identical_weights(tmp_path):
    argv = ["--deterministic", "--seed=7", "--max_train_examples=128", "--max_test_examples=32",
            "--batch_size=32", "--num_steps=2", "--eval_pgd_steps=0", "--validation_freq=0",
            "--train_steps=6", "--steps_per_epoch=3"]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    procs = [subprocess.Popen([sys.executable, "-c", _DRIVER, *argv,
                               f"--model_dir={tmp_path / name}"], cwd=REPO, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for name in ("a", "b")]
    results = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=300)
            assert proc.returncode == 0, err[-3000:]
            results.append(json.loads(out.split("RESULT", 1)[1]))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert results == [{"determinism": True, "steps": 6}] * 2
    weights = [h5_arrays(tmp_path / name / "backup" / fault_tolerance.WEIGHTS_FILE)
               for name in ("a", "b")]
    assert weights[0].keys() == weights[1].keys() and len(weights[0]) > 10
    for name in weights[0]:
        np.testing.assert_array_equal(weights[0][name], weights[1][name], err_msg=name)
    with open(tmp_path / "a" / "flags.txt") as f:
        assert "--deterministic=true\n" in f.read()
