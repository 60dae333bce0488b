"""Robust accuracy of a classifier under a suite of attacks, with per-example worst case.

Every attack comes from `rat_tf.attacks`; this module batches them, keeps a per-example
robust flag for each, and reports the per-example worst case over the whole suite (an example
counts as robust only if it is classified correctly clean and under every attack that ran on
it). That worst case, not PGD on cross-entropy, is the headline number.

`logits_fn` is any callable images -> logits: a Keras model in inference mode, or the `serve`
endpoint of an exported SavedModel. Query-only attacks (Square, NAttack) only call it.
"""

from __future__ import annotations

import dataclasses
import functools
import threading
import time
from typing import Callable, Iterable, Optional, Sequence

import keras
import numpy as np
import tensorflow as tf

from rat_tf import attacks
from rat_tf.attacks.common import LogitsFn
from rat_tf.evaluation.suite import AUTOATTACK, PRESETS, QUERY_ONLY, REGISTRY, WHITE_BOX, SuiteConfig, parse_attacks

ATTACKS = tuple(REGISTRY)
# What a model's outputs may be: logits, or softmax probabilities (attacked through their log).
OUTPUTS = ("logits", "probabilities")
ProgressFn = Callable[[str, int, int], None]
QUERY_BATCH_FACTOR = 4  # query-only attacks run on batches of this many times `batch_size`

__all__ = ["ATTACKS", "AUTOATTACK", "PRESETS", "QUERY_ONLY", "RobustnessResult",
           "SuiteConfig", "WHITE_BOX", "check_images", "compile_attack", "epsilon_sweep", "evaluate",
           "generalisation_gaps", "parse_attacks", "pgd_accuracy", "predict", "progress_bars", "steps_sweep"]


@dataclasses.dataclass
class RobustnessResult:
    """Per-example flags (True = still correctly classified) and their summaries.

    Attributes:
      clean: the clean flags.
      per_attack: attack -> flags. For an attack of the AutoAttack cascade the flags are
        cumulative: robust after it and every earlier attack of the cascade.
      coverage: attack -> the examples it attacked or judged (NAttack: its first examples; a
        cascade attack: the examples still robust when its turn came).
      seconds: attack -> wall time.
      cascade: the attacks that ran as AutoAttack's cascade, in order (empty if none).
      autoattack_attacks: the attacks whose per-example minimum is "autoattack": the cascade,
        or the standard version's four attacks when they ran on their own.
    """

    clean: np.ndarray
    per_attack: dict[str, np.ndarray]
    coverage: dict[str, np.ndarray]
    seconds: dict[str, float]
    cascade: tuple[str, ...] = ()
    autoattack_attacks: tuple[str, ...] = AUTOATTACK

    @property
    def worst_case(self) -> np.ndarray:
        robust = self.clean.copy()
        for flags in self.per_attack.values():
            robust &= flags
        return robust

    @property
    def has_autoattack(self) -> bool:
        return all(name in self.per_attack for name in self.autoattack_attacks)

    @property
    def autoattack(self) -> np.ndarray:
        """Robust under AutoAttack (its cascade, or the standard version's attacks run alone)."""
        robust = self.clean.copy()
        for name in self.autoattack_attacks:
            robust &= self.per_attack[name]
        return robust

    @property
    def broken_by(self) -> np.ndarray:
        """Per example: "clean" (misclassified clean), the first AutoAttack attack that broke it in
        AutoAttack's order, or "" (robust)."""
        out = np.where(self.clean, "", "clean").astype(object)
        for name in self.autoattack_attacks:
            out[(out == "") & ~self.per_attack[name]] = name
        return out

    def accuracy(self, attack: str) -> float:
        """Accuracy under `attack` ("clean", "worst_case" and "autoattack" too).

        Over the examples the attack ran on; for an attack of the cascade, over all examples
        (the robust accuracy after it, as AutoAttack reports it).
        """
        if attack == "clean":
            return float(self.clean.mean())
        if attack == "worst_case":
            return float(self.worst_case.mean())
        if attack == "autoattack":
            return float(self.autoattack.mean())
        if attack in self.cascade:
            return float(self.per_attack[attack].mean())
        covered = self.coverage[attack]
        return float(self.per_attack[attack][covered].mean()) if covered.any() else float("nan")

    def summary(self) -> dict[str, dict]:
        rows: dict[str, dict] = {"clean": {"accuracy": self.accuracy("clean"), "examples": int(self.clean.size)}}
        for name in self.per_attack:
            rows[name] = {"accuracy": self.accuracy(name), "examples": int(self.coverage[name].sum()),
                          "seconds": self.seconds.get(name, 0.0)}
            if name in self.cascade:
                rows[name]["cascade"] = True
        if self.has_autoattack:
            broken = self.broken_by
            rows["autoattack"] = {
                "accuracy": self.accuracy("autoattack"), "examples": int(self.clean.size),
                "seconds": sum(self.seconds.get(name, 0.0) for name in self.autoattack_attacks),
                "protocol": "cascade" if self.cascade else "independent",
                "attacks": list(self.autoattack_attacks),
                "broken_by": {name: int(np.sum(broken == name)) for name in self.autoattack_attacks}}
        rows["worst_case"] = {"accuracy": self.accuracy("worst_case"), "examples": int(self.clean.size)}
        return rows


