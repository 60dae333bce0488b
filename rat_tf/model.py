"""`RATModel`: a keras.Model whose compiled train_step runs adversarial training.

    model = rat_tf.RATModel(classifier, method="rat", epsilon=8/255, step_size=2/255,
                            num_steps=10, num_samples=2, max_scale=2.0, scale_step=0.1,
                            beta_max=1.0, beta_min=0.1)
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), metrics=["accuracy"])
    model.fit(train_ds, validation_data=test_ds, epochs=10)
    model.export("out/saved_model")   # images in [0, 1] -> logits

`method` is one of `rat_tf.methods.METHOD_NAMES` ("st", "sat", "sat_ars", "rat", "avmixup", ...)
with that method's hyperparameters as keyword arguments, or a `rat_tf.methods.Method` object.
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from rat_tf import methods as methods_lib
from rat_tf import randomness, validation
from rat_tf import weight_perturbation as awp_lib
from rat_tf.attacks import PGDConfig, pgd


def _num_replicas() -> int:
    """Replicas of the strategy in scope (1 outside any `tf.distribute` strategy)."""
    return tf.distribute.get_strategy().num_replicas_in_sync


def scale_for_replicas(value: tf.Tensor) -> tf.Tensor:
    """`value` / replicas: a per-replica share of a loss whose gradients replicas sum.

    The same arithmetic as the scaling inside `keras.losses.Loss.__call__` under
    `tf.distribute`, so terms added to a Keras loss are scaled exactly like it.
    """
    replicas = _num_replicas()
    return value * tf.cast(1.0 / replicas, value.dtype) if replicas > 1 else value


def unscale_for_replicas(value: tf.Tensor) -> tf.Tensor:
    """The inverse of `scale_for_replicas`: the loss a single replica would report."""
    replicas = _num_replicas()
    return value * tf.cast(replicas, value.dtype) if replicas > 1 else value


@keras.saving.register_keras_serializable(package="rat_tf")
class RATModel(keras.Model):
    """Adversarial training of `classifier` with a method from `rat_tf.methods`.

    Training logs `loss` (the method's loss plus weight decay) and the compiled metrics
    computed on the training points against their hard labels (for RAT: the n * m region
    samples). Evaluation logs the clean cross-entropy, the compiled metrics on clean images and,
    when `eval_pgd_steps > 0`, `pgd_accuracy` under PGD with a random start.

    Args:
      classifier: a Keras model mapping float32 NHWC images in [0, 1] to logits.
      method: a method name or a `Method` object.
      seed: root seed; the training step's randomness is a stateless function of it and the
        optimizer's step count (so a resumed run draws what an uninterrupted one would).
      weight_decay: coupled L2 as in PyTorch SGD: adds 0.5 * weight_decay * sum(w^2) over the
        classifier's trainable weights to the loss.
      eval_pgd_steps: PGD steps for `pgd_accuracy` in evaluation (0: no PGD in evaluation).
      eval_epsilon, eval_step_size: the evaluation attack (default: the method's attack).
      num_classes: number of classes (default: the classifier's output size).
      epsilon_warmup: training steps over which the training attack's epsilon (and step size)
        ramp linearly from 0 to their values (0: no warm-up); any method.
      awp_gamma: adversarial weight perturbation (`rat_tf.weight_perturbation`) of relative
        size gamma on every step, for any method (0: off, the plain step).
      awp_warmup: training steps before the weight perturbation starts (0: from the first).
      **method_kwargs: hyperparameters of the named method (see `Method.hyperparameters()`).
    """

    def __init__(self, classifier: keras.Model, method: str | methods_lib.Method = "rat", *,
                 seed: int = 0, weight_decay: float = 0.0, eval_pgd_steps: int = 0,
                 eval_epsilon: float | None = None, eval_step_size: float | None = None,
                 num_classes: int | None = None, epsilon_warmup: int = 0, awp_gamma: float = 0.0,
                 awp_warmup: int = 0, name: str = "rat_model", **method_kwargs):
        # Keras passes its own layer kwargs (trainable, dtype) through from_config.
        layer_kwargs = {k: method_kwargs.pop(k) for k in ("trainable", "dtype") if k in method_kwargs}
        super().__init__(name=name, **layer_kwargs)
        if not isinstance(classifier, keras.layers.Layer):
            raise ValueError(f"classifier must be a keras Model or Layer, got {type(classifier).__name__}")
        self.classifier = classifier
        self.method = methods_lib.get(method, **method_kwargs)
        self.seed = validation.check_int("seed", seed)
        self.weight_decay = validation.check_float("weight_decay", weight_decay, minimum=0.0)
        self.eval_pgd_steps = validation.check_int("eval_pgd_steps", eval_pgd_steps, minimum=0)
        self.epsilon_warmup = validation.check_int("epsilon_warmup (steps)", epsilon_warmup,
                                                   minimum=0)
        self.awp_gamma = awp_lib.check_gamma(awp_gamma)
        self.awp_warmup = validation.check_int("awp_warmup (steps)", awp_warmup, minimum=0)
        self.eval_epsilon = eval_epsilon
        self.eval_step_size = eval_step_size
        self.eval_attack = self._make_eval_attack()
        self._num_classes = (None if num_classes is None else
                             validation.check_int("num_classes", num_classes, minimum=2))

        self._train_loss = self.method.loss()
        self._eval_loss = keras.losses.CategoricalCrossentropy(from_logits=True, name="clean_ce")
        # The logged "loss": the training loss (or the clean evaluation loss), averaged over
        # the points of each batch; `metrics` lists it first.
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.pgd_accuracy = keras.metrics.SparseCategoricalAccuracy(name="pgd_accuracy")
        # Counts evaluation batches so that evaluation random starts differ between batches;
        # updated by the first replica only.
        self._eval_counter = keras.Variable(0, dtype="int64", trainable=False,
                                            aggregation="only_first_replica", name="eval_counter")

    def _make_eval_attack(self) -> PGDConfig | None:
        if self.eval_pgd_steps == 0:
            return None
        base = self.method.attack
        epsilon = self.eval_epsilon if self.eval_epsilon is not None else (base and base.epsilon)
        step = self.eval_step_size if self.eval_step_size is not None else (base and base.step_size)
        if epsilon is None or step is None:
            raise ValueError(f"method {self.method.name!r} has no attack: pass eval_epsilon and "
                             "eval_step_size to use eval_pgd_steps")
        return PGDConfig(epsilon=epsilon, step_size=step, num_steps=self.eval_pgd_steps)

    # --- Keras plumbing ----------------------------------------------------------------
    def call(self, inputs, training=False):
        return self.classifier(inputs, training=training)

    def compile(self, optimizer="sgd", loss=None, metrics=None, **kwargs):
        """As `keras.Model.compile`, but the loss comes from the method: `loss` must be None."""
        if loss is not None:
            raise ValueError("RATModel computes its loss from `method`; do not pass `loss` to compile()")
        super().compile(optimizer=optimizer, metrics=metrics, **kwargs)

    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        """The own loss tracker, then the compiled metrics and `pgd_accuracy`.

        The loss tracker `compile` creates is left out: the steps here update their own.
        """
        tracker = getattr(self, "loss_tracker", None)  # None while __init__ runs
        others = [m for m in super().metrics if m is not tracker and m.name != "loss"]
        return others if tracker is None else [tracker, *others]

    @property
    def num_classes(self) -> int:
        if self._num_classes is None:
            try:
                self._num_classes = int(self.classifier.output_shape[-1])
            except (AttributeError, TypeError, ValueError) as err:
                raise ValueError("cannot infer the number of classes from the classifier; "
                                 "pass num_classes=") from err
        return self._num_classes

    def _logits(self, images: tf.Tensor) -> tf.Tensor:
        """Inference-mode logits: what every attack sees (BatchNorm uses moving statistics)."""
        return self.classifier(images, training=False)

    def _epsilon_scale(self) -> tf.Tensor | None:
        """min(1, step / epsilon_warmup): the warm-up factor of the training attack's epsilon."""
        if not self.epsilon_warmup:
            return None
        step = tf.cast(self.optimizer.iterations, tf.float32)
        return tf.minimum(1.0, step / float(self.epsilon_warmup))

    def _step_seed(self, stream: int, counter) -> tf.Tensor:
        return randomness.fold_in(tf.constant([self.seed, stream], tf.int32), counter)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """The method's loss + coupled weight decay + any layer losses, scaled for replicas once.

        The Keras Loss divides by the number of replicas; the weight-decay term is scaled the
        same way, so gradients summed across replicas equal the single-replica gradient.
        """
        del x, training
        total = self._train_loss(y, y_pred, sample_weight)
        if self.weight_decay:
            l2 = tf.add_n([tf.reduce_sum(tf.square(tf.cast(w, tf.float32)))
                           for w in self.classifier.trainable_weights])
            total += scale_for_replicas(0.5 * self.weight_decay * l2)
        for extra in self.losses:  # layer losses, scaled as Keras' own step scales them
            extra = tf.convert_to_tensor(extra)
            if not extra.dtype.is_floating:
                extra = tf.cast(extra, keras.backend.floatx())
            total += scale_for_replicas(tf.reduce_sum(extra))
        return total

    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        if sample_weight is not None:
            raise ValueError("RATModel does not support sample weights")
        y = tf.cast(tf.reshape(y, [-1]), tf.int32)
        seed = self._step_seed(0, self.optimizer.iterations)
        batch = self.method.training_batch(self._logits, x, y, self.num_classes, seed,
                                           epsilon_scale=self._epsilon_scale())
        weights = self.trainable_weights
        if self.awp_gamma:
            y_pred, loss, gradients = self._perturbed_gradients(batch, weights)
        else:
            with tf.GradientTape() as tape:
                y_pred = self.method.forward(self.classifier, batch.inputs)
                loss = self.compute_loss(x=batch.inputs, y=batch.targets, y_pred=y_pred,
                                         training=True)
                scaled = self.optimizer.scale_loss(loss)
            gradients = tape.gradient(scaled, weights)
        self.loss_tracker.update_state(unscale_for_replicas(loss),
                                       sample_weight=tf.shape(batch.labels)[0])
        self.optimizer.apply_gradients(zip(gradients, weights))
        results = self.compute_metrics(x, batch.labels, self.method.metric_logits(y_pred))
        results.pop(self.pgd_accuracy.name, None)
        return results

    def _perturbed_gradients(self, batch, weights):
        """(y_pred, loss, gradients) of the outer pass at the adversarially perturbed weights.

        The ascent pass and the outer pass read the kernels through `keras.StatelessScope`:
        the variables keep their unperturbed values throughout, so the gradients taken at
        W + v are applied to W. The ascent pass's BatchNorm updates are discarded; the outer
        pass's are applied, as in a plain step.
        """
        kernels = awp_lib.perturbed_weights(weights)
        with tf.GradientTape() as tape:
            with keras.StatelessScope():
                ascent = self.method.forward(self.classifier, batch.inputs)
                ascent_loss = self.optimizer.scale_loss(self._train_loss(batch.targets, ascent))
        ascent_gradients = awp_lib.all_reduce_sum(tape.gradient(ascent_loss, kernels))
        active = tf.cast(self.optimizer.iterations >= self.awp_warmup, tf.float32)
        values = [tf.convert_to_tensor(k.value) for k in kernels]
        deltas = awp_lib.perturbation(values, ascent_gradients, self.awp_gamma * active)
        perturbed = [tf.stop_gradient(w + d) for w, d in zip(values, deltas)]
        by_id = {id(k): p for k, p in zip(kernels, perturbed)}
        sources = [by_id.get(id(w), w) for w in weights]
        with tf.GradientTape() as tape:
            tape.watch(perturbed)
            with keras.StatelessScope(state_mapping=list(zip(kernels, perturbed))) as scope:
                y_pred = self.method.forward(self.classifier, batch.inputs)
                # Weight decay at the perturbed weights too, as the official code's SGD does.
                loss = self.compute_loss(x=batch.inputs, y=batch.targets, y_pred=y_pred,
                                         training=True)
            scaled = self.optimizer.scale_loss(loss)
        gradients = tape.gradient(scaled, sources)
        for variable in self.classifier.non_trainable_variables:
            value = scope.get_current_value(variable)
            if value is not None:
                variable.assign(value)
        return y_pred, loss, gradients

    def test_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        y = tf.cast(tf.reshape(y, [-1]), tf.int32)
        logits = self.classifier(x, training=False)
        loss = self._eval_loss(tf.one_hot(y, self.num_classes), logits, sample_weight)
        self.loss_tracker.update_state(unscale_for_replicas(loss), sample_weight=tf.shape(y)[0])
        results = self.compute_metrics(x, y, logits, sample_weight)
        if self.eval_attack is not None:
            seed = self._step_seed(1, self._eval_counter)
            self._eval_counter.assign_add(1)
            adversarial = pgd(self._logits, x, y, self.eval_attack, seed).end
            self.pgd_accuracy.update_state(y, self._logits(adversarial), sample_weight)
            results[self.pgd_accuracy.name] = self.pgd_accuracy.result()
        else:
            results.pop(self.pgd_accuracy.name, None)
        return results

    # --- serialisation -----------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        config = {
            "name": self.name,
            "classifier": keras.saving.serialize_keras_object(self.classifier),
            "method": self.method.name,
            "seed": self.seed,
            "weight_decay": self.weight_decay,
            "eval_pgd_steps": self.eval_pgd_steps,
            "eval_epsilon": self.eval_epsilon,
            "eval_step_size": self.eval_step_size,
            "num_classes": self._num_classes,
            "epsilon_warmup": self.epsilon_warmup,
            "awp_gamma": self.awp_gamma,
            "awp_warmup": self.awp_warmup,
        }
        config.update(self.method.get_config())
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        classifier = keras.saving.deserialize_keras_object(config.pop("classifier"),
                                                           custom_objects=custom_objects)
        return cls(classifier, **config)
