"""A generic TF Hub / SavedModel feature-vector backbone: ``--backbone hub:HANDLE``.

The SavedModel is loaded with ``hub.load`` (not ``hub.KerasLayer``, which needs Keras 2)
and called inside a ``tf.function``. It must map float images in [0, 1] of shape
``[N, size, size, 3]`` to ``[N, features]``, the TF Hub image feature-vector convention.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.registry import BackboneSpec


def _fingerprint(handle: str) -> str:
    """Changes whenever a local SavedModel changes, so its cached features are not reused."""
    path = Path(handle)
    if not path.is_dir():
        return handle
    digest = hashlib.sha256()
    for file in sorted(path.rglob("*")):
        if file.is_file():
            stat = file.stat()
            digest.update(f"{file.relative_to(path)}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def hub_spec(handle: str, input_size: int | None = None) -> BackboneSpec:
    """A spec for the feature-vector SavedModel at ``handle`` (URL or local directory).

    Registered as the ``hub`` factory: ``--backbone hub:HANDLE [--input-size N]``.
    """
    input_size = input_size or 224
    if not handle:
        raise HarnessError("hub: needs a handle, e.g. hub:/path/to/saved_model")
    if "://" not in handle:
        if not Path(handle).is_dir():
            raise HarnessError(f"hub backbone: no SavedModel directory at {handle}")
        handle = str(Path(handle).resolve())
    return BackboneSpec(
        name=f"hub:{handle}",
        family="hub",
        builder=build_hub,
        input_size=input_size,
        feature_size=0,
        preprocessing="unit",
        options=(("handle", handle), ("fingerprint", _fingerprint(handle))),
        description=f"TF Hub feature vector {handle}",
    )


@functools.cache
def _extractor_class() -> Any:
    """Defined on first use: listing backbones must not import TensorFlow."""
    import tensorflow as tf

    class HubFeatureExtractor(tf.Module):
        """Calls a loaded SavedModel; a tf.Module, so an export tracks its variables."""

        def __init__(self, module: Any) -> None:
            super().__init__(name="hub_feature_extractor")
            self.module = module
            if callable(module):
                self._call = module
            elif "default" in getattr(module, "signatures", {}):
                self._call = lambda x: module.signatures["default"](x)["default"]
            else:
                raise HarnessError(
                    "hub backbone: the SavedModel is not callable and has no 'default' signature"
                )

        def __call__(self, images: Any, training: bool = False) -> Any:
            out = self._call(images)
            if isinstance(out, dict):
                out = next(iter(out.values()))
            return out

        def count_params(self) -> int:
            found = {
                id(v): v
                for v in tf.train.TrackableView(self.module).descendants()
                if isinstance(v, tf.Variable)
            }
            return int(sum(v.shape.num_elements() for v in found.values()))

    return HubFeatureExtractor


def build_hub(spec: BackboneSpec, weights: str) -> Any:
    """A ``tf.Module`` calling the loaded SavedModel (a :class:`harness.registry.FeatureModel`)."""
    if weights != "imagenet":
        raise HarnessError("hub: backbones bring their own weights; --weights random is not supported")
    import tensorflow_hub as hub

    try:
        return _extractor_class()(hub.load(spec.option("handle")))
    except HarnessError:
        raise
    except Exception as exc:
        raise HarnessError(f"cannot load TF Hub module {spec.option('handle')}: {exc}") from exc
