"""Evaluation speed: the README's first evaluation, the AutoAttack cascade, SavedModel vs in-memory.

Part 1 (`--readme`, on by default) trains the README's embedded default (`python train_main.py`,
RAT on scikit-learn's digits) into a temporary directory, times the README's first evaluation
(`python evaluate_main.py --saved_model=.../export`, default flags) as a subprocess and prints
its seconds per attack. On the same export it times `--attacks=autoattack` in process against
the sum of its four attacks run alone on the very points each attacked in the cascade
(`autoattack_over_alone=`, target <= 1.2), and each attack on the same points with a model that
costs next to nothing (`attack_work_over_alone=`: the share of the time that is the attacks' own
work rather than the model's passes). Last, the floor under the cascade (`model_floor_seconds=`):
the image-forwards and image-backwards its official budgets make the model run, counted, times
the model's own cost per image forward and backward, timed alone (`--export` runs part 1 on an
existing export of the README's default instead of training one).

Part 2: PGD-10 and APGD-CE images/second, in-memory model vs reloaded SavedModel.

Trains the small CNN briefly on MNIST (`../shared/data/mnist.npz`, or `--npz`), exports it with
`rat_tf.export`, and times, interleaved, PGD-10 and APGD-CE (100 steps) through the in-memory
Keras model and through the reloaded SavedModel's `serve` endpoint. The SavedModel path should
be within 10% of the in-memory one.

With `adversarial-robustness-toolbox` installed (benchmarks/requirements.txt) it also times
ART's `ProjectedGradientDescent` (TF2 classifier) on the same model and images, prints our
PGD images/second over ART's (`pgd_over_art=`), and loads the exported SavedModel into ART's
`TensorFlowV2Classifier` to compare ART's APGD-CE robust accuracy with ours.

Usage: python -m benchmarks.eval_speed [--num_images 512] [--repeats 3] [--export runs/digits-rat/export]
       [--readme_runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from benchmarks import runner  # noqa: E402
from rat_tf import architectures, attacks, export  # noqa: E402
from rat_tf.evaluation import robustness  # noqa: E402

REPO = runner.REPO

EPS, STEP = 0.3, 0.075
# The APGD cross-check uses a radius where a plainly trained model is neither 0% nor 100% robust.
CHECK_EPS = 0.1


def train_classifier(npz: str, num_train: int):
    data = np.load(npz)
    x = (data["x_train"][:num_train, ..., None] / 255.0).astype("float32")
    keras.utils.set_random_seed(0)
    model = architectures.build("small_cnn", (28, 28, 1), 10)
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, data["y_train"][:num_train].astype("int32"), batch_size=128, epochs=1, verbose=0)
    x_test = (data["x_test"][..., None] / 255.0).astype("float32")
    return model, x_test, data["y_test"].astype("int32")


def timer(fn, x, y, batch):
    def run():
        start = time.perf_counter()
        for i in range(0, len(x), batch):
            np.asarray(fn(x[i:i + batch], y[i:i + batch]))
        return len(x) / (time.perf_counter() - start)
    run()  # trace / warm up
    return run


def readme_evaluation(export_dir: str | None = None, runs: int = 1) -> None:
    """Part 1: the README's first evaluation (`runs` times; the median is the figure), and the
    cascade against its attacks run alone."""
    if export_dir is None:
        model_dir = os.path.join(tempfile.mkdtemp(), "digits-rat")
        subprocess.run([sys.executable, "train_main.py", f"--model_dir={model_dir}"], cwd=REPO, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        export_dir = os.path.join(model_dir, "export")
    output_dir = os.path.join(tempfile.mkdtemp(), "eval")  # not beside an export that is not ours
    command = [sys.executable, "evaluate_main.py", f"--saved_model={export_dir}", f"--output_dir={output_dir}"]
    walls = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, cwd=REPO, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        walls.append(time.perf_counter() - start)
        report = json.load(open(os.path.join(output_dir, "report.json"), encoding="utf-8"))
        print(f"README evaluation (python evaluate_main.py --saved_model=runs/digits-rat/export, default "
              f"flags, {report['num_examples']} images): {walls[-1]:.1f} s wall (target <= 60 s)", flush=True)
        for name, row in report["results"].items():
            if "seconds" in row:
                print(f"  {name:<11} {row['seconds']:7.1f} s on {row['examples']} images")
    if runs > 1:
        # This machine's speed drifts by several seconds within an hour: one run is not a figure.
        print(f"{runs} runs: median {statistics.median(walls):.1f} s, from {min(walls):.1f} to {max(walls):.1f} s; "
              f"{sum(w <= 60.0 for w in walls)} of {runs} within 60 s")
    print(f"readme_eval_seconds={statistics.median(walls):.1f}")

    from rat_tf.data import load, to_float
    from rat_tf.evaluation import robustness
    serve, metadata = export.load_exported(export_dir)
    data = load("digits")
    x, y = to_float(data.x_test), data.y_test.astype("int32")
    suite = robustness.SuiteConfig(epsilon=metadata["epsilon"], attacks=(), autoattack=True)
    cascade = robustness.evaluate(serve, x, y, suite)  # warm-up: traces every attack
    start = time.perf_counter()
    cascade = robustness.evaluate(serve, x, y, suite)
    cascade_seconds = time.perf_counter() - start
    free = free_model(x.shape[1:], int(np.asarray(serve(x[:1])).shape[-1]))
    alone = own_work = 0.0
    for name in robustness.AUTOATTACK:
        points = cascade.coverage[name]
        single = robustness.SuiteConfig(epsilon=suite.epsilon, attacks=(name,), autoattack=False)
        seconds = {}
        # The free model predicts class 0 everywhere, so every point stays robust and the attack
        # spends its whole budget, as on the points the cascade hands it.
        for label, model, labels in (("model", serve, y[points]), ("free", free, np.zeros_like(y[points]))):
            robustness.evaluate(model, x[points][:8], labels[:8], single)  # trace
            start = time.perf_counter()
            robustness.evaluate(model, x[points], labels, single)
            seconds[label] = time.perf_counter() - start
        alone += seconds["model"]
        own_work += seconds["free"]
        print(f"  {name:<8} alone on its {points.sum()} cascade points: {seconds['model']:5.1f} s; "
              f"with a model that costs nothing: {seconds['free']:4.1f} s")
    print(f"AutoAttack cascade {cascade_seconds:.1f} s, its attacks alone on the same points {alone:.1f} s")
    print(f"autoattack_over_alone={cascade_seconds / alone:.3f}")
    # Under 0.1: the attacks' time is the model's forward and backward passes.
    print(f"attack_work_over_alone={own_work / alone:.3f}")
    model_floor(serve, metadata, x, y, suite)


def model_floor(serve, metadata, x, y, suite, batch: int = 200, passes: int = 300) -> None:
    """The seconds the cascade's model passes alone must take: its image-forwards and -backwards,
    counted, times the model's own cost per image, timed on a batch of `batch` test images.

    The cascade's budgets are the official ones, so no implementation of them can be faster than
    this on the same model and CPU (short of computing the model differently)."""
    counted, forwards, backwards = counting_model(serve)
    robustness.evaluate(counted, x, y, suite)
    forward, forward_backward = pass_seconds(serve, x[:batch], passes)
    backward = forward_backward - forward
    floor = int(forwards.numpy()) * forward + int(backwards.numpy()) * backward
    gflop = forward_flops(metadata, x.shape[1:]) / 1e9
    print(f"the cascade's model passes: {int(forwards.numpy()):,} image-forwards and {int(backwards.numpy()):,} "
          f"image-backwards; the model alone, timed over {passes} passes on {batch} images: {1e6 * forward:.1f} us "
          f"per image forward ({gflop / forward:.0f} GFLOP/s at {1e3 * gflop:.2f} MFLOP per image), "
          f"{1e6 * backward:.1f} us per image backward: {floor:.1f} s of the cascade at the least")
    print(f"model_gflops_per_second={gflop / forward:.0f}")
    print(f"model_floor_seconds={floor:.1f}")


def counting_model(serve):
    """`serve` wrapped to count the images it is run forward on and back-propagated through."""
    forwards = tf.Variable(0, dtype=tf.int64, trainable=False)
    backwards = tf.Variable(0, dtype=tf.int64, trainable=False)

    @tf.custom_gradient
    def counted(logits):
        def grad(upstream):
            with tf.control_dependencies([backwards.assign_add(tf.shape(upstream, out_type=tf.int64)[0])]):
                return tf.identity(upstream)
        return tf.identity(logits), grad

    @tf.function(reduce_retracing=True)
    def model(images):
        with tf.control_dependencies([forwards.assign_add(tf.shape(images, out_type=tf.int64)[0])]):
            images = tf.identity(images)
        return counted(serve(images))

    return model, forwards, backwards


def pass_seconds(serve, x, passes: int) -> tuple[float, float]:
    """Seconds per image of a forward and of a forward-backward of `serve` on the images `x`, each
    timed over `passes` passes in one `tf.while_loop` (each pass's input depends on the last pass,
    so that no pass is hoisted out of the loop)."""
    def forward(images):
        return serve(images)

    def forward_backward(images):
        with tf.GradientTape() as tape:
            tape.watch(images)
            loss = tf.reduce_sum(serve(images))
        return tape.gradient(loss, images)

    seconds = []
    for step in (forward, forward_backward):
        @tf.function
        def loop(images, step=step):
            def body(i, total):
                return i + 1, total + tf.reduce_mean(step(images + 1e-9 * total))
            return tf.while_loop(lambda i, _: i < passes, body, (tf.constant(0), tf.constant(0.0)))[1]
        loop(x)  # trace and warm up
        start = time.perf_counter()
        loop(x).numpy()
        seconds.append((time.perf_counter() - start) / passes / len(x))
    return seconds[0], seconds[1]


def forward_flops(metadata, image_shape) -> int:
    """Floating-point operations of one image's forward pass through the export's architecture
    (TensorFlow's profiler on a freshly built model of the same shapes)."""
    classifier = architectures.build(metadata["arch"], tuple(image_shape), metadata["num_classes"])
    graph = tf.function(lambda images: classifier(images, training=False)).get_concrete_function(
        tf.TensorSpec((1, *image_shape), tf.float32)).graph
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    return tf.compat.v1.profiler.profile(graph=graph, options=options).total_float_ops


def free_model(image_shape, num_classes: int):
    """A differentiable model that costs next to nothing: a tiny linear map plus a bias that makes
    class 0 win by a margin no attack within the budget can overturn."""
    pixels = int(np.prod(image_shape))
    weights = tf.constant(np.random.default_rng(0).normal(size=(pixels, num_classes)) * 1e-3, tf.float32)
    bias = tf.constant(np.eye(num_classes)[0] * 20.0, tf.float32)
    return tf.function(lambda images: tf.reshape(images, [-1, pixels]) @ weights + bias, reduce_retracing=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--npz", default=os.path.join(runner.SHARED_DATA, "mnist.npz"))
    parser.add_argument("--num_train", type=int, default=10000)
    parser.add_argument("--num_images", type=int, default=512)
    parser.add_argument("--batch_size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--readme", action=argparse.BooleanOptionalAction, default=True,
                        help="part 1: the README's first evaluation and the AutoAttack cascade")
    parser.add_argument("--readme_runs", type=int, default=1,
                        help="part 1: times to run the README's first evaluation (prints the median)")
    parser.add_argument("--export", default=None,
                        help="part 1 on this export of the README's default instead of training one")
    parser.add_argument("--throughput", action=argparse.BooleanOptionalAction, default=True,
                        help="part 2: attack throughput, in-memory model vs SavedModel")
    args = parser.parse_args()
    if args.readme_runs < 1:
        parser.error(f"--readme_runs must be >= 1, got {args.readme_runs}")
    print(f"CPU: {runner.cpu_name()} ({os.cpu_count()} cores), load average {os.getloadavg()[0]:.1f} at the start")
    if args.readme:
        readme_evaluation(args.export, args.readme_runs)
    if not args.throughput:
        return

    model, x_test, y_test = train_classifier(args.npz, args.num_train)
    x, y = x_test[:args.num_images], y_test[:args.num_images]
    export_dir = os.path.join(tempfile.mkdtemp(), "export")
    export.export_classifier(model, export_dir, {"dataset": "mnist", "epsilon": EPS})
    serve, _ = export.load_exported(export_dir)
    in_memory = lambda z: model(z, training=False)  # noqa: E731

    pgd_config = attacks.PGDConfig(EPS, STEP, 10)
    apgd_config = attacks.APGDConfig(EPS, num_steps=100)

    def pgd_fn(logits_fn):
        f = tf.function(lambda a, b: attacks.pgd(logits_fn, a, b, pgd_config, tf.constant([0, 0])).end)
        return lambda a, b: f(tf.constant(a), tf.constant(b))

    def apgd_fn(logits_fn):
        f = tf.function(lambda a, b: attacks.apgd(logits_fn, a, b, apgd_config, tf.constant([0, 1])).adversarial)
        return lambda a, b: f(tf.constant(a), tf.constant(b))

    def fab_fn(logits_fn):
        config = attacks.FABConfig(CHECK_EPS, num_steps=100)
        f = tf.function(lambda a, b: attacks.fab_targeted(logits_fn, a, b, config, tf.constant([0, 3])).adversarial)
        return lambda a, b: f(tf.constant(a), tf.constant(b))

    timers = {("fab_t", "keras"): timer(fab_fn(in_memory), x, y, args.batch_size),
              ("fab_t", "saved_model"): timer(fab_fn(serve), x, y, args.batch_size),
              ("pgd10", "keras"): timer(pgd_fn(in_memory), x, y, args.batch_size),
              ("pgd10", "saved_model"): timer(pgd_fn(serve), x, y, args.batch_size),
              ("apgd_ce", "keras"): timer(apgd_fn(in_memory), x, y, args.batch_size),
              ("apgd_ce", "saved_model"): timer(apgd_fn(serve), x, y, args.batch_size)}

    art_classifier = None
    try:
        from art.attacks.evasion import AutoProjectedGradientDescent, ProjectedGradientDescent
        from art.estimators.classification import TensorFlowV2Classifier
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        art_keras = TensorFlowV2Classifier(model, nb_classes=10, input_shape=(28, 28, 1), loss_object=loss,
                                           clip_values=(0.0, 1.0))
        art_pgd = ProjectedGradientDescent(art_keras, norm=np.inf, eps=EPS, eps_step=STEP, max_iter=10,
                                           num_random_init=1, batch_size=args.batch_size, verbose=False)
        timers[("pgd10", "art")] = timer(lambda a, b: art_pgd.generate(a, np.eye(10)[b]), x, y, len(x))
        art_classifier = TensorFlowV2Classifier(lambda z, training=False: serve(z), nb_classes=10,
                                                input_shape=(28, 28, 1), loss_object=loss, clip_values=(0.0, 1.0))
    except ImportError:
        pass

    rates = {k: [] for k in timers}
    for _ in range(args.repeats):
        for k, run in timers.items():
            rates[k].append(run())
    median = {k: statistics.median(v) for k, v in rates.items()}

    print(f"\nsmall_cnn on {len(x)} MNIST test images, batch {args.batch_size}, eps {EPS}, "
          f"{args.repeats} interleaved repeats, CPU ({os.cpu_count()} cores)")
    print(f"{'attack':<9} {'model':<12} {'images/s':>9}")
    for (attack, where), rate in median.items():
        print(f"{attack:<9} {where:<12} {rate:9.1f}")
    for attack in ("pgd10", "apgd_ce", "fab_t"):
        ratio = median[(attack, "saved_model")] / median[(attack, "keras")]
        print(f"{attack}_saved_model_over_keras={ratio:.3f}")
    if ("pgd10", "art") in median:
        print(f"pgd_over_art={median[('pgd10', 'keras')] / median[('pgd10', 'art')]:.2f}")
    if art_classifier is not None:
        art_apgd = AutoProjectedGradientDescent(art_classifier, norm=np.inf, eps=CHECK_EPS, eps_step=2 * CHECK_EPS,
                                                max_iter=100, nb_random_init=1, batch_size=args.batch_size,
                                                loss_type="cross_entropy", verbose=False)
        art_adv = art_apgd.generate(x, np.eye(10)[y])
        art_acc = float(np.mean(robustness.predict(serve, art_adv) == y))
        suite = robustness.SuiteConfig(epsilon=CHECK_EPS, apgd_steps=100, attacks=("apgd_ce",))
        ours = robustness.evaluate(serve, x, y, suite, batch_size=args.batch_size).accuracy("apgd_ce")
        print(f"APGD-CE (eps {CHECK_EPS}) robust accuracy through the SavedModel: ours {100 * ours:.1f}%, "
              f"ART {100 * art_acc:.1f}%")
        print(f"apgd_agreement_points={100 * abs(ours - art_acc):.1f}")


if __name__ == "__main__":
    main()
