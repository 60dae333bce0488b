"""The Fig. 3-5 analogues' section of docs/RESULTS.md (from benchmarks/results/figures.json,
written by `python -m benchmarks.figures`): the images, the numbers behind them, a reading.
"""

from __future__ import annotations

from collections import OrderedDict
import os
from typing import Any

from benchmarks import templates_study as T
from benchmarks.results_common import fmt
from benchmarks.runner import REPO


def figures_section(payload: dict[str, Any]) -> list[str]:
    """The Fig. 3-5 analogues: images (paths relative to docs/) and the numbers behind them."""
    models = payload["models"]
    labels = list(models)
    lines = T.FIGURES_HEAD.substitute(n=payload["sweep_examples"], hardware=payload["hardware"],
                                      commit=payload["git_commit"][:12]).split("\n")
    for key, title in (("fig3", "Fig. 3: train vs test"), ("fig4", "Fig. 4: PGD iterations"),
                       ("fig5", "Fig. 5: epsilon")):
        path = payload["figures"][key]
        lines += [f"![{title}]({os.path.relpath(os.path.join(REPO, path), os.path.join(REPO, 'docs'))})", ""]
    lines += ["| model | train clean | test clean | clean gap | train PGD-10 | test PGD-10 | PGD gap |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    for label in labels:
        g = models[label]["gaps"]
        lines.append(f"| {label} | " + " | ".join(fmt(100 * g[k], 1) for k in (
            "train_clean", "test_clean", "clean_gap", "train_pgd", "test_pgd", "pgd_gap")) + " |")
    for key, kind, caption, header in (
            ("sweep_steps", int, T.FIGURES_STEPS, lambda k: f"K={k}"),
            ("sweep_epsilon", float, T.FIGURES_EPSILON, lambda e: f"{e:.3g}")):
        curves = {m: {kind(k): v for k, v in models[m][key]["accuracy"].items()} for m in labels}
        xs = sorted({x for curve in curves.values() for x in curve})
        lines += ["", caption, "", "| model | " + " | ".join(header(x) for x in xs) + " |",
                  "|---|" + "---:|" * len(xs)]
        for label, curve in curves.items():
            lines.append(f"| {label} | " + " | ".join(fmt(100 * curve[x], 1) if x in curve else "–"
                                                      for x in xs) + " |")
    lines += ["", T.FIGURES_READING, "", *figures_reading(models)]
    lines += ["", T.FIGURES_COMMANDS.substitute(label=labels[0]), "", "```bash", models[labels[0]]["command"], "```",
              ""]
    return lines


def figures_values(models: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The numbers the Fig. 3-5 reading quotes (accuracies and gaps in points)."""
    gaps = {m: 100 * v["gaps"]["pgd_gap"] for m, v in models.items()}
    steps, k0, k1 = OrderedDict(), None, None
    for m, v in models.items():
        curve = {int(k): a for k, a in v["sweep_steps"]["accuracy"].items()}
        ks = sorted(k for k in curve if k > 0)
        if ks:
            k0, k1 = (10 if 10 in curve else ks[0]), ks[-1]
            steps[m] = (100 * curve[k0], 100 * curve[k1])
    epsilon, points = OrderedDict(), None
    for m, v in models.items():
        curve = {float(k): a for k, a in v["sweep_epsilon"]["accuracy"].items()}
        top = max(curve)
        train = min(curve, key=lambda e: abs(e - top / 2))
        above = min((e for e in curve if e > train), default=top)
        points = (train, above, top)
        epsilon[m] = tuple(100 * curve[e] for e in points)
    return {"gaps": gaps, "ordered": sorted(gaps, key=gaps.get), "k0": k0, "k1": k1, "steps": steps,
            "drops": {m: a - b for m, (a, b) in steps.items()}, "epsilons": points, "epsilon": epsilon}


def figures_reading(models: dict[str, dict[str, Any]]) -> list[str]:
    """Plain-language lines for the Fig. 3-5 analogues."""
    v = figures_values(models)
    gaps, ordered = v["gaps"], v["ordered"]
    out = [T.FIG3_READING.substitute(parts=", ".join(f"{m} {gaps[m]:.1f}" for m in ordered),
                                     smallest=ordered[0], largest=ordered[-1])]
    if v["steps"]:
        drops = v["drops"]
        text = T.FIG4_READING.substitute(k0=v["k0"], k1=v["k1"], parts="; ".join(
            f"{m} {a:.1f} -> {b:.1f}" for m, (a, b) in v["steps"].items()))
        strong = [m for m in sorted(drops, key=drops.get, reverse=True) if drops[m] > 10]
        text += (T.FIG4_STRONG.substitute(k0=v["k0"], methods=", ".join(strong)) if strong
                 else T.FIG4_NONE_STRONG.substitute(k0=v["k0"]))
        rest = [m for m in drops if m not in strong]
        text += (T.FIG4_REST.substitute(low=f"{min(drops[m] for m in rest):.1f}",
                                        high=f"{max(drops[m] for m in rest):.1f}") if rest else T.FIG4_NO_REST)
        out.append(text)
    if v["epsilon"]:
        train, above, top = v["epsilons"]
        out.append(T.FIG5_READING.substitute(train=f"{train:g}", above=f"{above:g}", top=f"{top:g}", parts="; ".join(
            f"{m} {a:.1f} / {b:.1f} / {c:.1f}" for m, (a, b, c) in v["epsilon"].items())))
    return out
