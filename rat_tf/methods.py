"""Training methods: one small object per method, all on the same attack, sampler and labels.

A method turns a clean batch (x, y) into what the outer, training-mode pass sees:
`TrainingBatch(inputs, targets, labels)`. The model (`rat_tf.model.RATModel`) runs
`forward(classifier, inputs)` under the gradient tape and minimises `loss(targets, y_pred)`.

| name    | training points                                 | targets                       |
|---------|-------------------------------------------------|-------------------------------|
| st      | x                                               | one-hot                       |
| sat     | x'_e (PGD-K end point, Madry et al. 2018)       | one-hot                       |
| sat_ars | m ARS samples per example                       | one-hot (beta = 1)            |
| rat     | m ARS samples per example                       | distance-aware soft labels    |
| avmixup | ARS with x'_f = x'_e, s ~ U(0, gamma), clip at the vertex | LS(y, lambda1 .. lambda2) |
| trades  | (x, x_adv) from PGD on KL(p(x) || p(x'))        | CE(x) + beta KL (two passes)  |
| adt     | one sample of ADT_EXP's learned distribution    | one-hot                       |

SAT is also RAT's special case (scales {1}, beta = 1, m = 1, x'_f := x'_e); the tests check
that both give the same batch and loss.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, ClassVar, NamedTuple

import keras
import tensorflow as tf

from rat_tf import labels as labels_lib
from rat_tf import randomness, region, validation
from rat_tf.attacks import ADTConfig, PGDConfig, adt_sample, pgd
from rat_tf.attacks.common import LogitsFn


class TrainingBatch(NamedTuple):
    """What the outer pass trains on.

    Attributes:
      inputs: the training points (or a tuple of inputs for methods with several passes).
      targets: what the loss compares the outer pass with (soft labels for most methods).
      labels: hard labels of the training points, for the accuracy metric.
    """

    inputs: Any
    targets: Any
    labels: tf.Tensor


def _unit(name: str, value: float) -> float:
    return validation.check_float(name, value, minimum=0.0, maximum=1.0)


class Method:
    """Base class: standard training on clean points with one-hot labels ("st")."""

    name: ClassVar[str] = "st"

    def __init__(self):
        pass

    # --- configuration -----------------------------------------------------------------
    @classmethod
    def hyperparameters(cls) -> dict[str, Any]:
        """The constructor arguments of this method and their defaults (the paper's values)."""
        params = inspect.signature(cls.__init__).parameters
        return {k: p.default for k, p in params.items() if k != "self"}

    def get_config(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.hyperparameters()}

    @property
    def attack(self) -> PGDConfig | None:
        """The PGD attack the method trains against (None for ST)."""
        return None

    # --- the training step -------------------------------------------------------------
    def training_batch(self, logits_fn: LogitsFn, x: tf.Tensor, y: tf.Tensor, num_classes: int,
                       seed: tf.Tensor, epsilon_scale=None) -> TrainingBatch:
        """Builds the training points. `logits_fn` runs the classifier in inference mode.

        `epsilon_scale` (a scalar, default 1) multiplies the attack's epsilon and step size:
        the model's epsilon warm-up.
        """
        del logits_fn, seed, epsilon_scale
        return TrainingBatch(x, tf.one_hot(y, num_classes), y)

    def forward(self, classifier: keras.Model, inputs: Any) -> Any:
        """The outer pass, in training mode."""
        return classifier(inputs, training=True)

    def loss(self) -> keras.losses.Loss:
        """The outer loss (a Keras Loss, so that Keras scales it across replicas)."""
        return keras.losses.CategoricalCrossentropy(from_logits=True, name="soft_label_ce")

    def metric_logits(self, y_pred: Any) -> tf.Tensor:
        """The logits the training accuracy is computed from."""
        return y_pred

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


def split_seed(seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """(attack seed, sampling seed): every method draws its PGD random start from the first."""
    attack_seed, sample_seed = tf.unstack(
        tf.random.experimental.stateless_split(tf.cast(seed, tf.int32), 2))
    return attack_seed, sample_seed


class _AttackMixin:
    """Shared PGD hyperparameters and validation."""

    def _set_attack(self, epsilon, step_size, num_steps):
        self.epsilon = float(epsilon)
        self.step_size = float(step_size)
        self.num_steps = num_steps
        self._attack = PGDConfig(epsilon=self.epsilon, step_size=self.step_size,
                                 num_steps=self.num_steps)

    @property
    def attack(self) -> PGDConfig:
        return self._attack


class SAT(_AttackMixin, Method):
    """Standard adversarial training (Madry et al. 2018): train on x'_K with hard labels."""

    name = "sat"

    def __init__(self, epsilon: float = 8 / 255, step_size: float = 2 / 255, num_steps: int = 10):
        super().__init__()
        self._set_attack(epsilon, step_size, num_steps)

    def training_batch(self, logits_fn, x, y, num_classes, seed, epsilon_scale=None):
        end = pgd(logits_fn, x, y, self.attack, split_seed(seed)[0], epsilon_scale=epsilon_scale).end
        return TrainingBatch(end, tf.one_hot(y, num_classes), y)


@dataclasses.dataclass(frozen=True)
class RegionSampler:
    """Training points drawn from the adversarial region, with distance-aware labels.

    The one sampler configuration behind RAT, SAT+ARS and AVmixup: a method that trains on
    the region owns one of these and hands it the PGD path.

    Attributes:
      region: where the points lie (`rat_tf.region.RegionConfig`).
      beta_max, beta_min: the label-smoothing factor at scale 0 and at `region.max_scale`.
      smooth_from_scale: labels are smoothed only beyond this scale (0: the paper's DLS).
      end_point_fraction: the fraction of the n * m points replaced by the PGD end points with
        one-hot labels (the first rows of the sample-major batch).
    """

    region: region.RegionConfig
    beta_max: float = 1.0
    beta_min: float = 1.0
    smooth_from_scale: float = 0.0
    end_point_fraction: float = 0.0

    def soft_labels(self, y: tf.Tensor, num_classes: int, scale: tf.Tensor) -> tf.Tensor:
        return labels_lib.distance_aware_labels(y, num_classes, scale, self.region.max_scale,
                                                self.beta_max, self.beta_min,
                                                self.smooth_from_scale)

    def batch(self, x: tf.Tensor, y: tf.Tensor, path: Any, num_classes: int,
              seed: tf.Tensor) -> TrainingBatch:
        """The n * m points around `path` (a `PGDResult`) and their targets."""
        config = self.region
        draw = region.draw(config, tf.shape(x)[0], seed)
        points = region.sample(x, path.first, path.end, draw, config)
        point_labels = tf.tile(y, [config.num_samples])
        targets = self.soft_labels(point_labels, num_classes, tf.reshape(draw.scale, [-1]))
        if self.end_point_fraction > 0:
            total = tf.shape(points)[0]
            count = tf.cast(tf.round(self.end_point_fraction * tf.cast(total, tf.float32)),
                            tf.int32)
            is_end = tf.range(total) < count
            ends = tf.tile(path.end, tf.concat([[config.num_samples],
                                                tf.ones_like(tf.shape(x)[1:])], 0))
            points = tf.where(tf.reshape(is_end, [-1] + [1] * (x.shape.rank - 1)), ends, points)
            targets = tf.where(is_end[:, None], tf.one_hot(point_labels, num_classes), targets)
        return TrainingBatch(points, targets, point_labels)


class _RegionMethod(_AttackMixin, Method):
    """A method that trains on the points its `sampler` draws around the PGD path."""

    sampler: RegionSampler

    @property
    def region(self) -> region.RegionConfig:
        return self.sampler.region

    @region.setter
    def region(self, config: region.RegionConfig) -> None:
        self.sampler = dataclasses.replace(self.sampler, region=config)

    def soft_labels(self, y: tf.Tensor, num_classes: int, scale: tf.Tensor) -> tf.Tensor:
        return self.sampler.soft_labels(y, num_classes, scale)

    def training_batch(self, logits_fn, x, y, num_classes, seed, epsilon_scale=None):
        attack_seed, region_seed = split_seed(seed)
        path = pgd(logits_fn, x, y, self.attack, attack_seed, epsilon_scale=epsilon_scale)
        return self.sampler.batch(x, y, path, num_classes, region_seed)


class RAT(_RegionMethod):
    """Regional adversarial training (Song et al. 2022): ARS + DLS on the recorded PGD path.

    Two generalisations beyond the paper (defaults give the paper's RAT):
      end_point_fraction: the fraction of the n * m training points that are the PGD end
        points x'_e with hard labels (the first round(f * n * m) rows of the sample-major
        batch; the rest are ARS samples with DLS). 1 with m = 1 is SAT.
      smooth_from_scale: DLS smooths only beyond this scale s0 (beta = beta_max for s <= s0,
        then linear down to beta_min at S).
    """

    name = "rat"

    def __init__(self, epsilon: float = 8 / 255, step_size: float = 2 / 255, num_steps: int = 10,
                 num_samples: int = 2, max_scale: float = 2.0, scale_step: float = 0.1,
                 beta_max: float = 1.0, beta_min: float = 0.1, end_point_fraction: float = 0.0,
                 smooth_from_scale: float = 0.0):
        super().__init__()
        self.end_point_fraction = _unit("end_point_fraction", end_point_fraction)
        if not 0.0 <= smooth_from_scale < max_scale:
            raise ValueError(f"smooth_from_scale must be in [0, max_scale={max_scale}), "
                             f"got {smooth_from_scale}")
        self.smooth_from_scale = float(smooth_from_scale)
        self._set_attack(epsilon, step_size, num_steps)
        self.beta_max = _unit("beta_max", beta_max)
        self.beta_min = _unit("beta_min", beta_min)
        if beta_min > beta_max:
            raise ValueError(f"beta_min ({beta_min}) must be <= beta_max ({beta_max})")
        self.num_samples = validation.check_int("num_samples", num_samples, minimum=1)
        self.max_scale = float(max_scale)
        self.scale_step = float(scale_step)
        self.sampler = RegionSampler(
            region.RegionConfig(num_samples=self.num_samples,
                                scales=region.scale_grid(self.max_scale, self.scale_step),
                                max_scale=self.max_scale),
            beta_max=self.beta_max, beta_min=self.beta_min,
            smooth_from_scale=self.smooth_from_scale,
            end_point_fraction=self.end_point_fraction)


class SATARS(RAT):
    """The paper's ablation SAT+ARS (Table 3): region samples with hard labels (beta = 1)."""

    name = "sat_ars"

    def __init__(self, epsilon: float = 8 / 255, step_size: float = 2 / 255, num_steps: int = 10,
                 num_samples: int = 2, max_scale: float = 2.0, scale_step: float = 0.1):
        super().__init__(epsilon, step_size, num_steps, num_samples, max_scale, scale_step,
                         beta_max=1.0, beta_min=1.0)


class AVmixup(_RegionMethod):
    """AVmixup (Lee et al. 2020) as a configuration of the region sampler.

    delta = x'_K - x, vertex x_v = clip(x + gamma * delta, 0, 1), w ~ U(0, 1),
    point w * x + (1 - w) * x_v with label w * LS(y, lambda1) + (1 - w) * LS(y, lambda2).
    With s = (1 - w) * gamma this is the sampler with x'_f = x'_e, s ~ U(0, gamma), clipping at
    the vertex, and DLS with beta_max = lambda1, beta_min = lambda2, S = gamma (LS is affine in
    its smoothing value).
    """

    name = "avmixup"

    def __init__(self, epsilon: float = 8 / 255, step_size: float = 2 / 255, num_steps: int = 10,
                 gamma: float = 2.0, lambda1: float = 1.0, lambda2: float = 0.1):
        super().__init__()
        self._set_attack(epsilon, step_size, num_steps)
        self.gamma = validation.check_float("gamma", gamma, minimum=0.0, exclude_minimum=True)
        self.lambda1 = _unit("lambda1", lambda1)
        self.lambda2 = _unit("lambda2", lambda2)
        self.sampler = RegionSampler(
            region.RegionConfig(num_samples=1, scales=None, max_scale=self.gamma,
                                use_first_point=False, clip="vertex"),
            beta_max=self.lambda1, beta_min=self.lambda2)


def kl_divergence(p_logits: tf.Tensor, q_logits: tf.Tensor) -> tf.Tensor:
    """Per-example KL(softmax(p) || softmax(q)), in float32."""
    p_log = tf.nn.log_softmax(tf.cast(p_logits, tf.float32))
    q_log = tf.nn.log_softmax(tf.cast(q_logits, tf.float32))
    return tf.reduce_sum(tf.exp(p_log) * (p_log - q_log), axis=-1)


@keras.saving.register_keras_serializable(package="rat_tf")
class TradesLoss(keras.losses.Loss):
    """CE(f(x), y) + beta * KL(p(x) || p(x_adv)) per example; y_pred = (clean, adversarial) logits.

    Gradients flow through both branches (the clean prediction is not a constant target).
    """

    def __init__(self, beta: float = 6.0, name: str = "trades_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.beta = float(beta)

    def call(self, y_true, y_pred):
        clean, adversarial = y_pred
        ce = tf.nn.softmax_cross_entropy_with_logits(labels=tf.cast(y_true, tf.float32),
                                                     logits=tf.cast(clean, tf.float32))
        return ce + self.beta * kl_divergence(clean, adversarial)

    def get_config(self):
        return {**super().get_config(), "beta": self.beta}


class TRADES(_AttackMixin, Method):
    """TRADES (Zhang et al. 2019) with the official code's attack and loss.

    Inner: from x + 0.001 N(0, 1), K signed steps ascending KL(p(x) || p(x')), projected and
    clipped. Outer: CE(f(x), y) + beta * mean KL(p(x) || p(x_adv)), clean and adversarial
    images in separate training-mode forward calls. Training accuracy is on the clean branch.
    """

    name = "trades"

    def __init__(self, epsilon: float = 0.031, step_size: float = 0.007, num_steps: int = 10,
                 beta: float = 6.0):
        super().__init__()
        self._set_attack(epsilon, step_size, num_steps)
        self.beta = validation.check_float("beta", beta, minimum=0.0)

    def training_batch(self, logits_fn, x, y, num_classes, seed, epsilon_scale=None):
        attack_seed, _ = split_seed(seed)
        clean_logits = tf.stop_gradient(logits_fn(x))
        start = x + 0.001 * randomness.normal(attack_seed, tf.shape(x), dtype=x.dtype)
        attack = dataclasses.replace(self.attack, random_start=False)
        x_adv = pgd(logits_fn, x, y, attack, start=start, epsilon_scale=epsilon_scale,
                    loss_fn=lambda logits: kl_divergence(clean_logits, logits)).end
        return TrainingBatch((x, x_adv), tf.one_hot(y, num_classes), y)

    def forward(self, classifier, inputs):
        clean, adversarial = inputs
        return classifier(clean, training=True), classifier(adversarial, training=True)

    def loss(self):
        return TradesLoss(self.beta)

    def metric_logits(self, y_pred):
        return y_pred[0]


class ADT(Method):
    """ADT_EXP (Deng et al. 2020): train on one fresh sample of a learned adversarial distribution.

    No PGD attack: `RATModel` needs eval_epsilon / eval_step_size for PGD in evaluation.
    """

    name = "adt"

    def __init__(self, epsilon: float = 8 / 255, num_steps: int = 7, num_samples: int = 5,
                 step_size: float = 0.3, entropy_weight: float = 0.01):
        super().__init__()
        self.epsilon, self.num_steps, self.num_samples = epsilon, num_steps, num_samples
        self.step_size, self.entropy_weight = step_size, entropy_weight
        self.config = ADTConfig(epsilon=epsilon, num_steps=num_steps, num_samples=num_samples,
                                step_size=step_size, entropy_weight=entropy_weight)

    def training_batch(self, logits_fn, x, y, num_classes, seed, epsilon_scale=None):
        x_adv = adt_sample(logits_fn, x, y, self.config, split_seed(seed)[0], epsilon_scale)
        return TrainingBatch(x_adv, tf.one_hot(y, num_classes), y)


METHODS: dict[str, type[Method]] = {
    cls.name: cls for cls in (Method, SAT, SATARS, RAT, AVmixup, TRADES, ADT)}
METHOD_NAMES: tuple[str, ...] = tuple(METHODS)


def get(name: str | Method, **kwargs) -> Method:
    """Builds a method from its name and hyperparameters (or returns a Method unchanged).

    Raises:
      ValueError: unknown method, unknown hyperparameter or invalid value.
    """
    if isinstance(name, Method):
        if kwargs:
            raise ValueError(f"hyperparameters {sorted(kwargs)} given together with a Method object")
        return name
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; allowed: {', '.join(METHOD_NAMES)}")
    cls = METHODS[name]
    allowed = cls.hyperparameters()
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        takes = ", ".join(allowed) or "no hyperparameters"
        raise ValueError(f"method {name!r} does not take {', '.join(unknown)}; it takes: {takes}")
    return cls(**kwargs)
