"""Hostile input that must not reach the file system or the unpickler."""

from pathlib import Path

import numpy as np
import pytest

from harness.pipeline.cacheroot import CacheRoot
from harness.registry import BackboneSpec


def test_backbone_names_cannot_escape_output_folders():
    for bad in ["../evil", "a/b", "..", ".hidden", "x/../../y"]:
        with pytest.raises(ValueError):
            BackboneSpec(name=bad, family="x", builder=lambda s, w: None, input_size=8, feature_size=1)
    from backbones.hub import hub_spec

    spec = hub_spec(str(Path(__file__).parent), 32)
    assert "/" not in spec.safe_name() and spec.safe_name().startswith("hub_")


def test_nothing_is_unpickled_from_the_cache(tmp_path):
    cache = CacheRoot(tmp_path).bottleneck_cache("bb", "id", 2)
    shard = cache.write(["a" * 40], np.ones((1, 2), np.float32))
    # A shard whose features are a pickled object array, under a valid checksum name.
    import hashlib
    import io

    buffer = io.BytesIO()
    np.save(buffer, np.array([b"b" * 40], dtype="S40"))
    np.save(buffer, np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    data = buffer.getvalue()
    evil = shard.with_name(f"evil-{hashlib.sha256(data).hexdigest()[:16]}.shard")
    evil.write_bytes(data)
    loaded = cache.load()
    assert evil.name in loaded.corrupt_shards and set(loaded.features) == {"a" * 40}
