"""What backbones from ``keras.applications`` share: their weights files and their builder.

Keras keeps ImageNet weights in ``$KERAS_HOME/models/`` and downloads missing ones
there. harness finds the file itself and hands Keras its path, never ``"imagenet"``:
for some files (Inception v3, MobileNetV3) Keras checks an MD5 and, when the check fails
offline, deletes the cached file. A user's file is loaded by path and left in place.
"""

from __future__ import annotations

import functools
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import WeightsMissingError
from harness.registry import BackboneSpec, ResolvedWeights


def keras_home() -> Path:
    """The directory Keras caches downloads in, as Keras itself computes it."""
    if "KERAS_HOME" in os.environ:
        return Path(os.environ["KERAS_HOME"])
    base = Path.home()
    if not os.access(base, os.W_OK):
        base = Path("/tmp")
    return base / ".keras"


@functools.lru_cache(maxsize=64)
def _md5(path: str, size: int, mtime_ns: int) -> str:
    """MD5 of a file, once per (path, size, mtime): weights are checked before any image is
    read and again when the backbone is built, and Inception v3's file is 88 MB."""
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@functools.lru_cache(maxsize=64)
def _h5_damage(path: str, size: int, mtime_ns: int) -> str | None:
    """Why a weights file cannot be loaded (empty, truncated, not HDF5, an unreadable
    array), or None. Every array is read once, so damage shows before any image is read,
    not as h5py internals after the scan."""
    import h5py
    import numpy as np

    if size == 0:
        return "empty file"
    arrays: list[h5py.Dataset] = []
    try:
        with h5py.File(path, "r") as fh:
            fh.visititems(lambda _, item: arrays.append(item) if isinstance(item, h5py.Dataset) else None)
            if not arrays:
                return "no weight arrays in it"
            for array in arrays:
                np.asarray(array[()])
    except Exception as exc:  # h5py raises OSError, KeyError or RuntimeError for damage
        text = str(exc).split("(")[-1].rstrip(")") if "(" in str(exc) else str(exc)
        return f"not a readable HDF5 weights file ({text.strip() or type(exc).__name__})"
    return None


@dataclass(frozen=True)
class KerasWeights:
    """A ``keras.applications`` weights file: its cache name and download URL."""

    file: str
    url: str | None = None
    md5: str | None = None  # checked on a fresh download only, never on a file found

    def candidates(self, weights_dir: str | os.PathLike[str] | None = None) -> list[tuple[Path, str]]:
        out = [(Path(weights_dir) / self.file, "")] if weights_dir else []
        out.append((keras_home() / "models" / self.file, "keras-cache"))
        return out

    def _differs(self, path: Path) -> str | None:
        """A notice when ``path`` is not the file Keras publishes (it is still used, by path)."""
        if self.md5 is None:
            return None
        stat = path.stat()
        found = _md5(str(path.resolve()), stat.st_size, stat.st_mtime_ns)
        if found == self.md5:
            return None
        return (
            f"{path} differs from the file Keras publishes (MD5 {found}, expected "
            f"{self.md5}); loading it by path and leaving it in place"
        )

    def locate(self, weights_dir: str | os.PathLike[str] | None = None) -> Path | None:
        """The file in ``weights_dir`` (``--weights-dir``) or the Keras cache, or None."""
        return next((p for p, _ in self.candidates(weights_dir) if p.is_file()), None)

    def damage(self, path: Path) -> str | None:
        """Why the file at ``path`` cannot be loaded, or None (checked once per version)."""
        st = path.stat()
        return _h5_damage(str(path.resolve()), st.st_size, st.st_mtime_ns)

    def resolve(self, weights_dir: str | os.PathLike[str] | None = None) -> ResolvedWeights:
        """The file on disk, downloading it into the Keras cache when it is missing.

        Raises:
            WeightsMissingError: the file is nowhere on disk and cannot be downloaded.
        """
        for path, source in self.candidates(weights_dir):
            if path.is_file():
                if damage := self.damage(path):
                    raise WeightsMissingError(
                        f"weights file {path} is damaged: {damage}; replace it with a complete copy "
                        "(or delete it to download it again)"
                    )
                return ResolvedWeights(path, source or str(path), self._differs(path))
        target = keras_home() / "models" / self.file
        if self.url:
            try:
                import keras

                # The file is absent, so a failed hash check can only remove the download.
                fetched = keras.utils.get_file(self.file, self.url, cache_subdir="models", file_hash=self.md5)
                return ResolvedWeights(Path(fetched), "keras-cache")
            except Exception:
                pass
        raise WeightsMissingError(
            f"ImageNet weights file {self.file} is not available offline: put it in "
            f"{target.parent}/" + (f" (from {self.url})" if self.url else "") + ", pass "
            "--weights-dir DIR holding it, or use --weights random for speed only"
        )


def build_keras_application(spec: BackboneSpec, weights: str) -> Any:
    """Build ``keras.applications.<constructor>`` without its top, average pooled.

    Args:
        spec: The backbone; ``spec.options`` holds the constructor and its arguments.
        weights: ``"random"`` or the path of the weights file (see :class:`KerasWeights`).
    """
    import keras

    options = dict(spec.options)
    constructor = getattr(keras.applications, options.pop("constructor"))
    if weights == "random":
        # Random weights are for timing only; seed them so reruns build the same model.
        keras.utils.set_random_seed(0)
    elif not Path(weights).is_file():
        raise WeightsMissingError(f"{spec.name}: weights file {weights} does not exist")
    return constructor(
        include_top=False,
        pooling="avg",
        weights=None if weights == "random" else weights,
        input_shape=(spec.input_size, spec.input_size, 3),
        **options,
    )
