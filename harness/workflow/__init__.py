"""One backbone, end to end: the pipeline's stages in order, then its deployment exports.

scan + split (:func:`prepare_dataset`) -> build the backbone -> bottlenecks through the
cache -> train the new final layer -> evaluate on the test set -> export the SavedModel
(and TFLite variants, each evaluated). Measuring speed is the benchmark's job
(:mod:`harness.bench`), not this module's.

Every function takes plain values and returns plain values; printing and progress
bars are the caller's, passed in as callbacks.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import numpy as np

from harness.pipeline.dataset import Dataset
from harness.plan import PipelineOptions, Precision, Target
from harness.registry import BackboneSpec
from harness.workflow.deliver import evaluate_and_export
from harness.workflow.options import Log, Progress, Retrained

__all__ = [
    "Dataset",
    "Log",
    "PipelineOptions",
    "Progress",
    "Retrained",
    "log_step_line",
    "retrain_final_layer",
]


def retrain_final_layer(
    target: Target | BackboneSpec,
    dataset: Dataset,
    options: PipelineOptions,
    output_dir: str | os.PathLike[str] | None,
    *,
    log: Log = lambda _: None,
    progress: Progress | None = None,
    versions: dict[str, str] | None = None,
    log_step: Callable[[dict[str, float]], None] | None = None,
) -> Retrained:
    """Retrain a final layer on a backbone's bottlenecks, evaluate it and export it.

    Runs on ``options.device``; ``output_dir`` None skips the SavedModel and TFLite
    exports (a frozen graph with explicit paths is still written).

    Args:
        target: The backbone, with its weights as the run plan resolved them and the
            exports its alias adds (a bare spec resolves its weights here).
        log_step: Prints one row of the training history (default: harness' own line).

    Raises:
        HarnessError: on bad input, missing weights or an unwritable output.
    """
    import tensorflow as tf

    target = target if isinstance(target, Target) else Target(target)
    options = options.for_target(target)
    with tf.device(options.device.tf_name):
        return _retrain(target, dataset, options, output_dir, log, progress, versions or {}, log_step)


def log_step_line(log: Log) -> Callable[[dict[str, float]], None]:
    """harness' training log: one line per logged step."""

    def log_row(row: dict[str, float]) -> None:
        val = row.get("validation_accuracy")
        val_text = f"{val * 100:.1f}%" if val is not None else "n/a"
        log(
            f"step {int(row['step']):5d}: train accuracy {row['train_accuracy'] * 100:.1f}%, "
            f"cross entropy {row['cross_entropy']:.4f}, validation accuracy {val_text}"
        )

    return log_row


def _retrain(
    target: Target,
    dataset: Dataset,
    options: PipelineOptions,
    output_dir: str | os.PathLike[str] | None,
    log: Log,
    progress: Progress | None,
    versions: dict[str, str],
    log_step: Callable[[dict[str, float]], None] | None,
) -> Retrained:
    from harness.pipeline.augment import distorted_sampler
    from harness.pipeline.train import cached_sampler, class_weights_for, train_head
    from harness.workflow.bottlenecks import bottlenecks

    spec = target.spec
    phase = bottlenecks(target, dataset, options, log, progress)
    backbone, on_tf, runtime_rates = phase.backbone, phase.on_tf, phase.runtime_rates
    extraction, failed, splits = phase.extraction, phase.failed, phase.splits
    class_index = {c: i for i, c in enumerate(dataset.classes)}
    x = {name: extraction.matrix(imgs) for name, imgs in splits.items()}
    y = {
        name: np.array([class_index[i.label] for i in imgs], dtype=np.int64) for name, imgs in splits.items()
    }

    augmentation = options.augmentation
    if augmentation.enabled:
        log(
            "distortions are on: training images bypass the bottleneck cache and every "
            "training step runs the whole backbone (much slower)"
        )
        sampler = distorted_sampler(backbone, splits["training"], y["training"], augmentation)
    else:
        sampler = cached_sampler(x["training"], y["training"])

    show = log_step or log_step_line(log)
    summaries = None
    if not options.weights.real:
        log(f"{spec.name}: random weights: the accuracies below are meaningless (this is a speed run)")
    elif options.summaries_dir is not None:
        from harness.pipeline.summaries import Summaries

        summaries = Summaries(options.summaries_dir)
        log(f"{spec.name}: TensorBoard summaries in {summaries.folder}")

    def log_row(row: dict[str, float]) -> None:
        show(row)
        if summaries is not None:
            summaries.write(row)

    start = time.perf_counter()
    try:
        head, history = train_head(
            sampler,
            backbone.feature_size,
            len(dataset.classes),
            options.train,
            validation=(x["validation"], y["validation"]),
            log=log_row,
            class_weights=class_weights_for(y["training"], len(dataset.classes), options.train),
        )
    finally:
        if summaries is not None:
            summaries.close()
    train_seconds = time.perf_counter() - start
    metadata = {
        "backbone": spec.name,
        "weights": options.weights,
        "weights_source": backbone.weights_source,
        "preprocessing": spec.preprocessing,
        "feature_size": backbone.feature_size,
        "bottleneck_runtime": backbone.runtime,
        "bottleneck_precision": backbone.precision,
        "params": backbone.params,
        "split_sizes": {k: len(v) for k, v in splits.items()},
        "dataset_fingerprint": dataset.fingerprint,
        "train": options.train.as_dict(),
        "augmentation": vars(augmentation),
        "validation_accuracy": history[-1].get("validation_accuracy") if history else None,
        "versions": versions,
    }
    if len(y["testing"]) and options.weights.real:
        from harness.pipeline.calibration import calibrate, out_of_fold_temperature

        seen = np.concatenate([x["training"], x["validation"]])
        seen_labels = np.concatenate([y["training"], y["validation"]])
        t = out_of_fold_temperature(seen, seen_labels, len(dataset.classes), options.train)
        fitted = calibrate(t, head.logits(x["testing"]), y["testing"])
        # harness label reads the temperature from harness.json and rescales the answers.
        metadata["calibration"] = vars(fitted)
    check = None
    if backbone.precision is not Precision.FP32 and options.weights.real and splits["testing"]:
        from harness.workflow.precision import against_fp32

        reduced = head.probabilities(x["testing"]).argmax(1).tolist()
        check = against_fp32(on_tf, backbone.runtime, dataset, splits, reduced, options, log)
        metadata["precision_check"] = vars(check)
    done = evaluate_and_export(
        backbone, head, dataset, splits, x["testing"], options, output_dir, metadata, log=log
    )
    if check is not None:
        log(check.line(spec.name, backbone.precision, done.evaluation.accuracy))
    return Retrained(
        spec=spec,
        backbone=backbone,
        head=head,
        history=history,
        evaluation=done.evaluation,
        extraction=extraction,
        failed_images=failed,
        splits_used={k: len(v) for k, v in splits.items()},
        images=splits,
        train_seconds=train_seconds,
        export_seconds=done.export_seconds,
        export_dir=done.export_dir,
        metadata=done.metadata,
        tflite=done.tflite,
        graphdef=done.graphdef,
        onnx=done.onnx,
        runtime_rates=runtime_rates,
        precision_check=check,
    )
