"""The shared pipeline on real photos with the tiny random backbone (fast)."""

import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from harness.cli import cli
from harness.pipeline.dataset import prepare_dataset
from harness.plan import PipelineOptions, TrainConfig
from harness.workflow import retrain_final_layer

FAST = TrainConfig(steps=50, batch_size=16, eval_interval=25)


def _options(cache_dir, **kw):
    return PipelineOptions(cache_dir=str(cache_dir), train=FAST, **kw)


def test_cache_hits_misses_and_changed_content(tiny_backbone, small_flowers, tmp_path):
    photos = tmp_path / "photos"
    shutil.copytree(small_flowers, photos)
    cache = tmp_path / "cache"
    first = retrain_final_layer(tiny_backbone, prepare_dataset(photos), _options(cache), None)
    n = len(first.extraction.features)
    assert first.extraction.computed == n and first.extraction.cached == 0
    second = retrain_final_layer(tiny_backbone, prepare_dataset(photos), _options(cache), None)
    assert second.extraction.computed == 0 and second.extraction.cached == n
    # Same cached features give the same trained layer and accuracy.
    np.testing.assert_array_equal(first.head.weights, second.head.weights)
    assert first.evaluation.accuracy == second.evaluation.accuracy
    # Same name, new content: recomputed; a new file: computed; a deleted one: gone.
    changed = sorted((photos / "roses").iterdir())[0]
    Image.new("RGB", (50, 40), (200, 10, 10)).save(changed, format="JPEG")
    Image.new("RGB", (50, 40), (10, 200, 10)).save(photos / "daisy" / "extra.png")
    deleted = sorted((photos / "sunflowers").iterdir())[0]
    deleted.unlink()
    third = retrain_final_layer(tiny_backbone, prepare_dataset(photos), _options(cache), None)
    assert third.extraction.computed == 2
    assert third.extraction.cached == n - 2
    assert sum(third.splits_used.values()) == n


