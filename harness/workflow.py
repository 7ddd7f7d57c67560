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
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from harness.deploy.exports import GraphdefExport
from harness.errors import HarnessError, printable
from harness.pipeline.dataset import Dataset
from harness.pipeline.images import ImageFile
from harness.pipeline.train import Augmentation, TrainConfig
from harness.registry import BackboneSpec

Log = Callable[[str], None]
Progress = Callable[[str, int, int], None]  # (phase, done, total)


@dataclass(frozen=True)
class PipelineOptions:
    """Options shared by every backbone of a run."""

    weights: str = "imagenet"
    weights_dir: str | None = None
    cache_dir: str | None = None  # None: no cache at all
    train: TrainConfig = field(default_factory=TrainConfig)
    device: str = "cpu"
    extract_batch_size: int = 16  # see harness.pipeline.extract.default_extract_batch_size
    runtime: str = "auto"  # bottlenecks on tf, litert, or auto (litert on a CPU)
    augmentation: Augmentation = field(default_factory=Augmentation)
    tflite: tuple[str, ...] = ()  # TFLite variants to write beside the SavedModel
    graphdef: GraphdefExport | None = None  # retrain.py's output_graph.pb and labels
    summaries_dir: str | None = None  # TensorBoard events: <dir>/train, <dir>/validation

    def for_backbone(self, spec: BackboneSpec) -> PipelineOptions:
        """These options for one backbone of several: its own TensorBoard run folder."""
        if self.summaries_dir is None:
            return self
        return replace(self, summaries_dir=str(Path(self.summaries_dir) / spec.safe_name()))


@dataclass
class Retrained:
    """What retraining the final layer on one backbone produced."""

    spec: BackboneSpec
    backbone: Any  # harness.pipeline.backbone.Backbone
    head: Any  # harness.pipeline.train.Head
    history: list[dict[str, float]]
    evaluation: Any  # harness.pipeline.evaluate.Evaluation
    extraction: Any  # harness.pipeline.extract.Extraction
    failed_images: list[tuple[str, str]]
    splits_used: dict[str, int]
    images: dict[str, list[ImageFile]]  # the split, less images that failed to decode
    train_seconds: float
    export_seconds: float | None
    export_dir: Path | None
    metadata: dict[str, Any]
    tflite: list[Any] = field(default_factory=list)  # harness.deploy.tflite.TFLiteVariant
    graphdef: tuple[Path, Path] | None = None  # output_graph.pb, output_labels.txt


def _relative(dataset: Dataset, img: ImageFile) -> str:
    return str(img.path.relative_to(dataset.images.root))


def retrain_final_layer(
    spec: BackboneSpec,
    dataset: Dataset,
    options: PipelineOptions,
    output_dir: str | os.PathLike[str] | None,
    *,
    log: Log = lambda _: None,
    progress: Progress | None = None,
    versions: dict[str, str] | None = None,
    log_step: Callable[[dict[str, float]], None] | None = None,
) -> Retrained:
    """Retrain a final layer on ``spec``'s bottlenecks, evaluate it and export it.

    Runs on ``options.device``; ``output_dir`` None skips the SavedModel and TFLite
    exports (a frozen graph with explicit paths is still written).

    Args:
        log_step: Prints one row of the training history (default: harness' own line).

    Raises:
        HarnessError: on bad input, missing weights or an unwritable output.
    """
    import tensorflow as tf

    from harness.pipeline.backbone import check_device

    with tf.device(check_device(options.device)):
        return _retrain(spec, dataset, options, output_dir, log, progress, versions or {}, log_step)


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
    spec: BackboneSpec,
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
    from harness.pipeline.cache import backbone_cache
    from harness.pipeline.evaluate import evaluate
    from harness.pipeline.extract import extract_features
    from harness.pipeline.litert import resolve_runtime, with_litert
    from harness.pipeline.train import cached_sampler, train_head

    backbone = load_backbone(spec, options.weights, options.weights_dir)
    if backbone.weights_note:
        log(f"{spec.name}: notice: {backbone.weights_note}")
    log(
        f"{spec.name}: built in {backbone.build_seconds:.1f}s, {backbone.params:,} parameters, "
        f"{backbone.feature_size} features, weights {options.weights} ({backbone.weights_source})"
    )
    if resolve_runtime(options.runtime, options.device) == "litert":
        backbone = with_litert(backbone, options.weights, options.cache_dir, log)
    cache = None
    if options.cache_dir is not None:
        cache = backbone_cache(
            options.cache_dir, spec, options.weights, backbone.feature_size, backbone.runtime
        )
    extraction = extract_features(
        backbone,
        dataset.images.images,
        cache,
        batch_size=options.extract_batch_size,
        progress=(lambda done, total: progress("bottlenecks", done, total)) if progress else None,
    )
    for shard in extraction.corrupt_shards:
        log(f"warning: corrupt cache shard {shard} was set aside; its images were recomputed")
    log(
        f"{spec.name}: bottlenecks on {backbone.runtime}: {extraction.cached} from cache, "
        f"{extraction.computed} computed in {extraction.seconds:.1f}s"
    )
    failed = [
        (_relative(dataset, img), extraction.failed[img.content_hash])
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
    if options.weights == "random":
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
    test_imgs = splits["testing"]
    evaluation = evaluate(
        head.probabilities(x["testing"]) if len(test_imgs) else np.zeros((0, len(dataset.classes))),
        y["testing"],
        dataset.classes,
        [_relative(dataset, i) for i in test_imgs],
    )
    sizes = {k: len(v) for k, v in splits.items()}
    metadata = {
        "backbone": spec.name,
        "weights": options.weights,
        "weights_source": backbone.weights_source,
        "preprocessing": spec.preprocessing,
        "feature_size": backbone.feature_size,
        "bottleneck_runtime": backbone.runtime,
        "params": backbone.params,
        "split_sizes": sizes,
        "dataset_fingerprint": dataset.fingerprint,
        "train": options.train.as_dict(),
        "augmentation": vars(augmentation),
        "test_accuracy": evaluation.accuracy,
        "validation_accuracy": history[-1].get("validation_accuracy") if history else None,
        "versions": versions,
    }
    export_dir = export_seconds = None
    if output_dir is not None:
        from harness.pipeline.export import export_model

        start = time.perf_counter()
        export_dir = export_model(backbone, head, dataset.classes, output_dir, metadata)
        export_seconds = time.perf_counter() - start
    tflite: list[Any] = []
    if options.tflite and export_dir is not None:
        from harness.deploy.exports import export_tflite_variants

        tflite = export_tflite_variants(
            backbone,
            head,
            dataset.classes,
            export_dir,
            options.tflite,
            train_paths=[img.path for img in splits["training"]],
            test_paths=[img.path for img in splits["testing"]],
            test_labels=y["testing"],
            reference=np.asarray(evaluation.predictions),
            seed=options.train.seed,
        )
    graphdef = None
    if options.graphdef is not None:
        from harness.deploy.exports import export_frozen_graph

        graphdef = export_frozen_graph(backbone, head, dataset.classes, options.graphdef, export_dir)
    return Retrained(
        spec=spec,
        backbone=backbone,
        head=head,
        history=history,
        evaluation=evaluation,
        extraction=extraction,
        failed_images=failed,
        splits_used=sizes,
        images=splits,
        train_seconds=train_seconds,
        export_seconds=export_seconds,
        export_dir=export_dir,
        metadata=metadata,
        tflite=tflite,
        graphdef=graphdef,
    )
