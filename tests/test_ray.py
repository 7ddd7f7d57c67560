"""--ray: bottlenecks computed by Ray Data, on a simulated two-node cluster and a local Ray."""

import os
import signal
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="the ray extra is not installed")
pytest.importorskip("ray.data")

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent


@pytest.fixture(scope="module")
def cluster():
    """A head and a second node on this machine (Ray's own test utility)."""
    from ray.cluster_utils import Cluster

    if ray.is_initialized():
        ray.shutdown()
    nodes = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 2, "object_store_memory": 100 * 2**20, "include_dashboard": False},
    )
    nodes.add_node(num_cpus=2, object_store_memory=100 * 2**20)
    # Workers import the tests' tiny backbone builder (conftest) as the driver does.
    ray.init(
        address=nodes.address,
        runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join([str(TESTS), str(ROOT)])}},
        log_to_driver=False,
    )
    yield nodes
    ray.shutdown()
    nodes.shutdown()


def _features(spec, photos, cache_dir, *, address=None, progress=None, batch_size=4):
    from harness.pipeline.backbone import load_backbone
    from harness.pipeline.cacheroot import CacheRoot
    from harness.pipeline.dataset import prepare_dataset
    from harness.pipeline.distributed import ray_stream
    from harness.pipeline.extract import extract_features
    from harness.pipeline.litert import with_litert

    backbone = with_litert(load_backbone(spec, "random"), "random", str(cache_dir), lambda _: None)
    cache = CacheRoot(str(cache_dir)).bottlenecks(spec, "random", backbone.feature_size, backbone.runtime)
    stream = None
    if address is not None:
        stream = ray_stream(
            address,
            spec,
            weights="random",
            weights_dir=None,
            runtime=backbone.runtime,
            cache_dir=str(cache_dir),
            batch_size=batch_size,
        )
    images = prepare_dataset(photos).images.images
    extraction = extract_features(
        backbone, images, cache, batch_size=batch_size, progress=progress, stream=stream
    )
    keys = [img.content_hash for img in images]
    return extraction, np.stack([extraction.features[k] for k in keys])


def _min_cosine(a, b):
    return float(np.min(np.sum(a * b, 1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))))


def _extractor_pids():
    """Ray worker processes running the extractor actor (Ray names them in their title)."""
    pids = set()
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and b"Extractor" in (proc / "cmdline").read_bytes():
                pids.add(int(proc.name))
        except OSError:
            continue
    return pids


def test_two_node_cluster_matches_local_and_fills_the_same_cache(
    cluster, tiny_backbone, small_flowers, tmp_path
):
    local, expected = _features(tiny_backbone, small_flowers, tmp_path / "local")
    seen = []
    remote, got = _features(
        tiny_backbone,
        small_flowers,
        tmp_path / "ray",
        address=cluster.address,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert remote.computed == local.computed == len(got) and not remote.failed
    assert _min_cosine(expected, got) >= 0.99999
    assert len(seen) > 2 and seen[-1] == (len(got), len(got))  # the bar moved with the stream
    # The cache is the one a local run writes: a local run on it computes nothing ...
    warm, _ = _features(tiny_backbone, small_flowers, tmp_path / "ray")
    assert (warm.cached, warm.computed) == (len(got), 0)
    # ... and neither does a warm rerun on Ray.
    warm_ray, _ = _features(tiny_backbone, small_flowers, tmp_path / "ray", address=cluster.address)
    assert (warm_ray.cached, warm_ray.computed) == (len(got), 0)


def test_a_killed_worker_loses_no_image(cluster, tiny_backbone, small_flowers, tmp_path):
    _, expected = _features(tiny_backbone, small_flowers, tmp_path / "local")
    killed = []

    def kill_once(done, total):
        if done and not killed:
            pids = _extractor_pids()
            assert pids, "no extractor process found"
            for pid in pids:
                os.kill(pid, signal.SIGKILL)
            killed.extend(pids)

    remote, got = _features(
        tiny_backbone,
        small_flowers,
        tmp_path / "ray",
        address=cluster.address,
        progress=kill_once,
        batch_size=2,
    )
    assert killed
    assert remote.computed == len(got) and not remote.failed
    assert _min_cosine(expected, got) >= 0.99999
    assert _extractor_pids().isdisjoint(killed)  # Ray started new ones


def test_a_path_no_worker_can_read_fails_in_one_line(cluster, tiny_backbone, tmp_path):
    from harness.errors import HarnessError
    from harness.pipeline.distributed import ray_stream

    stream = ray_stream(
        cluster.address,
        tiny_backbone,
        weights="random",
        weights_dir=None,
        runtime="tf",
        cache_dir=None,
        batch_size=2,
    )
    with pytest.raises(HarnessError, match="a Ray worker cannot read .*missing.jpg.*same path"):
        list(stream([str(tmp_path / "missing.jpg")]))


def test_a_worker_that_cannot_run_the_planned_runtime_writes_nothing(
    cluster, unconvertible_backbone, small_flowers, tmp_path
):
    """The driver planned LiteRT and keyed the cache by it; a worker that cannot convert the
    backbone fails its block loudly instead of writing TensorFlow's features under that key."""
    from harness.errors import HarnessError
    from harness.pipeline.backbone import load_backbone
    from harness.pipeline.cacheroot import CacheRoot
    from harness.pipeline.dataset import prepare_dataset
    from harness.pipeline.distributed import ray_stream
    from harness.pipeline.extract import extract_features
    from harness.plan import Runtime

    spec = unconvertible_backbone
    backbone = load_backbone(spec, "random")
    cache = CacheRoot(tmp_path / "cache").bottlenecks(spec, "random", backbone.feature_size, Runtime.LITERT)
    stream = ray_stream(
        cluster.address,
        spec,
        weights="random",
        runtime=Runtime.LITERT,
        cache_dir=str(tmp_path / "cache"),
        batch_size=2,
    )
    images = prepare_dataset(small_flowers).images.images[:6]
    with pytest.raises(HarnessError, match="cannot extract unconvertible_test on litert as planned"):
        extract_features(backbone, images, cache, batch_size=2, stream=stream)
    assert not cache.directory.exists() or not list(cache.directory.iterdir())
