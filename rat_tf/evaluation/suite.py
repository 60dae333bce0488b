"""The attack registry, the suite's budgets and the presets of `--attacks`.

Every attack the evaluation can run is declared once here, as an `AttackSpec`: its name (the
`--attacks` and report key), its column title, the config dataclass of its `rat_tf.attacks`
function and how the suite's budgets fill it, and the function itself. The suite runner
(`robustness.evaluate`), the flags and the reports read this registry.

AutoAttack (Croce & Hein 2020) runs its attacks as a cascade: each attack only on the points
still robust after the previous ones. Its versions are data here (`VERSIONS`), with the attacks
and budgets of the official code's `set_version`: "standard" is APGD-CE, APGD-T (9 targets),
FAB-T (9 targets) and Square (5,000 queries); "plus" adds APGD-DLR and untargeted FAB with 5
restarts each; "rand" is APGD-CE and APGD-DLR with the gradient averaged over 20 calls (EOT),
for randomised models. Each runs in the Linf or the L2 norm.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Optional
import warnings

import tensorflow as tf

from rat_tf import attacks
from rat_tf.attacks.common import NORMS, LogitsFn, check_count, check_norm, check_radius, target_count

# AutoAttack's standard version, in the order it runs its attacks.
AUTOATTACK = ("apgd_ce", "apgd_t", "fab_t", "square")


@dataclasses.dataclass(frozen=True)
class Version:
    """An AutoAttack version, as the official code's `AutoAttack.set_version` sets it.

    Attributes:
      attacks: the cascade, in order (registry names).
      apgd_restarts: restarts of APGD-CE and APGD-DLR (`apgd.n_restarts`).
      apgd_targeted_restarts: restarts per target class of APGD-T.
      fab_restarts: restarts of untargeted FAB (FAB-T always runs 1, as the official code).
      targets: target classes of APGD-T and FAB-T.
      square_queries: Square's query budget.
      eot_iter: gradients averaged per APGD iteration (EOT).
    """

    attacks: tuple[str, ...]
    apgd_restarts: int = 1
    apgd_targeted_restarts: int = 1
    fab_restarts: int = 1
    targets: int = 9
    square_queries: int = 5000
    eot_iter: int = 1


VERSIONS: dict[str, Version] = {
    "standard": Version(AUTOATTACK),
    "plus": Version(("apgd_ce", "apgd_dlr", "fab", "square", "apgd_t", "fab_t"), apgd_restarts=5,
                    fab_restarts=5),
    "rand": Version(("apgd_ce", "apgd_dlr"), eot_iter=20),
}


def check_version(version: str) -> str:
    if version not in VERSIONS:
        raise ValueError(f"version must be one of {', '.join(VERSIONS)}, got {version!r}")
    return version


@dataclasses.dataclass(frozen=True)
class SuiteConfig:
    """The attack suite (pixel units; defaults follow the paper and AutoAttack's standard version).

    `SuiteConfig.for_version` gives the budgets of an AutoAttack version; the fields can then be
    changed one by one (the report records them all).

    Attributes:
      epsilon: the radius (Linf: in [0, 1]; L2: any finite radius >= 0).
      norm: "Linf" or "L2". The L2 suite is AutoAttack's attacks only (FGSM, PGD, CW-inf and
        NAttack are Linf attacks).
      version: the AutoAttack version whose cascade runs (`VERSIONS`).
      step_size: PGD / CW step size (default epsilon / 4, i.e. 2/255 at 8/255).
      pgd_steps: PGD-K steps (paper reports PGD-20).
      restarts: random restarts for PGD and CW (worst case per example).
      cw_steps: steps of PGD on the CW margin.
      apgd_steps: APGD iterations (AutoAttack: 100).
      apgd_targets: target classes for APGD-T (AutoAttack: 9; clamped to classes - 1).
      apgd_restarts: restarts of APGD-CE and APGD-DLR (standard: 1; plus: 5).
      apgd_targeted_restarts: restarts per target class of APGD-T (AutoAttack: 1).
      eot_iter: gradients averaged per APGD iteration (rand: 20).
      fab_steps: FAB iterations (AutoAttack: 100).
      fab_targets: target classes for FAB-T (AutoAttack: 9; clamped to classes - 1).
      fab_restarts: restarts of untargeted FAB (plus: 5). FAB-T runs one, as in AutoAttack.
      fab_final_search_steps: a search along the segment to FAB's closest point after its
        iterations (not AutoAttack's FAB: 0, the official code, unless asked for).
      square_queries: Square's query budget (AutoAttack: 5000).
      square_rescale_schedule: compress Square's square-size schedule into its budget (not
        AutoAttack's standard version; see `rat_tf.attacks.SquareConfig`).
      nattack_iterations, nattack_population: NAttack (paper: 200, 300).
      nattack_examples: NAttack runs on the first this-many examples (paper: 1,000).
      attacks: the attacks run on every clean-correct example, each on its own.
      autoattack: also run AutoAttack's standard version as AutoAttack runs it (a cascade).
    """

    epsilon: float = 8 / 255
    norm: str = "Linf"
    version: str = "standard"
    step_size: Optional[float] = None
    pgd_steps: int = 20
    restarts: int = 1
    cw_steps: int = 30
    apgd_steps: int = 100
    apgd_targets: int = 9
    apgd_restarts: int = 1
    apgd_targeted_restarts: int = 1
    eot_iter: int = 1
    fab_steps: int = 100
    fab_targets: int = 9
    fab_restarts: int = 1
    fab_final_search_steps: int = 0
    square_queries: int = 5000
    square_rescale_schedule: bool = False
    nattack_iterations: int = 200
    nattack_population: int = 300
    nattack_examples: int = 1000
    attacks: tuple[str, ...] = ("fgsm", "pgd", "cw")
    autoattack: bool = True

    def __post_init__(self):
        check_radius(self.epsilon, check_norm(self.norm))
        check_version(self.version)
        unknown = [a for a in self.attacks if a not in REGISTRY]
        if unknown:
            raise ValueError(f"unknown attack(s) {', '.join(unknown)}; allowed: {', '.join(REGISTRY)}")
        linf_only = [a for a in self.names if self.norm not in REGISTRY[a].norms]
        if linf_only:
            raise ValueError(f"attack(s) {', '.join(linf_only)} have no {self.norm} version; with norm "
                             f"{self.norm} run AutoAttack's attacks ({', '.join(L2_ATTACKS)})")
        check_count("pgd_steps", self.pgd_steps, 0)
        check_count("fab_final_search_steps", self.fab_final_search_steps, 0)
        for name in ("restarts", "cw_steps", "apgd_steps", "apgd_targets", "apgd_restarts",
                     "apgd_targeted_restarts", "eot_iter", "fab_steps", "fab_targets", "fab_restarts",
                     "square_queries", "nattack_iterations", "nattack_population", "nattack_examples"):
            check_count(name, getattr(self, name))
        if self.step_size is not None and not 0.0 <= self.step_size <= 1.0:
            raise ValueError(f"step_size must be in [0, 1] (pixel units), got {self.step_size!r}")

    @property
    def pgd_step_size(self) -> float:
        return self.step_size if self.step_size is not None else self.epsilon / 4

    @classmethod
    def for_version(cls, version: str = "standard", norm: str = "Linf", epsilon: float = 8 / 255,
                    **fields) -> "SuiteConfig":
        """The budgets of an AutoAttack version (`VERSIONS`); `fields` change any of them."""
        v = VERSIONS[check_version(version)]
        budgets = dict(norm=norm, version=version, apgd_restarts=v.apgd_restarts,
                       apgd_targeted_restarts=v.apgd_targeted_restarts, eot_iter=v.eot_iter,
                       fab_restarts=v.fab_restarts, apgd_targets=v.targets, fab_targets=v.targets,
                       square_queries=v.square_queries, attacks=(), autoattack=True)
        return cls(epsilon=epsilon, **{**budgets, **fields})

    @property
    def cascade(self) -> tuple[str, ...]:
        """The AutoAttack cascade that runs, in its order (empty without AutoAttack)."""
        return VERSIONS[self.version].attacks if self.autoattack else ()

    def budgets(self, num_classes: int) -> dict[str, dict[str, Any]]:
        """Every attack's config as it runs on a model with `num_classes` outputs (for the report)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the target clamp warns when the attack runs
            return {name: REGISTRY[name].budget(self, num_classes) for name in self.names}

    @property
    def names(self) -> tuple[str, ...]:
        """Every attack that runs: the standalone ones (registry order), then the cascade's."""
        cascade = self.cascade
        return tuple(a for a in REGISTRY if a in self.attacks and a not in cascade) + cascade


@dataclasses.dataclass(frozen=True)
class AttackSpec:
    """One attack of the suite.

    Attributes:
      name: the `--attacks` name and the report key.
      title: the report's column title.
      config_type: the config dataclass of the attack function.
      configure: suite -> the attack's config.
      run: the `rat_tf.attacks` function, (logits_fn, x, y, config, seed) -> a result whose
        `adversarial` holds the attack's images; seed is a stateless (2,) seed.
      query_only: the attack only calls the model (it is run eagerly, not compiled).
      seed_stream: white-box attacks draw from [seed, stream]; query-only ones from [0, seed].
      uses_restarts: repeated `suite.restarts` times (worst case per example).
      norms: the norms the attack has.
      targeted: the attack tries `config.num_target_classes` target classes, at most C - 1.
    """

    name: str
    title: str
    config_type: type
    configure: Callable[[SuiteConfig], Any]
    run: Callable[[LogitsFn, tf.Tensor, tf.Tensor, Any, tf.Tensor], Any]
    query_only: bool = False
    seed_stream: int = 0
    uses_restarts: bool = False
    norms: tuple[str, ...] = ("Linf",)
    targeted: bool = False

    def config(self, suite: SuiteConfig, num_classes: int):
        """The attack's config for a model with `num_classes` outputs (target classes capped at
        C - 1 with a warning, as AutoAttack does)."""
        config = self.configure(suite)
        if self.targeted:
            config = dataclasses.replace(config, num_target_classes=target_count(
                self.name, config.num_target_classes, num_classes, stacklevel=4))
        return config

    def budget(self, suite: SuiteConfig, num_classes: int) -> dict[str, Any]:
        """`config` as a dict for the report (without the target classes of untargeted attacks)."""
        budget = dataclasses.asdict(self.config(suite, num_classes))
        if not self.targeted:
            budget.pop("num_target_classes", None)
        return budget


def _apgd(loss: str):
    def configure(s: SuiteConfig) -> attacks.APGDConfig:
        targeted = loss == "dlr_targeted"
        return attacks.APGDConfig(s.epsilon, s.apgd_steps, loss=loss, norm=s.norm, eot_iter=s.eot_iter,
                                  num_restarts=s.apgd_targeted_restarts if targeted else s.apgd_restarts,
                                  num_target_classes=s.apgd_targets)
    return configure


def _fab(targeted: bool):
    def configure(s: SuiteConfig) -> attacks.FABConfig:
        # FAB-T runs one restart per target class, as AutoAttack does.
        return attacks.FABConfig(s.epsilon, s.fab_steps, num_restarts=1 if targeted else s.fab_restarts,
                                 norm=s.norm, final_search_steps=s.fab_final_search_steps,
                                 num_target_classes=s.fab_targets)
    return configure


def _pgd(loss: str, steps: str):
    def configure(s: SuiteConfig) -> attacks.PGDConfig:
        return attacks.PGDConfig(s.epsilon, s.pgd_step_size, getattr(s, steps), loss=loss)
    return configure


def _fgsm(s: SuiteConfig) -> attacks.FGSMConfig:
    return attacks.FGSMConfig(s.epsilon)


def _square(s: SuiteConfig) -> attacks.SquareConfig:
    return attacks.SquareConfig(s.epsilon, s.square_queries, rescale_schedule=s.square_rescale_schedule, norm=s.norm)


def _nattack(s: SuiteConfig) -> attacks.NAttackConfig:
    return attacks.NAttackConfig(s.epsilon, s.nattack_iterations, s.nattack_population)


_SPECS = (
    AttackSpec("fgsm", "FGSM", attacks.FGSMConfig, _fgsm, attacks.fgsm),
    AttackSpec("pgd", "PGD", attacks.PGDConfig, _pgd("ce", "pgd_steps"), attacks.pgd, uses_restarts=True),
    AttackSpec("cw", "CW-inf", attacks.PGDConfig, _pgd("cw", "cw_steps"), attacks.pgd, uses_restarts=True),
    AttackSpec("apgd_ce", "APGD-CE", attacks.APGDConfig, _apgd("ce"), attacks.apgd, seed_stream=1, norms=NORMS),
    AttackSpec("apgd_dlr", "APGD-DLR", attacks.APGDConfig, _apgd("dlr"), attacks.apgd, seed_stream=4, norms=NORMS),
    AttackSpec("apgd_t", "APGD-T", attacks.APGDConfig, _apgd("dlr_targeted"), attacks.apgd_targeted,
               seed_stream=2, norms=NORMS, targeted=True),
    AttackSpec("fab", "FAB", attacks.FABConfig, _fab(False), attacks.fab, seed_stream=5, norms=NORMS),
    AttackSpec("fab_t", "FAB-T", attacks.FABConfig, _fab(True), attacks.fab_targeted, seed_stream=3, norms=NORMS,
               targeted=True),
    AttackSpec("square", "Square", attacks.SquareConfig, _square, attacks.square_attack, query_only=True,
               norms=NORMS),
    AttackSpec("nattack", "NAttack", attacks.NAttackConfig, _nattack, attacks.nattack, query_only=True),
)
REGISTRY: dict[str, AttackSpec] = {spec.name: spec for spec in _SPECS}
WHITE_BOX = tuple(name for name, spec in REGISTRY.items() if not spec.query_only)
L2_ATTACKS = tuple(name for name, spec in REGISTRY.items() if "L2" in spec.norms)
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
