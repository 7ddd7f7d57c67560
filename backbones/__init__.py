"""Built-in backbone plugins, one module per family.

Each module exposes ``specs()`` returning its :class:`harness.registry.BackboneSpec`
list; ``pyproject.toml`` registers them in the ``harness.backbones`` entry-point group,
exactly as a third-party package would.
"""
