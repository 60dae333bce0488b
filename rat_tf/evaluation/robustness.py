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
import time
from typing import Callable, Iterable, Optional, Sequence

import numpy as np
import tensorflow as tf

from rat_tf import attacks

LogitsFn = Callable[[tf.Tensor], tf.Tensor]

WHITE_BOX = ("fgsm", "pgd", "cw", "apgd_ce", "apgd_t")
QUERY_ONLY = ("square", "nattack")
ATTACKS = WHITE_BOX + QUERY_ONLY
PAPER_ATTACKS = ("fgsm", "pgd", "cw", "nattack")
DEFAULT_ATTACKS = ("fgsm", "pgd", "cw", "apgd_ce", "apgd_t", "square", "nattack")


@dataclasses.dataclass(frozen=True)
class SuiteConfig:
    """The attack suite (pixel units; defaults follow the paper and AutoAttack).

    Attributes:
      epsilon: Linf radius.
      step_size: PGD / CW step size (default epsilon / 4, i.e. 2/255 at 8/255).
      pgd_steps: PGD-K steps (paper reports PGD-20).
      restarts: random restarts for PGD and CW (worst case per example).
      cw_steps: steps of PGD on the CW margin.
      apgd_steps: APGD iterations (AutoAttack: 100).
      apgd_targets: target classes for APGD-T (AutoAttack: 9).
      square_queries: Square's query budget (AutoAttack: 5000).
      nattack_iterations, nattack_population: NAttack (paper: 200, 300).
      nattack_examples: NAttack runs on the first this-many examples (paper: 1,000).
      attacks: the attack names to run.
    """

    epsilon: float = 8 / 255
    step_size: Optional[float] = None
    pgd_steps: int = 20
    restarts: int = 1
    cw_steps: int = 30
    apgd_steps: int = 100
    apgd_targets: int = 9
    square_queries: int = 5000
    nattack_iterations: int = 200
    nattack_population: int = 300
    nattack_examples: int = 1000
    attacks: tuple[str, ...] = DEFAULT_ATTACKS

    def __post_init__(self):
        if not 0.0 <= self.epsilon <= 1.0:
            raise ValueError(f"epsilon must be in [0, 1] (pixel units), got {self.epsilon}")
        unknown = [a for a in self.attacks if a not in ATTACKS]
        if unknown:
            raise ValueError(f"unknown attack(s) {', '.join(unknown)}; allowed: {', '.join(ATTACKS)}")
        for name in ("pgd_steps", "restarts", "cw_steps", "apgd_steps", "apgd_targets",
                     "square_queries", "nattack_iterations", "nattack_population", "nattack_examples"):
            value = getattr(self, name)
            if int(value) != value or value < (0 if name == "pgd_steps" else 1):
                raise ValueError(f"{name} must be a positive integer, got {value}")

    @property
    def pgd_step_size(self) -> float:
        return self.step_size if self.step_size is not None else self.epsilon / 4


@dataclasses.dataclass
class RobustnessResult:
    """Per-example flags (True = still correctly classified) and their summaries."""

    clean: np.ndarray
    per_attack: dict[str, np.ndarray]
    coverage: dict[str, np.ndarray]
    seconds: dict[str, float]

    @property
    def worst_case(self) -> np.ndarray:
        robust = self.clean.copy()
        for flags in self.per_attack.values():
            robust &= flags
        return robust

    def accuracy(self, attack: str) -> float:
        """Accuracy under `attack` over the examples it ran on ("clean", "worst_case" too)."""
        if attack == "clean":
            return float(self.clean.mean())
        if attack == "worst_case":
            return float(self.worst_case.mean())
        covered = self.coverage[attack]
        return float(self.per_attack[attack][covered].mean()) if covered.any() else float("nan")

    def summary(self) -> dict[str, dict[str, float]]:
        rows = {"clean": {"accuracy": self.accuracy("clean"), "examples": int(self.clean.size)}}
        for name in self.per_attack:
            rows[name] = {"accuracy": self.accuracy(name), "examples": int(self.coverage[name].sum()),
                          "seconds": self.seconds.get(name, 0.0)}
        rows["worst_case"] = {"accuracy": self.accuracy("worst_case"), "examples": int(self.clean.size)}
        return rows


def batches(x: np.ndarray, y: np.ndarray, batch_size: int) -> Iterable[tuple[int, np.ndarray, np.ndarray]]:
    for start in range(0, len(x), batch_size):
        yield start, x[start:start + batch_size], y[start:start + batch_size]


