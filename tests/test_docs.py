"""The user docs cannot drift from the code: every flag is documented, every documented flag exists."""

import os
import re

from absl import flags
import pytest

import flags as rat_flags
from flags import evaluation as eval_flags

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ABSL_BUILTINS = {"flagfile", "undefok", "helpfull", "helpshort", "helpxml", "help", "only_check_args",
                 "verbosity", "v", "logtostderr", "alsologtostderr", "log_dir", "stderrthreshold",
                 "showprefixforinfo", "logger_levels", "log_json", "run_with_pdb", "pdb_post_mortem",
                 "pdb", "run_with_profiling", "profile_file", "use_cprofile_for_profiling"}


def _read(*path):
    with open(os.path.join(REPO, *path), encoding="utf-8") as f:
        return f.read()


def _defined(define) -> set[str]:
    values = flags.FlagValues()
    define(values)
    return set(values) - ABSL_BUILTINS


def _mentioned(text: str) -> set[str]:
    return set(re.findall(r"`--([a-z_0-9]+)", text))


@pytest.mark.parametrize("define, page", [(rat_flags.define_flags, "TRAINING.md"),
                                          (eval_flags.define_flags, "EVALUATION.md")])
def test_every_flag_is_documented_and_every_documented_flag_exists(define, page):
    defined, text = _defined(define), _read("docs", page)
    assert not defined - _mentioned(text), f"flags missing from docs/{page}"
    table = [line for line in text.splitlines() if line.startswith("| `--")]
    documented = {re.match(r"\| `--([a-z_0-9]+)`", line).group(1) for line in table}
    assert not documented - defined, f"docs/{page} documents flags that do not exist"


def test_the_readme_and_the_results_page_stay_short_and_name_no_ticket():
    readme = _read("README.md")
    assert len(readme.splitlines()) < 300, "README.md: keep it under 300 lines (reference goes to docs/)"
    assert os.path.getsize(os.path.join(REPO, "docs", "RESULTS.md")) < 40_000, "docs/RESULTS.md: under 40,000 bytes"
    pages = ["README.md", *[os.path.join("docs", name) for name in sorted(os.listdir(os.path.join(REPO, "docs")))
                            if name.endswith(".md")]]
    for page in pages:
        match = re.search(r"\bissues? ?#?\d", _read(page), re.IGNORECASE)
        assert match is None, f"{page} names a ticket: {match.group(0)!r}"
    for needed in ("tensorflow-addons", "python train_main.py", "pytest -q tests"):
        assert needed in readme, f"README.md no longer mentions {needed!r}"
