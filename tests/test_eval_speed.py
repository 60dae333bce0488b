"""The pieces of benchmarks/eval_speed.py that its figures rest on: the pass counter and the FLOP count."""

import numpy as np
import tensorflow as tf

from benchmarks import eval_speed


def test_the_counter_counts_every_image_forward_and_backward():
    weights = tf.constant(np.arange(12, dtype=np.float32).reshape(4, 3) / 10)
    model, forwards, backwards = eval_speed.counting_model(lambda images: tf.reshape(images, [-1, 4]) @ weights)
    x = tf.ones([5, 2, 2, 1])
    np.testing.assert_allclose(model(x).numpy(), np.ones([5, 4]) @ weights.numpy())
    part = x[:3]
    with tf.GradientTape() as tape:
        tape.watch(part)
        loss = tf.reduce_sum(model(part)[:, 1])
    gradient = tape.gradient(loss, part)
    # The gradient passes through unchanged: d(sum of logit 1)/dx is column 1 of the weights.
    np.testing.assert_allclose(gradient.numpy().reshape(3, 4), np.tile(weights.numpy()[:, 1], (3, 1)))

    @tf.function
    def in_a_loop(images):  # counted inside a compiled loop as well, once per pass
        return tf.while_loop(lambda i, _: i < 4, lambda i, s: (i + 1, s + tf.reduce_sum(model(images))),
                             (0, 0.0))[1]

    in_a_loop(x[:2])
    assert (int(forwards.numpy()), int(backwards.numpy())) == (5 + 3 + 4 * 2, 3)


def test_the_small_cnn_forward_flops_are_its_multiply_adds_twice():
    flops = eval_speed.forward_flops({"arch": "small_cnn", "num_classes": 10}, (8, 8, 1))
    # 'same' 3x3 convolutions 1->32->32 on 8x8, pool, 32->64->64 on 4x4, pool; dense 256->200->200->10.
    multiply_adds = 64 * 9 * (1 * 32 + 32 * 32) + 16 * 9 * (32 * 64 + 64 * 64) + 256 * 200 + 200 * 200 + 200 * 10
    bias_adds = 64 * 32 * 2 + 16 * 64 * 2 + 200 + 200 + 10
    pooled = 4 * (16 * 32) + 4 * (4 * 64)  # the profiler counts each 2x2 max-pool window's 4 inputs
    assert flops == 2 * multiply_adds + bias_adds + pooled  # ReLUs count nothing
