"""Strategies from names: the ones that can run on a CPU-only machine.

tests/conftest.py splits the CPU into two logical devices, so "mirrored" has two replicas here.
"tpu" needs a TPU and is not exercised.
"""

import os
import subprocess
import sys

import pytest
import tensorflow as tf

from rat_tf.training import distribute

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_default_strategy():
    strategy = distribute.get_strategy("default")
    assert strategy is tf.distribute.get_strategy()
    assert strategy.num_replicas_in_sync == 1


def test_mirrored_uses_the_logical_cpus():
    strategy = distribute.get_strategy("mirrored")
    assert isinstance(strategy, tf.distribute.MirroredStrategy)
    assert strategy.num_replicas_in_sync == len(tf.config.list_logical_devices("CPU"))


def test_multi_worker_without_tf_config_is_one_local_worker():
    # MultiWorkerMirroredStrategy must be created before other TF ops: use a fresh process.
    code = ("from rat_tf.training import distribute\n"
            "s = distribute.get_strategy('multi_worker')\n"
            "import tensorflow as tf\n"
            "print(isinstance(s, tf.distribute.MultiWorkerMirroredStrategy), "
            "s.num_replicas_in_sync)\n")
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-2:] == ["True", "1"]


def test_unknown_names_raise():
    with pytest.raises(ValueError, match="allowed: default, mirrored, multi_worker, tpu"):
        distribute.get_strategy("horovod")
    with pytest.raises(ValueError, match="only applies"):
        distribute.get_strategy("mirrored", tpu="grpc://10.0.0.1:8470")
