import numpy as np

from harness.pipeline.cache import COMPACT_AT
from harness.pipeline.cacheroot import CacheRoot


def _keys(n, start=0):
    # Every 16th key ends in a zero byte: an "S" field of raw digests would lose it.
    return [f"{i + start:038x}" + ("00" if i % 16 == 0 else "ab") for i in range(n)]


def test_roundtrip_and_subset(tmp_path):
    cache = CacheRoot(tmp_path).bottleneck_cache("bb", "id1", 4)
    keys = _keys(40)
    feats = np.random.default_rng(0).normal(size=(40, 4)).astype(np.float32)
    cache.write(keys, feats)
    loaded = cache.load()
    assert set(loaded.features) == set(keys)
    np.testing.assert_array_equal(loaded.features[keys[16]], feats[16])
    assert set(cache.load(set(keys[:3])).features) == set(keys[:3])
    assert not list(cache.directory.glob(".*.tmp")), "temporary files left behind"


def test_identities_do_not_share_entries(tmp_path):
    CacheRoot(tmp_path).bottleneck_cache("bb", "imagenet", 4).write(_keys(2), np.ones((2, 4), np.float32))
    assert CacheRoot(tmp_path).bottleneck_cache("bb", "random", 4).load().features == {}


def test_corrupt_shard_is_detected_and_set_aside(tmp_path):
    cache = CacheRoot(tmp_path).bottleneck_cache("bb", "id", 4)
    good = cache.write(_keys(3), np.ones((3, 4), np.float32))
    bad = cache.write(_keys(3, start=100), np.ones((3, 4), np.float32))
    data = bytearray(bad.read_bytes())
    data[-5] ^= 0xFF  # flip a bit in the features: the header still parses
    bad.write_bytes(bytes(data))
    loaded = cache.load()
    assert loaded.corrupt_shards == [bad.name]
    assert set(loaded.features) == set(_keys(3))
    assert good.exists() and not bad.exists() and bad.with_name(bad.name + ".corrupt").exists()
    truncated = cache.write(_keys(2, start=200), np.ones((2, 4), np.float32))
    truncated.write_bytes(truncated.read_bytes()[:40])
    assert cache.load().corrupt_shards == [truncated.name]


def test_compaction_merges_shards_without_losing_entries(tmp_path):
    cache = CacheRoot(tmp_path).bottleneck_cache("bb", "id", 2)
    for i in range(COMPACT_AT):
        cache.write(_keys(2, start=10 * i), np.full((2, 2), i, np.float32))
    cache.compact()
    assert len(list(cache.directory.glob("*.shard"))) == 1
    loaded = cache.load()
    assert len(loaded.features) == 2 * COMPACT_AT
    np.testing.assert_array_equal(loaded.features[_keys(2, start=50)[1]], [5, 5])


def test_open_features_memory_maps_rows_in_the_order_asked(tmp_path):
    cache = CacheRoot(tmp_path).bottleneck_cache("bb", "id", 3)
    rng = np.random.default_rng(1)
    first, second = _keys(5), _keys(4, start=50)
    a, b = rng.random((5, 3), dtype=np.float32), rng.random((4, 3), dtype=np.float32)
    cache.write(first, a)
    cache.write(second, b)
    wanted = [second[2], first[0], first[4], second[0]]
    features = cache.open_features(wanted)
    assert len(features) == 4 and features.shape == (4, 3)
    np.testing.assert_array_equal(features[np.array([0, 1, 2, 3])], np.stack([b[2], a[0], a[4], b[0]]))
    np.testing.assert_array_equal(features[np.array([3, 3])], np.stack([b[0], b[0]]))
    import pytest

    with pytest.raises(KeyError, match="1 keys are not cached"):
        cache.open_features([first[0], "f" * 40])
