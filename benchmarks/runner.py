"""What every result runner shares: rows in JSON lines, run ids, the logged subprocess, the
hardware and commit a row records, the lock of a run directory, the CIFAR-10 folder.

The runners (`reproduce`, `study`, `overfit`, `figures`) run `train_main.py`, `evaluate_main.py`
or `python -m benchmarks.overfit_train` as subprocesses from `CODE_DIR` (the repository, or a
snapshot of it given by `--code_dir`, so that edits in the working tree cannot change a long run)
and append one JSON line per finished run to a file in `benchmarks/results/`.

Paths. The subprocesses get absolute paths (they run from `CODE_DIR`, which may be elsewhere), and
a run's id hashes its flags in that form, the form the ids have always had. What a row records is
relative to the repository: `relative_text` writes a path inside the repository relative to it
(`runs/repro/...`), a path beside it with `../` (`../runs/overfit/...`, `../cache/cifar10`) and the
home directory as `~`, so no row names a machine's directories.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import time
from typing import Any, Callable, Iterable, Optional

from rat_tf import files

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS_DIR = os.path.join(REPO, "benchmarks", "results")
# The shared data sets live beside the repository (../shared/data; see its README there).
SHARED_DATA = os.path.join(os.path.dirname(REPO), "shared", "data")
CIFAR_TAR = os.path.join(SHARED_DATA, "cifar10-jpeg.tar.gz")

# Where the subprocesses run (their cwd): the repository, or the snapshot named by --code_dir.
CODE_DIR = REPO


def use_code_dir(path: str) -> None:
    """Runs the subprocesses from `path` (a checkout or a `git archive` snapshot) from now on."""
    global CODE_DIR
    CODE_DIR = os.path.abspath(path)


# --------------------------------------------------------------------------------------------
# Rows.

def read_rows(path: str) -> list[dict[str, Any]]:
    """The rows of a JSON-lines file (none when it is missing; a malformed line is skipped, with a
    warning: a runner killed mid-write leaves at most one)."""
    if not os.path.exists(path):
        return []
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line:
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    print(f"warning: skipping a malformed line in {path}", file=sys.stderr)
    return rows


def append_row(path: str, row: dict[str, Any]) -> None:
    """Appends `row` as one JSON line, its paths relative to the repository (`relative_row`), in a
    single write: runners that share the file never interleave."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(relative_row(row), sort_keys=True) + "\n")


def load_json(path: str) -> Optional[dict[str, Any]]:
    """The JSON object in `path`; None when it is missing or unreadable."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def save_json(path: str, value: Any) -> None:
    """Writes `value` as JSON, atomically."""
    files.atomic_write(path, lambda f: json.dump(value, f))


def utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------------------------
# Ids and paths.

def run_id(args: Iterable[str], leave_out: Iterable[str] = ()) -> str:
    """The id of a flag list: 8 hex digits of the SHA-1 of its JSON, the flags in `leave_out`
    dropped and the home directory written as ~ (paths as the subprocess gets them)."""
    home, dropped = os.path.expanduser("~"), set(leave_out)
    return hashlib.sha1(json.dumps([a.replace(home, "~") for a in args if a not in dropped]
                                   ).encode()).hexdigest()[:8]


_PATH_START = r"(?<![\w.~/-])"       # a path starts a string or follows '=', ':', a space or a quote
_PATH_GOES_ON = r"(/|(?![\w.~-]))"   # then '/' and the rest, or the end of the path


def relative_text(text: str) -> str:
    """`text` with the repository's (and CODE_DIR's) absolute path written relative to the
    repository, its parent's as `..`, and the home directory as `~`. Relative text is unchanged."""
    parent = os.path.dirname(REPO)
    for root, relative in ((REPO, "."), (CODE_DIR, "."), (parent, "..")):
        if root == os.sep:
            continue
        pattern = _PATH_START + re.escape(root) + _PATH_GOES_ON
        text = re.sub(pattern, lambda m, rel=relative: ("" if rel == "." else rel + "/") if m.group(1)
                      else rel, text)
    home = os.path.expanduser("~")
    if home != os.sep:
        text = re.sub(_PATH_START + re.escape(home) + r"(?=/|(?![\w.~-]))", "~", text)
    return text


def relative_row(value: Any) -> Any:
    """`value` (a row, or any JSON value) with `relative_text` applied to every string in it."""
    if isinstance(value, str):
        return relative_text(value)
    if isinstance(value, dict):
        return {k: relative_row(v) for k, v in value.items()}
    if isinstance(value, list):
        return [relative_row(v) for v in value]
    return value


def command_text(cmd: list[str]) -> str:
    """The command as a user types it from the repository root: `python`, quoted arguments,
    paths relative to the repository."""
    return relative_text(" ".join(shlex.quote("python" if i == 0 else part) for i, part in enumerate(cmd)))


# --------------------------------------------------------------------------------------------
# Running.

EPOCH_LINE = re.compile(r"^\s*(\d+)/(\d+) - (\d+(?:\.\d+)?)(m?s) - ")


