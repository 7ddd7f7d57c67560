"""The bottleneck phase every command shares: build the backbone, choose what runs it,
features through the cache (locally or on Ray), and the split less undecodable photos."""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.errors import HarnessError, printable
from harness.pipeline.backbone import Backbone
from harness.pipeline.dataset import Dataset
from harness.pipeline.extract import Extraction
from harness.pipeline.images import ImageFile
from harness.plan import PipelineOptions, Target
from harness.workflow.deliver import relative
from harness.workflow.options import Log, Progress


@dataclass
class Bottlenecks:
    """The backbone as it extracted, as built (TensorFlow), and what it extracted."""

    backbone: Backbone
    on_tf: Backbone
    extraction: Extraction
    failed: list[tuple[str, str]]  # (relative path, reason) of photos that did not decode
    splits: dict[str, list[ImageFile]]  # the split, less those photos
    runtime_rates: dict[str, float] = field(default_factory=dict)  # what --runtime auto measured


def cached_bottlenecks(
    target: Target, dataset: Dataset, options: PipelineOptions, log: Log
) -> Extraction | None:
    """Every photo's bottleneck straight from the cache, without building the backbone: what
    makes auditing a folder harness has seen cost little more than reading its cache.

    None (and the caller takes the full path) when there is no cache, when the runtime is not
    decided yet on this machine, or when any photo is missing from the cache.
    """
    import time

    from harness.pipeline.cacheroot import CacheRoot
    from harness.pipeline.runtimes import decided_runtime

    spec = target.spec
    if options.cache_dir is None or not spec.feature_size or options.ray is not None:
        return None
    start = time.perf_counter()
    runtime = decided_runtime(
        spec,
        options.bottleneck_runtimes,
        options.precision,
        options.weights,
        options.cache_dir,
        options.extract_batch_size,
    )
    if runtime is None:
        return None
    cache = CacheRoot(options.cache_dir).bottlenecks(
        spec, options.weights, spec.feature_size, runtime, options.precision
    )
    wanted = {img.content_hash for img in dataset.images.images}
    loaded = cache.load(wanted)
    if len(loaded.features) != len(wanted) or loaded.corrupt_shards:
        return None
    seconds = time.perf_counter() - start
    log(
        f"{spec.name}: bottlenecks on {runtime}: {len(wanted)} from cache in {seconds:.1f}s "
        "(the backbone was not needed)"
    )
    return Extraction(features=dict(loaded.features), cached=len(wanted), seconds=seconds)


def bottlenecks(
    target: Target, dataset: Dataset, options: PipelineOptions, log: Log, progress: Progress | None
) -> Bottlenecks:
    """Every photo's bottleneck for ``target``, through the cache.

    Raises:
        HarnessError: fewer than 2 classes or no training photo could be decoded.
    """
    from harness.pipeline.backbone import load_backbone
    from harness.pipeline.cacheroot import CacheRoot
    from harness.pipeline.extract import extract_features
    from harness.pipeline.runtimes import choose_runtime
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
    return Bottlenecks(backbone, on_tf, extraction, failed, splits, runtime_rates)
