"""What reduced precision cost: the same layer trained on fp32 features, compared on the test set.

A run with ``--precision bf16`` also extracts fp32 features on the same runtime (through the
cache, under their own key), trains the new layer on them with the same split and seed, and
tests McNemar's paired test between the two layers' answers on the same test images, so
the speed it bought is read beside what it cost.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from harness.pipeline.backbone import Backbone
from harness.pipeline.dataset import Dataset
from harness.pipeline.images import ImageFile
from harness.pipeline.litert import FLOAT, Conversion
from harness.plan import PipelineOptions, Precision, Runtime
from harness.workflow.options import Log, PrecisionCheck


def against_fp32(
    on_tf: Backbone,
    runtime: Runtime,
    dataset: Dataset,
    splits: dict[str, list[ImageFile]],
    predictions: list[int],
    options: PipelineOptions,
    log: Log,
) -> PrecisionCheck:
    """Train the layer on fp32 features from ``runtime`` (``on_tf`` is the backbone as
    built) and compare its test answers with ``predictions`` (the reduced-precision
    layer's, on ``splits["testing"]``)."""
    from harness.pipeline.cacheroot import CacheRoot
    from harness.pipeline.evaluate import evaluate, mcnemar_counts
    from harness.pipeline.extract import extract_features
    from harness.pipeline.runtimes import on_runtime
    from harness.pipeline.train import cached_sampler, class_weights_for, train_head

    reference = on_runtime(on_tf, runtime, Precision.FP32, options.weights, options.cache_dir, log)

    images = [img for imgs in splits.values() for img in imgs]
    cache = None
    if options.cache_dir is not None:
        cache = CacheRoot(options.cache_dir).bottlenecks(
            reference.spec, options.weights, reference.feature_size, reference.runtime, Precision.FP32
        )
    extraction = extract_features(reference, images, cache, batch_size=options.extract_batch_size)
    index = {c: i for i, c in enumerate(dataset.classes)}

    def xy(name: str) -> tuple[np.ndarray, np.ndarray]:
        imgs = splits[name]
        return extraction.matrix(imgs), np.array([index[i.label] for i in imgs], dtype=np.int64)

    (x_train, y_train), validation, (x_test, y_test) = xy("training"), xy("validation"), xy("testing")
    head, _ = train_head(
        cached_sampler(x_train, y_train),
        reference.feature_size,
        len(dataset.classes),
        options.train,
        validation=validation,
        log=lambda _: None,
        class_weights=class_weights_for(y_train, len(dataset.classes), options.train),
    )
    fp32 = evaluate(head.probabilities(x_test), y_test, dataset.classes)
    right_fp32 = [p == t for p, t in zip(fp32.predictions, y_test)]
    right_reduced = [p == t for p, t in zip(predictions, y_test)]
    only_fp32, only_reduced, p = mcnemar_counts(right_fp32, right_reduced)
    return PrecisionCheck(fp32.accuracy, only_fp32, only_reduced, p, extraction.seconds)


def conversion_for(backbone: Backbone, dataset: Dataset, options: PipelineOptions) -> Conversion:
    """How the backbone is converted for a CPU runtime: float, or for ``--precision int8``
    calibrated on up to 100 training photos (seeded, as the int8 export picks them)."""
    if options.precision is not Precision.INT8:
        return FLOAT
    from harness.deploy.int8_features import CALIBRATION_IMAGES, int8_conversion
    from harness.deploy.tflite import load_pixels

    train = dataset.splits["training"]
    picks = np.random.default_rng(options.train.seed).choice(
        len(train), size=min(CALIBRATION_IMAGES, len(train)), replace=False
    )
    return int8_conversion(load_pixels([train[i].file for i in sorted(picks)], backbone.spec.input_size))


def precision_values(check: PrecisionCheck | None) -> dict[str, Any]:
    """The row's columns for a reduced-precision run (none for fp32)."""
    if check is None:
        return {}
    return {
        "fp32_test_accuracy": check.fp32_test_accuracy,
        "only_fp32_right": check.only_fp32_right,
        "only_reduced_right": check.only_reduced_right,
        "precision_p_value": check.p_value,
    }
