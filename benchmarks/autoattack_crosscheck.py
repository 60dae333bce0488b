"""Our AutoAttack against an independent one (torchattacks') on the same SavedModel and images.

    pip install -r benchmarks/requirements.txt     # torch (CPU) and torchattacks
    python benchmarks/autoattack_crosscheck.py --saved_model=runs/digits-rat/export
    python benchmarks/autoattack_crosscheck.py --saved_model=runs/repro/.../mnist-sat/export --num_examples=500

Both evaluate AutoAttack's standard version (Linf: APGD-CE, APGD-T, FAB-T with 100 iterations
and 9 targets, Square 5,000 queries, each on the points the previous ones left robust) on the
first `--num_examples` test images of the export's dataset. torchattacks sees the SavedModel through a torch autograd
function whose forward pass and vector-Jacobian product are TensorFlow calls of the `serve`
endpoint, so both attack exactly the same function. Prints both robust accuracies, their
difference (ours minus theirs: ours should not be more than 2 points above), the examples on
which they disagree and the seconds of each; with `--json_out` also writes them as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from rat_tf import data as data_lib  # noqa: E402
from rat_tf import export, files  # noqa: E402
from rat_tf.evaluation import robustness  # noqa: E402


def torch_model(serve):
    """The SavedModel endpoint as a torch module (NCHW in [0, 1] -> logits), gradients via TF."""
    import torch

    forward = tf.function(lambda x: serve(x), reduce_retracing=True)

    @tf.function(reduce_retracing=True)
    def vjp(x, upstream):
        with tf.GradientTape() as tape:
            tape.watch(x)
            logits = serve(x)
        return tape.gradient(logits, x, output_gradients=upstream)

    def to_tf(t):
        return tf.constant(t.detach().cpu().numpy().transpose(0, 2, 3, 1).astype(np.float32))

    class Serve(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return torch.from_numpy(forward(to_tf(x)).numpy())

        @staticmethod
        def backward(ctx, upstream):
            (x,) = ctx.saved_tensors
            grad = vjp(to_tf(x), tf.constant(upstream.detach().cpu().numpy().astype(np.float32)))
            return torch.from_numpy(grad.numpy().transpose(0, 3, 1, 2).copy())

    class Module(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.anchor = torch.nn.Parameter(torch.zeros(1))  # torchattacks reads the device from it

        def forward(self, x):
            return Serve.apply(x.float())

    return Module().eval()


def theirs(serve, x: np.ndarray, y: np.ndarray, epsilon: float, num_classes: int, batch_size: int):
    import torch
    import torchattacks

    model = torch_model(serve)
    # torchattacks.AutoAttack(version="standard") runs APGD, APGD-T and FAB with their default 10
    # steps; AutoAttack's standard version uses 100. Its parts with AutoAttack's budgets instead.
    attack = torchattacks.MultiAttack([
        torchattacks.APGD(model, norm="Linf", eps=epsilon, steps=100, n_restarts=1, loss="ce", seed=0),
        torchattacks.APGDT(model, norm="Linf", eps=epsilon, steps=100, n_restarts=1, n_classes=num_classes,
                           seed=0),
        torchattacks.FAB(model, norm="Linf", eps=epsilon, steps=100, n_restarts=1, multi_targeted=True,
                         n_classes=num_classes, seed=0),
        torchattacks.Square(model, norm="Linf", eps=epsilon, n_queries=5000, n_restarts=1, seed=0),
    ])
    robust = []
    for start in range(0, len(x), batch_size):
        xb = torch.from_numpy(x[start:start + batch_size].transpose(0, 3, 1, 2).copy())
        yb = torch.from_numpy(y[start:start + batch_size].astype(np.int64))
        adv = attack(xb, yb)
        adv_nhwc = adv.detach().numpy().transpose(0, 2, 3, 1)
        assert np.abs(adv_nhwc - x[start:start + batch_size]).max() <= epsilon + 1e-5
        robust.append(robustness.predict(serve, adv_nhwc) == y[start:start + batch_size])
    return np.concatenate(robust)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--saved_model", required=True)
    parser.add_argument("--dataset", default=None, help="default: the export's metadata")
    parser.add_argument("--epsilon", type=float, default=None, help="default: the export's training epsilon")
    parser.add_argument("--num_examples", type=int, default=500)
    parser.add_argument("--batch_size", type=int, default=250)
    parser.add_argument("--json_out", default=None)
    args = parser.parse_args()

    serve, metadata = export.load_exported(args.saved_model)
    dataset = args.dataset or metadata["dataset"]
    epsilon = args.epsilon if args.epsilon is not None else float(metadata["epsilon"])
    data = data_lib.load(dataset, max_test_examples=args.num_examples, max_train_examples=1)
    x = data_lib.to_float(data.x_test[:args.num_examples])
    y = np.asarray(data.y_test[:args.num_examples], np.int32)

    start = time.perf_counter()
    ours = robustness.autoattack(serve, x, y, epsilon, batch_size=args.batch_size)
    ours_seconds = time.perf_counter() - start
    start = time.perf_counter()
    other = theirs(serve, x, y, epsilon, data.num_classes, args.batch_size)
    their_seconds = time.perf_counter() - start

    diff = 100 * (ours.accuracy - other.mean())
    only_ours = int(np.sum(ours.robust & ~other))
    only_theirs = int(np.sum(~ours.robust & other))
    print(f"{args.saved_model}: {len(x)} images of {dataset}, eps {epsilon:.4g}")
    print(f"  clean accuracy                   {100 * ours.clean_accuracy:6.2f}")
    print(f"  AutoAttack (rat_tf)              {100 * ours.accuracy:6.2f}   {ours_seconds:7.0f} s")
    print(f"  AutoAttack (torchattacks 3.5.1)  {100 * other.mean():6.2f}   {their_seconds:7.0f} s")
    print(f"  ours - theirs = {diff:+.2f} points; robust only for ours: {only_ours}, only for theirs: "
          f"{only_theirs}")
    print(f"crosscheck_points={diff:.2f}")
    if args.json_out:
        files.atomic_write_text(args.json_out, json.dumps({
            "saved_model": args.saved_model, "dataset": dataset, "epsilon": epsilon, "num_examples": len(x),
            "clean": 100 * ours.clean_accuracy, "rat_tf": 100 * ours.accuracy, "torchattacks": 100 * other.mean(),
            "difference_points": diff, "robust_only_rat_tf": only_ours, "robust_only_torchattacks": only_theirs,
            "seconds": {"rat_tf": ours_seconds, "torchattacks": their_seconds}}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
