"""retrain.py's workflow: its names, its command line, its frozen graph for label_image, TensorBoard."""

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli import cli
from harness.registry import get_backbone, registry

ROOT = Path(__file__).resolve().parent.parent

RETRAIN_FAST = ["--how_many_training_steps", "200", "--eval_step_interval", "50"]


def _load_script():
    spec = importlib.util.spec_from_file_location(
        "label_image_check", ROOT / "scripts" / "label_image_check.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


label_image = _load_script().label_image  # label_image.py's steps, as the check script runs them


def _retrain(images: Path, out: Path, tmp_path: Path, *flags: str):
    """`harness retrain` writing into ``out`` and ``tmp_path``, in-process."""
    paths = [
        "--output_graph",
        str(out / "output_graph.pb"),
        "--output_labels",
        str(out / "output_labels.txt"),
        "--bottleneck_dir",
        str(tmp_path / "bottlenecks"),
        "--summaries_dir",
        str(tmp_path / "logs"),
    ]
    return CliRunner().invoke(cli, ["retrain", "--image_dir", str(images), *paths, *flags])


def test_retrain_py_architecture_names_are_aliases():
    assert get_backbone("mobilenet").name == "mobilenet_v1_100"
    assert get_backbone("mobilenet_1.0_224").name == "mobilenet_v1_100"
    assert get_backbone("mobilenet_0.50_160").name == "mobilenet_v1_050_160"
    assert get_backbone("mobilenet_0.5_160").name == "mobilenet_v1_050_160"
    assert get_backbone("mobilenet_0.25_128_quantized").name == "mobilenet_v1_025_128"
    assert [s.name for s in registry.match(["inception_v3", "mobilenet"])] == [
        "inception_v3",
        "mobilenet_v1_100",
    ]


def test_suggestions_rank_aliases_and_prefixes_first():
    with pytest.raises(Exception, match=r"did you mean mobilenet_1\.0_224, mobilenet_1\.0_192"):
        get_backbone("mobilenet_1.0")
    with pytest.raises(Exception, match="did you mean inception_v3"):
        get_backbone("inception")


def test_backbones_lists_the_aliases():
    out = CliRunner().invoke(cli, ["backbones", "mobilenet_v1_100"]).output
    assert "mobilenet, mobilenet_1.0_224 (also _quantized)" in out


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--test_batch_size", "50"], "--test_batch_size must be -1"),
        (["--test_batch", "50"], "--test_batch_size must be -1"),
        (["--validation_batch_size", "100"], "--validation_batch_size must be -1"),
        (["--intermediate_store_frequency", "5"], "intermediate graphs"),
        (["--tfhub_module", "https://tfhub.dev/x"], "--architecture hub:HANDLE"),
    ],
)
def test_flags_harness_cannot_honour_are_errors(flags, message, tmp_path):
    result = CliRunner().invoke(cli, ["retrain", "--image_dir", str(tmp_path / "none"), *flags])
    assert result.exit_code == 1 and message in result.output, result.output


