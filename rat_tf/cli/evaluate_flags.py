"""Command-line flags of the evaluation program (rat-evaluate, evaluate_main.py), as one config.

    from absl import flags
    from rat_tf.cli import evaluate_flags
    evaluate_flags.define_flags()
    config = evaluate_flags.config_from_flags(flags.FLAGS, metadata, output_dir)   # metadata fills the autos
"""

from __future__ import annotations

from typing import Any

from absl import flags

from rat_tf.attacks import common as attacks_common
from rat_tf.cli.train_flags import parse_fraction
from rat_tf.config import AUTO, ConfigError, EvaluateConfig, field_errors, named_field_errors
from rat_tf.evaluation import corruptions as corruptions_lib
from rat_tf.evaluation import robustness
from rat_tf.evaluation import suite as suite_lib

# The flags `rat_tf.evaluation.suite.SuiteConfig` checks (a budget out of range names its flag).
_SUITE_FLAGS = ("epsilon", "norm", "step_size", "pgd_steps", "cw_steps", "restarts", "apgd_steps", "apgd_targets",
                "fab_steps", "fab_final_search_steps", "fab_targets", "square_queries", "nattack_iterations",
                "nattack_population", "nattack_examples", "autoattack_version")


def _parse_attacks(text: str) -> tuple[tuple[str, ...], bool]:
    return suite_lib.parse_attacks(text)


def _parse_corruptions(text: str) -> tuple[str, ...]:
    text = text.strip().lower()
    if text in ("", "none"):
        return ()
    if text == "all":
        return tuple(corruptions_lib.CORRUPTIONS)
    try:
        return tuple(corruptions_lib.canonical_name(n.strip()) for n in text.split(",") if n.strip())
    except ValueError:
        raise ValueError(f"unknown corruption in {text!r}; allowed: all, none or a comma list of "
                         f"{', '.join(corruptions_lib.CORRUPTIONS)}") from None


def _parse_severities(text: str) -> tuple[int, ...]:
    values = tuple(int(v) for v in str(text).split(",") if v.strip())
    if not values or any(v not in corruptions_lib.SEVERITIES for v in values):
        raise ValueError(f"severities must be a comma list of 1..5, got {text!r}")
    return values


