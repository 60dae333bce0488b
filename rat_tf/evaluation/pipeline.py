"""The evaluation of an exported classifier as one library call (what evaluate_main.py runs).

    from rat_tf.evaluation import pipeline
    report = pipeline.evaluate_saved_model(config)   # an `EvaluateConfig`

Loads the SavedModel endpoint (float32 NHWC images in [0, 1] -> logits) and the test set, runs
the attack suite with per-example flags (the worst case over all attacks is the robust
accuracy; AutoAttack's standard version is reported on its own too), the self-checks and the
optional sweeps, gaps and corruptions, and writes report.json, report.md and PNG plots into
`config.output_dir` atomically. A value that cannot be used raises `rat_tf.config.ConfigError`
naming the flag.
"""

from __future__ import annotations

import os
import time
from typing import Any

from absl import logging
import numpy as np

import rat_tf
from rat_tf import attacks, files
from rat_tf import data as data_lib
from rat_tf import export as export_lib
from rat_tf.config import EvaluateConfig, field_errors
from rat_tf.evaluation import checks as checks_lib
from rat_tf.evaluation import corruptions as corruptions_lib
from rat_tf.evaluation import report as report_lib
from rat_tf.evaluation import robustness

REPORT_JSON, REPORT_MD = "report.json", "report.md"


def check_compatible(logits_fn, data: data_lib.ImageData) -> None:
    """Raises ValueError when the model cannot take this dataset (shape, channels, classes)."""
    probe = data_lib.to_float(data.x_test[:2])
    try:
        out = np.asarray(logits_fn(probe))
    except Exception as err:  # a signature mismatch surfaces as a TF error
        raise ValueError(f"the model does not accept {data.name} images of shape {data.input_shape}: "
                         f"{' '.join(str(err).split())[:200]}") from None
    if out.ndim != 2 or out.shape[0] != len(probe):
        raise ValueError(f"the model returns shape {out.shape}, expected (batch, num_classes)")
    if out.shape[1] != data.num_classes:
        raise ValueError(f"the model has {out.shape[1]} outputs but {data.name} has {data.num_classes} classes")


def corrupted_sets(config: EvaluateConfig, x: np.ndarray, y: np.ndarray
                   ) -> tuple[dict[tuple[str, int], np.ndarray], np.ndarray]:
    """The corrupted test sets from --corruption_source, and their labels."""
    names, severities = config.corruptions, config.corruption_severities
    if config.corruption_source == "generate":
        images = corruptions_lib.generate((x * 255.0).round().astype(np.uint8), names, severities,
                                          seed=config.seed, cache_dir=config.corruption_cache_dir)
        return images, y
    if config.corruption_source.startswith("npy:"):
        images, labels = corruptions_lib.load_npy_dir(config.corruption_source[4:], names, severities)
        keep = min(config.num_examples, len(labels))
        return {k: v[:keep] for k, v in images.items()}, labels[:keep]
    sets, labels = {}, None
    for name in names:
        for severity in severities:
            images, labels = corruptions_lib.load_tfds(name, severity, config.data_dir)
            sets[(name, severity)] = images[:config.num_examples]
    return sets, labels[:config.num_examples]


