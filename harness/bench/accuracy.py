"""Accuracy beyond one split: per-image outcomes, repeated splits, the learning curve."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from harness.pipeline.dataset import Dataset
from harness.plan import PipelineOptions
from harness.workflow import Log


@dataclass(frozen=True)
class AccuracyOptions:
    """What the run measures about accuracy beyond the one split (all from cached bottlenecks)."""

    repeats: int = 1  # splits the head is retrained on; 1 is the run's split only
    learning_curve: bool = False  # accuracy against images per class
    curve_draws: int = 3  # random draws per size of the curve
    audit: bool = False  # label issues, duplicates and leaks, imbalance (harness.workflow.audit)


def test_outcomes(result: Any, dataset: Dataset) -> dict[str, list[Any]]:
    """Which test images the model got right: ``images`` (relative paths) and ``correct`` (0/1)."""
    index = {c: i for i, c in enumerate(dataset.classes)}
    test = result.images["testing"]
    return {
        "images": [str(img.path.relative_to(dataset.images.root)) for img in test],
        "correct": [int(p == index[img.label]) for p, img in zip(result.evaluation.predictions, test)],
    }


def against_head_only(head: Any, tuned: Any, dataset: Dataset) -> tuple[int, int, float]:
    """A fine-tuned model against its head-only model on the same test images (McNemar,
    exact): (right only with the head, right only fine-tuned, p)."""
    from harness.results.significance import mcnemar_counts

    before = dict(zip(*test_outcomes(head, dataset).values()))
    after = dict(zip(*test_outcomes(tuned, dataset).values()))
    common = sorted(before.keys() & after.keys())
    return mcnemar_counts([bool(before[i]) for i in common], [bool(after[i]) for i in common])


def beyond_one_split(
    result: Any, dataset: Dataset, options: PipelineOptions, accuracy: AccuracyOptions, log: Log
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Per-image test outcomes (for paired tests), repeated splits and the learning curve."""
    import numpy as np

    from harness.pipeline.resample import learning_curve, repeated_splits

    index = {c: i for i, c in enumerate(dataset.classes)}
    values: dict[str, Any] = {}
    details: dict[str, Any] = {"test_outcomes": test_outcomes(result, dataset)}
    if accuracy.repeats > 1 or accuracy.learning_curve:
        if options.augmentation.enabled:
            log("repeated splits and the learning curve train on cached bottlenecks, without distortions")
    if accuracy.repeats > 1:
        start = time.perf_counter()
        usable = [img for img in dataset.images.images if img.content_hash in result.extraction.features]
        splits = repeated_splits(
            usable,
            result.extraction.features,
            dataset.classes,
            options.train,
            accuracy.repeats,
            dataset.validation_percentage,
            dataset.testing_percentage,
            first=None if options.augmentation.enabled else result.evaluation.accuracy,
        )
        scores = np.array([row["test_accuracy"] for row in splits])
        values |= {
            "n_splits": len(scores),
            "split_accuracy_mean": float(scores.mean()),
            "split_accuracy_std": float(scores.std(ddof=1)) if len(scores) > 1 else None,
        }
        details["splits"] = splits
        details["splits_seconds"] = time.perf_counter() - start
        log(
            f"{result.spec.name}: test accuracy over {len(scores)} splits: {scores.mean():.1%} "
            f"± {values['split_accuracy_std'] or 0:.1%} (sd), {details['splits_seconds']:.1f}s"
        )
    if accuracy.learning_curve:
        start = time.perf_counter()
        xy = {
            name: (
                result.extraction.matrix(result.images[name]),
                np.array([index[i.label] for i in result.images[name]]),
            )
            for name in ("training", "testing")
        }
        details["learning_curve"] = learning_curve(
            xy["training"], xy["testing"], len(dataset.classes), options.train, draws=accuracy.curve_draws
        )
        details["learning_curve_seconds"] = seconds = time.perf_counter() - start
        log(f"{result.spec.name}: learning curve, {len(details['learning_curve'])} heads, {seconds:.1f}s")
    if accuracy.audit:
        from harness.workflow.audit import audit_extracted

        found = audit_extracted(result.extraction, dataset, options)
        details["audit"] = found.as_details()
        for line in found.summary():
            log(f"{result.spec.name}: {line}")
    return values, details
