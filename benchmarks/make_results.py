"""Writes docs/RESULTS.md (and the README's results table) from the result runners' JSON lines.

    python -m benchmarks.make_results [--results benchmarks/results/reproduce.jsonl] [--study_results ...]
        [--figures ...] [--overfit_results benchmarks/results/overfit.jsonl] [--out docs/RESULTS.md] [--readme ...]

Order of the page: the robust-overfitting study (`results_overfit`) when its file exists, then the
CPU-scale reproduction (`results_reproduction`: AutoAttack's standard version when any row has it,
one section per budget, the paper's tables beside this repository's numbers in `results_tables`, a
reading generated from the numbers in `results_reading`), the Fig. 3-5 analogues
(`results_figures`), the study beyond the paper (`results_study`). It also writes
docs/STUDY_RUNS.md, docs/REPRODUCE_RUNS.md, docs/OVERFIT_CALIBRATION.md (`results_calibration`) and
the README's block between its results markers (`results_readme`). Rows of different budgets are
never mixed in one table. The exact commands are not repeated: every row holds its own
(`commands`), and the page says so once.

The prose is in the `templates_*` modules (templates with named fields); the `results_*` modules
compute the values that fill them (their `*_values` functions return them as data, which the tests
check) and build the tables.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Optional

from rat_tf import startup  # before TensorFlow (the attack titles come from the library): a quiet start

startup.import_tensorflow()

from benchmarks import figures, reproduction, runner, study  # noqa: E402
from benchmarks.results_calibration import (  # noqa: E402
    CALIBRATION_PAGE,
    OVERFIT_CALIBRATION,
    calibration_page,
    calibration_rows,
)
from benchmarks.results_figures import figures_section  # noqa: E402
from benchmarks.results_overfit import (  # noqa: E402
    OVERFIT_FIGURE,
    OVERFIT_RESULTS,
    draw_overfit_gap,
    overfit_rows,
    overfit_section,
    overfit_summary,
)
from benchmarks.results_readme import readme_block, readme_overfit, update_readme  # noqa: E402
from benchmarks.results_reproduction import REPRODUCE_RUNS_PAGE, render, reproduce_runs_page  # noqa: E402
from benchmarks.results_study import STUDY_RUNS_PAGE, study_runs_page, study_section  # noqa: E402
from rat_tf.files import atomic_write_text  # noqa: E402

REPO = runner.REPO


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default=reproduction.RESULTS)
    parser.add_argument("--study_results", default=study.RESULTS)
    parser.add_argument("--figures", default=figures.RESULTS)
    parser.add_argument("--overfit_results", default=OVERFIT_RESULTS,
                        help="the robust-overfitting study's rows (benchmarks/overfit.py); it leads when it exists")
    parser.add_argument("--overfit_figure", default=OVERFIT_FIGURE, help="where its gap-curve PNG goes")
    parser.add_argument("--overfit_calibration", default=OVERFIT_CALIBRATION,
                        help="the calibration runs that chose the study's regime (benchmarks/overfit.py --calibration)")
    parser.add_argument("--out", default=os.path.join(REPO, "docs", "RESULTS.md"))
    parser.add_argument("--readme", default=os.path.join(REPO, "README.md"),
                        help="README whose results table (between its markers) is regenerated; '' to skip")
    args = parser.parse_args(argv)
    rows = runner.read_rows(args.results)
    study_rows = runner.read_rows(args.study_results)
    overfit = overfit_rows(args.overfit_results)
    calibration = calibration_rows(args.overfit_calibration)
    docs = os.path.dirname(os.path.abspath(args.out))
    text = ""
    if overfit:
        figure = draw_overfit_gap(overfit_summary(overfit), args.overfit_figure)
        text = "\n".join(overfit_section(overfit, os.path.relpath(args.overfit_results, REPO), figure,
                                         docs, calibration)) + "\n"
    text += render(rows, os.path.relpath(args.results, REPO), study_rows)
    if os.path.exists(args.figures):
        with open(args.figures, encoding="utf-8") as f:
            text += "\n" + "\n".join(figures_section(json.load(f)))
    study_rel = os.path.relpath(args.study_results, REPO)
    text += "\n" + "\n".join(study_section(study_rows, study_rel, inline_runs=False))
    atomic_write_text(args.out, text)
    atomic_write_text(os.path.join(docs, os.path.basename(STUDY_RUNS_PAGE)),
                      "\n".join(study_runs_page(study_rows, study_rel)).rstrip() + "\n")
    reproduce_page = reproduce_runs_page(rows, os.path.relpath(args.results, REPO))
    if reproduce_page:
        atomic_write_text(os.path.join(docs, os.path.basename(REPRODUCE_RUNS_PAGE)), "\n".join(reproduce_page) + "\n")
    if calibration:
        page = calibration_page(calibration, os.path.relpath(args.overfit_calibration, REPO), overfit)
        atomic_write_text(os.path.join(docs, os.path.basename(CALIBRATION_PAGE)), "\n".join(page).rstrip() + "\n")
    print(f"wrote {args.out} from {len(rows)} row(s)")
    if args.readme:
        block = readme_overfit(overfit) + readme_block(rows, study_rows)
        if update_readme(args.readme, block):
            print(f"updated the results table in {args.readme}")
        else:
            print(f"warning: {args.readme} has no results markers; its table was not updated", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
