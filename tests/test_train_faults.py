"""train_main.py under faults: kill -9 and resume, a diverging loss, a full or unwritable
disk, and bad input. Each failure is one line on stderr, a non-zero exit, no traceback, and
nothing half-written.

Runs as root here, so permission bits do not stop writes: the unwritable directories are paths
under a regular file (`FILE/sub`), which fail for every user, and a full disk is a file-size
limit (RLIMIT_FSIZE; Python ignores SIGXFSZ, so a write past it fails with EFBIG, "File too
large"), which stops a write half-way like a full disk does.
"""

import csv
import json
import os
import re
import resource
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from rat_tf import export as export_lib
from rat_tf import training
from rat_tf.config import ConfigError
from rat_tf.training import fault_tolerance

from helpers import BAD_FLAGS_DRIVER, h5_arrays, train_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--max_train_examples=64", "--max_test_examples=16", "--batch_size=16", "--num_steps=1",
        "--eval_pgd_steps=1"]
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")


def make_config(*argv):
    return train_config(*argv, base=TINY)


def run_cli(argv, tmp_path, name="cli", file_size_limit=None, timeout=300):
    """Runs train_main.py to the end; returns (exit status, stdout, stderr)."""
    def limit():
        if file_size_limit is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, file_size_limit))

    with open(tmp_path / f"{name}.out", "w+") as out, open(tmp_path / f"{name}.err", "w+") as err:
        proc = subprocess.run([sys.executable, "train_main.py", *argv], cwd=REPO, env=ENV,
                              stdout=out, stderr=err, timeout=timeout, preexec_fn=limit)
        out.seek(0), err.seek(0)
        return proc.returncode, out.read(), err.read()


def last_line(text):
    return text.strip().splitlines()[-1]


def csv_epochs(model_dir):
    with open(os.path.join(model_dir, training.METRICS_CSV), newline="") as f:
        return [int(row["epoch"]) for row in csv.DictReader(f)]


def backup_record(model_dir):
    with open(os.path.join(model_dir, "backup", fault_tolerance.METADATA_FILE)) as f:
        return json.load(f)


def test_kill_9_mid_run_then_the_same_command_resumes(tmp_path):
    model_dir = tmp_path / "run"
    argv = [*TINY, "--train_steps=12", "--steps_per_epoch=2", "--validation_freq=0",
            f"--model_dir={model_dir}"]
    weights = model_dir / "backup" / fault_tolerance.WEIGHTS_FILE
    with open(tmp_path / "killed.err", "w") as err:
        proc = subprocess.Popen([sys.executable, "train_main.py", *argv], cwd=REPO, env=ENV,
                                stdout=subprocess.DEVNULL, stderr=err)
        try:
            deadline = time.monotonic() + 240
            while not weights.exists() and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.005)
            os.kill(proc.pid, signal.SIGKILL)  # kill -9, right after the first checkpoint
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL, "training ended before it could be killed"
    # Killed at once: the epoch record may not even be written yet (the restore handles that).
    if os.path.exists(model_dir / "backup" / fault_tolerance.METADATA_FILE):
        assert backup_record(model_dir)["step"] < 12

    code, out, err = run_cli(argv, tmp_path)
    assert code == 0, err[-3000:]
    assert "12 steps" in last_line(out)
    assert csv_epochs(model_dir) == list(range(6))  # every epoch once
    assert backup_record(model_dir) == {"epoch": 6, "batch": 0, "step": 12}
    assert export_lib.read_metadata(str(model_dir / "export"))["trained_steps"] == 12
    assert not [n for n in os.listdir(model_dir / "backup") if n.startswith(".")]

    # The same weights as an uninterrupted run.
    training.train(make_config("--train_steps=12", "--steps_per_epoch=2", "--validation_freq=0",
                               f"--model_dir={tmp_path / 'straight'}"))
    want = h5_arrays(tmp_path / "straight" / "backup" / fault_tolerance.WEIGHTS_FILE)
    got = h5_arrays(weights)
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-5, atol=1e-6, err_msg=name)


