"""Multi-worker training: two `train_main.py` worker processes on localhost, CPU collectives.

Each worker gets its own TF_CONFIG (free ports on localhost) and runs
`train_main.py --strategy=multi_worker`. Every process is killed if the pair does not finish in
`DEADLINE_S`, or as soon as one of them fails (the other would otherwise wait on its collectives).
"""

import contextlib
import csv
import json
import os
import re
import socket
import subprocess
import sys
import time

from absl import flags
import numpy as np
import pytest

import flags as rat_flags
from rat_tf import export as export_lib
from rat_tf import training

from helpers import h5_arrays

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEADLINE_S = 240
# 12 batches per data epoch.
TINY = ["--max_train_examples=192", "--max_test_examples=48", "--batch_size=16", "--num_steps=2",
        "--eval_pgd_steps=2", "--train_steps=4", "--steps_per_epoch=2"]


def free_ports(n):
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(n)]
        for s in sockets:
            s.bind(("localhost", 0))
        return [s.getsockname()[1] for s in sockets]


def tf_config(ports, index):
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    return json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})


def run_workers(argvs, tmp_path, deadline_s=DEADLINE_S):
    """Runs one process per argv (a cluster of len(argvs) workers); returns their outputs.

    Returns:
      [(returncode, stdout, stderr, pid, tmpdir)] per worker.
    """
    ports = free_ports(len(argvs))
    procs, files = [], []
    try:
        for i, argv in enumerate(argvs):
            tmpdir = tmp_path / f"tmp{i}"
            tmpdir.mkdir()
            env = dict(os.environ, TF_CONFIG=tf_config(ports, i), TF_CPP_MIN_LOG_LEVEL="3",
                       TMPDIR=str(tmpdir))
            out, err = open(tmp_path / f"w{i}.out", "w+"), open(tmp_path / f"w{i}.err", "w+")
            files.append((out, err, tmpdir))
            procs.append(subprocess.Popen([sys.executable, *argv], cwd=REPO, env=env, stdout=out,
                                          stderr=err))
        start = time.monotonic()
        while any(p.poll() is None for p in procs):
            if any(p.poll() not in (None, 0) for p in procs):
                break  # one failed: the others would wait for it forever
            if time.monotonic() - start > deadline_s:
                break
            time.sleep(0.2)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
    results = []
    for p, (out, err, tmpdir) in zip(procs, files):
        out.seek(0), err.seek(0)
        results.append((p.returncode, out.read(), err.read(), p.pid, tmpdir))
        out.close(), err.close()
    return results


def csv_rows(model_dir):
    with open(os.path.join(model_dir, training.METRICS_CSV), newline="") as f:
        return list(csv.DictReader(f))


def reference_run(model_dir):
    """The same flags in this process: the default strategy, one replica.

    Under any tf.distribute strategy Keras 3's `fit` first draws one batch from a throwaway
    iterator of the training set (`_maybe_symbolic_build`); `rat_tf.data.train_dataset` makes
    its repeated stream a function of the seed and the position only, so a run without a
    strategy sees the same batches as the workers together.
    """
    flag_values = flags.FlagValues()
    rat_flags.define_flags(flag_values)
    flag_values(["train_main.py", *TINY, f"--model_dir={model_dir}"])
    return training.train(rat_flags.config_from_flags(flag_values))


def test_two_workers_train_like_one_process_and_only_the_chief_writes(tmp_path):
    model_dir = tmp_path / "run"
    argv = ["train_main.py", "--strategy=multi_worker", *TINY, f"--model_dir={model_dir}"]
    results = run_workers([argv, argv], tmp_path)
    for i, (code, out, err, _, _) in enumerate(results):
        assert code == 0, f"worker {i} exit {code}:\n{err[-4000:]}"
        assert "Traceback" not in err
        assert out.strip().splitlines()[-1].endswith(f"SavedModel: {model_dir / 'export'}"), out

    # Only the chief (worker 0) wrote into --model_dir / --export_dir.
    chief_pid = results[0][3]
    worker_log = results[1][2]
    assert "worker-1 is not the chief: writing to" in worker_log
    for _, _, _, _, tmpdir in results:  # the scratch directory was deleted
        assert not [n for n in os.listdir(tmpdir) if n.startswith("rat_tf-")]
    assert sorted(os.listdir(model_dir)) == ["backup", "config.json", "curves.png", "export", "flags.txt",
                                            "metrics.csv", "tensorboard"]
    assert sorted(os.listdir(model_dir / "backup")) == ["latest.weights.h5",
                                                        "training_metadata.json"]
    events = [f for _, _, fs in os.walk(model_dir / "tensorboard") for f in fs]
    # events.out.tfevents.<time>.<host>.<pid>.<n>.v2
    assert events and all(re.search(rf"\.{chief_pid}\.\d+\.v2$", f) for f in events), events
    assert [r["epoch"] for r in csv_rows(model_dir)] == ["0", "1"]
    metadata = export_lib.read_metadata(str(model_dir / "export"))
    assert metadata["trained_steps"] == 4

    # The same result as one process with the same global batch and seed.
    reference = reference_run(tmp_path / "single")
    assert reference.trained_steps == 4
    got = h5_arrays(model_dir / "backup" / "latest.weights.h5")
    want = h5_arrays(tmp_path / "single" / "backup" / "latest.weights.h5")
    assert got.keys() == want.keys()
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-5, atol=1e-6, err_msg=name)
    for got_row, want_row in zip(csv_rows(model_dir), csv_rows(tmp_path / "single")):
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            assert float(got_row[key]) == pytest.approx(float(want_row[key]), rel=1e-5), key
    assert metadata["test_metrics"]["clean_accuracy"] == pytest.approx(
        reference.metrics["clean_accuracy"], abs=1e-6)
    serve, _ = export_lib.load_exported(str(model_dir / "export"))
    x = reference.data.x_test.astype(np.float32)
    np.testing.assert_allclose(serve(x).numpy(), reference.model.classifier(x).numpy(),
                               rtol=1e-4, atol=1e-5)


# Each worker draws through rat_tf.randomness in a replica context of the 2-worker strategy.
_DRAWS = """
import json
from rat_tf.training import distribute
strategy = distribute.get_strategy("multi_worker")   # before any other TF op
import tensorflow as tf
from rat_tf import randomness

@tf.function
def draw():
    return randomness.uniform(tf.constant([0, 1]), [2, 3])

local = strategy.experimental_local_results(strategy.run(draw))
whole = randomness.uniform(tf.constant([0, 1]), [4, 3])   # cross-replica: the global batch
print("DRAWS", json.dumps({"local": [v.numpy().tolist() for v in local],
                           "whole": whole.numpy().tolist(),
                           "replicas": strategy.num_replicas_in_sync}))
"""


def test_workers_draw_different_random_numbers(tmp_path):
    results = run_workers([["-c", _DRAWS]] * 2, tmp_path, deadline_s=120)
    draws = []
    for i, (code, out, err, _, _) in enumerate(results):
        assert code == 0, f"worker {i} exit {code}:\n{err[-3000:]}"
        draws.append(json.loads(out.split("DRAWS", 1)[1]))
    assert [d["replicas"] for d in draws] == [2, 2]
    (first,), (second,) = draws[0]["local"], draws[1]["local"]
    assert not np.array_equal(first, second)  # replicas sample different points
    # ... and together they are the draws for the whole global batch, in replica order.
    np.testing.assert_array_equal(np.concatenate([first, second]), draws[0]["whole"])
