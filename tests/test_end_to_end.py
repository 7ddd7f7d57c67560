"""The installed `harness` command on real photos with real ImageNet weights."""

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def _harness(*args, env=None, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=900,
    )


def test_train_with_real_mobilenet_then_warm_cache(medium_flowers, keras_home, tmp_path):
    env = dict(os.environ, KERAS_HOME=str(keras_home))
    common = [
        "train",
        "--image-dir",
        str(medium_flowers),
        "--backbone",
        "mobilenet_v1_025",
        "--cache-dir",
        str(tmp_path / "cache"),
        "--steps",
        "1000",
        "--eval-interval",
        "500",
    ]
    first = _harness(*common, "--output-dir", str(tmp_path / "m1"), env=env)
    assert first.returncode == 0, first.stderr
    assert "200 images in 5 classes" in first.stdout
    assert "0 from cache, 200 computed" in first.stdout
    meta = json.loads((tmp_path / "m1" / "harness.json").read_text())
    assert meta["weights"] == "imagenet" and meta["weights_source"] == "keras-cache"
    # 5 balanced classes: chance is 20%; real ImageNet features do far better.
    assert meta["test_accuracy"] >= 0.6, first.stdout
    second = _harness(*common, "--output-dir", str(tmp_path / "m2"), env=env)
    assert second.returncode == 0, second.stderr
    assert "200 from cache, 0 computed" in second.stdout
    assert (
        json.loads((tmp_path / "m2" / "harness.json").read_text())["test_accuracy"] == meta["test_accuracy"]
    )


def test_missing_weights_offline_names_the_file(medium_flowers, tmp_path):
    empty_home = tmp_path / "keras_home"
    env = dict(os.environ, KERAS_HOME=str(empty_home), HARNESS_WEIGHTS_DIR="")
    result = _harness(
        "train",
        "--image-dir",
        str(medium_flowers),
        "--backbone",
        "mobilenet_v2_035",
        "--cache-dir",
        str(tmp_path / "cache"),
        env=env,
    )
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1, result.stderr
    assert "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5" in lines[0]
    assert f"{empty_home}/models/" in lines[0]
    assert "Traceback" not in result.stderr
