"""Linf projected gradient descent with a recorded path, and the attacks built on it.

One PGD loop serves training (SAT, RAT, AVmixup, TRADES' KL attack), evaluation (PGD-K, FGSM,
CW-inf) and the sweeps. Attacks are pure functions: they call `logits_fn` (which must run the
model in inference mode), change no model state, and return `tf.stop_gradient`-ed tensors.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, NamedTuple, Optional

import tensorflow as tf

from rat_tf import randomness
from rat_tf.attacks.common import LogitsFn, batch_mask, check_count, check_epsilon, check_images, margin

LOSSES = ("ce", "cw")
# Attacks with at most this many steps are unrolled into the graph; longer ones (sweeps up to
# K = 100) use tf.while_loop to keep graphs small.
UNROLL_MAX_STEPS = 20


@dataclasses.dataclass(frozen=True)
class PGDConfig:
    """An Linf PGD attack (pixel units; images in [0, 1]).

    Attributes:
      epsilon: radius of the Linf ball.
      step_size: alpha, the size of each signed-gradient step.
      num_steps: K, the number of steps (0 returns the starting point).
      random_start: start from clip(x + U(-eps, eps), 0, 1) instead of x.
      loss: "ce" (cross-entropy on the hard label) or "cw" (the margin
        max_{j != y} z_j - z_y, PGD on it is the CW-inf attack).
    """

    epsilon: float = 8 / 255
    step_size: float = 2 / 255
    num_steps: int = 10
    random_start: bool = True
    loss: str = "ce"

    def __post_init__(self):
        check_epsilon(self.epsilon)
        if self.step_size < 0.0:
            raise ValueError(f"step_size must be >= 0, got {self.step_size}")
        check_count("num_steps", self.num_steps, 0)
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")


@dataclasses.dataclass(frozen=True)
class FGSMConfig:
    """FGSM (pixel units; images in [0, 1]): one signed-gradient step of size epsilon on the
    cross-entropy, from the clean point.

    Attributes:
      epsilon: the Linf radius, which is also the step.
    """

    epsilon: float = 8 / 255

    def __post_init__(self):
        check_epsilon(self.epsilon)


class PGDResult(NamedTuple):
    """The recorded path of a PGD run.

    Attributes:
      end: x'_e = x'_K, the end point (also `adversarial`, the name every attack result has).
      first: x'_f, the first iterate x'_t (t >= 1) predicted differently from the label;
        equal to `end` for examples where no iterate before x'_K is adversarial.
      found: bool per example, whether some iterate x'_1 .. x'_{K-1} was adversarial.
    """

    end: tf.Tensor
    first: tf.Tensor
    found: tf.Tensor

    @property
    def adversarial(self) -> tf.Tensor:
        """The attack's images: the end point, as the evaluation scores PGD."""
        return self.end


def cross_entropy(logits: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    """Per-example cross-entropy on hard labels, computed in float32."""
    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=tf.cast(logits, tf.float32))


