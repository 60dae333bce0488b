"""A quiet start for the command-line tools: TensorFlow without its start-up probe lines.

On a machine without a GPU, importing TensorFlow prints lines that read like failures
("Could not find cuda drivers", "failed call to cuInit: ... UNKNOWN ERROR (303)") and others
about CPU instructions and oneDNN. TensorFlow writes them from C++ before its logging is set up,
so `TF_CPP_MIN_LOG_LEVEL` does not silence them. `import_tensorflow()` imports TensorFlow and
initialises its devices with the process's stderr captured, then passes on every captured line
except those probes. It changes nothing when the user set `TF_CPP_MIN_LOG_LEVEL` or asked for
verbose logs (`--verbosity`/`-v` above 0).

This module imports no TensorFlow itself (and `import rat_tf` is lazy), so the entry scripts
call it before anything else.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile

# TensorFlow's start-up lines about the hardware it probed, not about the user's run.
PROBE_LINES = re.compile(
    r"cudart_stub\.cc|cuda_platform\.cc|cuda_executor\.cc|cuda_dnn\.cc|cuda_blas\.cc|cuda_fft\.cc"
    r"|failed call to cuInit|Unable to register cu(DNN|BLAS|FFT) factory"
    r"|All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|cpu_feature_guard\.cc|To enable the following instructions:.*rebuild TensorFlow"
    r"|port\.cc:\d+\] oneDNN custom operations are on|computation_placer\.cc")


def _verbose(argv: list[str]) -> bool:
    for i, arg in enumerate(argv):
        for flag in ("--verbosity", "-v"):
            if arg.startswith(flag + "="):
                value = arg.split("=", 1)[1]
            elif arg == flag and i + 1 < len(argv):
                value = argv[i + 1]
            else:
                continue
            try:
                return int(value) > 0
            except ValueError:
                return True
    return False


def import_tensorflow(argv: list[str] | None = None) -> None:
    """Imports TensorFlow and initialises its devices, dropping the start-up probe lines."""
    argv = sys.argv if argv is None else argv
    if "TF_CPP_MIN_LOG_LEVEL" in os.environ or _verbose(argv) or "tensorflow" in sys.modules:
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "1"  # TensorFlow's later C++ INFO lines
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow as tf
            tf.config.list_physical_devices()  # the CUDA probe runs here
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            for line in captured.read().decode("utf-8", "replace").splitlines(keepends=True):
                if not PROBE_LINES.search(line):
                    sys.stderr.write(line)
            sys.stderr.flush()
