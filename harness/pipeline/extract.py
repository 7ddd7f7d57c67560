"""Compute bottleneck features through the cache with a parallel tf.data pipeline."""

from __future__ import annotations

import functools
import os
import queue
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf

from harness.errors import plain_reason
from harness.pipeline import tfops
from harness.pipeline.backbone import Backbone
from harness.pipeline.cache import BottleneckCache
from harness.pipeline.images import ImageFile

DEFAULT_BATCH_SIZE = 16  # on the CPU; see harness.plan.Device.extract_batch_size
#: Images per cache shard: a killed run loses at most this many computed images.
SHARD_SIZE = int(os.environ.get("HARNESS_CACHE_SHARD_SIZE", "256"))


@dataclass
class Extraction:
    """Features by image content hash, and what happened getting them."""

    features: dict[str, np.ndarray]
    failed: dict[str, str] = field(default_factory=dict)  # content hash -> reason
    computed: int = 0
    cached: int = 0
    seconds: float = 0.0  # wall time of the whole phase, cache reads included
    compute_seconds: float = 0.0  # wall time of the decode + model pipeline alone
    corrupt_shards: list[str] = field(default_factory=list)

    def matrix(self, images: Sequence[ImageFile]) -> np.ndarray:
        """Features of ``images`` stacked in order (all must have succeeded)."""
        if not images:
            return np.zeros((0, self._width()), np.float32)
        return np.stack([self.features[img.content_hash] for img in images]).astype(np.float32)

    def _width(self) -> int:
        return len(next(iter(self.features.values()))) if self.features else 0


def _decode_error(path: str, size: int) -> str:
    data = tf.io.read_file(path)
    try:
        tfops.decode_image(data, size)
    except Exception as exc:  # only to word the reason; the pipeline already dropped it
        try:
            height, width, _ = (int(v) for v in tf.image.extract_jpeg_shape(data).numpy())
        except Exception:
            return "cannot decode: " + plain_reason(exc)
        if height * width > tfops.LARGE_JPEG_PIXELS:  # a valid header: the size is the problem
            return f"JPEG too large to decode: {width}x{height}"
        return "cannot decode: " + plain_reason(exc)
    return "cannot decode"


@functools.cache
def _load_resized(size: int) -> Callable[[tf.Tensor], tf.Tensor]:
    """:func:`tfops.load_resized` traced once per size.

    tf.data traces a map's Python function every time a pipeline is built: 0.1 s here,
    about a tenth of a 512-image extraction with a small model on LiteRT. A map that
    calls an already traced function is traced in about a hundredth of that.
    """
    load = tf.function(
        lambda path: tfops.load_resized(path, size), input_signature=[tf.TensorSpec([], tf.string)]
    )
    return load.get_concrete_function()


def image_dataset(paths: Sequence[str], size: int, batch_size: int) -> tf.data.Dataset:
    """Batches of ``(pixels, index)``; files that fail to decode are dropped (indices tell)."""
    ds = tf.data.Dataset.from_tensor_slices(
        (tf.constant([os.fsencode(p) for p in paths], tf.string), np.arange(len(paths), dtype=np.int64))
    )
    load = _load_resized(size)
    return _decoded_batches(ds.map(lambda p, i: (load(p), i), **PARALLEL), batch_size)


#: How every decoding map runs: on all cores, in order (indices and markers rely on it).
PARALLEL = {"num_parallel_calls": tf.data.AUTOTUNE, "deterministic": True}


def _decoded_batches(ds: tf.data.Dataset, batch_size: int) -> tf.data.Dataset:
    ds = ds.ignore_errors().batch(batch_size).prefetch(tf.data.AUTOTUNE)
    # With the tf.data autotuner on, a 2-core machine fell into a slow mode in about a
    # third of the passes (99 img/s against 150-200 for mobilenet_v1_025 and v3_small);
    # with it off, parallelism is the core count and no pass fell into it.
    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.with_options(options)