def run_logged(cmd: list[str], log_path: str,
               on_epoch: Optional[Callable[[float, float], None]] = None) -> tuple[int, float, float]:
    """Runs `cmd` from CODE_DIR, tee-ing its output to `log_path`. Returns (exit status, wall
    seconds, seconds of Keras `fit` epochs). `on_epoch(wall s, fit s so far)` follows each epoch line."""
    started = time.time()
    fit_seconds = 0.0
    with open(log_path, "a", encoding="utf-8") as log:
        log.write(f"\n$ {command_text(cmd)}\n")
        proc = subprocess.Popen(cmd, cwd=CODE_DIR, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            log.flush()
            match = EPOCH_LINE.match(line)
            if match:
                value = float(match.group(3))
                fit_seconds += value / 1000 if match.group(4) == "ms" else value
                print(f"    {line.rstrip()}", flush=True)
                if on_epoch is not None:
                    on_epoch(time.time() - started, fit_seconds)
        rc = proc.wait()
    return rc, time.time() - started, fit_seconds


def claim(model_dir: str) -> bool:
    """Takes MODEL_DIR/.lock for this process (False when a live process holds it), so that two
    lanes given the same run list do not train one run twice."""
    os.makedirs(model_dir, exist_ok=True)
    lock = os.path.join(model_dir, ".lock")
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                pid = int(open(lock, encoding="utf-8").read().strip() or 0)
                if pid == os.getpid():
                    return True
                os.kill(pid, 0)
                return False          # held by a live process
            except (ValueError, ProcessLookupError, OSError):
                os.remove(lock)       # stale: its process is gone
                continue
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(str(os.getpid()))
        return True
    return False


def release(model_dir: str) -> None:
    """Gives up this process's lock on `model_dir` (nothing when another process holds it)."""
    lock = os.path.join(model_dir, ".lock")
    try:
        if int(open(lock, encoding="utf-8").read().strip()) == os.getpid():
            os.remove(lock)
    except (OSError, ValueError):
        pass


def extract_once(tarball: str, folder: str) -> None:
    """Unpacks an image-folder tarball (`train/`, `test/`) into `folder` unless it is there: into a
    temporary sibling renamed at the end, so that a second lane never reads a half-unpacked tree."""
    if os.path.isdir(os.path.join(folder, "train")):
        return
    partial = f"{folder}.partial-{os.getpid()}"
    os.makedirs(partial, exist_ok=True)
    print(f"unpacking {tarball} into {folder}", flush=True)
    with tarfile.open(tarball) as tar:
        tar.extractall(partial, filter="data")
    try:
        os.rename(partial, folder)
    except OSError:               # another lane finished first (the folder exists and is not empty)
        shutil.rmtree(partial, ignore_errors=True)
        if not os.path.isdir(os.path.join(folder, "train")):
            raise


def deadline_reached(deadline: Optional[str]) -> bool:
    """Whether the UTC time HH:MM `deadline` has passed (never without one)."""
    return bool(deadline) and datetime.datetime.now(datetime.timezone.utc).strftime("%H:%M") >= deadline


# --------------------------------------------------------------------------------------------
# What a row records about the machine and the code.

def cpu_name() -> str:
    """The CPU's model name (/proc/cpuinfo), or the platform's processor string."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def hardware() -> str:
    """CPU, cores, RAM, TensorFlow and its GPUs, Python (imports TensorFlow for its version)."""
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            mem = int(f.readline().split()[1]) / 2 ** 20
        mem_text = f", {mem:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        mem_text = ""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:
        import tensorflow as tf  # noqa: PLC0415  (only for the version string)
        gpus = tf.config.list_physical_devices("GPU")
        tf_text = f"TensorFlow {tf.__version__}, {len(gpus)} GPU(s)"
    except Exception:  # noqa: BLE001
        tf_text = "TensorFlow ?"
    return f"{cpu_name()}, {cores} CPU cores{mem_text}; {tf_text}; Python {platform.python_version()}"


def git_commit(code_dir: Optional[str] = None) -> str:
    """The commit that ran: HEAD of code_dir (+ "-dirty"), or a snapshot's COMMIT file."""
    code_dir = code_dir or CODE_DIR
    marker = os.path.join(code_dir, "COMMIT")
    if not os.path.isdir(os.path.join(code_dir, ".git")) and os.path.exists(marker):
        return open(marker, encoding="utf-8").read().strip()
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=code_dir, capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=code_dir,
                               capture_output=True, text=True, check=True).stdout.strip()
        return commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


# --------------------------------------------------------------------------------------------
# The runners' shared command line.

def add_runner_flags(parser: argparse.ArgumentParser, results: Optional[str], runs_dir: str) -> None:
    """--only, --list, --dry_run, --results, --runs_dir, --code_dir and --deadline."""
    parser.add_argument("--only", default=None, help="regex on run names (re.search)")
    parser.add_argument("--list", action="store_true", help="print the runs and whether they are done")
    parser.add_argument("--dry_run", action="store_true", help="print the commands, run nothing")
    parser.add_argument("--results", default=results, help="the JSON-lines results file")
    parser.add_argument("--runs_dir", default=runs_dir, help="model directories (not committed)")
    parser.add_argument("--code_dir", default=REPO,
                        help="run the training and evaluation scripts from this checkout or snapshot (default: "
                             "this repository); a snapshot without .git names its commit in a COMMIT file. Its "
                             "parent must hold shared/data (the data paths are ../shared/data/...)")
    parser.add_argument("--deadline", default=None,
                        help="UTC time HH:MM: start no new run after it (a started run is not stopped)")


def select(pool: list[Any], only: Optional[str]) -> list[Any]:
    """The runs of `pool` (objects with a .name) whose name matches the regex `only` (all without one)."""
    return [r for r in pool if only is None or re.search(only, r.name)]


def no_match(pool: list[Any], only: Optional[str]) -> int:
    """Says that nothing matched `only` (and what could have); the exit status 2."""
    print(f"no run matches {only!r}; runs: {', '.join(r.name for r in pool)}", file=sys.stderr)
    return 2