def _events(folder: Path) -> dict[str, dict[int, float]]:
    """Scalars of one TensorBoard run folder, read with TensorBoard's own event reader."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util.tensor_util import make_ndarray

    acc = EventAccumulator(str(folder))
    acc.Reload()
    return {
        tag: {e.step: float(make_ndarray(e.tensor_proto)) for e in acc.Tensors(tag)}
        for tag in acc.Tags()["tensors"]
    }


def test_retrain_writes_graph_labels_summaries_and_its_log(medium_flowers, keras_home, tmp_path):
    out = tmp_path / "out"
    flags = ["--architecture", "mobilenet_0.25_224", "--print_misclassified_test_images", *RETRAIN_FAST]
    result = _retrain(medium_flowers, out, tmp_path, *flags)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert any(line.endswith(": Step 200: Train accuracy = " + line.rsplit("= ", 1)[-1]) for line in lines)
    assert any(": Step 50: Cross entropy = " in line for line in lines)
    assert any(": Step 200: Validation accuracy = " in line and "(N=" in line for line in lines)
    final = next(line for line in lines if line.startswith("Final test accuracy = "))
    assert final.endswith(")") and "(N=" in final
    assert "=== MISCLASSIFIED TEST IMAGES ===" in result.output
    assert (out / "output_labels.txt").read_text().splitlines() == sorted(
        p.name for p in medium_flowers.iterdir()
    )
    assert (out / "output_graph.pb").stat().st_size > 100_000
    for split in ("train", "validation"):
        scalars = _events(tmp_path / "logs" / split)
        assert set(scalars) == {"accuracy", "cross_entropy"}, scalars
        assert sorted(scalars["accuracy"]) == [1, 50, 100, 150, 200]
        assert all(0 <= v <= 1 for v in scalars["accuracy"].values())
    # retrain.py's own flag styles work too; a second run hits the cache.
    again = CliRunner().invoke(
        cli,
        [
            "retrain",
            f"--image_dir={medium_flowers}",
            f"--output_graph={out / 'g2.pb'}",
            f"--output_labels={out / 'l2.txt'}",
            f"--bottleneck_dir={tmp_path / 'bottlenecks'}",
            f"--summaries={tmp_path / 'logs2'}",  # argparse took unique prefixes; scripts rely on it
            f"--intermediate_output_graphs_dir={tmp_path / 'unused'}",  # harmless at frequency 0
            "--architecture=mobilenet_0.25_224",
            *RETRAIN_FAST,
        ],
    )
    assert again.exit_code == 0 and "200 from cache, 0 computed" in again.output, again.output
    assert (tmp_path / "logs2" / "train").is_dir() and not (tmp_path / "unused").exists()


def test_train_and_run_write_tensorboard_curves_per_backbone(train_tiny, small_flowers, tmp_path):
    result = train_tiny(small_flowers, tmp_path / "m", "--steps", "40", "--eval-interval", "20",
                        "--batch-size", "8", "--summaries-dir", str(tmp_path / "tb"))  # fmt: skip
    assert result.exit_code == 0, result.output
    scalars = _events(tmp_path / "tb" / "tiny_test" / "validation")
    assert sorted(scalars["accuracy"]) == [1, 20, 40] and set(scalars) == {"accuracy", "cross_entropy"}


@pytest.mark.slow
@pytest.mark.parametrize("architecture, size", [("inception_v3", 299), ("mobilenet", 224)])
def test_label_image_on_output_graph_agrees_with_harness_label(
    architecture, size, medium_flowers, keras_home, tmp_path
):
    out = tmp_path / "out"
    result = _retrain(
        medium_flowers, out, tmp_path, "--saved_model_dir", str(out / "saved_model"), "--architecture",
        architecture, "--testing_percentage", "20", "--print_misclassified_test_images", *RETRAIN_FAST,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    from harness.deploy.label import classify_files, load_classifier
    from harness.pipeline.dataset import prepare_dataset

    tests = [img.path for img in prepare_dataset(medium_flowers, 10, 20).splits["testing"]]
    assert len(tests) >= 25
    rows, skipped = classify_files(load_classifier(out / "saved_model"), tests, 1)
    assert not skipped
    harness_top1 = [r["top"][0]["label"] for r in rows]
    graph_top1 = label_image(out / "output_graph.pb", out / "output_labels.txt", tests, size)
    assert graph_top1 == harness_top1
    # And both are the evaluation's own predictions: misclassified images are the ones printed.
    wrong = {
        str(p.relative_to(medium_flowers)) for p, label in zip(tests, harness_top1) if label != p.parent.name
    }
    listing = result.output.split("=== MISCLASSIFIED TEST IMAGES ===")[1].split("Save final result")[0]
    printed = {line.strip().rsplit("  ", 1)[0] for line in listing.strip("\n").splitlines() if line.strip()}
    assert wrong == printed


def test_a_weights_file_keras_would_delete_is_loaded_by_path_and_kept(tmp_path):
    """Inception v3's file in ../shared is not Keras' (MD5 differs): Keras, offline, deletes
    such a cached file. harness loads it by path, says so in one line, and leaves it."""
    shared = Path(__file__).resolve().parents[2] / "shared" / "keras_home" / "models"
    source = shared / "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"
    home = tmp_path / "keras_home"
    (home / "models").mkdir(parents=True)
    copy = home / "models" / source.name
    shutil.copy(source, copy)
    code = (
        "from harness.pipeline.backbone import load_backbone\n"
        "from harness.registry import get_backbone\n"
        "b = load_backbone(get_backbone('inception_v3'), 'imagenet')\n"
        "print(b.weights_source, b.feature_size)\n"
        "print(b.weights_note)\n"
    )
    env = dict(os.environ, KERAS_HOME=str(home), TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("HARNESS_WEIGHTS_DIR", None)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    source_line, note = done.stdout.strip().splitlines()[-2:]
    assert source_line == "keras-cache 2048"
    assert "differs from the file Keras publishes" in note and "leaving it in place" in note
    assert copy.is_file() and copy.stat().st_size == source.stat().st_size


def test_train_export_graphdef_matches_harness_label(train_tiny, tiny_backbone, small_flowers, tmp_path):
    out = tmp_path / "m"
    result = train_tiny(small_flowers, out, "--steps", "500", "--batch-size", "16", "--learning-rate", "20",
                        "--export", "graphdef")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"frozen graph for label_image: {out / 'output_graph.pb'}" in result.output
    assert (out / "output_labels.txt").read_text() == (out / "labels.txt").read_text()
    from harness.deploy.label import classify_files, load_classifier

    images = sorted(small_flowers.glob("*/*"))[::3]
    rows, _ = classify_files(load_classifier(out), images, 1)
    graph = label_image(out / "output_graph.pb", out / "output_labels.txt", images, tiny_backbone.input_size)
    assert graph == [r["top"][0]["label"] for r in rows]
    assert len(set(graph)) > 1  # a classifier, not a constant
