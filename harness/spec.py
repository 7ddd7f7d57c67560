"""What a backbone plugin declares: :class:`BackboneSpec` and the contract it promises.

Nothing here imports TensorFlow. Plugins import these names from :mod:`harness.registry`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

#: Preprocessing modes, applied to float RGB pixels in [0, 255].
PREPROCESSING = ("tf", "torch", "caffe", "unit", "none")

_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_\-]*(\.[A-Za-z0-9_\-]+)*")
FACTORY_NAME = re.compile(r"([a-z][a-z0-9_]*):(.*)", re.DOTALL)


@runtime_checkable
class FeatureModel(Protocol):
    """What a builder returns: a ``keras.Model`` or a ``tf.Module`` with this shape.

    ``model(pixels, training=False)`` maps preprocessed float pixels ``[N, S, S, 3]`` to
    features ``[N, ...]`` (flattened to ``[N, feature_size]`` by harness) inside a
    ``tf.function``; ``count_params()`` gives its parameter count. Its variables must be
    tracked (Keras layers or ``tf.Module`` attributes) so that exports carry them.
    """

    def __call__(self, pixels: Any, training: bool = False) -> Any: ...

    def count_params(self) -> int: ...


@dataclass(frozen=True)
class ResolvedWeights:
    """A weights file found on disk (or just downloaded) and how it was found."""

    path: Path
    source: str  # shown in runs: e.g. "keras-cache", or the file's path
    note: str | None = None  # one line for the user, e.g. that the file is not the published one


class WeightsSource(Protocol):
    """Where a backbone's pretrained weights come from (a plugin supplies this).

    ``file`` names the weights (part of the cache identity). ``locate`` looks on disk
    only; ``resolve`` may download and raises :class:`harness.errors.WeightsMissingError`
    with one line a user can act on when the file cannot be had. Neither may delete or
    modify a file it finds.
    """

    file: str
    url: str | None

    def locate(self, weights_dir: str | os.PathLike[str] | None = None) -> Path | None: ...

    def resolve(self, weights_dir: str | os.PathLike[str] | None = None) -> ResolvedWeights: ...


@dataclass(frozen=True)
class BackboneSpec:
    """Everything harness needs to know about one backbone.

    Attributes:
        name: Registry name, e.g. ``mobilenet_v1_100``.
        family: Family name, for grouping in reports.
        builder: ``builder(spec, weights)`` returns a :class:`FeatureModel`. ``weights``
            is ``harness.plan.Weights.RANDOM`` (equal to its value), the path of the file
            :attr:`weights` resolved to, or
            ``"imagenet"`` for a backbone without a :attr:`weights` source (it loads its
            own, as TF Hub modules do).
        input_size: Square input side in pixels.
        feature_size: Length of the bottleneck vector (0 if only known once built).
        preprocessing: One of :data:`PREPROCESSING`; how pixels in [0, 255] are scaled.
        weights: Where the pretrained weights come from (None when the builder loads
            its own); checked before any image is read.
        params: Declared parameter count of the feature extractor, shown without
            building it (a test checks it against the built model).
        options: Builder arguments (alpha, variant, ...), part of the cache identity.
        description: One line for ``harness backbones``.
        aliases: Other names that resolve to this spec (retrain.py's ``--architecture``
            names such as ``mobilenet_1.0_224``); not part of the cache identity.
        alias_exports: Aliases that also ask for TFLite exports, with the quantizations
            they add (retrain.py's quantized MobileNet names add ``int8``).
    """

    name: str
    family: str
    builder: Callable[[BackboneSpec, str], Any]
    input_size: int
    feature_size: int
    preprocessing: str = "tf"
    weights: WeightsSource | None = None
    params: int | None = None
    options: tuple[tuple[str, Any], ...] = field(default_factory=tuple)
    description: str = ""
    aliases: tuple[str, ...] = ()
    alias_exports: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def all_aliases(self) -> tuple[str, ...]:
        return self.aliases + tuple(name for name, _ in self.alias_exports)

    def exports_of(self, name: str) -> tuple[str, ...]:
        """The TFLite quantizations the name ``name`` asks for beyond the run's own."""
        return dict(self.alias_exports).get(name, ())

    def __post_init__(self) -> None:
        if self.preprocessing not in PREPROCESSING:
            raise ValueError(f"{self.name}: unknown preprocessing {self.preprocessing!r}")
        if not FACTORY_NAME.fullmatch(self.name) and not _SAFE_NAME.fullmatch(self.name):
            # Names become folder names (models, cache): nothing that could leave them.
            raise ValueError(f"backbone name {self.name!r} must match {_SAFE_NAME.pattern}")

    def option(self, key: str, default: Any = None) -> Any:
        return dict(self.options).get(key, default)

    def cache_identity(self, weights: str, **extra: str) -> str:
        """A short hash of everything that changes this backbone's features.

        ``extra`` adds what the pipeline contributes (how pixels are decoded and resized).
        """
        ident = {
            **extra,
            "name": self.name,
            "family": self.family,
            "input_size": self.input_size,
            "preprocessing": self.preprocessing,
            "options": [list(o) for o in self.options],
            "weights": weights,
            "weights_file": self.weights.file if self.weights is not None else None,
        }
        blob = json.dumps(ident, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def safe_name(self) -> str:
        """A file-system safe name (factory handles such as ``hub:/a/b`` contain slashes)."""
        if _SAFE_NAME.fullmatch(self.name):
            return self.name
        prefix = self.name.split(":", 1)[0]
        digest = hashlib.sha1(self.name.encode()).hexdigest()[:10]
        return f"{prefix}_{digest}"

    def weights_on_disk(self, weights_dir: str | os.PathLike[str] | None = None) -> bool | None:
        """Whether usable pretrained weights are on disk; None for backbones loading their own."""
        return None if self.weights is None else self.weights_status(weights_dir) == "on disk"

    def weights_status(self, weights_dir: str | os.PathLike[str] | None = None) -> str:
        """``on disk``, ``not on disk``, ``damaged (why)``, or ``-`` (the backbone loads its own)."""
        if self.weights is None:
            return "-"
        path = self.weights.locate(weights_dir)
        if path is None:
            return "not on disk"
        check = getattr(self.weights, "damage", None)  # optional for a plugin's source
        why = check(path) if check is not None else None
        return f"damaged ({why})" if why else "on disk"
