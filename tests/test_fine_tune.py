"""--fine-tune: the top of the backbone trained after the head, measured beside head-only."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from harness.cli import cli
from harness.errors import HarnessError


def _retrained(spec, photos, tmp_path, seed=0):
    from harness.pipeline.dataset import prepare_dataset
    from harness.plan import PipelineOptions, TrainConfig
    from harness.workflow import retrain_final_layer

    dataset = prepare_dataset(photos, 20, 20)
    options = PipelineOptions(
        # The tiny random network's features are small: a large rate makes the head learn.
        cache_dir=str(tmp_path / "cache"),
        train=TrainConfig(steps=200, learning_rate=2.0, seed=seed),
        runtime="tf",
    )
    return dataset, options, retrain_final_layer(spec, dataset, options, None)


def _fine_tuned(spec, photos, tmp_path, seed=0, augmentation=None, **config):
    from dataclasses import replace

    from harness.plan import FineTuneConfig
    from harness.workflow.fine_tune import fine_tune_retrained

    dataset, options, head_only = _retrained(spec, photos, tmp_path, seed)
    config = {"layers": 1, "epochs": 3, "learning_rate": 0.05, "patience": 5, **config}
    options = replace(options, fine_tune=FineTuneConfig(**config))
    if augmentation is not None:
        options = replace(options, augmentation=augmentation)
    return head_only, fine_tune_retrained(head_only, dataset, options, None)


def test_top_layers_counts_layers_with_weights_and_keeps_their_batch_norms():
    import keras

    from harness.pipeline.tune_backbone import top_layers

    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, name="c1")(inputs)
    x = keras.layers.BatchNormalization(name="c1_bn")(x)
    x = keras.layers.ReLU(name="relu")(x)
    x = keras.layers.Conv2D(4, 3, name="c2")(x)
    x = keras.layers.BatchNormalization(name="c2_bn")(x)
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D(name="pool")(x))
    assert [layer.name for layer in top_layers(model, 1)] == ["c2_bn", "c2"]
    assert [layer.name for layer in top_layers(model, 2)] == ["c2_bn", "c2", "c1_bn", "c1"]
    assert [layer.name for layer in top_layers(model, None)] == ["c2_bn", "c2", "c1_bn", "c1"]
    assert len(top_layers(model, 50)) == 4


def test_a_model_without_keras_layers_cannot_be_fine_tuned():
    import tensorflow as tf

    from harness.pipeline.tune_backbone import top_layers

    with pytest.raises(HarnessError, match="no Keras layers"):
        top_layers(tf.Module(), 3)


def test_same_seed_same_fine_tuned_model_other_seed_differs(tiny_backbone, small_flowers, tmp_path):
    runs = [
        _fine_tuned(
            tiny_backbone, small_flowers, tmp_path / str(i), seed=seed, learning_rate=1.0, patience=5
        )[1]
        for i, seed in enumerate([3, 3, 4])
    ]
    first, again, other = runs

    def losses(run):
        return [h["train_loss"] for h in run.fine_tuned.history[1:]]

    def top(run):
        return run.backbone.model.layers[2].get_weights()[0]

    assert len(losses(first)) == 3 and first.fine_tuned.best_epoch >= 1  # it learned
    assert losses(first) == pytest.approx(losses(again), rel=1e-5)
    np.testing.assert_allclose(top(first), top(again), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(first.head.weights, again.head.weights, rtol=1e-5, atol=1e-6)
    assert first.evaluation.predictions == again.evaluation.predictions
    assert losses(first) != pytest.approx(losses(other), rel=1e-3)


def _validation_accuracy(dataset, result, head):
    from harness.pipeline.extract import extract_features

    val = result.images["validation"]
    features = extract_features(result.backbone, val, None).matrix(val)
    labels = [dataset.classes.index(img.label) for img in val]
    return float(np.mean(np.argmax(head.probabilities(features), 1) == labels))


def test_fine_tuning_changes_only_the_top_layers_and_keeps_the_best_epoch(
    tiny_backbone, small_flowers, tmp_path
):
    from harness.pipeline.backbone import load_backbone
    from harness.pipeline.dataset import prepare_dataset

    fresh = load_backbone(tiny_backbone, "random").model  # the builder is seeded: same start
    head_only, tuned = _fine_tuned(tiny_backbone, small_flowers, tmp_path)
    model = tuned.backbone.model
    bottom, top = model.layers[1], model.layers[2]
    assert tuned.fine_tuned.layers == [top.name]
    np.testing.assert_array_equal(bottom.get_weights()[0], fresh.layers[1].get_weights()[0])
    assert not np.array_equal(top.get_weights()[0], fresh.layers[2].get_weights()[0])
    # At this rate epoch 1 is the best and later epochs diverge: epoch 1's weights are kept.
    scores = [h["validation_accuracy"] for h in tuned.fine_tuned.history]
    assert tuned.fine_tuned.best_epoch == 1 and scores[-1] < scores[1]
    dataset = prepare_dataset(small_flowers, 20, 20)
    assert _validation_accuracy(dataset, tuned, tuned.head) == pytest.approx(scores[1])


def test_ctrl_c_keeps_the_best_weights_so_far_and_says_so(tiny_backbone, small_flowers, tmp_path):
    from harness.pipeline.tune_backbone import fine_tune
    from harness.plan import FineTuneConfig

    dataset, options, head_only = _retrained(tiny_backbone, small_flowers, tmp_path)
    index = {c: i for i, c in enumerate(dataset.classes)}

    def split(name):
        imgs = head_only.images[name]
        return [i.file for i in imgs], np.array([index[i.label] for i in imgs])

    epochs_seen = []

    def progress(phase, done, total):
        epochs_seen.append(phase)
        if phase.startswith("fine-tune epoch 3") and done >= total // 2:
            raise KeyboardInterrupt

    lines = []
    tuned = fine_tune(
        head_only.backbone,
        head_only.head,
        split("training"),
        split("validation"),
        FineTuneConfig(layers=1, epochs=5, learning_rate=0.05, patience=5, batch_size=4),
        log=lines.append,
        progress=progress,
    )
    assert tuned.stopped == "interrupted"
    assert [h["epoch"] for h in tuned.history] == [0, 1, 2]  # epoch 3 never finished
    assert any(line.startswith("interrupted: keeping the best weights so far") for line in lines)
    # What is kept scores what the history says the kept epoch scored.
    kept = _validation_accuracy(dataset, head_only, tuned.head)  # the model was trained in place
    assert kept == pytest.approx(tuned.history[tuned.best_epoch]["validation_accuracy"])


def test_run_with_fine_tune_reports_head_only_and_fine_tuned_rows(tiny_backbone, small_flowers, tmp_path):
    result = CliRunner().invoke(
        cli,
        [
            "run",
            "--image-dir",
            str(small_flowers),
            "--backbones",
            tiny_backbone.name,
            "--fine-tune",
            "--fine-tune-epochs",
            "2",
            "--steps",
            "100",
            "--timing-images",
            "8",
            "--timing-repeats",
            "1",
            "--latency-runs",
            "2",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--results-dir",
            str(tmp_path / "results"),
            "--models-dir",
            str(tmp_path / "models"),
            "--targets",
            "litert",
            "--target-runs",
            "4",
            "--target-processes",
            "1",
        ],
    )
    assert result.exit_code == 0, result.output
    (run_file,) = (tmp_path / "results" / "runs").glob("*.json")
    record = json.loads(run_file.read_text())
    head, tuned = record["rows"]
    # Both files measured on the target, each its own row.
    deployed = {r["backbone"]: r for r in record["deployments"]}
    assert set(deployed) == {"tiny_test", "tiny_test+ft10"}
    assert all(r["error"] is None and r["latency_ms_p50"] > 0 for r in deployed.values())
    assert "litert@" in next(iter(record["details"]["tiny_test+ft10"]["targets"]))
    assert (head["backbone"], tuned["backbone"]) == ("tiny_test", "tiny_test+ft10")
    assert (head["trained"], tuned["trained"]) == ("head", "head + top 2")  # the tiny model has 2
    assert tuned["error"] is None and tuned["fine_tune_epochs"] >= 1
    assert tuned["bottleneck_img_per_s"] == head["bottleneck_img_per_s"]  # the same network
    assert tuned["latency_ms_p50"] > 0 and tuned["head_only_latency_ms_p50"] == head["latency_ms_p50"]
    assert tuned["head_only_test_accuracy"] == head["test_accuracy"]
    assert tuned["fine_tune_gain"] == pytest.approx(tuned["test_accuracy"] - head["test_accuracy"])
    assert 0 < tuned["head_only_p_value"] <= 1
    changed = tuned["head_only_only_right"] + tuned["fine_tuned_only_right"]
    assert changed == sum(
        a != b
        for a, b in zip(
            record["details"]["tiny_test"]["test_outcomes"]["correct"],
            record["details"]["tiny_test+ft10"]["test_outcomes"]["correct"],
        )
    )
    assert record["config"]["fine_tune"]["layers"] == 10
    assert (tmp_path / "models" / "tiny_test+ft10" / "saved_model.pb").is_file()
    assert (tmp_path / "models" / "tiny_test" / "saved_model.pb").is_file()
    report = (tmp_path / "results" / record["run_id"] / "report.md").read_text()
    assert "## Fine-tuning against head-only" in report and "tiny_test+ft10" in report


@pytest.mark.parametrize("value", ["0", "some"])
def test_fine_tune_rejects_a_bad_layer_count(value, small_flowers):
    result = CliRunner().invoke(cli, ["run", "--image-dir", str(small_flowers), "--fine-tune", value])
    assert result.exit_code == 2
    assert "give a number of layers (1 or more) or 'all'" in result.output


def test_train_with_fine_tune_exports_both_models_and_compares_them(train_tiny, small_flowers, tmp_path):
    out = tmp_path / "model"
    result = train_tiny(small_flowers, out, "--steps", "100", "--fine-tune", "1", "--fine-tune-epochs", "1")
    assert result.exit_code == 0, result.output
    assert (out / "saved_model.pb").is_file() and (tmp_path / "model+ft1" / "saved_model.pb").is_file()
    meta = json.loads((tmp_path / "model+ft1" / "harness.json").read_text())
    assert meta["fine_tune"]["layers"] == 1 and meta["fine_tune"]["layers_trained"]
    assert "fine-tuned model (" in result.output and "McNemar p = " in result.output


def test_fine_tuning_distorts_training_images_with_the_runs_flags(tiny_backbone, small_flowers, tmp_path):
    from harness.plan import Augmentation

    plain = _fine_tuned(tiny_backbone, small_flowers, tmp_path / "plain")[1]
    distorted = _fine_tuned(
        tiny_backbone,
        small_flowers,
        tmp_path / "distorted",
        augmentation=Augmentation(True, 10.0, 10.0, 10.0),
    )[1]
    losses = [[h["train_loss"] for h in run.fine_tuned.history[1:]] for run in (plain, distorted)]
    assert len(losses[1]) == 3 and losses[0] != pytest.approx(losses[1], rel=1e-3)