class EncodedFeed:
    """Features of encoded images, call after call, through one decoding pipeline.

    A Ray extractor gets its images a block at a time; a tf.data pipeline built (and its
    map traced) per block cost mobilenet_v1_025 a third of its rate at 128 images a call
    (0.52 of local, against 0.76 with this). This one pipeline is fed each call's
    images, followed by a batch of end markers. Order is kept, so a call's images all
    come out before its first marker, and the call ends there; rows of earlier calls
    (markers left in a batch, or images of a call that was abandoned) carry their call's
    number and are skipped.
    """

    def __init__(self, backbone: Backbone, batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        self.backbone, self.batch_size = backbone, batch_size
        self._calls = 0
        self._queue: queue.SimpleQueue[tuple[np.ndarray, np.ndarray, np.ndarray]] = queue.SimpleQueue()
        size = backbone.spec.input_size
        blank = tf.zeros([size, size, 3])

        def blocks() -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
            while True:
                yield self._queue.get()

        vector = tf.TensorSpec([None], tf.int64)
        ds = tf.data.Dataset.from_generator(
            blocks, output_signature=(tf.TensorSpec([None], tf.string), vector, vector)
        ).unbatch()

        def load(data: tf.Tensor, call: tf.Tensor, i: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
            decoded = lambda: tfops.resize(tfops.decode_image(data, size), size)  # noqa: E731
            return tf.cond(i >= 0, decoded, lambda: blank), call, i

        self._batches = iter(_decoded_batches(ds.map(load, **PARALLEL), batch_size))

    def __call__(self, encoded: Sequence[bytes]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yields ``(indices into encoded, features)``; undecodable images are left out."""
        self._calls += 1
        call, n, b = self._calls, len(encoded), self.batch_size
        data = np.array([*encoded, *([b""] * b)], dtype=object)
        self._queue.put((data, np.full(n + b, call), np.r_[np.arange(n), np.full(b, -1)]))
        while True:
            pixels, calls, index = next(self._batches)
            calls, index = calls.numpy(), index.numpy()
            mine = calls == call
            real = mine & (index >= 0)
            if real.any():
                yield index[real], self.backbone.extract(pixels)[real]
            if (mine & (index < 0)).any():
                return


#: Computes features of files: yields ``(indices into paths, features)`` batches, in any
#: order; a file that cannot be decoded is never yielded.
FeatureStream = Callable[[Sequence[str]], Iterator[tuple[np.ndarray, np.ndarray]]]


def local_stream(backbone: Backbone, batch_size: int = DEFAULT_BATCH_SIZE) -> FeatureStream:
    """This process: tf.data decodes (all cores) while the backbone runs."""

    def stream(paths: Sequence[str]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for pixels, index in image_dataset(paths, backbone.spec.input_size, batch_size):
            yield index.numpy(), backbone.extract(pixels)

    return stream


def extract_features(
    backbone: Backbone,
    images: Sequence[ImageFile],
    cache: BottleneckCache | None,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: Callable[[int, int], None] | None = None,
    stream: FeatureStream | None = None,
) -> Extraction:
    """Features of every image, reusing cached ones and caching new ones.

    Args:
        backbone: The built backbone.
        images: Images to featurise; duplicates by content are computed once.
        cache: Where features are read and written; None computes everything.
        batch_size: Images per model call.
        progress: Called as ``progress(done, total)`` while computing.
        stream: What computes the missing features (default :func:`local_stream`; a
            Ray cluster with ``--ray``). Whatever computes them, this process writes the cache.
    """
    start = time.perf_counter()
    first_path: dict[str, str] = {}
    for img in images:
        first_path.setdefault(img.content_hash, img.file)
    loaded = cache.load(set(first_path)) if cache is not None else None
    features = dict(loaded.features) if loaded else {}
    missing = [k for k in first_path if k not in features]
    result = Extraction(features=features, cached=len(first_path) - len(missing))
    if loaded:
        result.corrupt_shards = loaded.corrupt_shards
    if progress:
        progress(0, len(missing))
    if missing:
        compute_start = time.perf_counter()
        paths = [first_path[k] for k in missing]
        seen: set[int] = set()
        pending_keys: list[str] = []
        pending: list[np.ndarray] = []
        done = 0
        for index, feats in (stream or local_stream(backbone, batch_size))(paths):
            for i, vector in zip(index, feats):
                key = missing[int(i)]
                seen.add(int(i))
                features[key] = vector
                pending_keys.append(key)
                pending.append(vector)
            if cache is not None and len(pending_keys) >= SHARD_SIZE:
                cache.write(pending_keys, np.stack(pending))
                pending_keys, pending = [], []
            done += len(feats)
            if progress:
                progress(done, len(missing))
        if cache is not None and pending_keys:
            cache.write(pending_keys, np.stack(pending))
        result.computed = len(seen)
        result.compute_seconds = time.perf_counter() - compute_start
        for i, key in enumerate(missing):
            if i not in seen:
                result.failed[key] = _decode_error(paths[i], backbone.spec.input_size)
        if cache is not None:
            cache.compact()
    result.seconds = time.perf_counter() - start
    return result