def run(config: EvaluateConfig, logits_fn, metadata: dict[str, Any],
        data: data_lib.ImageData) -> dict[str, Any]:
    """Runs the evaluation and writes the report files; returns the report dict."""
    suite, started = config.suite, time.time()
    x = robustness.check_images(data_lib.to_float(data.x_test[:config.num_examples]))
    y = np.asarray(data.y_test[:config.num_examples], np.int32)
    with field_errors("outputs", config.outputs, ValueError):
        logits_fn = robustness.attack_view(logits_fn, x[:config.batch_size], config.outputs)
    result = robustness.evaluate(logits_fn, x, y, suite, batch_size=config.batch_size, seed=config.seed,
                                 progress=robustness.progress_bars())
    summary = result.summary()
    per_example = {"clean": result.clean, "worst_case": result.worst_case, **result.per_attack}
    if result.has_autoattack:
        per_example["autoattack"] = result.autoattack
        per_example["autoattack_broken_by"] = result.broken_by.tolist()
    report: dict[str, Any] = {
        "rat_tf_version": rat_tf.__version__,
        "config": config.to_dict(),
        "model_metadata": metadata,
        "num_examples": int(len(x)),
        "results": summary,
        "robust_accuracy": summary["worst_case"]["accuracy"],
        "autoattack": {"version": suite.version, "norm": suite.norm, "attacks": list(result.cascade),
                       "outputs": config.outputs} if result.cascade else None,
        "budgets": suite.budgets(data.num_classes),
        # Batch b of restart r of an attack draws from the stateless seed [seed + 1000 r + b, stream]
        # (query-only attacks: [0, seed + 1000 r + b]).
        "seeds": {"root": config.seed, "streams": {name: robustness.REGISTRY[name].seed_stream
                                                   for name in suite.names}},
        "per_example": per_example,
    }
    if config.checks and suite.names:
        found = checks_lib.run_all(logits_fn, x, y, result, suite.epsilon, batch_size=config.batch_size,
                                   seed=config.seed)
        report["checks"] = [c.as_dict() for c in found]
        # The headline number is marked when a check says it may not be reliable.
        report["robust_accuracy_flagged_by"] = [c.name for c in found if c.fired]
        for line in checks_lib.warnings(found):
            logging.warning("%s", line)
    plots = {}
    xs, ys = x[:config.sweep_examples], y[:config.sweep_examples]
    step = suite.pgd_step_size
    if config.sweep_steps:
        curve = robustness.steps_sweep(logits_fn, xs, ys, suite.epsilon, step, batch_size=config.batch_size,
                                       seed=config.seed)
        report["sweep_steps"] = {"epsilon": suite.epsilon, "step_size": step, "accuracy": curve}
        plots["sweep_steps.png"] = report_lib.plot_curve(
            os.path.join(config.output_dir, "sweep_steps.png"), {config.name: curve}, "PGD iterations K",
            f"PGD, eps={suite.epsilon:.4g}")
    if config.sweep_epsilon:
        epsilons = np.linspace(0.0, 2 * suite.epsilon, 9)
        curve = robustness.epsilon_sweep(logits_fn, xs, ys, epsilons, step, num_steps=10,
                                         batch_size=config.batch_size, seed=config.seed)
        report["sweep_epsilon"] = {"num_steps": 10, "step_size": step, "accuracy": curve}
        plots["sweep_epsilon.png"] = report_lib.plot_curve(
            os.path.join(config.output_dir, "sweep_epsilon.png"), {config.name: curve}, "epsilon x 255",
            "PGD-10", x_scale=255.0)
    if config.gaps:
        xtr = data_lib.to_float(data.x_train[:config.sweep_examples])
        ytr = np.asarray(data.y_train[:config.sweep_examples], np.int32)
        report["gaps"] = robustness.generalisation_gaps(
            logits_fn, (xtr, ytr), (xs, ys), attacks.PGDConfig(suite.epsilon, step, 10),
            batch_size=config.batch_size, seed=config.seed)
    if config.corruptions:
        with field_errors("corruption_source", config.corruption_source, ValueError,
                         data_lib.DatasetUnavailableError):
            sets, labels = corrupted_sets(config, x, y)
        found = corruptions_lib.corruption_accuracy(logits_fn, sets, labels, batch_size=config.batch_size)
        report["corruptions"] = {"source": config.corruption_source, **found}
    report["plots"] = plots
    report["seconds"] = time.time() - started
    table = report_lib.markdown_table({config.name: summary}, pgd_steps=suite.pgd_steps) if suite.names else ""
    if "corruptions" in report:
        table += "\n" + corruptions_lib.markdown_table({config.name: report["corruptions"]})
    report_lib.write_json(os.path.join(config.output_dir, REPORT_JSON), report)
    notes = [f"\n{len(x)} test examples of {data.name}, eps = {suite.epsilon:.4g} "
             f"({suite.epsilon * 255:.2f}/255); worst case = per-example minimum over "
             f"{', '.join(['clean', *suite.names])}."]
    if result.cascade:
        titles = ", ".join(robustness.REGISTRY[a].title for a in result.cascade)
        notes.append(f"AutoAttack = its {suite.version} version ({suite.norm}) run as AutoAttack runs it: {titles}, "
                     "each on the examples still robust after the previous ones (their columns: robust accuracy "
                     "after each).")
    if "nattack" in suite.names and suite.nattack_examples < len(x):
        notes.append(f"NAttack ran on the first {suite.nattack_examples} examples.")
    warnings = [c["message"] for c in report.get("checks", []) if c["fired"]]
    notes += [f"\n**Warning:** {w}" for w in warnings]
    files.atomic_write_text(os.path.join(config.output_dir, REPORT_MD), table + "\n".join(notes) + "\n")
    return report


def evaluate_saved_model(config: EvaluateConfig, logits_fn=None, metadata: dict[str, Any] | None = None
                         ) -> dict[str, Any]:
    """Loads the model (unless given) and the test set, checks they fit, runs and writes the report.

    Raises:
      ConfigError: a SavedModel, dataset or corruption source that cannot be used (names the flag).
    """
    if logits_fn is None:
        with field_errors("saved_model", config.saved_model, ValueError, OSError):
            logits_fn, metadata = export_lib.load_exported(config.saved_model, config.endpoint, config.output_key)
    metadata = metadata or {}
    shape = metadata.get("input_shape")
    image_size = int(shape[0]) if shape and config.dataset.startswith("imagenette") else None
    with field_errors("dataset", config.dataset, ValueError, data_lib.DatasetUnavailableError):
        data = data_lib.load(config.dataset, data_dir=config.data_dir, image_size=image_size,
                             max_test_examples=config.num_examples,
                             max_train_examples=config.sweep_examples if config.gaps else 1)
    with field_errors("saved_model", config.saved_model, ValueError):
        check_compatible(logits_fn, data)
    return run(config, logits_fn, metadata, data)
