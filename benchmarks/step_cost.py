"""Cost of one compiled training step: ST, SAT and RAT (and the other methods), side by side.

Times `RATModel.train_function` (the compiled step `model.fit` runs) on the small CNN (or
`--arch`) at MNIST size (28x28x1) and CIFAR size (32x32x3), batch 128, PGD K = 10, RAT m = 2. Repetitions are
interleaved across methods so that machine noise hits all of them alike; the table reports the
median time per step. The compute bound for RAT over SAT is (3K + 3m) / (3K + 3) = 1.09.

With `adversarial-robustness-toolbox` installed (benchmarks/requirements.txt), it also times
ART's `AdversarialTrainerMadryPGD` on the MNIST-size model with the same batch and PGD settings
and prints our SAT images/second over ART's.

Usage: python -m benchmarks.step_cost [--repeats 5] [--steps 3] [--methods st,sat,rat]
       (a RAT configuration in --methods: rat_e0.5 is RAT with --end_point_fraction=0.5,
       rat_m1_e0.5_s1 adds --num_samples=1 and --smooth_from_scale=1; a name ending in _awp, such
       as sat_awp or rat_e0.5_awp, adds adversarial weight perturbation with the official gamma)
The last line is `rat_over_sat=<ratio>` for the CIFAR-size case.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from benchmarks.step_timer import interleaved, step_timer  # noqa: E402
import rat_tf  # noqa: E402
from rat_tf import architectures, files, methods, weight_perturbation  # noqa: E402

SIZES = {"mnist": ((28, 28, 1), 0.3, 0.075), "cifar": ((32, 32, 3), 8 / 255, 2 / 255)}


# The knobs of a RAT configuration name: rat_m1_e0.5_s1 is RAT with num_samples 1,
# end_point_fraction 0.5 and smooth_from_scale 1.
RAT_KNOBS = {"m": ("num_samples", int), "e": ("end_point_fraction", float), "s": ("smooth_from_scale", float)}


AWP_SUFFIX = "_awp"


def rat_config(name: str) -> tuple[str, dict]:
    """'rat_e0.5' -> ('rat', {'end_point_fraction': 0.5}); any other method name -> (name, {}).

    A name ending in _awp (sat_awp, rat_e0.5_awp) is that configuration with adversarial weight
    perturbation at the official code's gamma for the method: {'awp_gamma': ...} among the knobs.
    """
    if name.endswith(AWP_SUFFIX):
        method, knobs = rat_config(name[:-len(AWP_SUFFIX)])
        return method, {**knobs, "awp_gamma": weight_perturbation.default_gamma(method)}
    parts = name.split("_")
    if parts[0] != "rat" or len(parts) == 1 or not all(p[:1] in RAT_KNOBS for p in parts[1:]):
        return name, {}
    knobs = {}
    for part in parts[1:]:
        key, cast = RAT_KNOBS[part[0]]
        try:
            knobs[key] = cast(part[1:])
        except ValueError:
            raise ValueError(f"--methods: {name!r}: {part!r} is not {part[0]}<number>") from None
    return "rat", knobs


def build_model(method, shape, epsilon, step_size, num_steps, num_samples, jit_compile="auto",
                arch="small_cnn"):
    """`method` is a method name, or a RAT configuration (see `rat_config`)."""
    keras.utils.set_random_seed(0)
    classifier = architectures.build(arch, shape, 10)
    wanted = dict(epsilon=epsilon, step_size=step_size, num_steps=num_steps, num_samples=num_samples)
    method, knobs = rat_config(method)
    wanted.update(knobs)
    params = {*methods.METHODS[method].hyperparameters(), "awp_gamma"}
    model = rat_tf.RATModel(classifier, method, **{k: v for k, v in wanted.items() if k in params})
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), metrics=["accuracy"],
                  jit_compile=jit_compile)
    return model


def art_timer(shape, epsilon, step_size, num_steps, x, y, steps):
    """ART's Madry PGD trainer on the same model, batch and PGD settings (None if not installed)."""
    try:
        from art.defences.trainer import AdversarialTrainerMadryPGD
        from art.estimators.classification import TensorFlowV2Classifier
    except ImportError:
        return None
    keras.utils.set_random_seed(0)
    classifier = architectures.build("small_cnn", shape, 10)
    optimizer = keras.optimizers.SGD(0.01, momentum=0.9)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    @tf.function
    def train_step(model, images, labels):
        with tf.GradientTape() as tape:
            value = loss(labels, model(images, training=True))
        optimizer.apply_gradients(zip(tape.gradient(value, model.trainable_variables), model.trainable_variables))

    art_classifier = TensorFlowV2Classifier(classifier, nb_classes=10, input_shape=shape, loss_object=loss,
                                            train_step=train_step, clip_values=(0.0, 1.0))
    trainer = AdversarialTrainerMadryPGD(art_classifier, nb_epochs=1, batch_size=len(x), eps=epsilon,
                                         eps_step=step_size, max_iter=num_steps)
    trainer.fit(x, np.eye(10)[y])  # warm-up

    def run():
        start = time.perf_counter()
        for _ in range(steps):
            trainer.fit(x, np.eye(10)[y])  # one epoch over one batch = one step
        return (time.perf_counter() - start) / steps
    return run


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=3, help="steps per timed repetition")
    parser.add_argument("--batch_size", type=int, default=128)
    parser.add_argument("--num_steps", type=int, default=10, help="PGD steps K")
    parser.add_argument("--num_samples", type=int, default=2, help="RAT samples m")
    parser.add_argument("--methods", default="st,sat,rat",
                        help="comma-separated method names or RAT configurations (rat_m1_e0.5_s1: m, e, s)")
    parser.add_argument("--sizes", default="mnist,cifar")
    parser.add_argument("--arch", default="small_cnn",
                        help="architecture (rat_tf.architectures), e.g. wrn-10-2 for the robust-overfitting study")
    parser.add_argument("--no_art", action="store_true")
    parser.add_argument("--json_out", default=None,
                        help="also write the median seconds per step and the ratios to this JSON file")
    parser.add_argument("--jit_compile", default="auto", choices=["auto", "true", "false"],
                        help="XLA for the step (Keras' auto is off on CPU, on for GPUs)")
    args = parser.parse_args()
    load_at_start = os.getloadavg()[0]
    jit = {"auto": "auto", "true": True, "false": False}[args.jit_compile]
    names = args.methods.split(",")
    for name in names:
        try:
            method, _ = rat_config(name)
        except ValueError as error:
            parser.error(str(error))
        if method not in methods.METHODS:
            parser.error(f"--methods: {name!r} is neither a method ({', '.join(methods.METHODS)}) "
                         "nor a RAT configuration such as rat_m1_e0.5_s1, with or without _awp")
    for required in ("sat", "rat"):
        if required not in names:
            names.append(required)
    rng = np.random.default_rng(0)
    results = {}
    sat_over_art = None
    for size in args.sizes.split(","):
        shape, epsilon, step_size = SIZES[size]
        x = tf.constant(rng.uniform(0, 1, (args.batch_size, *shape)).astype("float32"))
        y = tf.constant(rng.integers(0, 10, args.batch_size).astype("int32"))
        timers = {m: step_timer(build_model(m, shape, epsilon, step_size, args.num_steps, args.num_samples, jit,
                                            args.arch), x, y, args.steps) for m in names}
        if size == "mnist" and not args.no_art:
            art = art_timer(shape, epsilon, step_size, args.num_steps, x.numpy(), y.numpy(), args.steps)
            if art is not None:
                timers["art_madry_pgd"] = art
        times = interleaved(timers, args.repeats)
        results[size] = {m: statistics.median(t) for m, t in times.items()}
        ratios = [r / s for r, s in zip(times["rat"], times["sat"])]
        results[size]["rat_over_sat_spread"] = (min(ratios), max(ratios))
        if "art_madry_pgd" in results[size]:
            sat_over_art = results[size]["art_madry_pgd"] / results[size]["sat"]

    print(f"\nbatch {args.batch_size}, PGD K={args.num_steps}, RAT m={args.num_samples}, {args.arch}, "
          f"{args.repeats} interleaved repeats x {args.steps} steps, device: "
          f"{'GPU' if tf.config.list_physical_devices('GPU') else 'CPU'} ({os.cpu_count()} cores)")
    print(f"{'size':<6} {'method':<14} {'ms/step':>9} {'images/s':>9} {'vs SAT':>7}")
    for size, row in results.items():
        for m, t in row.items():
            if m.endswith("_spread"):
                continue
            print(f"{size:<6} {m:<14} {1000 * t:9.1f} {args.batch_size / t:9.1f} {t / row['sat']:7.3f}")
        lo, hi = row["rat_over_sat_spread"]
        print(f"{size:<6} rat/sat per-repeat range: {lo:.3f} .. {hi:.3f}")
    bound = (3 * args.num_steps + 3 * args.num_samples) / (3 * args.num_steps + 3)
    print(f"compute bound (3K+3m)/(3K+3) = {bound:.3f}")
    if sat_over_art is not None:
        print(f"sat_over_art={sat_over_art:.2f}")
    final = results.get("cifar", next(iter(results.values())))
    print(f"rat_over_sat={final['rat'] / final['sat']:.3f}")
    if args.json_out:
        payload = {"command": "python -m benchmarks.step_cost " + " ".join(sys.argv[1:]),
                   "arch": args.arch, "batch_size": args.batch_size, "num_steps": args.num_steps,
                   "num_samples": args.num_samples,
                   "repeats": args.repeats, "steps": args.steps, "cpu_count": os.cpu_count(),
                   "device": "GPU" if tf.config.list_physical_devices("GPU") else "CPU",
                   # Other work on the machine while this ran (1-minute load average at start and end):
                   # interleaved repeats keep the ratios fair, the absolute seconds are not.
                   "load_average": [round(load_at_start, 2), round(os.getloadavg()[0], 2)],
                   "seconds_per_step": {size: {m: t for m, t in row.items() if not m.endswith("_spread")}
                                        for size, row in results.items()},
                   "over_sat": {size: {m: t / row["sat"] for m, t in row.items() if not m.endswith("_spread")}
                                for size, row in results.items()}}
        files.atomic_write(args.json_out, lambda f: json.dump(payload, f, indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
