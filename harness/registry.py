"""Backbone specs and the plugin registry.

A backbone is a small declarative record: how to build it, its input size, its
preprocessing, its bottleneck size and where its weights come from. Built-in and
third-party backbones register the same way, through the ``harness.backbones``
entry-point group; each entry point names a callable that returns a list of specs.

Nothing here imports TensorFlow, so listing backbones stays fast.
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
from typing import Any

from harness.errors import HarnessError

ENTRY_POINT_GROUP = "harness.backbones"

#: Preprocessing modes, applied to float RGB pixels in [0, 255].
PREPROCESSING = ("tf", "torch", "caffe", "unit", "none")

WEIGHTS_CHOICES = ("imagenet", "random")

_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_\-]*(\.[A-Za-z0-9_\-]+)*")


@dataclass(frozen=True)
class BackboneSpec:
    """Everything harness needs to know about one backbone.

    Attributes:
        name: Registry name, e.g. ``mobilenet_v1_100``.
        family: Family name, for grouping in reports.
        builder: ``builder(spec, weights)`` returns a callable mapping a float batch
            ``[N, H, W, 3]`` (already preprocessed) to features ``[N, feature_size]``.
            ``weights`` is ``"imagenet"``, ``"random"`` or the path of a weights file.
        input_size: Square input side in pixels.
        feature_size: Length of the bottleneck vector (0 if only known once built).
        preprocessing: One of :data:`PREPROCESSING`; how pixels in [0, 255] are scaled.
        weights_file: File name Keras looks for in ``$KERAS_HOME/models/`` (None when
            the builder fetches weights some other way).
        weights_url: Where that file is downloaded from when online.
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
    weights_file: str | None = None
    weights_url: str | None = None
    params: int | None = None
    options: tuple[tuple[str, Any], ...] = field(default_factory=tuple)
    description: str = ""

    def __post_init__(self) -> None:
        if self.preprocessing not in PREPROCESSING:
            raise ValueError(f"{self.name}: unknown preprocessing {self.preprocessing!r}")
        if not self.name.startswith("hub:") and not _SAFE_NAME.fullmatch(self.name):
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
            "weights_file": self.weights_file,
        }
        blob = json.dumps(ident, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def safe_name(self) -> str:
        """A file-system safe name (hub handles contain slashes)."""
        if _SAFE_NAME.fullmatch(self.name):
            return self.name
        digest = hashlib.sha1(self.name.encode()).hexdigest()[:10]
        return f"hub_{digest}"


def keras_home() -> Path:
    """The directory Keras caches downloads in, as Keras itself computes it."""
    if "KERAS_HOME" in os.environ:
        return Path(os.environ["KERAS_HOME"])
    base = Path.home()
    if not os.access(base, os.W_OK):
        base = Path("/tmp")
    return base / ".keras"


def weights_location(spec: BackboneSpec, weights_dir: str | os.PathLike[str] | None = None) -> Path | None:
    """Where the ImageNet weights file of ``spec`` is on disk, or None if nowhere yet.

    Looks in ``weights_dir`` first (``--weights-dir``), then in the Keras cache
    ``$KERAS_HOME/models/`` where ``keras.applications`` itself looks and downloads to.
    """
    if spec.weights_file is None:
        return None
    candidates = [Path(weights_dir) / spec.weights_file] if weights_dir else []
    candidates.append(keras_home() / "models" / spec.weights_file)
    return next((c for c in candidates if c.is_file()), None)


def weights_available(spec: BackboneSpec, weights_dir: str | os.PathLike[str] | None = None) -> bool | None:
    """Whether the ImageNet weights are on disk; None for backbones not using the Keras cache."""
    if spec.weights_file is None:
        return None
    return weights_location(spec, weights_dir) is not None


def _natural_key(name: str) -> list[Any]:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


class Registry:
    """Specs by name, loaded from entry points on first use."""

    def __init__(self) -> None:
        self._specs: dict[str, BackboneSpec] = {}
        self._loaded = False
        self.load_errors: list[str] = []

    def register(self, spec: BackboneSpec, *, replace: bool = False) -> None:
        if spec.name in self._specs and not replace:
            raise HarnessError(f"backbone {spec.name!r} is registered twice")
        self._specs[spec.name] = spec

    def unregister(self, name: str) -> None:
        self._specs.pop(name, None)

    def _ensure_loaded(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            try:
                specs = ep.load()()
                for spec in specs:
                    self.register(spec, replace=True)
            except Exception as exc:  # a broken plugin must not break the others
                self.load_errors.append(f"plugin {ep.name} ({ep.value}): {exc}")

    def names(self) -> list[str]:
        self._ensure_loaded()
        return sorted(self._specs, key=_natural_key)

    def specs(self) -> list[BackboneSpec]:
        return [self._specs[n] for n in self.names()]

    def get(self, name: str, *, input_size: int | None = None) -> BackboneSpec:
        """Look a backbone up by name; ``hub:HANDLE`` builds a TF Hub spec on the fly.

        Raises:
            HarnessError: for an unknown name, suggesting the closest ones.
        """
        if name.startswith("hub:"):
            from backbones.hub import hub_spec

            return hub_spec(name[len("hub:") :], input_size or 224)
        self._ensure_loaded()
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
            if any(ch in pattern for ch in "*?[") and not pattern.startswith("hub:"):
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
