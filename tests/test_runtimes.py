"""Extraction runtimes and precisions (issue 26): OpenVINO, --runtime auto, --precision bf16."""

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from harness.cli import cli
from harness.cpu import cpu_features
from harness.plan import Precision, Runtime, openvino_installed

needs_openvino = pytest.mark.skipif(not openvino_installed(), reason="OpenVINO (the deploy extra) is missing")
needs_bf16 = pytest.mark.skipif("bf16" not in cpu_features().precisions, reason="this CPU has no BF16")


def test_the_cpu_is_described_with_its_vector_isa_and_native_precisions():
    cpu = cpu_features()
    assert cpu.cores >= 1 and "fp32" in cpu.precisions
    assert cpu.isa in cpu.line() and "native fp32" in cpu.line()
    if cpu.mhz:
        assert cpu.peak_gflops("bf16") == 2 * cpu.peak_gflops("fp32")


@needs_openvino
def test_openvino_fp32_features_match_tensorflow(tiny_backbone, small_flowers, tmp_path):
    from harness.pipeline.backbone import load_backbone
    from harness.pipeline.dataset import prepare_dataset
    from harness.pipeline.extract import extract_features
    from harness.pipeline.litert import cosines
    from harness.pipeline.runtimes import on_runtime

    backbone = load_backbone(tiny_backbone, "random")
    on_ov = on_runtime(backbone, Runtime.OPENVINO, Precision.FP32, "random", tmp_path, print)
    assert on_ov.runtime is Runtime.OPENVINO and on_ov.precision is Precision.FP32
    images = prepare_dataset(small_flowers).images.images
    keys = [img.content_hash for img in images]
    tf_features = extract_features(backbone, images, None, batch_size=4).features
    ov_features = extract_features(on_ov, images, None, batch_size=4).features
    a = np.stack([tf_features[k] for k in keys])
    b = np.stack([ov_features[k] for k in keys])
    assert cosines(a, b).min() >= 0.9999


@needs_openvino
def test_runtime_auto_times_each_runtime_says_which_and_remembers(train_tiny, small_flowers, tmp_path):
    first = train_tiny(small_flowers, tmp_path / "m", "--steps", "10", "--runtime", "auto")
    assert first.exit_code == 0, first.output
    line = next(x for x in first.output.splitlines() if "runtime auto:" in x)
    assert "litert" in line and "openvino" in line and "measured now" in line
    chosen = line.split("runtime auto: ")[1].split()[0]
    assert f"bottlenecks on {chosen}" in first.output
    (probe,) = (tmp_path / "cache" / "runtime-probe").glob("*.json")
    rates = json.loads(probe.read_text())["rates"]
    assert max(rates, key=rates.get) == chosen  # the fastest measured, not a fixed preference
    again = train_tiny(small_flowers, tmp_path / "m", "--steps", "10", "--runtime", "auto")
    assert "measured before on this CPU" in again.output


def test_each_runtime_and_precision_has_its_own_cache_key(tiny_backbone):
    from harness.pipeline.cacheroot import CacheRoot
    from harness.pipeline.tfops import PIXELS

    keys = {
        CacheRoot.bottleneck_identity(tiny_backbone, "imagenet", runtime, precision)
        for runtime in (Runtime.TF, Runtime.LITERT, Runtime.OPENVINO)
        for precision in (Precision.FP32, Precision.BF16)
    }
    assert len(keys) == 6
    # TensorFlow fp32 keeps the identity it always had (existing caches stay warm)
    assert CacheRoot.bottleneck_identity(tiny_backbone, "imagenet") == tiny_backbone.cache_identity(
        "imagenet", pixels=PIXELS
    )


def test_bf16_is_refused_in_one_line_where_it_cannot_run(small_flowers, tmp_path, monkeypatch):
    import dataclasses

    import harness.cpu

    result = CliRunner().invoke(
        cli,
        ["train", "--image-dir", str(small_flowers), "--precision", "bf16", "--runtime", "litert"],
    )
    assert result.exit_code == 2 and "runs on OpenVINO" in result.output
    # A CPU without BF16 instructions (the flags are all harness reads of it):
    plain = dataclasses.replace(cpu_features(), flags=frozenset({"avx2", "fma"}), isa="AVX2")
    monkeypatch.setattr(harness.cpu, "cpu_features", lambda: plain)
    monkeypatch.setattr("harness.plan.choices.openvino_installed", lambda: True)
    result = CliRunner().invoke(cli, ["train", "--image-dir", str(small_flowers), "--precision", "bf16"])
    assert result.exit_code == 2 and "this CPU has no BF16 instructions" in result.output


@pytest.mark.slow
@needs_openvino
@needs_bf16
def test_bf16_extracts_on_openvino_and_reports_mcnemar_against_fp32(flowers, copy_subset, tmp_path):
    photos = copy_subset(flowers, tmp_path / "photos", 20, ["daisy", "roses", "tulips"])
    weights = Path(__file__).resolve().parents[2] / "shared" / "keras_home" / "models"
    result = CliRunner().invoke(
        cli,
        ["train", "--image-dir", str(photos), "--backbone", "mobilenet_v1_025", "--precision", "bf16",
         "--weights-dir", str(weights), "--cache-dir", str(tmp_path / "cache"), "--steps", "200",
         "--output-dir", str(tmp_path / "m"), "--testing-percentage", "30"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "bottlenecks on openvino (bf16)" in result.output
    line = next(x for x in result.output.splitlines() if "bf16 against fp32 features" in x)
    assert "McNemar p = " in line
    meta = json.loads((tmp_path / "m" / "harness.json").read_text())
    assert meta["bottleneck_precision"] == "bf16" and 0 <= meta["precision_check"]["p_value"] <= 1


def test_int8_extracts_on_litert_with_the_calibrated_backbone(train_tiny, small_flowers, tmp_path):
    result = train_tiny(small_flowers, tmp_path / "m", "--steps", "10", "--precision", "int8")
    assert result.exit_code == 0, result.output
    assert "bottlenecks on litert (int8)" in result.output
    assert "int8 against fp32 features" in result.output  # the layer on fp32 features, McNemar
    converted = list((tmp_path / "cache" / "litert").glob("*.tflite"))
    assert len(converted) == 2  # the int8 model is its own entry beside the float one
