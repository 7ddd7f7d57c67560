"""The cache folder: one object owns its layout and every key in it.

::

    <root>/bottlenecks/v2/<backbone>-<identity>/*.shard   features (harness.pipeline.cache)
    <root>/litert/<backbone>-<key>.tflite (+ .sha256)      converted backbones (.litert)
    <root>/scan-index/<key>.json                           one image folder's scan (.scanindex)
    <root>/runtime-probe/<backbone>.json                   what --runtime auto measured (.runtimes)

A bottleneck's identity is everything that changes the features: the backbone's own
(:meth:`harness.spec.BackboneSpec.cache_identity`), how pixels are made
(:data:`harness.pipeline.tfops.PIXELS`) and the runtime that ran it. The runtime is decided
by the run plan, never here: a Ray worker gets the key the driver chose.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.plan import Precision, Runtime, Weights

if TYPE_CHECKING:
    from harness.pipeline.cache import BottleneckCache
    from harness.pipeline.scanindex import ScanIndex

#: Bumped when the shard format changes: older shards are then simply not read.
BOTTLENECK_FORMAT = 2


class CacheRoot:
    """A cache folder (``--cache-dir``; by default the per-user cache directory)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def bottleneck_folder(self, name: str, identity: str) -> Path:
        return self.root / "bottlenecks" / f"v{BOTTLENECK_FORMAT}" / f"{name}-{identity}"

    @staticmethod
    def bottleneck_identity(
        spec: Any,
        weights: Weights | str,
        runtime: Runtime | str = Runtime.TF,
        precision: Precision | str = Precision.FP32,
    ) -> str:
        """The key of ``spec``'s features with ``weights`` made on ``runtime`` at ``precision``.

        Each runtime's entries are kept apart from TensorFlow's (they agree to a cosine of
        1e-5, not bit for bit), and reduced precision from fp32; TensorFlow's fp32 entries
        keep the identity they had before other runtimes existed.
        """
        from harness.pipeline.tfops import PIXELS

        runtime, precision = Runtime.parse(runtime), Precision.parse(precision)
        extra = {"runtime": runtime.value} if runtime is not Runtime.TF else {}
        if precision is not Precision.FP32:
            extra["precision"] = precision.value
        return spec.cache_identity(Weights.parse(weights).value, pixels=PIXELS, **extra)

    def bottlenecks(
        self,
        spec: Any,
        weights: Weights | str,
        feature_size: int,
        runtime: Runtime | str = Runtime.TF,
        precision: Precision | str = Precision.FP32,
    ) -> BottleneckCache:
        """The feature cache of ``spec`` with ``weights``, made on ``runtime`` at ``precision``."""
        identity = self.bottleneck_identity(spec, weights, runtime, precision)
        return self.bottleneck_cache(spec.safe_name(), identity, feature_size)

    def bottleneck_cache(self, name: str, identity: str, feature_size: int) -> BottleneckCache:
        """The feature cache called ``name`` under the key ``identity``."""
        from harness.pipeline.cache import BottleneckCache

        return BottleneckCache(self.bottleneck_folder(name, identity), feature_size)

    def converted_backbone(
        self, spec: Any, weights: Weights | str, weights_source: str, conversion: str = ""
    ) -> Path:
        """Where ``spec`` converted for LiteRT and OpenVINO is kept: keyed by its bottleneck
        identity, the weights file (path, size, modification time), the TensorFlow that
        converted it and ``conversion`` (empty for float; int8's names its calibration)."""
        import tensorflow as tf

        stamp = None
        if os.path.isfile(weights_source):
            st = os.stat(weights_source)
            stamp = [os.path.abspath(weights_source), st.st_size, st.st_mtime_ns]
        parts = [self.bottleneck_identity(spec, weights), stamp, tf.__version__]
        key = json.dumps(parts + ([conversion] if conversion else [])).encode()
        digest = hashlib.sha256(key).hexdigest()[:16]
        return self.root / Runtime.LITERT.value / f"{spec.safe_name()}-{digest}.tflite"

    def runtime_probe_file(self, name: str) -> Path:
        """The rates ``--runtime auto`` measured for backbone ``name`` (its key inside)."""
        return self.root / "runtime-probe" / f"{name}.json"

    def scan_index_file(self, image_dir: str | os.PathLike[str]) -> Path:
        key = hashlib.sha256(str(Path(image_dir).resolve()).encode()).hexdigest()[:16]
        return self.root / "scan-index" / f"{key}.json"

    def scan_index(self, image_dir: str | os.PathLike[str]) -> ScanIndex:
        """What earlier scans of ``image_dir`` found (unchanged files are not read again)."""
        from harness.pipeline.scanindex import ScanIndex

        return ScanIndex(self.scan_index_file(image_dir))
