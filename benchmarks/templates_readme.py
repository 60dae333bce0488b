"""The prose of the README's results block (between its results markers), as templates with
named fields: the robust-overfitting study's table first, then the MNIST table.

`benchmarks/results_readme.py` computes the numbers and fills these in.
"""

from __future__ import annotations

from string import Template as T

README_OVERFIT_INTRO = T("CIFAR-10, robust overfitting over a long schedule (`benchmarks/overfit.py`; $regime): "
                         "AutoAttack's standard version and the worst case over AutoAttack plus FGSM, PGD and CW-inf "
                         "(AA+) on the first 1,000 test images, at the best (by validation PGD-10) and the last "
                         "checkpoint; mean ± standard deviation over seeds. `train − test` is the last epoch's "
                         "training minus test PGD-10 accuracy: a generalisation gap, not a robustness number.")
README_OVERFIT_VERDICT = T("Here RAT's train − test gap is $gap_rat against SAT's $gap_sat ($gap_word; $moved); under "
                           "AutoAttack RAT's last checkpoint scores $last_rat against SAT's $last_sat ($last_word) "
                           "and its best $best_rat against $best_sat ($best_word). The verdicts, the calibration "
                           "and the curves: [docs/RESULTS.md](docs/RESULTS.md).")
README_OVERFIT_WORDS = {"above": "above it beyond the seed spread", "below": "below it beyond the seed spread",
                        "overlap": "within the seed spread", "too_few": "too few seeds to tell",
                        "missing": "no number yet"}
README_OVERFIT_GAP_WORDS = {**README_OVERFIT_WORDS, "above": "larger beyond the seed spread",
                            "below": "smaller beyond the seed spread"}
README_OUTSIDE_REGIME = ("MNIST at eps 0.3 (not the paper's setting; the CIFAR-10 study at about 1% of the paper's "
                         "scale is the table above):")


# --------------------------------------------------------------------------
# The README block.

README_INTRO = T("MNIST, eps 0.3, small CNN, $train_steps training steps of 128 with a one-epoch epsilon warm-up "
                 "(`benchmarks/reproduce.py`, 2 CPU cores); accuracy %, mean ± standard deviation over the seeds "
                 "run. Every robustness number here is either AutoAttack's standard version (APGD-CE, APGD-T, "
                 "FAB-T, Square as a cascade; $aa_budget) or a per-example worst case over an attack suite, named "
                 "in the last column: **AA+** is AutoAttack plus FGSM, PGD-20 and CW-inf; **suite** is FGSM, "
                 "PGD-20, CW-inf, APGD-CE, APGD-T, Square and NAttack at reduced budgets ($suite_budget). PGD on "
                 "cross-entropy alone is not shown: it flatters the soft-label methods (RAT, AVmixup).")
README_AA_BUDGET = T("$apgd_steps iterations, $apgd_targets targets, Square $square_queries queries")
README_SUITE_BUDGET = T("APGD $apgd_steps iterations x $apgd_targets targets, Square $square_queries queries, "
                        "NAttack $nattack_iterations x $nattack_population on the first $nattack_examples images")
README_OVER = {"autoattack": T("AA+, $images images"), "suite": T("suite, $images images")}
README_CANDIDATE = "RAT, e = 0.5 end points (study)"
README_NO_RESULT = "No result at the published budget yet: `python -m benchmarks.reproduce`."
README_COMPARISON = T("In the paper RAT is 22.8 points above SAT under PGD-10 (CIFAR-10, WRN-34-10). On MNIST at "
                      "eps 0.3 RAT is $worst points $worst_direction SAT in the worst case ($over)$aa. ")
README_COMPARISON_AA = T(" and $aa points $aa_direction it under AutoAttack")
README_DETAILS = "Details, CIFAR-10, the paper's numbers and the commands: [docs/RESULTS.md](docs/RESULTS.md)."
