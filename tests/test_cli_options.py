"""Options reach the core as typed values; defaults that depend on other options are settled."""

import pytest
from click.testing import CliRunner

from harness.cli import cli
from harness.cli.options import build_pipeline_options
from harness.errors import HarnessError

DEFAULTS = dict(
    ray_address=None,
    weights="imagenet",
    weights_dir=None,
    cache_dir=None,
    no_cache=True,
    steps=10,
    learning_rate=0.01,
    batch_size=4,
    eval_interval=5,
    seed=0,
    class_weights="none",
    exports=(),
    runtime="auto",
    precision="fp32",
    summaries_dir=None,
    quantize=("none",),
    flip_left_right=False,
    random_crop=0.0,
    random_scale=0.0,
    random_brightness=0.0,
)


def test_extraction_batch_default_follows_the_device():
    assert build_pipeline_options(**DEFAULTS, device="cpu", extract_batch_size=None).extract_batch_size == 16
    gpu = build_pipeline_options(**DEFAULTS, device="gpu", extract_batch_size=None)
    assert gpu.extract_batch_size == 32 and gpu.device == "gpu"
    assert build_pipeline_options(**DEFAULTS, device="gpu", extract_batch_size=8).extract_batch_size == 8


def test_train_on_gpu_builds_gpu_options(monkeypatch, small_flowers, tmp_path):
    """`harness train --device gpu` asks for the GPU batch default (captured before any work)."""
    import harness.bench.runner  # imported now, so its own reference stays the real function
    import harness.workflow
    import harness.workflow.prepare

    seen = {}

    def capture(spec, dataset, options, *args, **kwargs):
        seen["options"] = options
        raise HarnessError("stopped by the test")

    monkeypatch.setattr(harness.workflow.prepare, "require_device", lambda device: None)
    monkeypatch.setattr(harness.workflow, "retrain_final_layer", capture)
    result = CliRunner().invoke(
        cli,
        ["train", "--image-dir", str(small_flowers), "--backbone", "mobilenet_v1_025", "--device", "gpu",
         "--output-dir", str(tmp_path / "m"), "--no-cache"],
    )  # fmt: skip
    assert result.exit_code == 1 and "stopped by the test" in result.output
    assert seen["options"].device == "gpu" and seen["options"].extract_batch_size == 32


def test_train_without_a_gpu_fails_before_reading_images(tmp_path):
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        pytest.skip("this machine has a GPU")
    result = CliRunner().invoke(
        cli,
        [
            "train",
            "--image-dir",
            str(tmp_path / "nowhere"),
            "--device",
            "gpu",
            "--backbone",
            "mobilenet_v1_025",
        ],
    )
    assert result.exit_code == 1 and "TensorFlow sees no GPU" in result.output


def test_ranges_are_checked_by_click():
    for args, word in (
        (["--steps", "0"], "--steps"),
        (["--testing-percentage", "120"], "--testing-percentage"),
        (["--learning-rate", "0"], "--learning-rate"),
        (["--extract-batch-size", "0"], "--extract-batch-size"),
    ):
        result = CliRunner().invoke(cli, ["train", "--image-dir", "x", *args])
        assert result.exit_code == 2 and word in result.output, result.output


def test_missing_weights_are_reported_before_reading_images(tmp_path, monkeypatch):
    """The folder does not exist: the error must still be the weights, found first."""
    monkeypatch.delenv("HARNESS_WEIGHTS_DIR", raising=False)  # ../shared has no MobileNet v1 0.5
    result = CliRunner().invoke(
        cli,
        ["train", "--image-dir", str(tmp_path / "nowhere"), "--backbone", "mobilenet_v1_050", "--no-cache"],
    )
    assert result.exit_code == 1
    assert "mobilenet_5_0_224_tf_no_top.h5" in result.output
    assert "nowhere" not in result.output


@pytest.mark.parametrize("command", ["run", "train", "retrain"])
def test_ray_without_ray_installed_is_one_line_saying_how(command, small_flowers, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a)
    )
    flag = "--image_dir" if command == "retrain" else "--image-dir"
    result = CliRunner().invoke(cli, [command, flag, str(small_flowers), "--ray"])
    assert result.exit_code == 2
    assert "--ray needs Ray Data: pip install 'harness[ray]'" in result.output