def cw_margin(logits: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    """Per-example CW loss max_{j != y} z_j - z_y (positive means misclassified), float32: the
    negated label margin `common.margin`."""
    return -margin(tf.cast(logits, tf.float32), labels)


_LOSS_FNS = {"ce": cross_entropy, "cw": cw_margin}


def random_start(x: tf.Tensor, epsilon: float, seed) -> tf.Tensor:
    """x'_0 = clip(x + U(-eps, eps), 0, 1), with replica-consistent draws."""
    noise = randomness.uniform(seed, tf.shape(x), -epsilon, epsilon, dtype=x.dtype)
    return tf.clip_by_value(x + noise, 0.0, 1.0)


def pgd(logits_fn: LogitsFn,
        x: tf.Tensor,
        y: tf.Tensor,
        config: PGDConfig,
        seed=None,
        *,
        loss_fn: Optional[Callable[[tf.Tensor], tf.Tensor]] = None,
        start: Optional[tf.Tensor] = None,
        epsilon_scale=None) -> PGDResult:
    """Linf PGD (Madry et al. 2018, the paper's Eq. 2) that records its path.

    x'_{t+1} = Proj_{B(x, eps) & [0,1]}(x'_t + alpha * sign(grad L(f(x'_t), y))).
    The logits computed for the gradient at step t+1 tell whether x'_t is adversarial, so
    recording the first adversarial point costs no extra forward pass: the attack costs K
    forward-backward passes, as plain PGD.

    Args:
      logits_fn: images -> logits; must run the model in inference mode.
      x: clean images, float NHWC in [0, 1].
      y: integer labels (N,), used by the default losses and to decide "adversarial".
      config: the attack.
      seed: stateless seed (shape (2,)) for the random start; required if
        `config.random_start` and `start` is None.
      loss_fn: optional per-example loss of the logits to ascend instead of `config.loss`
        (e.g. TRADES' KL to the clean prediction).
      start: optional explicit starting point, used as given (TRADES starts at
        x + 0.001 N(0, 1) without projecting it); every later iterate is projected.
      epsilon_scale: optional scalar (a tensor is fine) multiplying epsilon and the step size,
        for an epsilon warm-up during training.

    Returns:
      A PGDResult; all tensors are `tf.stop_gradient`-ed.
    """
    x = tf.convert_to_tensor(check_images(x))
    y = tf.cast(tf.reshape(y, [-1]), tf.int32)
    eps = tf.cast(config.epsilon, x.dtype)
    alpha = tf.cast(config.step_size, x.dtype)
    if epsilon_scale is not None:
        eps, alpha = eps * tf.cast(epsilon_scale, x.dtype), alpha * tf.cast(epsilon_scale, x.dtype)
    lower = tf.maximum(x - eps, 0.0)
    upper = tf.minimum(x + eps, 1.0)
    if start is not None:
        x_adv = tf.cast(start, x.dtype)
    elif config.random_start and config.epsilon > 0:
        if seed is None:
            raise ValueError("pgd with random_start needs a seed")
        x_adv = random_start(x, eps, seed)
    else:
        x_adv = x
    if loss_fn is None:
        label_loss = _LOSS_FNS[config.loss]
        loss_fn = lambda logits: label_loss(logits, y)  # noqa: E731

    def body(t, x_t, first, found):
        with tf.GradientTape() as tape:
            tape.watch(x_t)
            logits = logits_fn(x_t)
            loss = tf.reduce_sum(loss_fn(logits))
        grad = tape.gradient(loss, x_t)
        if grad is None:  # no gradient path (a masked model): the attack cannot move
            grad = tf.zeros_like(x_t)
        # x'_0 (the random start) is not part of the path.
        is_adv = tf.logical_and(t > 0, tf.argmax(logits, axis=-1, output_type=tf.int32) != y)
        newly = tf.logical_and(is_adv, tf.logical_not(found))
        first = tf.where(batch_mask(newly, x_t), x_t, first)
        found = tf.logical_or(found, is_adv)
        x_next = tf.clip_by_value(x_t + alpha * tf.sign(grad), lower, upper)
        return t + 1, x_next, first, found

    state = (tf.constant(0), x_adv, x_adv, tf.zeros(tf.shape(y), tf.bool))
    if config.num_steps <= UNROLL_MAX_STEPS:
        # A static loop: measured about 20% faster than tf.while_loop for K = 10 on CPU.
        for _ in range(config.num_steps):
            state = body(*state)
        _, end, first, found = state
    else:
        _, end, first, found = tf.while_loop(lambda t, *_: t < config.num_steps, body, state,
                                             maximum_iterations=config.num_steps)
    first = tf.where(batch_mask(found, end), first, end)
    return PGDResult(tf.stop_gradient(end), tf.stop_gradient(first), tf.stop_gradient(found))


def fgsm(logits_fn: LogitsFn, x: tf.Tensor, y: tf.Tensor, config: FGSMConfig, seed=None) -> PGDResult:
    """FGSM (Goodfellow et al. 2015): clip(x + eps * sign(grad CE), 0, 1), no random start.

    PGD with one step of size epsilon from the clean point; `seed` is unused (FGSM draws
    nothing) and is there for the common signature.
    """
    del seed  # FGSM is deterministic
    return pgd(logits_fn, x, y, PGDConfig(epsilon=config.epsilon, step_size=config.epsilon, num_steps=1,
                                          random_start=False))


def cw_inf(logits_fn: LogitsFn, x: tf.Tensor, y: tf.Tensor, config: PGDConfig, seed=None) -> PGDResult:
    """CW-inf: PGD ascending the raw margin max_{j != y} z_j - z_y (`config.loss` is replaced)."""
    return pgd(logits_fn, x, y, dataclasses.replace(config, loss="cw"), seed)
