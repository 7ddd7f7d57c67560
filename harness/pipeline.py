"""The shared retrain pipeline: scan, split, extract (cached), train, evaluate, export.

Every function takes plain values and returns plain values; printing and progress
bars are the caller's, passed in as callbacks.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import HarnessError
from harness.images import ImageFile, ImageSet, dataset_fingerprint, scan_images, split_images
from harness.registry import BackboneSpec
from harness.train import TrainConfig

Log = Callable[[str], None]
Progress = Callable[[str, int, int], None]  # (phase, done, total)


def default_extract_batch_size(device: str) -> int:
    """Images per backbone call when extracting bottlenecks on ``device``.

    On a 2-core CPU, files to features, batches of 16 ran four MobileNets as fast as 32
    or up to 9% faster, and 64 was slower for all: a small batch's activations stay in
    the CPU caches (the models alone ran 6-12% faster at 16 than at 32). A GPU wants
    larger batches to fill it.
    """
    return 16 if device == "cpu" else 32


@dataclass(frozen=True)
class PipelineOptions:
    """Options shared by every backbone of a run."""

    weights: str = "imagenet"
    weights_dir: str | None = None
    cache_dir: str | None = None  # None: no cache at all
    train: TrainConfig = field(default_factory=TrainConfig)
    extract_batch_size: int = 16  # see default_extract_batch_size
    augmentation: Any = None  # harness.augment.Augmentation; kept loose to avoid importing TF here
    export: bool = True
    tflite: tuple[str, ...] = ()  # TFLite variants to write beside the SavedModel
    latency_runs: int = 20


@dataclass
class Dataset:
    """A scanned and split image folder."""

    images: ImageSet
    splits: dict[str, list[ImageFile]]
    fingerprint: str
    validation_percentage: float
    testing_percentage: float

    @property
    def classes(self) -> list[str]:
        return self.images.classes

    def split_sizes(self) -> dict[str, int]:
        return {k: len(v) for k, v in self.splits.items()}


def prepare_dataset(
    image_dir: str | os.PathLike[str], validation_percentage: float = 10, testing_percentage: float = 10
) -> Dataset:
    """Scan ``image_dir`` and split it (see :mod:`harness.images`)."""
    images = scan_images(image_dir)
    splits = split_images(images.images, validation_percentage, testing_percentage)
    if not splits["training"]:
        raise HarnessError("no training images after the split; add images or lower the percentages")
    return Dataset(
        images=images,
        splits=splits,
        fingerprint=dataset_fingerprint(images, splits),
        validation_percentage=validation_percentage,
        testing_percentage=testing_percentage,
    )


@dataclass
class BackboneResult:
    """What training one backbone produced."""

    spec: BackboneSpec
    backbone: Any  # harness.model.Backbone
    head: Any  # harness.train.Head
    history: list[dict[str, float]]
    evaluation: Any  # harness.evaluate.Evaluation
    extraction: Any  # harness.extract.Extraction
    failed_images: list[tuple[str, str]]
    splits_used: dict[str, int]
    train_seconds: float
    export_seconds: float | None
    export_dir: Path | None
    metadata: dict[str, Any]
    tflite: list[dict[str, Any]] = field(default_factory=list)


def _relative(dataset: Dataset, img: ImageFile) -> str:
    return str(img.path.relative_to(dataset.images.root))


def train_backbone(
    spec: BackboneSpec,
    dataset: Dataset,
    options: PipelineOptions,
    output_dir: str | os.PathLike[str] | None,
    *,
    log: Log = lambda _: None,
    progress: Progress | None = None,
    versions: dict[str, str] | None = None,
) -> BackboneResult:
    """Run the whole pipeline for one backbone.

    Raises:
        HarnessError: on bad input, missing weights or an unwritable output.
    """
    from harness.augment import distorted_sampler
    from harness.cache import BottleneckCache
    from harness.evaluate import evaluate
    from harness.extract import extract_features
    from harness.model import load_backbone
    from harness.train import cached_sampler, train_head

    backbone = load_backbone(spec, options.weights, options.weights_dir)
    log(
        f"{spec.name}: built in {backbone.build_seconds:.1f}s, {backbone.params:,} parameters, "
        f"{backbone.feature_size} features, weights {options.weights} ({backbone.weights_source})"
    )
    cache = None
    if options.cache_dir is not None:
        cache = BottleneckCache(
            options.cache_dir, spec.safe_name(), spec.cache_identity(options.weights), backbone.feature_size
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
        f"{spec.name}: bottlenecks: {extraction.cached} from cache, {extraction.computed} computed "
        f"in {extraction.seconds:.1f}s"
    )
    failed = [
        (_relative(dataset, img), extraction.failed[img.content_hash])
        for img in dataset.images.images
        if img.content_hash in extraction.failed
    ]
    for path, reason in failed:
        log(f"warning: skipped {path}: {reason}")
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
    if augmentation is not None and augmentation.enabled:
        log(
            "distortions are on: training images bypass the bottleneck cache and every "
            "training step runs the whole backbone (much slower)"
        )
        sampler = distorted_sampler(backbone, splits["training"], y["training"], augmentation)
    else:
        sampler = cached_sampler(x["training"], y["training"])

    def log_row(row: dict[str, float]) -> None:
        val = row.get("validation_accuracy")
        val_text = f"{val * 100:.1f}%" if val is not None else "n/a"
        log(
            f"step {int(row['step']):5d}: train accuracy {row['train_accuracy'] * 100:.1f}%, "
            f"cross entropy {row['cross_entropy']:.4f}, validation accuracy {val_text}"
        )

    if options.weights == "random":
        log(f"{spec.name}: random weights: the accuracies below are meaningless (this is a speed run)")
    start = time.perf_counter()
    head, history = train_head(
        sampler,
        backbone.feature_size,
        len(dataset.classes),
        options.train,
        validation=(x["validation"], y["validation"]),
        log=log_row,
    )
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
        "params": backbone.params,
        "split_sizes": sizes,
        "dataset_fingerprint": dataset.fingerprint,
        "train": options.train.as_dict(),
        "augmentation": vars(augmentation) if augmentation is not None else None,
        "test_accuracy": evaluation.accuracy,
        "validation_accuracy": history[-1].get("validation_accuracy") if history else None,
        "versions": versions or {},
    }
    export_dir = export_seconds = None
    if options.export and output_dir is not None:
        from harness.export import export_model

        start = time.perf_counter()
        export_dir = export_model(backbone, head, dataset.classes, output_dir, metadata)
        export_seconds = time.perf_counter() - start
    tflite: list[dict[str, Any]] = []
    if options.tflite and export_dir is not None:
        tflite = _export_tflite(backbone, head, dataset, splits, y, evaluation, export_dir, options, log)
    return BackboneResult(
        spec=spec,
        backbone=backbone,
        head=head,
        history=history,
        evaluation=evaluation,
        extraction=extraction,
        failed_images=failed,
        splits_used=sizes,
        train_seconds=train_seconds,
        export_seconds=export_seconds,
        export_dir=export_dir,
        metadata=metadata,
        tflite=tflite,
    )


def _export_tflite(
    backbone: Any,
    head: Any,
    dataset: Dataset,
    splits: dict[str, list[ImageFile]],
    y: dict[str, np.ndarray],
    evaluation: Any,
    export_dir: Path,
    options: PipelineOptions,
    log: Log,
) -> list[dict[str, Any]]:
    from harness.tflite import export_and_measure, load_pixels

    size = backbone.spec.input_size
    rng = np.random.default_rng(options.train.seed)
    train = splits["training"]
    picks = rng.choice(len(train), size=min(100, len(train)), replace=False)
    representative = load_pixels([train[i].path for i in sorted(picks)], size)
    variants = export_and_measure(
        backbone,
        head,
        export_dir,
        options.tflite,
        representative=representative,
        test_pixels=load_pixels([img.path for img in splits["testing"]], size),
        test_labels=y["testing"],
        classes=dataset.classes,
        reference=np.asarray(evaluation.predictions),
        latency_runs=options.latency_runs,
    )
    for v in variants:
        accuracy = "n/a" if v["test_accuracy"] is None else f"{v['test_accuracy'] * 100:.1f}%"
        if v["agreement"] is not None:
            accuracy += f" (same top-1 as float on {v['agreement'] * 100:.1f}% of test images)"
        corrected = v["bias_corrected_layers"]
        log(
            f"{backbone.spec.name}: TFLite {v['quantize']}: {v['size_mb']:.2f} MB, test accuracy {accuracy}, "
            f"{v['latency_ms_p50']:.1f} ms p50 at batch 1 ({v['threads']} threads)"
            + (f", bias correction on {corrected} layers" if corrected else "")
        )
    return variants
