"""kill -9 at any moment and concurrent runs: the cache stays whole and shared."""

import os
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from harness.pipeline.cacheroot import CacheRoot
from harness.results.store import find_runs, load_run

CHILD = Path(__file__).with_name("robustness_child.py")


@pytest.fixture(scope="module")
def kill_photos(flowers, tmp_path_factory, copy_subset):
    return copy_subset(flowers, tmp_path_factory.mktemp("kill") / "photos", 16, ["daisy", "roses", "tulips"])


def _child(photos, cache, out, **popen):
    env = dict(os.environ, HARNESS_CACHE_SHARD_SIZE="8", TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.Popen(
        [sys.executable, str(CHILD), str(photos), str(cache), str(out)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        **popen,
    )


def _features(npz):
    data = np.load(npz, allow_pickle=False)
    return dict(zip(data["keys"], data["features"]))


@pytest.fixture(scope="module")
def reference(kill_photos, tmp_path_factory):
    """Features from one uninterrupted run into an empty cache."""
    tmp = tmp_path_factory.mktemp("reference")
    child = _child(kill_photos, tmp / "cache", tmp / "ref.npz")
    assert child.wait(timeout=300) == 0
    return _features(tmp / "ref.npz")


@pytest.mark.slow
def test_kill_9_during_extraction_never_corrupts_the_cache(kill_photos, reference, tmp_path):
    rng = random.Random(1234)
    cache = tmp_path / "cache"
    kills = 0
    for trial in range(10):
        child = _child(kill_photos, cache, tmp_path / f"t{trial}.npz")
        assert child.stdout.readline().strip() == "extracting"
        time.sleep(rng.uniform(0.0, 0.4))  # somewhere inside extraction and shard writes
        if child.poll() is None:
            child.kill()
            kills += 1
        child.wait(timeout=60)
        loaded = CacheRoot(cache).bottleneck_cache("mobilenet_v1_025", _identity(), 256).load()
        assert loaded.corrupt_shards == [], f"trial {trial}: corrupt shard after kill -9"
    assert kills >= 5, "the kill landed after the work finished too often to test anything"
    final = _child(kill_photos, cache, tmp_path / "final.npz")
    assert final.wait(timeout=300) == 0
    got = _features(tmp_path / "final.npz")
    assert not list(cache.rglob(".*.tmp")), "temporary files of killed writers were not swept"
    assert set(got) == set(reference)
    for key, vector in reference.items():
        np.testing.assert_allclose(got[key], vector, rtol=1e-4, atol=1e-5)


def _identity():
    from harness.registry import get_backbone

    return get_backbone("mobilenet_v1_025").cache_identity("random")


@pytest.mark.slow
def test_two_processes_share_one_cache(kill_photos, reference, tmp_path):
    cache = tmp_path / "cache"
    children = [_child(kill_photos, cache, tmp_path / f"p{i}.npz") for i in range(2)]
    for child in children:
        assert child.wait(timeout=300) == 0
    for i in range(2):
        got = _features(tmp_path / f"p{i}.npz")
        assert set(got) == set(reference)
        for key, vector in reference.items():
            np.testing.assert_allclose(got[key], vector, rtol=1e-4, atol=1e-5)
    loaded = CacheRoot(cache).bottleneck_cache("mobilenet_v1_025", _identity(), 256).load()
    assert loaded.corrupt_shards == [] and set(loaded.features) == set(reference)


@pytest.mark.slow
def test_two_harness_runs_at_once(kill_photos, tmp_path):
    def start(i):
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "harness",
                "run",
                "--image-dir",
                str(kill_photos),
                "--backbones",
                "mobilenet_v1_025",
                "--weights",
                "random",
                "--cache-dir",
                str(tmp_path / "cache"),
                "--results-dir",
                str(tmp_path / "runs"),
                "--models-dir",
                str(tmp_path / f"models{i}"),
                "--report-dir",
                str(tmp_path / f"report{i}"),
                "--steps",
                "50",
                "--timing-images",
                "16",
                "--timing-repeats",
                "1",
                "--latency-runs",
                "2",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=dict(os.environ, HARNESS_CACHE_SHARD_SIZE="8"),
        )

    procs = [start(0), start(1)]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    for p, out in zip(procs, outputs):
        assert p.returncode == 0, out
    runs = [load_run(p) for p in find_runs(None, tmp_path / "runs")]
    assert len(runs) == 2
    assert all(r["rows"][0]["error"] is None for r in runs)
    assert runs[0]["dataset"]["fingerprint"] == runs[1]["dataset"]["fingerprint"]