def _fraction_or_auto(text: str):
    return AUTO if str(text).strip().lower() == AUTO else parse_fraction(text)


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    fv = flag_values
    flags.DEFINE_string("saved_model", None, "SavedModel directory (train_main.py --export_dir).", flag_values=fv)
    flags.DEFINE_string("endpoint", "serve", "SavedModel endpoint: images in [0, 1] -> logits.", flag_values=fv)
    flags.DEFINE_string("output_key", None, "Output key when the endpoint returns a dict.", flag_values=fv)
    flags.DEFINE_string("dataset", AUTO, "Dataset spec as in train_main.py (auto: the export's metadata).",
                        flag_values=fv)
    flags.DEFINE_string("data_dir", None, "TFDS data directory.", flag_values=fv)
    flags.DEFINE_integer("num_examples", 1000, "Test examples to evaluate (the first N).", lower_bound=1,
                         flag_values=fv)
    flags.DEFINE_integer("batch_size", 200, "Examples per attack batch.", lower_bound=1, flag_values=fv)
    flags.DEFINE_integer("seed", 0, "Root seed of the attacks.", flag_values=fv)
    flags.DEFINE_string("epsilon", AUTO, "The radius in pixel units, e.g. 8/255 or 0.031 for Linf, 0.5 for "
                        "L2 (auto: the export's training epsilon, a Linf radius).", flag_values=fv)
    flags.DEFINE_enum("norm", "Linf", attacks_common.NORMS,
                      "The threat model: Linf, or L2 (AutoAttack's attacks only: --attacks=autoattack).",
                      flag_values=fv)
    flags.DEFINE_enum("autoattack_version", "standard", tuple(suite_lib.VERSIONS),
                      "AutoAttack's version, with the official code's attacks and budgets: standard (APGD-CE, "
                      "APGD-T, FAB-T, Square), plus (also APGD-DLR and FAB, 5 restarts each), rand (APGD-CE "
                      "and APGD-DLR with EOT over 20 calls, for randomised models).", flag_values=fv)
    flags.DEFINE_enum("outputs", "logits", robustness.OUTPUTS,
                      "What the endpoint returns. Probabilities (a softmax at the end) are refused unless "
                      "declared here; then the attacks use their logarithm, and Square its margin on them.",
                      flag_values=fv)
    flags.DEFINE_string("step_size", AUTO, "PGD/CW step (auto: epsilon / 4).", flag_values=fv)
    flags.DEFINE_string("attacks", "default",
                        f"A preset or a comma list of attacks ({', '.join(suite_lib.REGISTRY)}) and presets. "
                        f"Presets: {suite_lib.describe_presets()}.", flag_values=fv)
    flags.DEFINE_integer("pgd_steps", 20, "PGD steps.", flag_values=fv)
    flags.DEFINE_integer("cw_steps", 30, "CW-inf steps.", flag_values=fv)
    flags.DEFINE_integer("restarts", 1, "Random restarts of PGD and CW (worst case per example).",
                         flag_values=fv)
    flags.DEFINE_integer("apgd_steps", 100, "APGD-CE and APGD-T iterations (AutoAttack: 100).", flag_values=fv)
    flags.DEFINE_integer("apgd_targets", 9, "Target classes of APGD-T (AutoAttack: 9; at most classes - 1).",
                         flag_values=fv)
    flags.DEFINE_integer("fab_steps", 100, "FAB-T iterations (AutoAttack: 100).", flag_values=fv)
    flags.DEFINE_integer("fab_final_search_steps", 0,
                         "A search along the segment to FAB's closest adversarial point after its iterations; "
                         "0 (default): none, as AutoAttack's FAB.", flag_values=fv)
    flags.DEFINE_integer("fab_targets", 9, "Target classes of FAB-T (AutoAttack: 9; at most classes - 1).",
                         flag_values=fv)
    flags.DEFINE_integer("square_queries", 5000, "Square's query budget (AutoAttack: 5,000).", flag_values=fv)
    flags.DEFINE_boolean("square_rescale_schedule", False,
                         "Compress Square's square-size schedule (written for 10,000 queries) into "
                         "--square_queries; AutoAttack's standard version does not.", flag_values=fv)
    flags.DEFINE_integer("nattack_iterations", 200, "NAttack iterations (paper: 200).", flag_values=fv)
    flags.DEFINE_integer("nattack_population", 300, "NAttack population (paper: 300).", lower_bound=2,
                         flag_values=fv)
    flags.DEFINE_integer("nattack_examples", 1000, "NAttack runs on the first N examples (paper: 1,000).",
                         flag_values=fv)
    flags.DEFINE_boolean("checks", True, "Run the self-checks.", flag_values=fv)
    flags.DEFINE_boolean("sweep_steps", False, "Robust accuracy vs PGD steps 0..100 (Fig. 4).", flag_values=fv)
    flags.DEFINE_boolean("sweep_epsilon", False, "Robust accuracy vs epsilon 0..2x eps (Fig. 5).",
                         flag_values=fv)
    flags.DEFINE_integer("sweep_examples", 500, "Examples for the sweeps and gaps.", lower_bound=1,
                         flag_values=fv)
    flags.DEFINE_boolean("gaps", False, "Train vs test clean and PGD accuracy (Fig. 3).", flag_values=fv)
    flags.DEFINE_string("output_dir", None, "Report directory (default: <saved_model>/../eval).", flag_values=fv)
    flags.DEFINE_string("name", None, "Model name in the markdown table (default: the method).",
                        flag_values=fv)
    flags.DEFINE_string("corruptions", "none",
                        "Corruption robustness (Table 2): all, none or a comma list of "
                        f"{', '.join(corruptions_lib.CORRUPTIONS)}. Combine with --attacks=none to skip attacks.",
                        flag_values=fv)
    flags.DEFINE_string("corruption_source", "generate",
                        "generate (CIFAR-10-C's corruptions applied here to the test set, seeded, cached), "
                        "npy:DIR (the published CIFAR-10-C / CIFAR-100-C .npy files) or tfds "
                        "(cifar10_corrupted/<name>_<severity>; needs a download or --data_dir).", flag_values=fv)
    flags.DEFINE_string("corruption_severities", "1,2,3,4,5", "Severities to evaluate.", flag_values=fv)
    flags.DEFINE_string("corruption_cache_dir", None, "Cache of generated corruptions (default: ~/.cache/rat_tf).",
                        flag_values=fv)
    flags.register_validator("corruptions", lambda v: _ok(_parse_corruptions, v),
                             message="unknown corruption name (see --helpfull)", flag_values=fv)
    flags.register_validator("corruption_severities", lambda v: _ok(_parse_severities, v),
                             message="--corruption_severities must be a comma list of 1..5", flag_values=fv)
    flags.register_validator("corruption_source",
                             lambda v: v in ("generate", "tfds") or (v.startswith("npy:") and len(v) > 4),
                             message="--corruption_source must be generate, tfds or npy:DIR", flag_values=fv)
    flags.register_validator("attacks", lambda v: _ok(_parse_attacks, v),
                             message="unknown attack name (see --helpfull)", flag_values=fv)
    flags.register_validator("epsilon", lambda v: _ok(_fraction_or_auto, v),
                             message="--epsilon must be 'auto' or a number/fraction (e.g. 8/255)", flag_values=fv)
    flags.register_validator("step_size", lambda v: _ok(_fraction_or_auto, v),
                             message="--step_size must be 'auto' or a number/fraction (e.g. 2/255)", flag_values=fv)
    flags.mark_flag_as_required("saved_model", flag_values=fv)


