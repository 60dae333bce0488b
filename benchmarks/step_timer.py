"""Times compiled training steps: the one timer of `step_cost`, `distributed` and `overfit_step_time`.

    run = step_timer(model, x, y, steps=3)          # builds and traces the step, then:
    seconds_per_step = run()                        # 3 steps of model.train_function, timed
    times = interleaved({"sat": run_sat, "rat": run_rat}, repeats=5)   # name -> [seconds per step]

The timed step is `model.train_function`, the compiled step `model.fit` runs, on one batch (x, y)
repeated; the clock stops after the last step's loss has reached the host (the devices are done).
"""

from __future__ import annotations

import time
from typing import Callable, Mapping, Optional

import tensorflow as tf


def step_timer(model, x, y, steps: int, *, warmup_steps: int = 1,
               strategy: Optional[tf.distribute.Strategy] = None) -> Callable[[], float]:
    """Returns a function that runs `steps` compiled training steps of the compiled `model` on
    the batch (x, y) and returns the seconds per step.

    `warmup_steps` steps of `model.fit` come first (they build and trace the step). With a
    `strategy` (the one the model was built under), the batch is the global batch of a
    distributed iterator, as `fit` feeds its replicas.
    """
    data = tf.data.Dataset.from_tensors((x, y)).repeat()
    model.fit(data, steps_per_epoch=warmup_steps, epochs=1, shuffle=False, verbose=0)
    iterator = iter(strategy.experimental_distribute_dataset(data) if strategy is not None else data)

    def run() -> float:
        start = time.perf_counter()
        for _ in range(steps):
            logs = model.train_function(iterator)
        float(logs["loss"])  # wait for the devices
        return (time.perf_counter() - start) / steps
    return run


def interleaved(timers: Mapping[str, Callable[[], float]], repeats: int) -> dict[str, list[float]]:
    """Runs every timer once per repetition, in turn, so that machine noise hits all of them alike;
    returns name -> the seconds per step of each repetition."""
    times: dict[str, list[float]] = {name: [] for name in timers}
    for _ in range(repeats):
        for name, run in timers.items():
            times[name].append(run())
    return times
