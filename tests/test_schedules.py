"""The learning-rate schedule and the training-length arithmetic."""

import keras
import numpy as np
import pytest

from rat_tf.config import PAPER_BOUNDARY_FRACTIONS
from rat_tf.training import schedules


def lr_at(schedule, step):
    return float(schedule(step))


def test_paper_fractions_give_30k_and_45k_of_80k():
    assert schedules.resolve_boundaries(PAPER_BOUNDARY_FRACTIONS, 80_000) == [30_000, 45_000]


def test_fractions_keep_the_shape_of_short_runs():
    assert schedules.resolve_boundaries([0.375, 0.5625], 800) == [300, 450]
    assert schedules.resolve_boundaries([0.375, 0.5625], 220) == [82, 124]  # rounded


def test_absolute_steps_and_mixtures():
    assert schedules.resolve_boundaries([30000, 45000], 80_000) == [30000, 45000]
    assert schedules.resolve_boundaries([0.25, 700.0], 1000) == [250, 700]
    assert schedules.resolve_boundaries([], 10) == []


def test_boundaries_that_round_together_divide_twice():
    # 2 steps: both paper fractions round to step 1, so lr0 for step 0 and lr0 / 100 after.
    boundaries = schedules.resolve_boundaries(PAPER_BOUNDARY_FRACTIONS, 2)
    assert boundaries == [1, 1]
    schedule = schedules.StepDecay(0.1, boundaries)
    assert lr_at(schedule, 0) == pytest.approx(0.1)
    assert lr_at(schedule, 1) == pytest.approx(0.001)


@pytest.mark.parametrize("values", [[0.0], [-0.5], [1.5], [0.6, 0.5], [0.5, 400], [300, 200]])
def test_bad_boundaries_raise(values):
    with pytest.raises(ValueError):
        schedules.resolve_boundaries(values, 1000)


def test_values_at_and_around_the_boundaries():
    schedule = schedules.StepDecay(0.1, [30_000, 45_000])
    expected = {0: 0.1, 29_999: 0.1, 30_000: 0.01, 30_001: 0.01, 44_999: 0.01, 45_000: 0.001,
                79_999: 0.001}
    for step, lr in expected.items():
        assert lr_at(schedule, step) == pytest.approx(lr, rel=1e-6), step
    assert schedule.values() == pytest.approx([0.1, 0.01, 0.001])


def test_updates_per_piece_match_pytorch_multisteplr():
    # The optimizer's `iterations` is the number of updates already applied: update i uses
    # lr(i). 30 updates at lr0, 15 at lr0/10, the rest at lr0/100 (MultiStepLR([30, 45])).
    schedule = schedules.StepDecay(1.0, [30, 45])
    rates = np.array([lr_at(schedule, i) for i in range(80)])
    assert (rates == 1.0).sum() == 30
    assert np.isclose(rates, 0.1).sum() == 15
    assert np.isclose(rates, 0.01).sum() == 35


def test_constant_schedule_and_custom_factor():
    assert lr_at(schedules.StepDecay(0.05), 10**6) == pytest.approx(0.05)
    assert lr_at(schedules.StepDecay(1.0, [2], decay_factor=0.5), 2) == pytest.approx(0.5)


@pytest.mark.parametrize("kwargs", [dict(initial_learning_rate=0.0),
                                    dict(initial_learning_rate=0.1, boundaries=[5, 4]),
                                    dict(initial_learning_rate=0.1, boundaries=[-1]),
                                    dict(initial_learning_rate=0.1, decay_factor=0.0)])
def test_schedule_validates(kwargs):
    with pytest.raises(ValueError):
        schedules.StepDecay(**kwargs)


def test_serialisable_inside_an_optimizer():
    schedule = schedules.StepDecay(0.1, [3, 6])
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(schedule))
    assert isinstance(restored, schedules.StepDecay)
    assert restored.get_config() == schedule.get_config()

    optimizer = keras.optimizers.SGD(schedule, momentum=0.9)
    clone = keras.optimizers.SGD.from_config(optimizer.get_config())
    assert isinstance(clone.learning_rate, schedules.StepDecay) or \
        isinstance(getattr(clone, "_learning_rate", None), schedules.StepDecay)
    variable = keras.Variable(np.zeros(2, np.float32))
    clone.build([variable])
    for step in range(8):
        expected = 0.1 * 0.1 ** sum(step >= b for b in (3, 6))
        assert float(clone.learning_rate) == pytest.approx(expected, rel=1e-6)
        clone.apply_gradients([(np.ones(2, np.float32), variable)])


def test_training_length():
    assert schedules.steps_per_data_epoch(1437, 128) == 11
    with pytest.raises(ValueError, match="larger than"):
        schedules.steps_per_data_epoch(100, 128)
    assert schedules.total_train_steps(train_steps=80_000, epochs=None, steps_per_epoch=390) == \
        80_000
    assert schedules.total_train_steps(train_steps=None, epochs=20, steps_per_epoch=11) == 220
    assert schedules.total_train_steps(train_steps=None, epochs=0.5, steps_per_epoch=11) == 6
    for kwargs in (dict(train_steps=5, epochs=1.0), dict(train_steps=None, epochs=None),
                   dict(train_steps=0, epochs=None), dict(train_steps=None, epochs=-1.0)):
        with pytest.raises(ValueError):
            schedules.total_train_steps(steps_per_epoch=10, **kwargs)
    assert schedules.num_keras_epochs(80_000, 390) == 206
    assert schedules.num_keras_epochs(220, 11) == 20


@pytest.mark.parametrize("text, expected", [
    ("0", 0), ("250", 250), (" 7 ", 7), ("0.25", 250), ("0.0001", 1),
    ("2epochs", 60), ("0.5epoch", 15), ("1e0 Epochs", 30),
])
def test_resolve_warmup(text, expected):
    assert schedules.resolve_warmup(text, total_steps=1000, steps_per_data_epoch=30) == expected


@pytest.mark.parametrize("text", ["-1", "1.5", "abc", "0epochs", "-2epochs", "nan", "inf", ""])
def test_resolve_warmup_rejects(text):
    with pytest.raises(ValueError, match="epsilon warm-up"):
        schedules.resolve_warmup(text, total_steps=1000, steps_per_data_epoch=30)