def _ok(parse, value) -> bool:
    """A validator: True, or absl's ValidationError carrying the parser's one-line message."""
    try:
        parse(value)
        return True
    except ValueError as err:
        raise flags.ValidationError(str(err)) from None


def config_from_flags(fv: flags.FlagValues, metadata: dict[str, Any], output_dir: str) -> EvaluateConfig:
    """Resolves the "auto" flags from the export's metadata.

    Raises:
      ConfigError: a value that cannot be used, or an "auto" that the metadata cannot resolve
        (names the flag).
    """
    dataset = fv.dataset
    if dataset == AUTO:
        dataset = metadata.get("dataset")
        if not dataset:
            raise ConfigError("dataset", "auto needs the export's metadata; pass --dataset", fv.dataset)
    epsilon = _fraction_or_auto(fv.epsilon)
    if epsilon == AUTO:
        epsilon = metadata.get("epsilon")
        if epsilon is None:
            raise ConfigError("epsilon", "auto needs the export's metadata; pass --epsilon (e.g. 8/255)",
                              fv.epsilon)
    with field_errors("epsilon", fv.epsilon, ValueError):
        epsilon = attacks_common.check_radius(epsilon, fv.norm)
    step = _fraction_or_auto(fv.step_size)
    standalone, cascade = _parse_attacks(fv.attacks)
    version = suite_lib.VERSIONS[fv.autoattack_version]
    linf_only = [a for a in standalone if fv.norm not in suite_lib.REGISTRY[a].norms]
    if linf_only:
        raise ConfigError("attacks", f"{', '.join(linf_only)} have no {fv.norm} version; with --norm={fv.norm} "
                          f"use --attacks=autoattack", fv.attacks)
    # The version's budgets, unless a budget flag was given (the report records what ran).
    budgets = {"apgd_targets": version.targets, "fab_targets": version.targets,
               "square_queries": version.square_queries}
    given = {name: fv[name].value for name in budgets if fv[name].present}
    # The suite checks its budgets (their ranges are the library's); an error names its flag.
    named = {name: fv[name].value for name in _SUITE_FLAGS}
    with named_field_errors(named, "attacks", ValueError, default_value=fv.attacks):
        suite = robustness.SuiteConfig.for_version(
            fv.autoattack_version, fv.norm, float(epsilon), step_size=None if step == AUTO else step,
            pgd_steps=fv.pgd_steps, restarts=fv.restarts, cw_steps=fv.cw_steps, apgd_steps=fv.apgd_steps,
            fab_steps=fv.fab_steps, fab_final_search_steps=fv.fab_final_search_steps,
            square_rescale_schedule=fv.square_rescale_schedule, nattack_iterations=fv.nattack_iterations,
            nattack_population=fv.nattack_population, nattack_examples=fv.nattack_examples,
            attacks=standalone, autoattack=cascade, **given)
    return EvaluateConfig(
        saved_model=fv.saved_model, endpoint=fv.endpoint, output_key=fv.output_key, outputs=fv.outputs,
        dataset=dataset,
        data_dir=fv.data_dir, num_examples=fv.num_examples, batch_size=fv.batch_size, seed=fv.seed,
        suite=suite, checks=fv.checks, sweep_steps=fv.sweep_steps, sweep_epsilon=fv.sweep_epsilon,
        sweep_examples=fv.sweep_examples, gaps=fv.gaps, corruptions=_parse_corruptions(fv.corruptions),
        corruption_source=fv.corruption_source,
        corruption_severities=_parse_severities(fv.corruption_severities),
        corruption_cache_dir=fv.corruption_cache_dir, output_dir=output_dir,
        name=fv.name or metadata.get("method", "model"))
