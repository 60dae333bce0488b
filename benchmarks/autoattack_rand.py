"""AutoAttack's "rand" version against its "standard" one, on a model with a random input transformation.

    python -m benchmarks.autoattack_rand --sigma=0.2 --seeds=0,1,2 \\
        --json_out=benchmarks/results/autoattack_rand.json

A randomised defence answers every call with a different sample: a single-sample gradient points
somewhere random, so attacks that follow it (the standard version's APGD, and FAB) lose strength,
and the robust accuracy they report is optimistic. The official AutoAttack's "rand" version runs
APGD-CE and APGD-DLR with the gradient averaged over 20 calls (expectation over transformation,
EOT). This benchmark shows that ours does what it is for:

  - the model: the README's digits quick start (`train_main.py` with its defaults, trained if
    its export is missing), behind Gaussian noise of standard deviation `--sigma` added to the
    input at every call (clipped to [0, 1]), a random input transformation in the manner of
    randomised-smoothing-style defences;
  - `rat_tf.evaluation.autoattack(..., version="standard")`: its robust accuracy and the checks
    that fired (the randomness check must fire: the standard version is not for such a model);
  - `rat_tf.evaluation.autoattack(..., version="rand")`: its robust accuracy;
  - the examples the rand version broke that the standard version kept, and the reverse.

Each example's final verdict is the randomised model's prediction on the attack's point, as the
attacks themselves judge it (one call). The figure printed is the mean over `--seeds`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from rat_tf import files  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def noisy(serve, sigma: float, seed: int):
    """images -> logits of `serve` at images + N(0, sigma^2), clipped to [0, 1]; fresh noise per call."""
    import tensorflow as tf  # noqa: PLC0415

    generator = tf.random.Generator.from_seed(seed)

    @tf.function(reduce_retracing=True)
    def call(images):
        images = tf.convert_to_tensor(images, tf.float32)
        return serve(tf.clip_by_value(images + sigma * generator.normal(tf.shape(images)), 0.0, 1.0))

    return call


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--sigma", type=float, default=0.2, help="the input noise's standard deviation")
    parser.add_argument("--epsilon", type=float, default=0.1, help="Linf radius (the digits model's, 0.1)")
    parser.add_argument("--seeds", default="0,1,2", help="attack seeds (the noise is seeded the same)")
    parser.add_argument("--num_examples", type=int, default=360)
    parser.add_argument("--json_out", default=None)
    args = parser.parse_args(argv)
    if not args.sigma > 0:
        parser.error(f"--sigma must be > 0, got {args.sigma}")

    from benchmarks.autoattack_crosscheck import MODELS, ensure_export  # noqa: PLC0415
    from rat_tf import data as data_lib  # noqa: PLC0415
    from rat_tf import export  # noqa: PLC0415
    from rat_tf.evaluation import autoattack_run  # noqa: PLC0415

    path = ensure_export("digits", MODELS["digits"])
    serve, metadata = export.load_exported(path)
    data = data_lib.load(metadata["dataset"], max_train_examples=1)
    x = data_lib.to_float(data.x_test[:args.num_examples])
    y = np.asarray(data.y_test[:len(x)], np.int32)
    runs = []
    for seed in (int(s) for s in args.seeds.split(",")):
        row = {"seed": seed}
        for version in ("standard", "rand"):
            model = noisy(serve, args.sigma, seed)
            start = time.perf_counter()
            result = autoattack_run.autoattack(model, x, y, args.epsilon, version=version, seed=seed)
            row[version] = {"accuracy": round(100 * result.accuracy, 2),
                            "clean": round(100 * result.clean_accuracy, 2),
                            "after": {k: round(100 * v, 2) for k, v in result.after.items()},
                            "flagged": list(result.flagged), "robust": result.robust,
                            "seconds": round(time.perf_counter() - start, 1)}
        standard, rand = row["standard"].pop("robust"), row["rand"].pop("robust")
        row["broken_only_by_rand"] = np.flatnonzero(standard & ~rand).tolist()
        row["broken_only_by_standard"] = np.flatnonzero(rand & ~standard).tolist()
        print(f"seed {seed}: standard {row['standard']['accuracy']:.1f} (checks fired: "
              f"{', '.join(row['standard']['flagged']) or 'none'}), rand {row['rand']['accuracy']:.1f}; "
              f"broken only by rand {len(row['broken_only_by_rand'])}, only by standard "
              f"{len(row['broken_only_by_standard'])}", flush=True)
        runs.append(row)
    summary = {v: round(float(np.mean([r[v]["accuracy"] for r in runs])), 2) for v in ("standard", "rand")}
    print(f"mean over {len(runs)} seeds: standard {summary['standard']:.2f}, rand {summary['rand']:.2f} "
          f"(sigma {args.sigma}, eps {args.epsilon}, {len(x)} images)")
    if args.json_out:
        report = {"command": "python -m benchmarks.autoattack_rand " + " ".join(argv or sys.argv[1:]),
                  "export": os.path.relpath(path, REPO), "sigma": args.sigma, "epsilon": args.epsilon,
                  "num_examples": len(x), "mean": summary, "runs": runs}
        files.atomic_write_text(args.json_out, json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
