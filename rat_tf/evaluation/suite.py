"""The attack registry, the suite's budgets and the presets of `--attacks`.

Every attack the evaluation can run is declared once here, as an `AttackSpec`: its name (the
`--attacks` and report key), its column title, the config dataclass of its `rat_tf.attacks`
function and how the suite's budgets fill it, and the function itself. The suite runner
(`robustness.evaluate`), the flags and the reports read this registry.

AutoAttack's standard version (Croce & Hein 2020) is APGD-CE, APGD-T, FAB-T and Square, run as
a cascade: each attack only on the points still robust after the previous ones.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Optional
import warnings

import tensorflow as tf

from rat_tf import attacks
from rat_tf.attacks.common import LogitsFn, check_count, check_epsilon

# AutoAttack's standard version, in the order it runs its attacks.
AUTOATTACK = ("apgd_ce", "apgd_t", "fab_t", "square")


@dataclasses.dataclass(frozen=True)
class SuiteConfig:
    """The attack suite (pixel units; defaults follow the paper and AutoAttack's standard version).

    Attributes:
      epsilon: Linf radius.
      step_size: PGD / CW step size (default epsilon / 4, i.e. 2/255 at 8/255).
      pgd_steps: PGD-K steps (paper reports PGD-20).
      restarts: random restarts for PGD and CW (worst case per example).
      cw_steps: steps of PGD on the CW margin.
      apgd_steps: APGD iterations (AutoAttack: 100).
      apgd_targets: target classes for APGD-T (AutoAttack: 9; clamped to classes - 1).
      fab_steps: FAB-T iterations (AutoAttack: 100).
      fab_targets: target classes for FAB-T (AutoAttack: 9; clamped to classes - 1).
      square_queries: Square's query budget (AutoAttack: 5000).
      square_rescale_schedule: compress Square's square-size schedule into its budget (not
        AutoAttack's standard version; see `rat_tf.attacks.SquareConfig`).
      nattack_iterations, nattack_population: NAttack (paper: 200, 300).
      nattack_examples: NAttack runs on the first this-many examples (paper: 1,000).
      attacks: the attacks run on every clean-correct example, each on its own.
      autoattack: also run AutoAttack's standard version as AutoAttack runs it (a cascade).
    """

    epsilon: float = 8 / 255
    step_size: Optional[float] = None
    pgd_steps: int = 20
    restarts: int = 1
    cw_steps: int = 30
    apgd_steps: int = 100
    apgd_targets: int = 9
    fab_steps: int = 100
    fab_targets: int = 9
    square_queries: int = 5000
    square_rescale_schedule: bool = False
    nattack_iterations: int = 200
    nattack_population: int = 300
    nattack_examples: int = 1000
    attacks: tuple[str, ...] = ("fgsm", "pgd", "cw")
    autoattack: bool = True

    def __post_init__(self):
        check_epsilon(self.epsilon)
        unknown = [a for a in self.attacks if a not in REGISTRY]
        if unknown:
            raise ValueError(f"unknown attack(s) {', '.join(unknown)}; allowed: {', '.join(REGISTRY)}")
        check_count("pgd_steps", self.pgd_steps, 0)
        for name in ("restarts", "cw_steps", "apgd_steps", "apgd_targets", "fab_steps", "fab_targets",
                     "square_queries", "nattack_iterations", "nattack_population", "nattack_examples"):
            check_count(name, getattr(self, name))
        if self.step_size is not None and not 0.0 <= self.step_size <= 1.0:
            raise ValueError(f"step_size must be in [0, 1] (pixel units), got {self.step_size!r}")

    @property
    def pgd_step_size(self) -> float:
        return self.step_size if self.step_size is not None else self.epsilon / 4

    @property
    def names(self) -> tuple[str, ...]:
        """Every attack that runs: the standalone ones, then AutoAttack's (registry order)."""
        cascade = AUTOATTACK if self.autoattack else ()
        return tuple(a for a in REGISTRY if a in self.attacks or a in cascade)


def _targets(name: str, wanted: int, num_classes: int) -> int:
    """AutoAttack's rule: at most classes - 1 targets, clamped with a warning."""
    if wanted > num_classes - 1:
        warnings.warn(f"{name}: {wanted} target classes asked for but the model has {num_classes} "
                      f"classes; using {num_classes - 1}", stacklevel=3)
        return num_classes - 1
    return wanted


@dataclasses.dataclass(frozen=True)
class AttackSpec:
    """One attack of the suite.

    Attributes:
      name: the `--attacks` name and the report key.
      title: the report's column title.
      config_type: the config dataclass of the attack function.
      configure: (suite, num_classes) -> the attack's config.
      run: (logits_fn, x, y, config, seed) -> adversarial images; seed is a stateless (2,) seed.
      query_only: the attack only calls the model (it is run eagerly, not compiled).
      seed_stream: white-box attacks draw from [seed, stream]; query-only ones from [0, seed].
      uses_restarts: repeated `suite.restarts` times (worst case per example).
    """

    name: str
    title: str
    config_type: type
    configure: Callable[[SuiteConfig, int], Any]
    run: Callable[[LogitsFn, tf.Tensor, tf.Tensor, Any, tf.Tensor], tf.Tensor]
    query_only: bool = False
    seed_stream: int = 0
    uses_restarts: bool = False


@dataclasses.dataclass(frozen=True)
class TargetedConfig:
    """An attack config plus its number of target classes (APGD-T, FAB-T)."""

    attack: Any
    num_target_classes: int


@dataclasses.dataclass(frozen=True)
class EpsilonConfig:
    """FGSM's whole configuration."""

    epsilon: float


def _pgd(loss: str, steps: Callable[[SuiteConfig], int]):
    return lambda s, _: attacks.PGDConfig(s.epsilon, s.pgd_step_size, steps(s), loss=loss)


_SPECS = (
    AttackSpec("fgsm", "FGSM", EpsilonConfig, lambda s, _: EpsilonConfig(s.epsilon),
               lambda f, x, y, c, seed: attacks.fgsm(f, x, y, c.epsilon)),
    AttackSpec("pgd", "PGD", attacks.PGDConfig, _pgd("ce", lambda s: s.pgd_steps),
               lambda f, x, y, c, seed: attacks.pgd(f, x, y, c, seed).end, uses_restarts=True),
    AttackSpec("cw", "CW-inf", attacks.PGDConfig, _pgd("cw", lambda s: s.cw_steps),
               lambda f, x, y, c, seed: attacks.pgd(f, x, y, c, seed).end, uses_restarts=True),
    AttackSpec("apgd_ce", "APGD-CE", attacks.APGDConfig,
               lambda s, _: attacks.APGDConfig(s.epsilon, s.apgd_steps, loss="ce"),
               lambda f, x, y, c, seed: attacks.apgd(f, x, y, c, seed).adversarial, seed_stream=1),
    AttackSpec("apgd_t", "APGD-T", attacks.APGDConfig,
               lambda s, k: TargetedConfig(attacks.APGDConfig(s.epsilon, s.apgd_steps, loss="dlr_targeted"),
                                           _targets("apgd_t", s.apgd_targets, k)),
               lambda f, x, y, c, seed: attacks.apgd_targeted(
                   f, x, y, c.attack, seed, num_target_classes=c.num_target_classes).adversarial,
               seed_stream=2),
    AttackSpec("fab_t", "FAB-T", attacks.FABConfig,
               lambda s, k: TargetedConfig(attacks.FABConfig(s.epsilon, s.fab_steps),
                                           _targets("fab_t", s.fab_targets, k)),
               lambda f, x, y, c, seed: attacks.fab_targeted(
                   f, x, y, c.attack, seed, num_target_classes=c.num_target_classes).adversarial,
               seed_stream=3),
    AttackSpec("square", "Square", attacks.SquareConfig,
               lambda s, _: attacks.SquareConfig(s.epsilon, s.square_queries,
                                                 rescale_schedule=s.square_rescale_schedule),
               lambda f, x, y, c, seed: attacks.square_attack(
                   f, x, y, c.epsilon, c.num_queries, c.p_init, seed, rescale_schedule=c.rescale_schedule),
               query_only=True),
    AttackSpec("nattack", "NAttack", attacks.NAttackConfig,
               lambda s, _: attacks.NAttackConfig(s.epsilon, s.nattack_iterations, s.nattack_population),
               lambda f, x, y, c, seed: attacks.nattack(
                   f, x, y, c.epsilon, num_iterations=c.num_iterations, population=c.population, seed=seed),
               query_only=True),
)
REGISTRY: dict[str, AttackSpec] = {spec.name: spec for spec in _SPECS}
WHITE_BOX = tuple(name for name, spec in REGISTRY.items() if not spec.query_only)
QUERY_ONLY = tuple(name for name, spec in REGISTRY.items() if spec.query_only)
PAPER_COLUMNS = ("fgsm", "pgd", "cw")   # the paper's cheap white-box columns


@dataclasses.dataclass(frozen=True)
class Preset:
    """A named choice of attacks for `--attacks`."""

    attacks: tuple[str, ...]
    autoattack: bool
    help: str


PRESETS: dict[str, Preset] = {
    "default": Preset(PAPER_COLUMNS, True, "AutoAttack's standard version plus FGSM, PGD and CW-inf; "
                      "the headline is the worst case over all of them"),
    "autoattack": Preset((), True, "AutoAttack's standard version (APGD-CE, APGD-T, FAB-T, Square), "
                         "each attack on the points still robust after the previous ones"),
    "paper": Preset(("fgsm", "pgd", "cw", "nattack"), False, "the paper's Table 1: FGSM, PGD, CW-inf, NAttack"),
    "all": Preset(tuple(REGISTRY), False, "every attack on every clean-correct point, NAttack included"),
    "none": Preset((), False, "no attacks (e.g. with --corruptions)"),
}


def parse_attacks(text: str) -> tuple[tuple[str, ...], bool]:
    """`--attacks` -> (standalone attacks, autoattack cascade on/off).

    A preset name, or a comma list of attack names and presets (e.g. `autoattack,nattack`).
    Attacks that the AutoAttack cascade already runs are not run again on their own.

    Raises:
      ValueError: an unknown name (the message lists what is allowed).
    """
    names = [a.strip().lower() for a in str(text).split(",") if a.strip()]
    unknown = [a for a in names if a not in REGISTRY and a not in PRESETS]
    if unknown or not names:
        raise ValueError(f"unknown attack(s) {', '.join(unknown) or repr(text)}; allowed: a comma list of "
                         f"{', '.join(REGISTRY)} or one of the presets {', '.join(PRESETS)}")
    standalone, cascade = [], False
    for name in names:
        preset = PRESETS.get(name)
        cascade |= preset.autoattack if preset else False
        standalone += preset.attacks if preset else [name]
    if cascade:
        standalone = [a for a in standalone if a not in AUTOATTACK]
    return tuple(a for a in REGISTRY if a in standalone), cascade


def describe_presets() -> str:
    return "; ".join(f"{name}: {preset.help}" for name, preset in PRESETS.items())
