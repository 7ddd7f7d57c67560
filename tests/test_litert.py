"""Issue 12: bottlenecks on LiteRT (XNNPACK) agree with TensorFlow's, are cached apart,
and a backbone that cannot run there falls back with one line."""

import numpy as np
import pytest

from harness.errors import HarnessError
from harness.pipeline import litert
from harness.pipeline.backbone import load_backbone
from harness.pipeline.cacheroot import CacheRoot
from harness.pipeline.extract import extract_features
from harness.pipeline.litert import cosines, with_litert
from harness.plan import Device, Runtime
from harness.registry import registry


def test_auto_times_the_cpu_runtimes_on_a_cpu_and_is_tensorflow_on_a_gpu():
    from harness.plan import Precision, openvino_installed

    cpu = Runtime.AUTO.candidates(Device.CPU, Precision.FP32)
    assert cpu == ((Runtime.LITERT, Runtime.OPENVINO) if openvino_installed() else (Runtime.LITERT,))
    assert Runtime.AUTO.candidates(Device.GPU, Precision.FP32) == (Runtime.TF,)
    assert Runtime.AUTO.decide(Device.GPU) is Runtime.TF
    assert Runtime.TF.decide(Device.CPU) is Runtime.TF
    with pytest.raises(HarnessError, match="runs on the CPU"):
        Runtime.LITERT.decide(Device.GPU)


@pytest.fixture(scope="module")
def real_pair(keras_home):
    """mobilenet_v1_025 with ImageNet weights on TensorFlow and on LiteRT."""
    backbone = load_backbone(registry.get("mobilenet_v1_025"), "imagenet")
    notes = []
    return backbone, with_litert(backbone, "imagenet", None, notes.append), notes


def test_features_agree_on_every_test_image_and_so_does_the_trained_layer(real_pair, small_flowers):
    from harness.pipeline.dataset import prepare_dataset
    from harness.pipeline.evaluate import evaluate
    from harness.pipeline.train import cached_sampler, train_head
    from harness.plan import TrainConfig

    tf_backbone, lite, notes = real_pair
    assert lite.runtime == "litert" and notes == []
    dataset = prepare_dataset(small_flowers, 10, 30)
    images = dataset.images.images
    ours, theirs = (extract_features(b, images, None, batch_size=8) for b in (lite, tf_backbone))
    assert ours.computed == theirs.computed == len(images)
    a, b = ours.matrix(images), theirs.matrix(images)
    assert cosines(a, b).min() >= 0.99999
    assert np.abs(a - b).max() < 1e-3 * np.abs(b).max()
    index = {c: i for i, c in enumerate(dataset.classes)}
    accuracies = []
    for ex in (ours, theirs):
        train, test = dataset.splits["training"], dataset.splits["testing"]
        y_train = np.array([index[i.label] for i in train])
        y_test = np.array([index[i.label] for i in test])
        head, _ = train_head(cached_sampler(ex.matrix(train), y_train), ex.matrix(train).shape[1], 3,
                             TrainConfig(steps=300))  # fmt: skip
        accuracies.append(evaluate(head.probabilities(ex.matrix(test)), y_test, dataset.classes).accuracy)
    assert accuracies[0] == accuracies[1]


def test_the_conversion_is_kept_and_reused_and_the_cache_is_apart(real_pair, tmp_path, monkeypatch):
    tf_backbone, _, _ = real_pair
    first = with_litert(tf_backbone, "imagenet", tmp_path, print)
    (converted,) = (tmp_path / "litert").glob("mobilenet_v1_025-*.tflite")
    monkeypatch.setattr(
        litert, "convert_features", lambda b: (_ for _ in ()).throw(AssertionError("converted"))
    )
    again = with_litert(tf_backbone, "imagenet", tmp_path, print)  # from the file: no conversion
    assert first.runtime == again.runtime == "litert" and converted.is_file()
    spec = tf_backbone.spec
    caches = {
        CacheRoot(tmp_path).bottlenecks(spec, "imagenet", 256, runtime).directory
        for runtime in ("tf", "litert")
    }
    assert len(caches) == 2


def test_a_backbone_that_does_not_convert_falls_back_with_one_line(tiny_backbone, monkeypatch):
    def broken(backbone):
        raise RuntimeError("Some ops are not supported by the native TFLite runtime\nlong trace")

    monkeypatch.setattr(litert, "convert_features", broken)
    backbone = load_backbone(tiny_backbone, "random")
    notes = []
    result = with_litert(backbone, "random", None, notes.append)
    assert result is backbone and result.runtime == "tf"
    (note,) = notes
    assert "LiteRT cannot run this backbone (Some ops are not supported" in note and "\n" not in note


def test_label_runs_the_exported_model_on_either_runtime(train_tiny, small_flowers, tmp_path):
    import json

    from click.testing import CliRunner

    from harness.cli import cli

    out = tmp_path / "m"
    result = train_tiny(small_flowers, out, "--steps", "300", "--learning-rate", "5", "--export", "tflite")
    assert result.exit_code == 0, result.output
    images = [str(p) for p in sorted(small_flowers.glob("*/*"))[::4]]

    def top1(runtime):
        done = CliRunner().invoke(
            cli, ["label", "--model", str(out), "--runtime", runtime, "--json", *images]
        )
        assert done.exit_code == 0, done.output
        return [
            json.loads(line)["top"][0]["label"] for line in done.output.splitlines() if line.startswith("{")
        ]

    on_tf, on_litert = top1("tf"), top1("litert")
    assert len(on_tf) == len(images) and on_tf == on_litert
    (out / "model.tflite").unlink()
    done = CliRunner().invoke(cli, ["label", "--model", str(out), "--runtime", "litert", *images])
    assert done.exit_code != 0 and "export the model with --export tflite" in done.output
    assert top1("auto") == on_tf  # no model.tflite: auto falls back to the SavedModel
