"""The end of every training: evaluate on the test set, then export what a user deploys."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness.pipeline.dataset import Dataset
from harness.pipeline.images import ImageFile
from harness.workflow.options import PipelineOptions


@dataclass
class Delivered:
    """The test evaluation and the exported files of one trained model."""

    evaluation: Any  # harness.pipeline.evaluate.Evaluation
    metadata: dict[str, Any]
    export_dir: Path | None = None
    export_seconds: float | None = None
    tflite: list[Any] = field(default_factory=list)  # harness.deploy.tflite.TFLiteVariant
    graphdef: tuple[Path, Path] | None = None


def relative(dataset: Dataset, img: ImageFile) -> str:
    return str(img.path.relative_to(dataset.images.root))


def evaluate_and_export(
    backbone: Any,
    head: Any,
    dataset: Dataset,
    splits: dict[str, list[ImageFile]],
    test_features: np.ndarray,
    options: PipelineOptions,
    output_dir: str | os.PathLike[str] | None,
    metadata: dict[str, Any],
    *,
    graphdef: bool = True,
) -> Delivered:
    """Score ``head`` on the test features; write the SavedModel (and TFLite variants, and
    retrain.py's frozen graph when asked and ``graphdef``) into ``output_dir`` if given."""
    from harness.pipeline.evaluate import evaluate

    class_index = {c: i for i, c in enumerate(dataset.classes)}
    test = splits["testing"]
    test_labels = np.array([class_index[img.label] for img in test], dtype=np.int64)
    evaluation = evaluate(
        head.probabilities(test_features) if len(test) else np.zeros((0, len(dataset.classes))),
        test_labels,
        dataset.classes,
        [relative(dataset, img) for img in test],
    )
    done = Delivered(evaluation, {**metadata, "test_accuracy": evaluation.accuracy})
    if output_dir is not None:
        from harness.pipeline.export import export_model

        start = time.perf_counter()
        done.export_dir = export_model(backbone, head, dataset.classes, output_dir, done.metadata)
        done.export_seconds = time.perf_counter() - start
    if options.tflite and done.export_dir is not None:
        from harness.deploy.exports import export_tflite_variants

        done.tflite = export_tflite_variants(
            backbone,
            head,
            dataset.classes,
            done.export_dir,
            options.tflite,
            train_paths=[img.path for img in splits["training"]],
            test_paths=[img.path for img in test],
            test_labels=test_labels,
            reference=np.asarray(evaluation.predictions),
            seed=options.train.seed,
        )
    if graphdef and options.graphdef is not None:
        from harness.deploy.exports import export_frozen_graph

        target = options.graphdef
        done.graphdef = export_frozen_graph(backbone, head, dataset.classes, target, done.export_dir)
    return done