def predict(logits_fn: LogitsFn, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Predicted labels, batched."""
    out = [np.argmax(np.asarray(logits_fn(tf.constant(xb))), -1) for _, xb, _ in batches(x, x, batch_size)]
    return np.concatenate(out) if out else np.zeros([0], np.int64)


def _compiled(fn):
    return tf.function(fn, reduce_retracing=True)


def make_attack(name: str, logits_fn: LogitsFn, suite: SuiteConfig) -> Callable[[np.ndarray, np.ndarray, int], np.ndarray]:
    """Returns attack(x_batch, y_batch, seed_int) -> adversarial batch (numpy) for one suite entry."""
    eps = suite.epsilon
    if name == "fgsm":
        run = _compiled(lambda x, y: attacks.fgsm(logits_fn, x, y, eps))
        return lambda x, y, seed: run(x, y).numpy()
    if name in ("pgd", "cw"):
        config = attacks.PGDConfig(epsilon=eps, step_size=suite.pgd_step_size,
                                   num_steps=suite.pgd_steps if name == "pgd" else suite.cw_steps,
                                   loss="ce" if name == "pgd" else "cw")
        run = _compiled(lambda x, y, seed: attacks.pgd(logits_fn, x, y, config, seed).end)
        return lambda x, y, seed: run(x, y, tf.constant([seed, 0], tf.int32)).numpy()
    if name == "apgd_ce":
        config = attacks.APGDConfig(epsilon=eps, num_steps=suite.apgd_steps, loss="ce")
        run = _compiled(lambda x, y, seed: attacks.apgd(logits_fn, x, y, config, seed).adversarial)
        return lambda x, y, seed: run(x, y, tf.constant([seed, 1], tf.int32)).numpy()
    if name == "apgd_t":
        config = attacks.APGDConfig(epsilon=eps, num_steps=suite.apgd_steps, loss="dlr_targeted")
        run = _compiled(lambda x, y, seed: attacks.apgd_targeted(
            logits_fn, x, y, config, seed, num_target_classes=suite.apgd_targets).adversarial)
        return lambda x, y, seed: run(x, y, tf.constant([seed, 2], tf.int32)).numpy()
    if name == "square":  # query-only: these call logits_fn eagerly, batched per query
        return lambda x, y, seed: np.asarray(attacks.square_attack(
            logits_fn, x, y, eps, num_queries=suite.square_queries, seed=seed))
    if name == "nattack":
        return lambda x, y, seed: np.asarray(attacks.nattack(
            logits_fn, x, y, eps, num_iterations=suite.nattack_iterations,
            population=suite.nattack_population, seed=seed))
    raise ValueError(f"unknown attack {name!r}; allowed: {', '.join(ATTACKS)}")


def evaluate(logits_fn: LogitsFn, x: np.ndarray, y: np.ndarray, suite: SuiteConfig, *,
             batch_size: int = 200, seed: int = 0,
             progress: Optional[Callable[[str, int, int], None]] = None) -> RobustnessResult:
    """Runs every attack of `suite` on (x, y) and returns per-example robust flags.

    Each example's flag under an attack is whether the model still predicts its label on the
    attack's output (PGD and CW: on every restart). NAttack runs on the first
    `suite.nattack_examples` examples only; elsewhere its flag is the clean flag.

    Args:
      logits_fn: images -> logits (inference mode).
      x: float32 NHWC images in [0, 1]; y: integer labels.
      suite: the attacks.
      batch_size: examples per attack call.
      seed: root seed; batch b of restart r uses seed + 1000 * r + b.
      progress: optional callback(attack_name, examples_done, examples_total).
    """
    x = np.asarray(x, np.float32)
    y = np.asarray(y).astype(np.int32).reshape(-1)
    clean = predict(logits_fn, x, batch_size) == y
    per_attack, coverage, seconds = {}, {}, {}
    for name in suite.attacks:
        attack = make_attack(name, logits_fn, suite)
        limit = min(len(x), suite.nattack_examples) if name == "nattack" else len(x)
        covered = np.zeros(len(x), bool)
        covered[:limit] = True
        robust = clean.copy()
        restarts = suite.restarts if name in ("pgd", "cw") else 1
        start_time = time.perf_counter()
        for restart in range(restarts):
            for b, (start, xb, yb) in enumerate(batches(x[:limit], y[:limit], batch_size)):
                adv = attack(xb, yb, seed + 1000 * restart + b)
                robust[start:start + len(xb)] &= predict(logits_fn, adv, batch_size) == yb
                if progress is not None:
                    progress(name, start + len(xb), limit)
        seconds[name] = time.perf_counter() - start_time
        per_attack[name], coverage[name] = robust, covered
    return RobustnessResult(clean, per_attack, coverage, seconds)


def pgd_accuracy(logits_fn: LogitsFn, x: np.ndarray, y: np.ndarray, config: attacks.PGDConfig, *,
                 batch_size: int = 200, seed: int = 0) -> float:
    """Accuracy under one PGD configuration (num_steps = 0 means clean accuracy)."""
    if config.num_steps == 0 or config.epsilon == 0:
        return float(np.mean(predict(logits_fn, x, batch_size) == y))
    run = _compiled(lambda xb, yb, s: attacks.pgd(logits_fn, xb, yb, config, s).end)
    correct = 0
    for b, (_, xb, yb) in enumerate(batches(np.asarray(x, np.float32), np.asarray(y, np.int32), batch_size)):
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