def test_a_diverging_loss_stops_with_a_message_and_keeps_the_last_good_checkpoint(tmp_path):
    model_dir = tmp_path / "run"
    code, _, err = run_cli([*TINY, "--learning_rate=1e3", "--train_steps=12",
                            "--steps_per_epoch=1", "--validation_freq=0",
                            f"--model_dir={model_dir}"], tmp_path)
    assert code == 1
    assert "Traceback" not in err
    message = last_line(err)
    match = re.fullmatch(r"train_main\.py: error: training stopped at step (\d+) \(epoch \d+\): "
                         r"the training loss is (nan|inf); the last good checkpoint \(step (\d+), "
                         r"after epoch (\d+)\) is kept in (\S+); a lower --learning_rate may help",
                         message)
    assert match, message
    bad_step, kept_step, kept_epoch = int(match[1]), int(match[3]), int(match[4])
    assert 1 <= kept_step == bad_step - 1 and match[5] == str(model_dir / "backup")
    assert backup_record(model_dir)["step"] == kept_step
    kept = h5_arrays(model_dir / "backup" / fault_tolerance.WEIGHTS_FILE)
    assert all(np.all(np.isfinite(v)) for v in kept.values() if v.dtype.kind == "f")
    assert csv_epochs(model_dir) == list(range(kept_epoch))
    assert not os.path.exists(model_dir / "export")


