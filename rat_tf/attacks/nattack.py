"""NAttack (Li et al. 2019): a query-only search over a Gaussian in tanh space.

"NATTACK: Learning the distributions of adversarial examples for an improved black-box attack
on deep neural networks" (ICML 2019), as SPEC.md pins it down (the paper under study evaluates
with it: 1,000 test images, 200 iterations, population 300). Per example, with
z0 = arctanh((2x - 1)(1 - 1e-6)) and mu_0 ~ 0.001 N(0, I):

  each iteration draws xi_1..xi_P ~ N(0, I) and the candidates
    c_i = 0.5 tanh(z0 + mu + sigma xi_i) + 0.5,   x_i = x + clip(c_i - x, -eps, eps);
  loss f_i = max(0, log p_y(x_i) - max_{j != y} log p_j(x_i)), one max *per sample* (the official
  code takes one max over the whole population: a bug that SPEC.md fixes);
  reward A = (-f - mean(-f)) / (std(-f) + 1e-7);
  mu <- mu + lr / (P sigma) * sum_i A_i xi_i.
The attack succeeds on an example when its mean image
  m = clip(x + clip(0.5 tanh(z0 + mu) + 0.5 - x, -eps, eps), 0, 1)
is misclassified; that example stops there (early stop per example).

The model is only called, never differentiated. Each iteration evaluates the populations of all
examples still being attacked, in calls of at most `max_batch` images. The attack runs eagerly
(a Python loop over iterations, batched tensor ops within one); pass a compiled model call,
e.g. `tf.function(lambda x: model(x, training=False), reduce_retracing=True)`, for speed.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import tensorflow as tf

from rat_tf import randomness
from rat_tf.attacks.common import (
    ProgressFn,
    QueryFn,
    SeedLike,
    as_seed,
    check_count,
    check_epsilon,
    check_images,
    margin,
    project,
)
from rat_tf.attacks.square import QueryAttackResult, query_logits

_TANH_SHRINK = 1.0 - 1e-6  # keeps arctanh finite at pixels 0 and 1, as the official code
_REWARD_EPS = 1e-7


@dataclasses.dataclass(frozen=True)
class NAttackConfig:
    """NAttack (Li et al. 2019), Linf, pixel units.

    Attributes:
      epsilon: Linf radius.
      num_iterations: search iterations (the paper: 200).
      population: samples per iteration (the paper: 300).
      sigma: the search distribution's standard deviation in tanh space.
      learning_rate: the step of the distribution's mean.
      max_batch: most images per call of the model; the populations of
        max(1, max_batch // population) examples are drawn together (and from one seed, so the
        draws depend on it).
    """

    epsilon: float
    num_iterations: int = 200
    population: int = 300
    sigma: float = 0.1
    learning_rate: float = 0.02
    max_batch: int = 4096

    def __post_init__(self):
        check_epsilon(self.epsilon)
        check_count("num_iterations", self.num_iterations)
        check_count("population (the rewards are normalised)", self.population, 2)
        if not self.sigma > 0:
            raise ValueError(f"sigma must be > 0, got {self.sigma}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        check_count("max_batch", self.max_batch)


def nattack(logits_fn: QueryFn,
            x: tf.Tensor,
            y: tf.Tensor,
            config: NAttackConfig,
            seed: SeedLike = 0,
            *,
            probabilities: bool = False,
            progress: Optional[ProgressFn] = None) -> QueryAttackResult:
    """NAttack (Linf, untargeted), query-only.

    Examples misclassified on clean inputs are not attacked (as in the official evaluation) and
    are returned unchanged. For the others, the mean image is checked before every iteration and
    once after the last one (the official code checks every 10 iterations: checking each one
    costs a single extra query per example and never stops later than it would have).

    Args:
      logits_fn: images -> logits (tensor or numpy); only called, never differentiated.
      x: clean images, float NHWC in [0, 1].
      y: integer labels (N,).
      config: the attack.
      seed: an int or a stateless seed of shape (2,).
      probabilities: `logits_fn` returns softmax probabilities instead of logits.
      progress: optional callback(iteration, number of examples still robust).

    Returns:
      A `QueryAttackResult`: the first misclassified mean image for successful examples, the
      last mean image for the others (never misclassified by the model as the attack saw it),
      the clean image for examples misclassified clean; queries count P per iteration plus one
      per mean-image check. The caller's robustness is the model's prediction on `adversarial`.
    """
    x = tf.convert_to_tensor(check_images(x))
    epsilon, sigma, learning_rate = config.epsilon, config.sigma, config.learning_rate
    num_iterations, population, max_batch = (int(config.num_iterations), int(config.population),
                                             int(config.max_batch))
    y = tf.cast(tf.reshape(y, [-1]), tf.int32)
    seed = as_seed(seed)
    n = int(x.shape[0])
    image_shape = [int(d) for d in x.shape[1:]]
    eps = tf.cast(epsilon, x.dtype)

    clean_pred = tf.argmax(query_logits(logits_fn, x, probabilities, max_batch), axis=-1,
                           output_type=tf.int32)
    attacked = clean_pred == y
    queries = tf.zeros([n], tf.int32)
    if epsilon == 0.0:  # every candidate and mean image is x itself
        return QueryAttackResult(tf.identity(x), tf.logical_not(attacked), queries)

    z0 = tf.atanh((2.0 * x - 1.0) * _TANH_SHRINK)
    mu = 0.001 * tf.random.stateless_normal(tf.shape(x), randomness.fold_in(seed, 0), dtype=x.dtype)
    adversarial = x
    success = tf.logical_not(attacked)
    active = attacked
    per_chunk = max(1, max_batch // population)
    step = learning_rate / (population * sigma)

    for t in range(num_iterations + 1):
        index = tf.where(active)[:, 0]
        if int(index.shape[0]) > 0:
            # Check the mean image of every example still attacked.
            x_a = tf.gather(x, index)
            mean_image = project(0.5 * tf.tanh(tf.gather(z0, index) + tf.gather(mu, index)) + 0.5,
                                  x_a, eps)
            pred = tf.argmax(query_logits(logits_fn, mean_image, probabilities, max_batch),
                             axis=-1, output_type=tf.int32)
            fooled = pred != tf.gather(y, index)
            where = index[:, None]
            adversarial = tf.tensor_scatter_nd_update(adversarial, where, mean_image)
            success = tf.tensor_scatter_nd_update(success, where, fooled)
            active = tf.tensor_scatter_nd_update(active, where, tf.logical_not(fooled))
            queries = tf.tensor_scatter_nd_add(queries, where, tf.ones(tf.shape(index), tf.int32))
        index = tf.where(active)[:, 0]
        n_active = int(index.shape[0])
        if progress is not None:
            progress(t, n_active)
        if t == num_iterations or n_active == 0:
            break

        iteration_seed = randomness.fold_in(seed, t + 1)
        updates = []
        for chunk, start in enumerate(range(0, n_active, per_chunk)):
            rows = index[start:start + per_chunk]
            k = int(rows.shape[0])
            chunk_seed = randomness.fold_in(iteration_seed, chunk)
            xi = tf.random.stateless_normal([k, population] + image_shape, chunk_seed,
                                            dtype=x.dtype)
            x_c = tf.gather(x, rows)[:, None]
            candidates = project(
                0.5 * tf.tanh(tf.gather(z0, rows)[:, None] + tf.gather(mu, rows)[:, None]
                              + sigma * xi) + 0.5, x_c, eps)
            logits = query_logits(logits_fn, tf.reshape(candidates, [k * population] + image_shape),
                                  probabilities, max_batch)
            labels = tf.repeat(tf.gather(y, rows), population)
            # log p_y - max_{j != y} log p_j per sample (the logit margin, on log-probabilities).
            log_margin = margin(tf.nn.log_softmax(logits, axis=-1), labels)
            loss = tf.reshape(tf.maximum(log_margin, 0.0), [k, population])
            reward = -loss
            mean, variance = tf.nn.moments(reward, axes=[1], keepdims=True)
            advantage = (reward - mean) / (tf.sqrt(variance) + _REWARD_EPS)
            direction = tf.einsum("kp,kp...->k...", tf.cast(advantage, x.dtype), xi)
            updates.append(tf.gather(mu, rows) + step * direction)
        mu = tf.tensor_scatter_nd_update(mu, index[:, None], tf.concat(updates, axis=0))
        queries = tf.tensor_scatter_nd_add(queries, index[:, None],
                                           tf.fill([n_active], population))
    return QueryAttackResult(tf.stop_gradient(adversarial), success, queries)
