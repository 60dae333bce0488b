"""Our AutoAttack against the official one (fra31/auto-attack), on the same weights, stage by stage.

    pip install -r benchmarks/requirements.txt       # torch (CPU); the official code is not installed:
    python -m benchmarks.autoattack_crosscheck --models=digits --seeds=0,1,2
    python -m benchmarks.autoattack_crosscheck --models=digits,mnist_sat,cifar_sat --norms=Linf,L2 \\
        --json_out=benchmarks/results/autoattack_crosscheck.json

The official AutoAttack (MIT) is imported at run time from `--reference` (default
../shared/reference/auto-attack, next to the repository); it is never copied into the project.
Each model is trained with its recorded `train_main.py` command if its export is missing (with its
recorded thread count, so that a retrained export has the same weights bit for bit on this machine), then
its Keras weights are ported into an equivalent torch module (`benchmarks/torch_port.py`; the
logits must agree within 1e-4 on the evaluated images, or the run stops). Both implementations
then run AutoAttack's standard version on the first `--num_examples` test images, for each norm
and seed:
  - the official code as its `run_standard_evaluation` runs it, one attack at a time on the
    examples still robust (the same batches, seeds and budgets as its cascade; its checks run),
    so that every stage's per-example flags are known;
  - ours, the same cascade on the SavedModel's `serve` endpoint, also one attack at a time (the
    flags of one `rat_tf.evaluation.autoattack` call).
Runs made side by side (one process per seed, each with its own `--json_out`) are gathered with
`--merge=a.json,b.json --json_out=<report>`.
A run interrupted between two stages goes on from the last one finished: `--json_out` keeps the
stages done under "partial" until the run is whole. Runs are only ever added to runs on the same
weights: the report records a SHA-256 of each model's weights, and a model whose export differs
(or, for a report written before the fingerprint, whose clean flags differ) is refused.
Both with `--threads` threads. Printed per model and norm: the robust accuracy after each stage
for every seed of both, the range over seeds, the examples on which they disagree (robust for
one implementation under every seed and broken by the other under every seed), and the wall
times; `--json_out` writes all of it, per-example flags included.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
import dataclasses
import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import time
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from rat_tf import data as data_lib  # noqa: E402
from rat_tf import files  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REFERENCE = os.path.join(os.path.dirname(REPO), "shared", "reference", "auto-attack")
RUNS = os.path.join(os.path.dirname(REPO), "runs", "crosscheck")
# Our registry names -> the official code's attack names.
OFFICIAL_NAMES = {"apgd_ce": "apgd-ce", "apgd_t": "apgd-t", "fab_t": "fab-t", "square": "square",
                  "apgd_dlr": "apgd-dlr", "fab": "fab"}
# The standard version's cascade, in its order.
STAGES = ("apgd_ce", "apgd_t", "fab_t", "square")


@dataclasses.dataclass(frozen=True)
class Model:
    """A model of the cross-check: how it is trained, and its radii."""

    train: tuple[str, ...]          # train_main.py flags (the export goes to RUNS/<name>/export)
    linf: float
    l2: float
    # TensorFlow's CPU kernels split their sums by thread count, so the weights are reproducible
    # only at the count they were trained with: the recorded runs' exports, retrained here with
    # these counts, gave the same clean flags and the same APGD-CE flags on a batch, image by image.
    train_threads: int = 2
    num_examples: int = 1000


MODELS = {
    # The README's quick start: RAT on scikit-learn's digits (360 test images).
    "digits": Model((), linf=0.1, l2=0.5),
    # SAT on 10,000 MNIST images for 3 epochs, the documented MNIST recipe (eps 0.3; L2 radius 2,
    # AutoAttack's MNIST L2 setting).
    "mnist_sat": Model(("--dataset=npz:../shared/data/mnist.npz", "--method=sat", "--epsilon=0.3", "--epochs=3",
                        "--max_train_examples=10000"), linf=0.3, l2=2.0, train_threads=2),
    # SAT on CIFAR-10 with the study's wrn-10-2 (eps 8/255; L2 radius 0.5, RobustBench's L2 track).
    # No per-epoch validation: PGD on the whole test set would cost more than the training.
    "cifar_sat": Model(("--dataset=folder:../cache/cifar10", "--method=sat", "--arch=wrn-10-2",
                        "--max_train_examples=5000", "--epochs=5", "--validation_freq=0"), linf=8 / 255, l2=0.5,
                       train_threads=1),
}


def official_package(reference: str):
    """The official `autoattack` package, imported from its directory (not installed)."""
    package = os.path.join(reference, "autoattack")
    if "autoattack" not in sys.modules:
        spec = importlib.util.spec_from_file_location("autoattack", os.path.join(package, "__init__.py"),
                                                      submodule_search_locations=[package])
        module = importlib.util.module_from_spec(spec)
        sys.modules["autoattack"] = module
        spec.loader.exec_module(module)
    from autoattack import AutoAttack  # noqa: PLC0415  (resolved through sys.modules)
    return AutoAttack


def ensure_export(name: str, model: Model) -> str:
    """The model's export, trained with its recorded command and thread count if it is not there yet."""
    model_dir = os.path.join(RUNS, name)
    export = os.path.join(model_dir, "export")
    if not os.path.exists(os.path.join(export, "saved_model.pb")):
        cmd = [sys.executable, "train_main.py", *model.train, f"--model_dir={model_dir}"]
        threads = {var: str(model.train_threads) for var in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")}
        print("training:", *(f"{k}={v}" for k, v in threads.items()), *cmd[1:], flush=True)
        subprocess.run(cmd, cwd=REPO, check=True, env={**os.environ, **threads})
    return export


def weights_sha256(classifier) -> str:
    """A fingerprint of a Keras model's weights: SHA-256 over their shapes and float32 bytes, in the
    model's order (layer names, which Keras numbers per process, are left out)."""
    digest = hashlib.sha256()
    for weight in classifier.weights:
        value = np.ascontiguousarray(np.asarray(weight.numpy(), np.float32))
        digest.update(str(value.shape).encode())
        digest.update(value.tobytes())
    return digest.hexdigest()


def _runs_and_partials(entry: dict[str, Any]):
    """(norm, "impl seed N", run) for every finished and unfinished run of a model's entry."""
    for norm, n in entry.get("norms", {}).items():
        for impl, rows in n.get("runs", {}).items():
            yield from ((norm, f"{impl} seed {r['seed']}", r) for r in rows)
        yield from ((norm, key, r) for key, r in n.get("partial", {}).items())


def check_same_weights(name: str, entry: dict[str, Any], fingerprint: str | None, clean: Sequence[int],
                       source: str = "the export") -> None:
    """Refuse to add runs on other weights to a model's entry (SystemExit naming the model).

    `fingerprint` and `clean` (the indices of the correctly classified images) are those of the
    runs to add. Where both sides have a `weights_sha256`, they must match; otherwise (an entry
    written before the fingerprint was recorded) every run must at least have the same clean flags."""
    recorded = entry.get("weights_sha256")
    if recorded and fingerprint:
        if recorded != fingerprint:
            raise SystemExit(f"{name}: {source}'s weights (sha256 {fingerprint[:12]}) are not those the report's "
                             f"runs were made on ({recorded[:12]}); restore that export or write to another --json_out")
        return
    for norm, key, r in _runs_and_partials(entry):
        if r["robust"]["clean"] != list(clean):
            raise SystemExit(f"{name}: {source} classifies other test images correctly than the report's {norm} "
                             f"{key} run; its weights differ, so its runs cannot be added there")


def run_stages(num_examples: int, stage_names: Sequence[str], clean: Callable[[], np.ndarray],
               attack: Callable[[str, np.ndarray], np.ndarray], partial: dict[str, Any] | None = None,
               save: Callable[[dict[str, Any]], None] | None = None) -> tuple[dict[str, np.ndarray], float]:
    """One run, a stage at a time and resumable: the robust flags after each stage, and its seconds.

    `clean()` gives the clean flags; `attack(stage, index)` the flags of the examples `index`
    (those still robust) under that stage. After the clean pass and after every stage, `save`
    receives the run so far, {"robust": stage -> robust indices, "seconds"}; given back as
    `partial`, it lets a run interrupted between stages go on where it stopped.
    """
    done = (partial or {}).get("robust", {})
    seconds = float((partial or {}).get("seconds", 0.0))
    stages = {s: np.isin(np.arange(num_examples), done[s]) for s in ("clean", *stage_names) if s in done}
    for stage in ("clean", *stage_names):
        if stage in stages:
            continue
        start = time.perf_counter()
        if stage == "clean":
            flags = np.asarray(clean(), bool)
        else:
            flags = stages[list(stages)[-1]].copy()
            index = np.flatnonzero(flags)
            if len(index):
                flags[index] = attack(stage, index)
        stages[stage] = flags
        seconds += time.perf_counter() - start
        if save is not None:
            save({"robust": {s: np.flatnonzero(f).tolist() for s, f in stages.items()}, "seconds": round(seconds, 1)})
    return stages, seconds


def official_run(AutoAttack, module, x, y, norm: str, epsilon: float, seed: int, batch_size: int, **resume):
    """The official standard version, one attack at a time on what is still robust (as its
    `run_standard_evaluation` runs the cascade: the same batches, seeds and budgets; its checks run)."""
    import torch  # noqa: PLC0415

    adversary = AutoAttack(module, norm=norm, eps=epsilon, version="standard", seed=seed, device="cpu",
                           verbose=False)
    xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
    yt = torch.from_numpy(y.astype(np.int64))
    official = {ours: OFFICIAL_NAMES[ours] for ours in STAGES}
    assert list(official.values()) == adversary.attacks_to_run, adversary.attacks_to_run

    def clean():
        with torch.no_grad():
            return (module(xt).argmax(1) == yt).numpy()

    def attack(stage, index):
        adversary.attacks_to_run = [official[stage]]
        x_adv = adversary.run_standard_evaluation(xt[index], yt[index], bs=batch_size)
        with torch.no_grad():
            return (module(x_adv).argmax(1) == yt[index]).numpy()

    return run_stages(len(x), STAGES, clean, attack, **resume)


def ours_run(serve, x, y, suite, seed: int, batch_size: int, **resume):
    """rat_tf's AutoAttack (`suite`, a `SuiteConfig` of the standard version), a stage at a time:
    each attack of the cascade on the examples still robust, with the cascade's batches and seeds,
    so the flags are those of one `rat_tf.evaluation.autoattack` call (tests/test_evaluation.py
    checks it)."""
    from rat_tf.evaluation import robustness  # noqa: PLC0415

    assert suite.cascade == STAGES, suite.cascade

    def attack(stage, index):
        alone = dataclasses.replace(suite, attacks=(stage,), autoattack=False)
        return robustness.evaluate(serve, x[index], y[index], alone, batch_size=batch_size, seed=seed).per_attack[stage]

    return run_stages(len(x), STAGES, lambda: robustness.predict(serve, x, batch_size) == y, attack, **resume)


def summarise(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Per implementation: robust accuracy (%) per stage and seed, and the range of the final one;
    the examples robust for one implementation under every seed and broken by the other under every seed."""
    out: dict[str, Any] = {}
    final = {}
    for impl, seeds in runs.items():
        stages = list(seeds[0]["stages"])
        out[impl] = {"after": {s: [round(100 * float(np.mean(r["stages"][s])), 2) for r in seeds] for s in stages},
                     "seconds": [round(r["seconds"], 1) for r in seeds]}
        final[impl] = np.stack([r["stages"][stages[-1]] for r in seeds])
        accs = out[impl]["after"][stages[-1]]
        out[impl]["final"] = {"min": min(accs), "max": max(accs), "mean": round(float(np.mean(accs)), 2)}
    if len(final) == 2:
        ours, official = final["rat_tf"], final["official"]
        out["robust_only_for_rat_tf"] = np.flatnonzero(ours.all(0) & ~official.any(0)).tolist()
        out["robust_only_for_official"] = np.flatnonzero(official.all(0) & ~ours.any(0)).tolist()
        # The same, after each stage: where the two first part ways.
        out["by_stage"] = {}
        for stage in runs["rat_tf"][0]["stages"]:
            a = np.stack([r["stages"][stage] for r in runs["rat_tf"]])
            b = np.stack([r["stages"][stage] for r in runs["official"]])
            out["by_stage"][stage] = {"robust_only_for_rat_tf": np.flatnonzero(a.all(0) & ~b.any(0)).tolist(),
                                      "robust_only_for_official": np.flatnonzero(b.all(0) & ~a.any(0)).tolist()}
        out["ours_minus_official_mean"] = round(out["rat_tf"]["final"]["mean"] - out["official"]["final"]["mean"], 2)
        out["ours_within_or_below_official_range"] = out["rat_tf"]["final"]["mean"] <= out["official"]["final"]["max"]
    return out


def load_report(path: str | None) -> dict[str, Any]:
    """The report written so far (runs are appended one implementation x seed at a time)."""
    if not path or not os.path.exists(path):
        return {"models": {}}
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def runs_of(entry: dict[str, Any], num_examples: int) -> dict[str, list[dict[str, Any]]]:
    """impl -> [{"seed", "stages": stage -> bool flags, "seconds"}] from a norm's entry."""
    runs: dict[str, list[dict[str, Any]]] = {}
    for impl, rows in entry.get("runs", {}).items():
        for r in rows:
            flags = {s: np.isin(np.arange(num_examples), idx) for s, idx in r["robust"].items()}
            runs.setdefault(impl, []).append({"seed": r["seed"], "stages": flags, "seconds": r["seconds"]})
    return runs


def merge_reports(report: dict[str, Any], other: dict[str, Any], source: str = "the other report") -> list[str]:
    """Add `other`'s runs to `report` (runs made side by side, each into its own --json_out).

    Per model and norm: finished runs whose implementation and seed `report` lacks, and the
    stages of unfinished ones (the further along of the two), then the summary again. Runs on
    other weights are refused (`check_same_weights`). Returns what was added.
    """
    added = []
    for name, theirs in other.get("models", {}).items():
        mine = report["models"].setdefault(name, {k: v for k, v in theirs.items() if k != "norms"} | {"norms": {}})
        if mine.get("num_examples") != theirs.get("num_examples"):
            raise SystemExit(f"{source}: {name} was run on {theirs.get('num_examples')} images, "
                             f"not {mine.get('num_examples')}")
        for clean in {tuple(r["robust"]["clean"]) for _, _, r in _runs_and_partials(theirs)}:
            check_same_weights(name, mine, theirs.get("weights_sha256"), clean, source=source)
        for norm, n in theirs.get("norms", {}).items():
            m = mine["norms"].setdefault(norm, {"epsilon": n["epsilon"], "runs": {}})
            for impl, rows in n.get("runs", {}).items():
                for r in rows:
                    if not any(q["seed"] == r["seed"] for q in m["runs"].get(impl, [])):
                        m["runs"].setdefault(impl, []).append(r)
                        m["runs"][impl].sort(key=lambda q: q["seed"])
                        added.append(f"{name} {norm} {impl} seed {r['seed']}")
            partials = m.setdefault("partial", {})
            for key, run in n.get("partial", {}).items():
                if key in partials and len(partials[key]["robust"]) >= len(run["robust"]):
                    continue
                partials[key] = run
                added.append(f"{name} {norm} {key}: stages {', '.join(run['robust'])}")
            for key in [k for k in partials if any(r["seed"] == int(k.split()[-1])
                                                   for r in m["runs"].get(k.split()[0], []))]:
                del partials[key]  # finished since
            if not partials:
                del m["partial"]
            m.update(summarise(runs_of(m, mine["num_examples"])))
    return added


def markdown(report: dict[str, Any]) -> str:
    """The table of docs/EVALUATION.md: robust accuracy after each stage, ours against the official."""
    lines = ["| model | norm, eps | images | stage | rat_tf: mean (min-max) | official: mean (min-max) "
             "| robust only for rat_tf / only for official, every seed |",
             "|---|---|---:|---|---:|---:|---:|"]
    for name, entry in report["models"].items():
        for norm, n in entry["norms"].items():
            sides = {impl: n.get(impl) for impl in ("rat_tf", "official")}
            stages = next((list(v["after"]) for v in sides.values() if v), [])
            for stage in stages:
                cells = []
                for impl in ("rat_tf", "official"):
                    accs = (sides[impl] or {}).get("after", {}).get(stage)
                    seeds = f"{len(accs)} seed{'s' * (len(accs) > 1)}" if accs else ""
                    cells.append(f"{np.mean(accs):.2f} ({min(accs):.1f}-{max(accs):.1f}), {seeds}" if accs else "-")
                apart = n.get("by_stage", {}).get(stage)
                cells.append(f"{len(apart['robust_only_for_rat_tf'])} / {len(apart['robust_only_for_official'])}"
                             if apart else "-")
                lines.append(f"| {name} | {norm}, {n['epsilon']:.4g} | {entry['num_examples']} | {stage} | "
                             f"{' | '.join(cells)} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--models", default="digits", help=f"comma list of {', '.join(MODELS)}")
    parser.add_argument("--norms", default="Linf", help="comma list of Linf, L2")
    parser.add_argument("--seeds", default="0,1,2", help="seeds, for both implementations")
    parser.add_argument("--impls", default="rat_tf,official", help="comma list of rat_tf, official")
    parser.add_argument("--num_examples", type=int, default=None, help="default: each model's (1,000, or all)")
    parser.add_argument("--batch_size", type=int, default=250)
    parser.add_argument("--threads", type=int, default=2, help="threads of each implementation")
    parser.add_argument("--reference", default=REFERENCE, help="the official auto-attack checkout")
    parser.add_argument("--json_out", default=None,
                        help="the report, rewritten after every run; runs already in it are not run again")
    parser.add_argument("--markdown", action="store_true", help="print the table of --json_out and exit")
    parser.add_argument("--merge", default=None,
                        help="comma list of reports written side by side (each run with its own --json_out): add "
                             "their runs, and the finished stages of their unfinished runs, to --json_out and exit")
    args = parser.parse_args(argv)
    unknown = [m for m in args.models.split(",") if m not in MODELS]
    if unknown:
        parser.error(f"--models: unknown {', '.join(unknown)}; allowed: {', '.join(MODELS)}")
    report = load_report(args.json_out)
    if args.merge:
        if not args.json_out:
            parser.error("--merge: give --json_out, the report to merge into")
        for path in args.merge.split(","):
            for line in merge_reports(report, load_report(path), source=path):
                print(f"{path}: {line}")
        files.atomic_write_text(args.json_out, json.dumps(report, indent=1) + "\n")
        print(markdown(report))
        return 0
    if args.markdown:
        print(markdown(report))
        return 0

    import tensorflow as tf  # noqa: PLC0415
    import torch  # noqa: PLC0415

    from benchmarks import torch_port  # noqa: PLC0415
    from rat_tf import export  # noqa: PLC0415
    from rat_tf.evaluation import robustness  # noqa: PLC0415

    torch.set_num_threads(args.threads)
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    AutoAttack = official_package(args.reference)  # noqa: N806
    seeds = [int(s) for s in args.seeds.split(",")]
    report.update({"command": "python -m benchmarks.autoattack_crosscheck " + " ".join(argv or sys.argv[1:]),
                   "threads": args.threads})
    for name in args.models.split(","):
        spec = MODELS[name]
        path = ensure_export(name, spec)
        serve, metadata = export.load_exported(path)
        classifier = torch_port.keras_from_export(path)
        module = torch_port.to_torch(classifier)
        data = data_lib.load(metadata["dataset"], max_test_examples=args.num_examples or spec.num_examples,
                             max_train_examples=1)
        x = data_lib.to_float(data.x_test[:args.num_examples or spec.num_examples])
        y = np.asarray(data.y_test[:len(x)], np.int32)
        difference = torch_port.check_equal(classifier, module, x)
        entry = report["models"].setdefault(name, {"norms": {}})
        if entry.get("num_examples", len(x)) != len(x):
            raise SystemExit(f"{args.json_out}: {name} was run on {entry['num_examples']} images, not {len(x)}")
        fingerprint = weights_sha256(classifier)
        clean = np.flatnonzero(robustness.predict(serve, x, args.batch_size) == y).tolist()
        check_same_weights(name, entry, fingerprint, clean)
        entry.update({"export": os.path.relpath(path, REPO), "train": ["python", "train_main.py", *spec.train],
                      "train_threads": spec.train_threads,
                      "num_examples": len(x), "max_logit_difference": difference, "weights_sha256": fingerprint})
        for norm in args.norms.split(","):
            epsilon = spec.linf if norm == "Linf" else spec.l2
            n = entry["norms"].setdefault(norm, {"epsilon": epsilon, "runs": {}})
            for impl in args.impls.split(","):
                for seed in seeds:
                    if any(r["seed"] == seed for r in n["runs"].get(impl, [])):
                        continue
                    key = f"{impl} seed {seed}"
                    partials = n.setdefault("partial", {})

                    def save(run, key=key, partials=partials):
                        partials[key] = run
                        if args.json_out:
                            files.atomic_write_text(args.json_out, json.dumps(report, indent=1) + "\n")

                    resume = {"partial": partials.get(key), "save": save}
                    if impl == "official":
                        stages, seconds = official_run(AutoAttack, module, x, y, norm, epsilon, seed, args.batch_size,
                                                       **resume)
                    else:
                        suite = robustness.SuiteConfig.for_version("standard", norm, epsilon)
                        stages, seconds = ours_run(serve, x, y, suite, seed, args.batch_size, **resume)
                    del partials[key]
                    if not partials:
                        del n["partial"]
                    print(f"{name} {norm} eps={epsilon:.4g} {impl} seed {seed}: " + ", ".join(
                        f"{s} {100 * np.mean(f):.1f}" for s, f in stages.items()) + f" ({seconds:.0f} s)", flush=True)
                    n["runs"].setdefault(impl, []).append(
                        {"seed": seed, "seconds": round(seconds, 1),
                         "robust": {s: np.flatnonzero(f).tolist() for s, f in stages.items()}})
                    n.update(summarise(runs_of(n, len(x))))
                    if args.json_out:
                        files.atomic_write_text(args.json_out, json.dumps(report, indent=1) + "\n")
            print(json.dumps({k: v for k, v in n.items() if k != "runs"}, indent=1), flush=True)
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
