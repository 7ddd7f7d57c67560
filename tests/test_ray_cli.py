"""`harness train --ray` on a local Ray it starts itself, killed and resumed (a subprocess)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="the ray extra is not installed")
pytest.importorskip("ray.data")

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def _harness(*args, env, **kwargs):
    return subprocess.Popen(
        [sys.executable, "-m", "harness", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=ROOT,
        start_new_session=True,  # its Ray processes go with it
        **kwargs,
    )


def test_cli_on_a_local_ray_then_a_killed_driver_then_local_completes(small_flowers, keras_home, tmp_path):
    """`harness train --ray` on a Ray it starts itself; a driver killed mid-extraction leaves
    a cache the next run completes; a local run after that is warm."""
    if ray.is_initialized():
        ray.shutdown()
    env = dict(os.environ, KERAS_HOME=str(keras_home), HARNESS_CACHE_SHARD_SIZE="4", RAY_ADDRESS="")
    common = ["train", "--image-dir", str(small_flowers), "--backbone", "mobilenet_v1_025"]
    common += ["--cache-dir", str(tmp_path / "cache"), "--steps", "50", "--extract-batch-size", "2"]
    cache = tmp_path / "cache"
    first = _harness(*common, "--ray", "--output-dir", str(tmp_path / "m1"), env=env)
    deadline = time.time() + 240
    while time.time() < deadline and first.poll() is None:
        if len(list(cache.glob("bottlenecks/*/*/*.shard"))) >= 2:
            break
        time.sleep(0.2)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    second = _harness(*common, "--ray", "--output-dir", str(tmp_path / "m2"), env=env)
    out, _ = second.communicate(timeout=300)
    assert second.returncode == 0, out
    assert "computed on Ray (local)" in out
    done = [line for line in out.splitlines() if "bottlenecks on litert:" in line]
    assert done and " 0 from cache" not in done[0], out  # the killed run's shards were kept
    third = _harness(*common, "--output-dir", str(tmp_path / "m3"), env=env)
    out, _ = third.communicate(timeout=300)
    assert third.returncode == 0, out
    assert "36 from cache, 0 computed" in out, out
