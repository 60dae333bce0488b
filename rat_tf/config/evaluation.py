"""The configuration of an evaluation (what evaluate_main.py / rat-evaluate runs), beside the training's.

`rat_tf.cli.evaluate_flags` resolves its "auto"s from the exported model's metadata;
`rat_tf.evaluation.pipeline.evaluate_saved_model` runs it.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the attack suite's config; only its type is named here
    from rat_tf.evaluation.robustness import SuiteConfig


@dataclasses.dataclass(frozen=True)
class EvaluateConfig:
    """Everything an evaluation needs, named after evaluate_main.py's flags (autos resolved)."""

    saved_model: str
    endpoint: str
    output_key: str | None
    dataset: str
    data_dir: str | None
    num_examples: int
    batch_size: int
    seed: int
    suite: SuiteConfig
    checks: bool
    sweep_steps: bool
    sweep_epsilon: bool
    sweep_examples: int
    gaps: bool
    corruptions: tuple[str, ...]
    corruption_source: str
    corruption_severities: tuple[int, ...]
    corruption_cache_dir: str | None
    output_dir: str
    name: str
    outputs: str = "logits"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
