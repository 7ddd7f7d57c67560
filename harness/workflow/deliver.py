"""The end of every training: evaluate on the test set, then export what a user deploys."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import HarnessError
from harness.pipeline.dataset import Dataset
from harness.pipeline.images import ImageFile
from harness.plan import PipelineOptions


@dataclass
class Delivered:
    """The test evaluation and the exported files of one trained model."""

    evaluation: Any  # harness.pipeline.evaluate.Evaluation
    metadata: dict[str, Any]
    export_dir: Path | None = None
    export_seconds: float | None = None
    tflite: list[Any] = field(default_factory=list)  # harness.deploy.tflite.TFLiteVariant
    graphdef: tuple[Path, Path] | None = None
    onnx: Path | None = None


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
    log: Callable[[str], None] | None = None,
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
        from harness.modelfolder import replacing_model_folder
        from harness.pipeline.savedmodel import write_saved_model

        final = Path(output_dir)
        # Everything the folder will hold is built in staging and swapped in whole.
        with replacing_model_folder(final, log=log) as staging:
            start = time.perf_counter()
            write_saved_model(backbone, head, dataset.classes, staging, done.metadata)
            done.export_seconds = time.perf_counter() - start
            if options.tflite or options.target_tflite:
                done.tflite = _tflite(backbone, head, dataset, splits, staging, options, evaluation, log)
            if options.onnx:
                done.onnx = _onnx(staging, log)
            if graphdef and options.graphdef is not None and not options.graphdef.explicit:
                done.graphdef = _frozen_graph(backbone, head, dataset, options, staging)
        done.export_dir = final
        for variant in done.tflite:
            variant.path = final / variant.path.name
        if done.onnx is not None:
            done.onnx = final / done.onnx.name
        if done.graphdef is not None:
            done.graphdef = (final / done.graphdef[0].name, final / done.graphdef[1].name)
    if graphdef and options.graphdef is not None and (options.graphdef.explicit or output_dir is None):
        # Explicit paths (retrain.py's flags); with neither paths nor a folder, the export says so.
        done.graphdef = _frozen_graph(backbone, head, dataset, options, None)
    return done


def _onnx(folder: Path, log: Callable[[str], None] | None) -> Path | None:
    """model.onnx from the float TFLite file, or None (with a warning) when it cannot be had."""
    from harness.deploy.tflite import tflite_file_name
    from harness.deploy.variants import ONNX_FILE, export_onnx

    try:
        return export_onnx(folder / tflite_file_name("none"), folder / ONNX_FILE)
    except (HarnessError, OSError) as exc:
        (log or print)(f"warning: no model.onnx: {exc}; the onnxruntime targets are skipped")
        return None


def _tflite(
    backbone: Any,
    head: Any,
    dataset: Dataset,
    splits: dict[str, list[ImageFile]],
    folder: Path,
    options: PipelineOptions,
    evaluation: Any,
    log: Callable[[str], None] | None,
) -> list[Any]:
    """The asked-for TFLite variants, then the ones only the targets need (best effort)."""
    from harness.deploy.variants import export_tflite_variants

    class_index = {c: i for i, c in enumerate(dataset.classes)}
    test = splits["testing"]
    return export_tflite_variants(
        backbone,
        head,
        dataset.classes,
        folder,
        options.tflite + options.target_tflite,
        train_paths=[img.path for img in splits["training"]],
        test_paths=[img.path for img in test],
        test_labels=np.array([class_index[img.label] for img in test], dtype=np.int64),
        reference=np.asarray(evaluation.predictions),
        seed=options.train.seed,
        optional=options.target_tflite,
        warn=log or print,
    )


def _frozen_graph(
    backbone: Any, head: Any, dataset: Dataset, options: PipelineOptions, folder: Path | None
) -> tuple[Path, Path]:
    from harness.deploy.variants import export_frozen_graph

    assert options.graphdef is not None
    return export_frozen_graph(backbone, head, dataset.classes, options.graphdef, folder)
