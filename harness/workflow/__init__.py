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

from harness.errors import HarnessError, printable
from harness.pipeline.dataset import Dataset
from harness.plan import PipelineOptions, Precision, Target
from harness.registry import BackboneSpec
from harness.workflow.deliver import evaluate_and_export, relative
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
    from harness.pipeline.backbone import load_backbone
    from harness.pipeline.cacheroot import CacheRoot
    from harness.pipeline.extract import extract_features
    from harness.pipeline.runtimes import choose_runtime
    from harness.pipeline.train import cached_sampler, train_head
    from harness.workflow.precision import conversion_for

    spec = target.spec
    backbone = load_backbone(spec, options.weights, options.weights_dir, resolved=target.weights)
    if backbone.weights_note:
        log(f"{spec.name}: notice: {backbone.weights_note}")
    log(
        f"{spec.name}: built in {backbone.build_seconds:.1f}s, {backbone.params:,} parameters, "
        f"{backbone.feature_size} features, weights {options.weights} ({backbone.weights_source})"
    )
    on_tf = backbone
    backbone, runtime_rates = choose_runtime(
        backbone,
        options.bottleneck_runtimes,
        options.precision,
        options.weights,
        options.cache_dir,
        options.extract_batch_size,
        log,
        conversion_for(backbone, dataset, options),
    )
    if backbone.precision is not options.precision:  # reduced precision is never replaced silently
        raise HarnessError(f"{spec.name}: cannot extract at {options.precision} on this machine")
    cache = None
    if options.cache_dir is not None:
        cache = CacheRoot(options.cache_dir).bottlenecks(
            spec, options.weights, backbone.feature_size, backbone.runtime, backbone.precision
        )
    stream = None
    if options.ray is not None:
        from harness.pipeline.distributed import ray_stream

        log(f"{spec.name}: bottlenecks not in the cache are computed on Ray ({options.ray})")
        stream = ray_stream(
            options.ray,
            spec,
            weights=options.weights,
            resolved=target.weights,
            weights_dir=options.weights_dir,
            runtime=backbone.runtime,
            precision=backbone.precision,
            cache_dir=options.cache_dir,
            batch_size=options.extract_batch_size,
        )
    extraction = extract_features(
        backbone,
        dataset.images.images,
        cache,
        batch_size=options.extract_batch_size,
        progress=(lambda done, total: progress("bottlenecks", done, total)) if progress else None,
        stream=stream,
    )
    for shard in extraction.corrupt_shards:
        log(f"warning: corrupt cache shard {shard} was set aside; its images were recomputed")
    log(
        f"{spec.name}: bottlenecks on {backbone.runtime_text}: "
        f"{extraction.cached} from cache, "
        f"{extraction.computed} computed in {extraction.seconds:.1f}s"
    )
    failed = [
        (relative(dataset, img), extraction.failed[img.content_hash])
        for img in dataset.images.images
        if img.content_hash in extraction.failed
    ]
    for path, reason in failed:
        log(f"warning: skipped {printable(path)}: {reason}")
    splits = {
        name: [img for img in imgs if img.content_hash in extraction.features]
        for name, imgs in dataset.splits.items()
    }
    usable_classes = {img.label for imgs in splits.values() for img in imgs}
    if len(usable_classes) < 2:
        raise HarnessError(f"need at least 2 classes with decodable images, found {len(usable_classes)}")
    if not splits["training"]:
        raise HarnessError("no training image could be decoded")
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
        runtime_rates=runtime_rates,
        precision_check=check,
    )