def batches(x: np.ndarray, y: np.ndarray, batch_size: int) -> Iterable[tuple[int, np.ndarray, np.ndarray]]:
    for start in range(0, len(x), batch_size):
        yield start, x[start:start + batch_size], y[start:start + batch_size]


def predict(logits_fn: LogitsFn, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Predicted labels, batched."""
    out = [np.argmax(np.asarray(logits_fn(tf.constant(xb))), -1) for _, xb, _ in batches(x, x, batch_size)]
    return np.concatenate(out) if out else np.zeros([0], np.int64)


def looks_like_probabilities(outputs: np.ndarray, tolerance: float = 1e-3) -> tuple[bool, float]:
    """(outputs are in [0, 1] with rows summing to 1 within `tolerance`, the largest row error)."""
    out = np.asarray(outputs, np.float64)
    row_error = float(np.max(np.abs(out.sum(-1) - 1.0))) if out.size else 0.0
    return bool(out.size and np.all((out >= 0) & (out <= 1)) and row_error < tolerance), row_error


def check_images(x) -> np.ndarray:
    """`x` as float32 numpy images, or the one-line ValueError of `rat_tf.attacks.check_images`
    when it does not hold float images in [0, 1]."""
    return np.asarray(attacks.check_images(np.asarray(x)), np.float32)


class FromProbabilities:
    """The attacks' view of a model that outputs probabilities: log p as logits.

    log-softmax(log p) = log p, so cross-entropy and DLR on it are those of the model's
    probabilities. Query attacks whose loss is a margin (Square) read `probabilities` itself, as
    the official AutoAttack's Square takes the margin of whatever the model outputs.
    """

    def __init__(self, probabilities: LogitsFn):
        self.probabilities = probabilities

    def __call__(self, images):
        return tf.math.log(tf.maximum(tf.cast(self.probabilities(images), tf.float32), 1e-30))


def attack_view(logits_fn: LogitsFn, x: np.ndarray, outputs: str = "logits") -> LogitsFn:
    """The function the attacks call: `logits_fn`, or `FromProbabilities` of it.

    Args:
      logits_fn: the model, images -> outputs.
      x: a few images to look at its outputs.
      outputs: what the model outputs, "logits" or "probabilities" (`OUTPUTS`).

    Raises:
      ValueError: outputs that look like probabilities when "logits" were declared (attacking
        saturated probabilities as logits kills gradients and margins, so robust accuracy would be
        inflated), or outputs that are not probabilities when "probabilities" were declared.
    """
    if outputs not in OUTPUTS:
        raise ValueError(f"outputs must be one of {', '.join(OUTPUTS)}, got {outputs!r}")
    looks, row_error = looks_like_probabilities(np.asarray(logits_fn(tf.constant(x))))
    if outputs == "logits" and looks:
        raise ValueError("outputs: the model's outputs look like probabilities (in [0, 1], rows summing to 1), "
                         "not logits; declare outputs='probabilities' (evaluate_main.py --outputs=probabilities) "
                         "to attack their logarithm, or evaluate the logits")
    if outputs == "probabilities":
        if not looks:
            raise ValueError(f"outputs='probabilities' but the outputs are not probabilities (rows sum to 1 "
                             f"within {row_error:.3g}, or values outside [0, 1]); use outputs='logits'")
        return FromProbabilities(logits_fn)
    return logits_fn


def _adversarial(run, logits_fn: LogitsFn, config, x, y, seed) -> tf.Tensor:
    return run(logits_fn, x, y, config, seed).adversarial


def compile_attack(run, logits_fn: LogitsFn, config, image_shape) -> Callable:
    """`run(logits_fn, x, y, config, seed).adversarial` as one `tf.function` of (x, y, seed), for
    float32 images of `image_shape` (H, W, C) and int32 labels: traced once, for any batch size.

    `run` is an attack of `rat_tf.attacks` (the common signature) and `seed` a stateless (2,)
    int32 seed.
    """
    signature = [tf.TensorSpec([None, *image_shape], tf.float32), tf.TensorSpec([None], tf.int32),
                 tf.TensorSpec([2], tf.int32)]
    # A partial, not a lambda: TensorFlow counts the traces of all tf.functions made from one
    # Python function (one code object) together, so attacks compiled from one lambda, each
    # traced once, would read as one function retraced on every call. No AutoGraph: the attacks
    # write their loops with tf.while_loop, and converting their source took most of the tracing.
    return tf.function(functools.partial(_adversarial, run, logits_fn, config), input_signature=signature,
                       autograph=False)


def make_attack(name: str, logits_fn: LogitsFn, suite: SuiteConfig, num_classes: int
                ) -> Callable[[np.ndarray, np.ndarray, int], np.ndarray]:
    """attack(x_batch, y_batch, seed_int) -> adversarial batch (numpy), from the registry."""
    spec = REGISTRY[name]
    config = spec.config(suite, num_classes)
    if spec.query_only:  # these call logits_fn eagerly, batched per query
        if name == "square":  # Square's margin is on the model's own outputs (probabilities, if so)
            logits_fn = getattr(logits_fn, "probabilities", logits_fn)
        return lambda x, y, seed: np.asarray(
            spec.run(logits_fn, x, y, config, tf.constant([0, seed], tf.int32)).adversarial)
    compiled = []  # traced once, by `run.trace` or at the first call, for any batch size
    lock = threading.Lock()

    def trace(image_shape) -> Callable:
        with lock:
            if not compiled:
                function = compile_attack(spec.run, logits_fn, config, image_shape)
                function.get_concrete_function()
                compiled.append(function)
        return compiled[0]

    def run(x, y, seed):
        return trace(x.shape[1:])(x, y, tf.constant([seed, spec.seed_stream], tf.int32)).numpy()

    run.trace = trace
    return run


def progress_bars() -> ProgressFn:
    """A progress callback that draws one `keras.utils.Progbar` (with its ETA) per attack."""
    bars: dict[str, keras.utils.Progbar] = {}

    def update(name: str, done: int, total: int) -> None:
        if name not in bars:
            print(f"{REGISTRY[name].title if name in REGISTRY else name} on {total} images", flush=True)
            bars[name] = keras.utils.Progbar(total, unit_name="image")
        bars[name].update(done)

    return update


def _attack_examples(name: str, attack, logits_fn, x, y, index: np.ndarray, suite: SuiteConfig,
                     batch_size: int, seed: int, progress: Optional[ProgressFn]) -> np.ndarray:
    """Flags of the examples `index` under one attack (every restart must fail)."""
    robust = np.ones(len(index), bool)
    restarts = suite.restarts if REGISTRY[name].uses_restarts else 1
    if REGISTRY[name].query_only:
        # A query attack's time goes into its sequential iterations, not the model calls: fewer,
        # larger batches are faster.
        batch_size *= QUERY_BATCH_FACTOR
    if progress is not None and len(index):
        progress(name, 0, restarts * len(index))  # the bar appears when the attack starts
    for restart in range(restarts):
        for b, start in enumerate(range(0, len(index), batch_size)):
            rows = index[start:start + batch_size]
            adv = attack(x[rows], y[rows], seed + 1000 * restart + b)
            robust[start:start + len(rows)] &= predict(logits_fn, adv, batch_size) == y[rows]
            if progress is not None:
                progress(name, start + len(rows) + restart * len(index), restarts * len(index))
    return robust


def evaluate(logits_fn: LogitsFn, x: np.ndarray, y: np.ndarray, suite: SuiteConfig, *,
             batch_size: int = 200, seed: int = 0,
             progress: Optional[ProgressFn] = None) -> RobustnessResult:
    """Runs the suite on (x, y) and returns per-example robust flags.

    The standalone attacks (`suite.attacks`) each run on every clean-correct example; an
    example's flag is whether the model still predicts its label on the attack's output (PGD
    and CW: on every restart). NAttack runs on the first `suite.nattack_examples` examples only;
    elsewhere its flag is the clean flag. With `suite.autoattack`, AutoAttack's standard version
    runs as AutoAttack runs it: APGD-CE, APGD-T, FAB-T and Square in turn, each on the examples
    still robust after the previous ones.

    Args:
      logits_fn: images -> logits (inference mode).
      x: float32 NHWC images in [0, 1]; y: integer labels.
      suite: the attacks.
      batch_size: examples per attack call.
      seed: root seed; batch b of restart r uses seed + 1000 * r + b.
      progress: optional callback(attack_name, examples_done, examples_total), e.g.
        `progress_bars()`.
    """
    x = np.asarray(x, np.float32)
    y = np.asarray(y).astype(np.int32).reshape(-1)
    clean = predict(logits_fn, x, batch_size) == y
    num_classes = int(np.asarray(logits_fn(tf.constant(x[:1]))).shape[-1]) if len(x) else 2
    cascade = suite.cascade
    per_attack, coverage, seconds = {}, {}, {}
    still_robust = clean.copy()
    made = {name: make_attack(name, logits_fn, suite, num_classes) for name in suite.names}
    # Trace the compiled attacks in a background thread, so that tracing (Python, one core)
    # overlaps the model passes of the attacks before them instead of stalling between them
    # (1.9 s less on the README's first evaluation, over seven paired runs; same results). The
    # thread is stopped and joined before returning: TensorFlow aborts a process that exits
    # while another thread traces.
    stop = threading.Event()
    tracer = threading.Thread(target=_trace_all, args=(made, x.shape[1:], stop), daemon=True)
    if len(x):
        tracer.start()
    try:
        for name in suite.names:
            attack = made[name]
            in_cascade = name in cascade
            judged = np.zeros(len(x), bool)  # the examples this attack's flags speak for
            judged[:min(len(x), suite.nattack_examples) if name == "nattack" else len(x)] = True
            base = still_robust if in_cascade else clean
            index = np.flatnonzero(base & judged)  # examples misclassified already are not attacked
            flags = base.copy()
            start_time = time.perf_counter()
            flags[index] = _attack_examples(name, attack, logits_fn, x, y, index, suite, batch_size, seed,
                                            progress)
            seconds[name] = time.perf_counter() - start_time
            coverage[name] = base & judged if in_cascade else judged
            per_attack[name] = flags
            if in_cascade:
                still_robust = flags
    finally:
        stop.set()
        if tracer.is_alive():
            tracer.join()
    return RobustnessResult(clean, per_attack, coverage, seconds, cascade, cascade or AUTOATTACK)


def _trace_all(made: dict[str, Callable], image_shape, stop: threading.Event) -> None:
    try:
        for attack in made.values():
            if stop.is_set():
                return
            if hasattr(attack, "trace"):
                attack.trace(image_shape)
    except Exception:  # noqa: BLE001 - the attack's own call traces again and raises it there
        pass


def pgd_accuracy(logits_fn: LogitsFn, x: np.ndarray, y: np.ndarray, config: attacks.PGDConfig, *,
                 batch_size: int = 200, seed: int = 0) -> float:
    """Accuracy under one PGD configuration (num_steps = 0 means clean accuracy)."""
    if config.num_steps == 0 or config.epsilon == 0:
        return float(np.mean(predict(logits_fn, x, batch_size) == y))
    x, y = np.asarray(x, np.float32), np.asarray(y, np.int32)
    run = compile_attack(attacks.pgd, logits_fn, config, x.shape[1:])
    correct = 0
    for b, (_, xb, yb) in enumerate(batches(x, y, batch_size)):
        adv = run(xb, yb, tf.constant([seed, b], tf.int32)).numpy()
        correct += int(np.sum(predict(logits_fn, adv, batch_size) == yb))
    return correct / len(x)


def steps_sweep(logits_fn, x, y, epsilon: float, step_size: float,
                steps: Sequence[int] = (0, 1, 2, 3, 5, 7, 10, 20, 40, 70, 100), **kwargs) -> dict[int, float]:
    """Robust accuracy vs PGD iterations K (the paper's Fig. 4: eps 8/255, step 2/255); K = 0 is clean."""
    return {int(k): pgd_accuracy(logits_fn, x, y, attacks.PGDConfig(epsilon, step_size, int(k)), **kwargs)
            for k in steps}


def epsilon_sweep(logits_fn, x, y, epsilons: Sequence[float], step_size: float, num_steps: int = 10,
                  **kwargs) -> dict[float, float]:
    """Robust accuracy vs epsilon (the paper's Fig. 5: PGD-10, step 2/255); eps = 0 is clean."""
    return {float(e): pgd_accuracy(logits_fn, x, y, attacks.PGDConfig(e, step_size, num_steps), **kwargs)
            for e in epsilons}


def generalisation_gaps(logits_fn, train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray],
                        config: attacks.PGDConfig, **kwargs) -> dict[str, float]:
    """Train and test clean / PGD accuracy and their gaps (the paper's Fig. 3 and 6)."""
    out = {}
    for split, (x, y) in (("train", train), ("test", test)):
        out[f"{split}_clean"] = pgd_accuracy(logits_fn, x, y, dataclasses.replace(config, num_steps=0), **kwargs)
        out[f"{split}_pgd"] = pgd_accuracy(logits_fn, x, y, config, **kwargs)
    out["clean_gap"] = out["train_clean"] - out["test_clean"]
    out["pgd_gap"] = out["train_pgd"] - out["test_pgd"]
    return out
