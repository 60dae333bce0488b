"""The paper's Fig. 3-5 analogues from exported models: gaps, PGD steps, epsilon.

For each model (an export of `benchmarks/study.py` or `benchmarks/reproduce.py` that has
finished), runs `evaluate_main.py --attacks=none --gaps --sweep_steps --sweep_epsilon` on the
first 500 test (and 500 training) images, once (a finished report is reused), then draws the
curves of all models into one figure each and writes `benchmarks/results/figures.json`, which
`python -m benchmarks.make_results` turns into a section of docs/RESULTS.md:

  * docs/fig3_gaps.png: train and test accuracy, clean and PGD-10 (the paper's Fig. 3).
  * docs/fig4_pgd_steps.png: PGD accuracy against the number of PGD iterations 0..100 (Fig. 4).
  * docs/fig5_epsilon.png: PGD-10 accuracy against epsilon 0..2x the training epsilon (Fig. 5).

    python -m benchmarks.figures                 # every default model that has an export
    python -m benchmarks.figures --list
    python -m benchmarks.figures --models='SAT (warm-up)=runs/study/<id>/mnist-sat-warm-seed0/export,...'
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Optional

from benchmarks import reproduction, runner, study
from rat_tf.files import atomic_write

REPO = runner.REPO
RESULTS = os.path.join(runner.RESULTS_DIR, "figures.json")
DOCS = os.path.join(REPO, "docs")
SWEEP_EXAMPLES = 500
# (label, runner module, run name): the four methods of the figures at the reproduction's published
# budget (`reproduce.py --preset=cpu`, whose SAT and RAT are the study's runs with the warm-up),
# and the study's candidate at the same budget.
DEFAULT_MODELS = [
    ("SAT", reproduction, "mnist-sat"),
    ("TRADES", reproduction, "mnist-trades"),
    ("AVmixup", reproduction, "mnist-avmixup"),
    ("RAT", reproduction, "mnist-rat"),
    ("RAT e=0.5 (study)", study, "mnist-rat-e0.5-s0-warm-seed0"),
]


def _plan(module, run) -> reproduction.Plan:
    if module is study:
        return reproduction.plan(run, study.BUDGETS[run.dataset], study.RUNS_DIR, "study")
    return reproduction.plan(run, reproduction.PRESETS["cpu"], reproduction.RUNS_DIR, "cpu")


def export_of(module, name: str) -> str:
    """The export a finished run evaluated (a shared row names the other runner's model)."""
    run = next(r for r in module.RUNS if r.name == name)
    p = _plan(module, run)
    for row in runner.read_rows(module.RESULTS):
        if (row["name"], row["train_id"], row["eval_id"]) == (name, p.train_id, p.eval_id):
            for part in row["commands"]["evaluate"].split():
                if part.startswith("--saved_model="):   # relative to the repository, or absolute
                    return os.path.normpath(os.path.join(REPO, part.split("=", 1)[1]))
    return p.export_dir


def default_exports() -> list[tuple[str, str]]:
    return [(label, export_of(module, name)) for label, module, name in DEFAULT_MODELS]


def sweep(label: str, export_dir: str) -> Optional[dict[str, Any]]:
    """Runs (or reuses) the sweeps of one export; returns its report or None if not exported."""
    if not os.path.exists(os.path.join(export_dir, "rat_tf_metadata.json")):
        return None
    out_dir = os.path.join(os.path.dirname(export_dir), "figures")
    report_path = os.path.join(out_dir, "report.json")
    cmd = [sys.executable, "evaluate_main.py", f"--saved_model={export_dir}", "--attacks=none",
           f"--num_examples={SWEEP_EXAMPLES}", f"--sweep_examples={SWEEP_EXAMPLES}", "--sweep_steps",
           "--sweep_epsilon", "--gaps", "--checks=false", "--seed=0", f"--output_dir={out_dir}",
           f"--name={label}"]
    if not os.path.exists(report_path):
        print(f"[{label}] {runner.command_text(cmd)}", flush=True)
        rc, _, _ = runner.run_logged(cmd, os.path.join(os.path.dirname(export_dir), "figures.log"))
        if rc != 0:
            print(f"[{label}] failed (exit {rc})", flush=True)
            return None
    report = json.load(open(report_path, encoding="utf-8"))
    report["command"] = runner.command_text(cmd)
    return report


def draw(models: dict[str, dict[str, Any]], docs: str = DOCS) -> dict[str, str]:
    """Writes the three figures; returns {figure: path relative to the repository}."""
    import matplotlib  # noqa: PLC0415
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    def save(fig, name):
        path = os.path.join(docs, name)
        fig.tight_layout()
        atomic_write(path, lambda f: fig.savefig(f, format="png"), mode="wb")
        plt.close(fig)
        return os.path.relpath(path, REPO)

    out = {}
    labels = list(models)
    fig, ax = plt.subplots(figsize=(6.0, 3.2), dpi=110)
    bars = [("train_clean", "train clean"), ("test_clean", "test clean"), ("train_pgd", "train PGD-10"),
            ("test_pgd", "test PGD-10")]
    width = 0.8 / len(bars)
    for i, (key, name) in enumerate(bars):
        ax.bar([j + (i - 1.5) * width for j in range(len(labels))],
               [100 * models[m]["gaps"][key] for m in labels], width, label=name)
    ax.set_xticks(range(len(labels)), labels, fontsize=8)
    ax.set_ylabel("accuracy (%)")
    ax.set_title("Train vs test (first 500 images each)", fontsize=10)
    ax.legend(fontsize=7, ncol=2)
    ax.grid(axis="y", alpha=0.3)
    out["fig3"] = save(fig, "fig3_gaps.png")
    for key, name, xlabel, scale, title in (
            ("sweep_steps", "fig4_pgd_steps.png", "PGD iterations K", 1.0, "PGD accuracy vs iterations"),
            ("sweep_epsilon", "fig5_epsilon.png", "epsilon", 1.0, "PGD-10 accuracy vs epsilon")):
        fig, ax = plt.subplots(figsize=(4.8, 3.2), dpi=110)
        for label in labels:
            curve = {float(k): v for k, v in models[label][key]["accuracy"].items()}
            xs = sorted(curve)
            ax.plot([x * scale for x in xs], [100 * curve[x] for x in xs], marker="o", ms=3, label=label)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("accuracy (%)")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        out["fig4" if key == "sweep_steps" else "fig5"] = save(fig, name)
    return out


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--models", default=None, help="comma list of label=export_dir (default: SAT, TRADES, "
                        "AVmixup and RAT of `reproduce.py --preset=cpu`, and the study's candidate)")
    parser.add_argument("--code_dir", default=REPO,
                        help="run evaluate_main.py from this checkout or snapshot (as benchmarks.reproduce --code_dir)")
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--results", default=RESULTS)
    args = parser.parse_args(argv)
    runner.use_code_dir(args.code_dir)
    if args.models:
        pairs = []
        for item in args.models.split(","):
            if "=" not in item:
                parser.error(f"--models: {item!r} is not label=export_dir")
            label, path = item.split("=", 1)
            pairs.append((label.strip(), os.path.abspath(path.strip())))
    else:
        pairs = default_exports()
    if args.list:
        for label, path in pairs:
            state = "exported" if os.path.exists(os.path.join(path, "rat_tf_metadata.json")) else "missing"
            print(f"{label:16s} {state:8s} {os.path.relpath(path, REPO)}")
        return 0
    models = {}
    for label, path in pairs:
        report = sweep(label, path)
        if report is not None:
            models[label] = {"export": os.path.relpath(path, REPO), "gaps": report["gaps"],
                             "sweep_steps": report["sweep_steps"], "sweep_epsilon": report["sweep_epsilon"],
                             "command": report["command"], "metadata_method": report.get("method")}
    if not models:
        print("no exported model yet; run python -m benchmarks.study first", file=sys.stderr)
        return 1
    figures = draw(models)
    payload = {"models": models, "figures": figures, "sweep_examples": SWEEP_EXAMPLES,
               "hardware": runner.hardware(), "git_commit": runner.git_commit()}
    atomic_write(args.results, lambda f: json.dump(payload, f, indent=1, sort_keys=True))
    print(f"wrote {', '.join(figures.values())} and {os.path.relpath(args.results, REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