def test_a_full_disk_fails_cleanly_and_keeps_what_was_there(tmp_path):
    model_dir = tmp_path / "run"
    first = training.train(make_config("--train_steps=1", f"--model_dir={model_dir}"))
    export_dir = first.export_path
    files = {}
    for root, _, names in os.walk(export_dir):
        for name in names:
            files[os.path.join(root, name)] = open(os.path.join(root, name), "rb").read()
    checkpoint = open(model_dir / "backup" / fault_tolerance.WEIGHTS_FILE, "rb").read()

    # The run is complete, so this only re-exports; the SavedModel (about 1.3 MB) hits the limit.
    code, _, err = run_cli([*TINY, "--train_steps=1", f"--model_dir={model_dir}"], tmp_path,
                           "export", file_size_limit=300_000)
    assert code == 1 and "Traceback" not in err
    assert re.fullmatch(rf"train_main\.py: error: cannot export to {re.escape(export_dir)}: "
                        r".*File too large.*", last_line(err)), last_line(err)
    # The previous export is untouched and no staging directory is left.
    assert {os.path.join(r, n) for r, _, ns in os.walk(export_dir) for n in ns} == set(files)
    for path, content in files.items():
        assert open(path, "rb").read() == content, path
    assert not [n for n in os.listdir(model_dir) if n.startswith(".export")]

    # Training on: the checkpoint (about 1.3 MB with the momentum) hits the limit.
    code, _, err = run_cli([*TINY, "--train_steps=2", f"--model_dir={model_dir}"], tmp_path,
                           "checkpoint", file_size_limit=1_000_000)
    assert code == 1 and "Traceback" not in err
    assert re.fullmatch(rf"train_main\.py: error: cannot write the checkpoint in "
                        rf"{re.escape(str(model_dir / 'backup'))}: .*File too large.*",
                        last_line(err)), last_line(err)
    assert open(model_dir / "backup" / fault_tolerance.WEIGHTS_FILE, "rb").read() == checkpoint
    assert sorted(os.listdir(model_dir / "backup")) == sorted(
        [fault_tolerance.WEIGHTS_FILE, fault_tolerance.METADATA_FILE])


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_read_only_directories_are_usage_errors(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(ConfigError, match="export_dir=.*not writable"):
            training.prepare(make_config(f"--export_dir={locked / 'export'}",
                                           f"--model_dir={tmp_path / 'run'}"))
        with pytest.raises(ConfigError, match="model_dir=.*Permission denied"):
            training.prepare(make_config(f"--model_dir={locked / 'run'}",
                                           f"--export_dir={tmp_path / 'export'}"))
    finally:
        locked.chmod(0o700)




def _npz(path, **changes):
    rng = np.random.default_rng(0)
    arrays = {"x_train": rng.integers(0, 256, (8, 8, 8), dtype=np.uint8),
              "y_train": np.arange(8) % 3,
              "x_test": rng.integers(0, 256, (4, 8, 8), dtype=np.uint8),
              "y_test": np.arange(4) % 3}
    arrays.update(changes)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return path


def bad_inputs(tmp):
    """(argv, the message stderr must contain) for the issue's table of bad input.

    Other values the config refuses (unknown dataset/method/arch, epsilon > 1, beta_min >
    beta_max, a missing npz file) are in tests/test_cli.py; these are the rest.
    """
    blocker = tmp / "a_file"
    blocker.write_text("")
    (tmp / "no_images" / "train" / "cat").mkdir(parents=True)
    (tmp / "no_images" / "test" / "cat").mkdir(parents=True)
    (tmp / "no_images" / "train" / "cat" / "notes.txt").write_text("not an image")
    rng = np.random.default_rng(0)
    return [
        (["--epsilon=-0.1"], "--epsilon=-0.1: epsilon must be in [0, 1] (pixel units)"),
        (["--eval_epsilon=1.5"], "--eval_epsilon=1.5: eval_epsilon must be in [0, 1]"),
        (["--precision=float64"], "--precision=float64: unknown precision; allowed: float32"),
        ([f"--dataset=npz:{_npz(tmp / 'keys.npz', y_test=None)}"],
         "is missing key(s) y_test (expected x_train, y_train, x_test, y_test"),
        ([f"--dataset=npz:{_npz(tmp / 'lengths.npz', y_train=np.arange(5) % 3)}"],
         "mismatched lengths, x_train has 8 images but y_train has 5 labels"),
        ([f"--dataset=npz:{_npz(tmp / 'labels.npz', y_test=np.array([0, 1, -1, 2]))}"],
         "y_test has negative labels (min -1)"),
        ([f"--dataset=npz:{_npz(tmp / 'float.npz', x_test=rng.random((4, 8, 8)) * 2)}"],
         "x_test is float with values out of range"),
        ([f"--dataset=npz:{_npz(tmp / 'int.npz', x_train=np.full((8, 8, 8), 300, np.int16))}"],
         "x_train is integer (int16) with values out of range [300, 300]; integer images must "
         "be in [0, 255]"),
        ([f"--dataset=folder:{tmp / 'no_images'}"],
         f"--dataset=folder:{tmp / 'no_images'}: image folder {tmp / 'no_images'} has no "
         "training images"),
        ([f"--model_dir={blocker / 'run'}", f"--export_dir={tmp / 'export'}"],
         f"--model_dir={blocker / 'run'}: [Errno 20] Not a directory"),
        ([f"--export_dir={blocker / 'export'}"],
         f"--export_dir={blocker / 'export'}: cannot export to {blocker / 'export'}: "
         f"{blocker} is a file, not a directory"),
    ]


def test_bad_input_fails_with_one_line_and_no_traceback(tmp_path):
    cases = bad_inputs(tmp_path)
    argvs = [[*TINY, "--train_steps=1", *argv] for argv, _ in cases]
    argvs = [a if any(x.startswith("--model_dir") for x in a) else
             a + [f"--model_dir={tmp_path / 'runs' / str(i)}"] for i, a in enumerate(argvs)]
    driver = subprocess.run([sys.executable, "-c", BAD_FLAGS_DRIVER, json.dumps(argvs)], cwd=REPO,
                            env=ENV, capture_output=True, text=True, timeout=300)
    assert driver.returncode == 0, driver.stderr[-3000:]
    results = json.loads(driver.stdout.strip().splitlines()[-1])
    for (argv, message), result in zip(cases, results):
        assert result["escaped"] is None, (argv, result)
        assert result["code"] in (1, 2), (argv, result)
        assert "Traceback" not in result["stderr"], (argv, result["stderr"])
        lines = [line for line in result["stderr"].splitlines() if message in line]
        assert len(lines) == 1, (argv, message, result["stderr"][-2000:])
    # Nothing was trained or exported.
    assert not os.path.exists(tmp_path / "export")
    runs = tmp_path / "runs"
    assert not runs.exists() or not [p for p in runs.rglob("*") if "backup" in p.parts]