def test_undecodable_image_is_skipped_and_reported(tiny_backbone, small_flowers, tmp_path):
    photos = tmp_path / "photos"
    shutil.copytree(small_flowers, photos)
    good = sorted((photos / "daisy").iterdir())[0].read_bytes()
    (photos / "daisy" / "truncated.jpg").write_bytes(good[: len(good) // 3])
    result = retrain_final_layer(tiny_backbone, prepare_dataset(photos), _options(tmp_path / "c"), None)
    assert [p for p, _ in result.failed_images] == ["daisy/truncated.jpg"]
    assert result.failed_images[0][1].startswith("cannot decode")
    assert sum(result.splits_used.values()) == 36


def test_cli_train_logs_exports_and_label_agrees(train_tiny, tiny_backbone, small_flowers, tmp_path):
    out = tmp_path / "model"
    runner = CliRunner()
    result = train_tiny(
        small_flowers,
        out,
        *[
            "--steps",
            "60",
            "--eval-interval",
            "20",
            "--batch-size",
            "16",
            "--print-misclassified",
            "--testing-percentage",
            "30",
        ],
    )
    assert result.exit_code == 0, result.output
    for step in (1, 20, 40, 60):
        assert f"step {step:5d}: train accuracy" in result.output
    assert "validation accuracy" in result.output and "final test accuracy" in result.output
    assert "confusion matrix" in result.output
    assert (out / "labels.txt").read_text().splitlines() == ["daisy", "roses", "sunflowers"]
    meta = json.loads((out / "harness.json").read_text())
    assert meta["backbone"] == "tiny_test" and meta["split_sizes"]["testing"] > 0
    assert "tensorflow" in meta["versions"]

    # label on the exported model gives the evaluation's top-1 for every test image.
    from harness.deploy.label import classify_files, load_classifier
    from harness.pipeline.dataset import prepare_dataset as prep

    dataset = prep(small_flowers, 10, 30)
    options = PipelineOptions(
        cache_dir=str(tmp_path / "cache"), train=TrainConfig(steps=60, batch_size=16, eval_interval=20)
    )
    again = retrain_final_layer(tiny_backbone, dataset, options, None)
    test_files = [img.path for img in dataset.splits["testing"]]
    rows, skipped = classify_files(load_classifier(out), test_files, top_k=3)
    assert not skipped and len(rows) == len(test_files)
    expected = [dataset.classes[p] for p in again.evaluation.predictions]
    assert [r["top"][0]["label"] for r in rows] == expected

    labelled = runner.invoke(cli, ["label", "--model", str(out), "--json", str(test_files[0])])
    assert labelled.exit_code == 0, labelled.output
    row = json.loads(labelled.output.strip().splitlines()[-1])
    assert row["top"][0]["label"] == expected[0] and len(row["top"]) == 3


def test_augmentation_bypasses_the_cache_and_says_so(train_tiny, small_flowers, tmp_path, monkeypatch):
    import harness.pipeline.train

    def no_cache(*args, **kwargs):
        raise AssertionError("distorted training must not sample cached bottlenecks")

    monkeypatch.setattr(harness.pipeline.train, "cached_sampler", no_cache)
    result = train_tiny(
        small_flowers,
        tmp_path / "m",
        *[
            "--steps",
            "4",
            "--eval-interval",
            "2",
            "--batch-size",
            "4",
            "--flip-left-right",
            "--random-crop",
            "10",
            "--random-scale",
            "10",
            "--random-brightness",
            "10",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "training images bypass the bottleneck cache" in result.output


def test_distorted_training_inputs_differ_between_steps(tiny_backbone, small_flowers):
    from harness.pipeline.augment import distorted_sampler
    from harness.pipeline.backbone import load_backbone
    from harness.pipeline.images import scan_images
    from harness.plan import Augmentation

    backbone = load_backbone(tiny_backbone, "random")
    one = scan_images(small_flowers).images[:1]  # one image: every draw is the same file
    labels = np.zeros(1, np.int64)
    rng = np.random.default_rng(0)
    plain = distorted_sampler(backbone, one, labels, Augmentation())
    a, b = plain(rng, 2)[0], plain(rng, 2)[0]
    np.testing.assert_allclose(a, b, rtol=1e-5)  # no distortion: the same features every step
    for augmentation in (
        Augmentation(flip_left_right=True),
        Augmentation(random_crop=20),
        Augmentation(random_scale=20),
        Augmentation(random_brightness=20),
    ):
        sample = distorted_sampler(backbone, one, labels, augmentation)
        steps = [sample(rng, 4)[0] for _ in range(3)]
        batch = np.concatenate(steps)
        distinct = {tuple(np.round(row, 4)) for row in batch}
        assert len(distinct) > 1, augmentation  # the inputs really changed between draws


def test_hub_saved_model_backbone(small_flowers, tmp_path):
    import tensorflow as tf

    class Features(tf.Module):
        def __init__(self):
            super().__init__()
            self.kernel = tf.Variable(tf.random.stateless_normal([3, 3, 3, 6], seed=[1, 2]))

        @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
        def __call__(self, images):
            x = tf.nn.relu(tf.nn.conv2d(images, self.kernel, 2, "SAME"))
            return tf.reduce_mean(x, axis=[1, 2])

    saved = tmp_path / "feature_vector"
    tf.saved_model.save(Features(), str(saved))
    result = CliRunner().invoke(
        cli,
        [
            "train",
            "--image-dir",
            str(small_flowers),
            "--backbone",
            f"hub:{saved}",
            "--input-size",
            "64",
            "--output-dir",
            str(tmp_path / "m"),
            "--cache-dir",
            str(tmp_path / "cache"),
            "--steps",
            "20",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "162 parameters, 6 features" in result.output
    assert json.loads((tmp_path / "m" / "harness.json").read_text())["input_size"] == 64


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--image-dir", "/nonexistent/photos"], "image directory not found"),
        (["train", "--image-dir", ".", "--backbone", "mobilenet_v9"], "unknown backbone"),
        (["label", "--model", "/nonexistent", "x.jpg"], "no exported model"),
    ],
)
def test_errors_are_one_line(args, message):
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines == [lines[0]] and message in lines[0] and "Traceback" not in result.output


def test_label_refuses_a_labels_file_that_does_not_match_the_model(train_tiny, small_flowers, tmp_path):
    out = tmp_path / "m"
    assert train_tiny(small_flowers, out, "--steps", "10").exit_code == 0
    (out / "labels.txt").write_text("daisy\nroses\nsun\nflowers\n")  # 4 lines, 3 outputs
    image = str(next(small_flowers.glob("*/*")))
    result = CliRunner().invoke(cli, ["label", "--model", str(out), image])
    # harness recorded what it wrote: a changed file is named before anything is loaded
    assert result.exit_code == 1 and "labels.txt is damaged (not the file harness wrote)" in result.output
    (out / ".harness-model").unlink()  # a folder without that record: the count still guards
    result = CliRunner().invoke(cli, ["label", "--model", str(out), image])
    assert result.exit_code == 1 and "has 4 lines but the model has 3 outputs" in result.output


def test_encoded_feed_matches_local_extraction_call_after_call(tiny_backbone, small_flowers):
    """Ray's extractors keep one decoding pipeline for all their calls (EncodedFeed):
    each call gets exactly its own images' features, as a local run computes them, even
    after a call that was abandoned halfway or had an undecodable image."""
    from harness.pipeline.backbone import load_backbone
    from harness.pipeline.extract import EncodedFeed, local_stream

    backbone = load_backbone(tiny_backbone, "random")
    files = sorted(str(p) for p in small_flowers.rglob("*.jpg"))[:23]
    expected = np.zeros((len(files), backbone.feature_size), np.float32)
    for index, feats in local_stream(backbone, 4)(files):
        expected[index] = feats
    data = [open(f, "rb").read() for f in files]  # noqa: SIM115
    feed = EncodedFeed(backbone, 4)

    def call(encoded):
        out = {}
        for index, feats in feed(encoded):
            out.update(zip(index.tolist(), feats))
        return out

    first = call(data[:10])  # 10: the call's last batch is shared with its end markers
    assert sorted(first) == list(range(10))
    np.testing.assert_allclose(np.stack([first[i] for i in range(10)]), expected[:10], rtol=1e-6)
    abandoned = feed(data[10:20])
    next(abandoned)  # a call given up after its first batch (its rows must not leak)
    broken = [data[20], data[0][: len(data[0]) // 3], data[21], data[22]]
    third = call(broken)
    assert sorted(third) == [0, 2, 3]  # the truncated JPEG is dropped, as locally
    np.testing.assert_allclose(np.stack([third[i] for i in (0, 2, 3)]), expected[[20, 21, 22]], rtol=1e-6)
    again = call(data[:8])
    np.testing.assert_allclose(np.stack([again[i] for i in range(8)]), expected[:8], rtol=1e-6)
