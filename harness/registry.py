"""Backbone specs and the plugin registry.

A backbone is a small declarative record: how to build it, its input size, its
preprocessing, its bottleneck size and where its weights come from. Built-in and
third-party backbones register the same way, through entry points:

- ``harness.backbones``: each entry point names a callable returning a list of specs;
- ``harness.backbone_factories``: the entry point's name is a prefix (``hub``), its
  value a callable ``factory(handle, input_size) -> BackboneSpec`` for names such as
  ``hub:/path/to/saved_model`` that no list can enumerate.

The plugin contract (see :class:`BackboneSpec`, :class:`FeatureModel` and
:class:`WeightsSource`) is all the core knows of a backbone: nothing here, nor in the
pipeline, is specific to Keras or TF Hub. Nothing here imports TensorFlow, so listing
backbones stays fast.
"""

from __future__ import annotations

import difflib
import fnmatch
import hashlib
import json
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from harness.errors import HarnessError

ENTRY_POINT_GROUP = "harness.backbones"
FACTORY_GROUP = "harness.backbone_factories"

#: Preprocessing modes, applied to float RGB pixels in [0, 255].
PREPROCESSING = ("tf", "torch", "caffe", "unit", "none")

WEIGHTS_CHOICES = ("imagenet", "random")

_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_\-]*(\.[A-Za-z0-9_\-]+)*")
_FACTORY_NAME = re.compile(r"([a-z][a-z0-9_]*):(.*)", re.DOTALL)


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
            is ``"random"``, the path of the file :attr:`weights` resolved to, or
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

    def __post_init__(self) -> None:
        if self.preprocessing not in PREPROCESSING:
            raise ValueError(f"{self.name}: unknown preprocessing {self.preprocessing!r}")
        if not _FACTORY_NAME.fullmatch(self.name) and not _SAFE_NAME.fullmatch(self.name):
            # Names become folder names (models, cache): nothing that could leave them.
            raise ValueError(f"backbone name {self.name!r} must match {_SAFE_NAME.pattern}")

    def option(self, key: str, default: Any = None) -> Any:
        return dict(self.options).get(key, default)

    def cache_identity(self, weights: str) -> str:
        """A short hash of everything that changes this backbone's features."""
        ident = {
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
        """Whether the pretrained weights are on disk; None for backbones loading their own."""
        if self.weights is None:
            return None
        return self.weights.locate(weights_dir) is not None


def weights_available(spec: BackboneSpec, weights_dir: str | os.PathLike[str] | None = None) -> bool | None:
    """Whether ``spec``'s pretrained weights are on disk (None: it loads its own)."""
    return spec.weights_on_disk(weights_dir)


def _natural_key(name: str) -> list[Any]:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def _origin(ep: metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    package = dist.metadata["Name"] if dist is not None else "?"
    return f"package {package} (entry point {ep.name} = {ep.value})"


class Registry:
    """Specs by name, loaded from entry points on first use."""

    def __init__(self) -> None:
        self._specs: dict[str, BackboneSpec] = {}
        self._origins: dict[str, str] = {}
        self._factories: dict[str, Callable[[str, int | None], BackboneSpec]] = {}
        self._loaded = False
        self.load_errors: list[str] = []

    def register(self, spec: BackboneSpec, *, replace: bool = False, origin: str = "register()") -> None:
        """Add ``spec``; a name registered twice is an error naming both origins.

        Raises:
            HarnessError: if the name is taken and ``replace`` is False.
        """
        if spec.name in self._specs and not replace:
            raise HarnessError(
                f"backbone {spec.name!r} is registered twice: by {self._origins[spec.name]} and by "
                f"{origin}; uninstall one of them"
            )
        self._specs[spec.name] = spec
        self._origins[spec.name] = origin

    def register_factory(self, prefix: str, factory: Callable[[str, int | None], BackboneSpec]) -> None:
        """Serve names ``<prefix>:<handle>`` with ``factory(handle, input_size)``."""
        self._factories[prefix] = factory

    def unregister(self, name: str) -> None:
        self._specs.pop(name, None)
        self._origins.pop(name, None)

    def _ensure_loaded(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        for ep in sorted(metadata.entry_points(group=FACTORY_GROUP), key=lambda e: e.name):
            try:
                self.register_factory(ep.name, ep.load())
            except Exception as exc:  # a broken plugin must not break the others
                self.load_errors.append(f"plugin {ep.name} ({ep.value}): {exc}")
        for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            try:
                specs = ep.load()()
            except Exception as exc:
                self.load_errors.append(f"plugin {ep.name} ({ep.value}): {exc}")
                continue
            for spec in specs:
                self.register(spec, origin=_origin(ep))

    def names(self) -> list[str]:
        self._ensure_loaded()
        return sorted(self._specs, key=_natural_key)

    def specs(self) -> list[BackboneSpec]:
        return [self._specs[n] for n in self.names()]

    def get(self, name: str, *, input_size: int | None = None) -> BackboneSpec:
        """Look a backbone up by name; ``prefix:HANDLE`` asks that prefix's factory.

        Raises:
            HarnessError: for an unknown name, suggesting the closest ones.
        """
        self._ensure_loaded()
        factory_name = _FACTORY_NAME.fullmatch(name)
        if factory_name and factory_name.group(1) in self._factories:
            return self._factories[factory_name.group(1)](factory_name.group(2), input_size)
        if name not in self._specs:
            close = difflib.get_close_matches(name, self._specs, n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise HarnessError(f"unknown backbone {name!r}{hint} (`harness backbones` lists them)")
        spec = self._specs[name]
        if input_size is not None and input_size != spec.input_size:
            raise HarnessError(
                f"{name} has a fixed input size of {spec.input_size}; --input-size is for hub: backbones"
            )
        return spec

    def match(self, patterns: Iterable[str], *, input_size: int | None = None) -> list[BackboneSpec]:
        """Resolve names and fnmatch wildcards (``mobilenet_v1_*``), in the order given."""
        out: list[BackboneSpec] = []
        for pattern in patterns:
            pattern = pattern.strip()
            if not pattern:
                continue
            if any(ch in pattern for ch in "*?[") and not _FACTORY_NAME.fullmatch(pattern):
                hits = [self._specs[n] for n in self.names() if fnmatch.fnmatchcase(n, pattern)]
                if not hits:
                    raise HarnessError(f"no backbone matches {pattern!r}")
                out.extend(hits)
            else:
                out.append(self.get(pattern, input_size=input_size))
        seen: set[str] = set()
        return [s for s in out if not (s.name in seen or seen.add(s.name))]


registry = Registry()


def get_backbone(name: str, *, input_size: int | None = None) -> BackboneSpec:
    """Return the registered spec called ``name`` (see :meth:`Registry.get`)."""
    return registry.get(name, input_size=input_size)


def list_backbones(pattern: str = "*") -> list[BackboneSpec]:
    """All registered specs whose name matches the fnmatch ``pattern``, naturally sorted."""
    return [s for s in registry.specs() if fnmatch.fnmatchcase(s.name, pattern)]
