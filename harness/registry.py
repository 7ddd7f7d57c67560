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
import os
import re
from collections.abc import Callable, Iterable
from importlib import metadata
from typing import Any

from harness.errors import HarnessError
from harness.spec import (
    FACTORY_NAME,
    PREPROCESSING,
    BackboneSpec,
    FeatureModel,
    ResolvedWeights,
    WeightsSource,
)

__all__ = [
    "PREPROCESSING",
    "BackboneSpec",
    "FeatureModel",
    "Registry",
    "ResolvedWeights",
    "WeightsSource",
    "get_backbone",
    "list_backbones",
    "registry",
]

ENTRY_POINT_GROUP = "harness.backbones"
FACTORY_GROUP = "harness.backbone_factories"


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
        self._aliases: dict[str, str] = {}  # alias -> name
        self._origins: dict[str, str] = {}
        self._factories: dict[str, Callable[[str, int | None], BackboneSpec]] = {}
        self._loaded = False
        self.load_errors: list[str] = []

    def register(self, spec: BackboneSpec, *, replace: bool = False, origin: str = "register()") -> None:
        """Add ``spec``; a name registered twice is an error naming both origins.

        Raises:
            HarnessError: if the name is taken and ``replace`` is False.
        """
        for name in (spec.name, *spec.all_aliases):
            taken = self._specs.get(name) or self._specs.get(self._aliases.get(name, ""))
            if taken is not None and not (replace and taken.name == spec.name):
                raise HarnessError(
                    f"backbone {name!r} is registered twice: by {self._origins[taken.name]} and by "
                    f"{origin}; uninstall one of them"
                )
        if spec.name in self._specs:
            self.unregister(spec.name)
        self._specs[spec.name] = spec
        self._aliases.update({alias: spec.name for alias in spec.all_aliases})
        self._origins[spec.name] = origin

    def register_factory(self, prefix: str, factory: Callable[[str, int | None], BackboneSpec]) -> None:
        """Serve names ``<prefix>:<handle>`` with ``factory(handle, input_size)``."""
        self._factories[prefix] = factory

    def unregister(self, name: str) -> None:
        spec = self._specs.pop(name, None)
        for alias in spec.all_aliases if spec else ():
            self._aliases.pop(alias, None)
        self._origins.pop(name, None)

    def canonical(self, name: str) -> str:
        """The registered name behind ``name`` (itself, or the spec it is an alias of)."""
        self._ensure_loaded()
        return self._aliases.get(name, name)

    def suggestions(self, name: str, n: int = 3) -> list[str]:
        """Names and aliases a mistyped ``name`` may have meant: prefixes first, then close ones."""
        known = [*self._aliases, *self._specs]  # registration order: plugins list the usual size first
        prefix = [k for k in known if k.startswith(name)]
        prefix.sort(key=lambda k: (k not in self._aliases, len(k) - len(name)))
        close = difflib.get_close_matches(name, known, n=n, cutoff=0.5)
        return list(dict.fromkeys([*prefix, *close]))[:n]

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
        factory_name = FACTORY_NAME.fullmatch(name)
        if factory_name and factory_name.group(1) in self._factories:
            return self._factories[factory_name.group(1)](factory_name.group(2), input_size)
        spec = self._specs.get(self._aliases.get(name, name))
        if spec is None:
            close = self.suggestions(name)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise HarnessError(f"unknown backbone {name!r}{hint} (`harness backbones` lists them)")
        if input_size is not None and input_size != spec.input_size:
            raise HarnessError(
                f"{name} has a fixed input size of {spec.input_size}; --input-size is for hub: backbones"
            )
        return spec

    def targets(
        self, patterns: Iterable[str], *, input_size: int | None = None
    ) -> list[tuple[BackboneSpec, tuple[str, ...]]]:
        """Names and fnmatch wildcards (``mobilenet_v1_*``) resolved in the order given, each
        spec once, with the TFLite exports its alias adds (see ``alias_exports``).

        Raises:
            HarnessError: an unknown name or a wildcard matching nothing.
        """
        found: dict[str, tuple[BackboneSpec, tuple[str, ...]]] = {}
        for pattern in patterns:
            pattern = pattern.strip()
            if not pattern:
                continue
            if any(ch in pattern for ch in "*?[") and not FACTORY_NAME.fullmatch(pattern):
                hits = [(self._specs[n], ()) for n in self.names() if fnmatch.fnmatchcase(n, pattern)]
                if not hits:
                    raise HarnessError(f"no backbone matches {pattern!r}")
            else:
                spec = self.get(pattern, input_size=input_size)
                hits = [(spec, spec.exports_of(pattern))]
            for spec, exports in hits:
                before = found.get(spec.name, (spec, ()))[1]
                found[spec.name] = (spec, tuple(dict.fromkeys([*before, *exports])))
        return list(found.values())

    def match(self, patterns: Iterable[str], *, input_size: int | None = None) -> list[BackboneSpec]:
        """Resolve names and fnmatch wildcards (``mobilenet_v1_*``), in the order given."""
        return [spec for spec, _ in self.targets(patterns, input_size=input_size)]


registry = Registry()


def get_backbone(name: str, *, input_size: int | None = None) -> BackboneSpec:
    """Return the registered spec called ``name`` (see :meth:`Registry.get`)."""
    return registry.get(name, input_size=input_size)


def list_backbones(pattern: str = "*") -> list[BackboneSpec]:
    """All registered specs whose name matches the fnmatch ``pattern``, naturally sorted."""
    return [s for s in registry.specs() if fnmatch.fnmatchcase(s.name, pattern)]
