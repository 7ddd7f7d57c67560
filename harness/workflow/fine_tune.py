"""Fine-tune after the head: the top of the backbone and the head, end to end, then the
same evaluation and exports as the head-only model, into the fine-tuned model's folder."""

from __future__ import annotations

import os
from dataclasses import replace

import numpy as np

from harness.pipeline.dataset import Dataset
from harness.plan import PipelineOptions, Precision, Runtime
from harness.workflow.deliver import evaluate_and_export
from harness.workflow.options import Log, Progress, Retrained


def fine_tune_retrained(
    result: Retrained,
    dataset: Dataset,
    options: PipelineOptions,
    output_dir: str | os.PathLike[str] | None,
    *,
    log: Log = lambda _: None,
    progress: Progress | None = None,
) -> Retrained:
    """Fine-tune ``result`` (a head-only model) as ``options.fine_tune`` says.

    The head-only model must be fully measured and exported first: its backbone's
    weights change in place. Features of the fine-tuned model come from TensorFlow
    (a converted LiteRT file holds the old weights) and are never cached.

    Returns:
        The fine-tuned model, evaluated and exported like the head-only one, with
        ``fine_tuned`` saying what was trained and how it stopped.
    """
    import tensorflow as tf

    from harness.pipeline.extract import extract_features
    from harness.pipeline.tune_backbone import fine_tune

    config = options.fine_tune
    if config is None:
        raise ValueError("options.fine_tune is not set")
    config = replace(config, seed=options.train.seed)
    index = {c: i for i, c in enumerate(dataset.classes)}

    def files_labels(name: str) -> tuple[list[str], np.ndarray]:
        imgs = result.images[name]
        return [img.file for img in imgs], np.array([index[img.label] for img in imgs], dtype=np.int64)

    backbone = replace(result.backbone, extract=None, runtime=Runtime.TF, precision=Precision.FP32)
    with tf.device(options.device.tf_name):
        tuned = fine_tune(
            backbone,
            result.head,
            files_labels("training"),
            files_labels("validation"),
            config,
            options.augmentation,
            log=lambda line: log(f"{result.spec.name}: {line}"),
            progress=progress,
        )
        test_images = result.images["testing"]
        test = extract_features(backbone, test_images, None, batch_size=options.extract_batch_size)
        best = tuned.history[tuned.best_epoch]
        metadata = {
            **result.metadata,
            "bottleneck_runtime": Runtime.TF,
            "fine_tune": {**vars(config), "layers_trained": tuned.layers, "stopped": tuned.stopped},
            "validation_accuracy": best["validation_accuracy"],
        }
        metadata.pop("test_accuracy", None)
        done = evaluate_and_export(
            backbone,
            tuned.head,
            dataset,
            result.images,
            test.matrix(test_images),
            options,
            output_dir,
            metadata,
            graphdef=False,  # retrain.py's graph is the head-only model's
            log=log,
        )
    return replace(
        result,
        backbone=backbone,
        head=tuned.head,
        evaluation=done.evaluation,
        train_seconds=result.train_seconds + tuned.seconds,
        export_seconds=done.export_seconds,
        export_dir=done.export_dir,
        metadata=done.metadata,
        tflite=done.tflite,
        graphdef=None,
        fine_tuned=tuned,
    )
