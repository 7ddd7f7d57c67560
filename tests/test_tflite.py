"""TFLite export, quantization, its accuracy and latency columns, and label on .tflite."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from harness.cli import cli
from harness.results.store import find_runs, load_run


def test_train_exports_every_quantization_and_label_reads_tflite(train_tiny, small_flowers, tmp_path):
    out = tmp_path / "model"
    result = train_tiny(
        small_flowers,
        out,
        *[
            "--steps",
            "500",
            "--batch-size",
            "16",
            "--learning-rate",
            "20",  # a confident, non-constant layer: quantization damage would show
            "--testing-percentage",
            "30",
            "--export",
            "tflite",
            "--quantize",
            "none,float16,dynamic,int8",
        ],
    )
    assert result.exit_code == 0, result.output
    for name in ("model.tflite", "model_float16.tflite", "model_dynamic.tflite", "model_int8.tflite"):
        assert (out / name).stat().st_size > 0
        assert (
            f"TFLite {name.removeprefix('model_').removeprefix('model').removesuffix('.tflite') or 'none'}"
            in result.output
        )
    test_files = sorted(str(p) for p in small_flowers.glob("*/*"))[:6]

    def top1(model):
        labelled = CliRunner().invoke(cli, ["label", "--model", str(model), "--json", *test_files])
        assert labelled.exit_code == 0, labelled.output
        rows = [json.loads(line) for line in labelled.output.splitlines() if line.startswith("{")]
        return [r["top"][0]["label"] for r in rows], [r["top"][0]["score"] for r in rows]

    saved_labels, saved_scores = top1(out)
    float_labels, float_scores = top1(out / "model.tflite")
    assert float_labels == saved_labels
    np.testing.assert_allclose(float_scores, saved_scores, atol=1e-4)
    int8_labels, _ = top1(out / "model_int8.tflite")
    assert len(int8_labels) == len(saved_labels)
    # int8 must still be the same classifier: probabilities close to float's, mostly the same top-1.
    from harness.deploy.label import load_classifier

    files = sorted(small_flowers.glob("*/*"))
    data = [f.read_bytes() for f in files]
    # The models' own outputs: temperature scaling (what label prints) would magnify int8's
    # quantized small probabilities, and it is not what quantization changed.
    reference = load_classifier(out / "model.tflite").predict(data, calibrated=False)
    for variant in ("float16", "dynamic", "int8"):
        probs = load_classifier(out / f"model_{variant}.tflite").predict(data, calibrated=False)
        np.testing.assert_allclose(probs.sum(axis=1), 1, atol=0.02)
        agreement = np.mean(probs.argmax(axis=1) == reference.argmax(axis=1))
        error = np.abs(probs - reference).max()
        assert agreement >= 0.9 and error < 0.05, (variant, agreement, error)
    assert reference.max(axis=1).mean() > 0.8  # the layer is confident, so flips would show
    assert len(set(reference.argmax(axis=1))) == 3  # and it tells the classes apart


def test_bad_quantization_is_refused(tiny_backbone, small_flowers):
    result = CliRunner().invoke(
        cli,
        [
            "train",
            "--image-dir",
            str(small_flowers),
            "--backbone",
            "tiny_test",
            "--export",
            "tflite",
            "--quantize",
            "int4",
        ],
    )
    assert result.exit_code == 2 and "int4" in result.output


def test_run_rows_report_and_recommend_use_tflite_columns(tiny_backbone, small_flowers, tmp_path):
    runs_dir = tmp_path / "runs"
    result = CliRunner().invoke(
        cli,
        [
            "run",
            "--image-dir",
            str(small_flowers),
            "--backbones",
            "tiny_test",
            "--cache-dir",
            str(tmp_path / "c"),
            "--results-dir",
            str(runs_dir),
            "--models-dir",
            str(tmp_path / "models"),
            "--steps",
            "40",
            "--timing-images",
            "16",
            "--timing-repeats",
            "1",
            "--latency-runs",
            "3",
            "--export",
            "tflite",
            "--quantize",
            "none,int8",
            "--testing-percentage",
            "30",
        ],
    )
    assert result.exit_code == 0, result.output
    record = load_run(find_runs(None, runs_dir)[0])
    row = record["rows"][0]
    for q in ("none", "int8"):
        assert row[f"tflite_{q}_size_mb"] > 0
        assert row[f"tflite_{q}_latency_ms_p90"] >= row[f"tflite_{q}_latency_ms_p50"] > 0
        assert 0 <= row[f"tflite_{q}_test_accuracy"] <= 1
        assert 0 <= row[f"tflite_{q}_agreement"] <= 1
    assert row["tflite_float16_size_mb"] is None and row["tflite_threads"] == os.cpu_count()
    model_dir = tmp_path / "models" / "tiny_test"
    tflite_mb = sum(p.stat().st_size for p in model_dir.glob("*.tflite")) / 1e6
    everything_mb = sum(p.stat().st_size for p in model_dir.rglob("*") if p.is_file()) / 1e6
    assert row["model_size_mb"] == pytest.approx(everything_mb - tflite_mb)  # the SavedModel alone
    assert row["tflite_none_size_mb"] == pytest.approx((model_dir / "model.tflite").stat().st_size / 1e6)
    html = (runs_dir / record["run_id"] / "report.html").read_text()  # inside the folder named
    deploy = html.split("Deployment variants")[1].split("</table>")[0]  # one row per variant
    assert all(f"<th>{h}</th>" in deploy for h in ("variant", "MB", "acc", "same top-1", "ms p50"))
    assert "<td>none</td>" in deploy and "<td>int8</td>" in deploy and "<td>float16</td>" not in deploy
    (variant,) = [v for v in record["details"]["tiny_test"]["tflite"] if v["quantize"] == "int8"]
    assert variant["bias_corrected_layers"] == 2
    rec = CliRunner().invoke(
        cli,
        [
            "recommend",
            "--results-dir",
            str(runs_dir),
            "--min-accuracy",
            "0",
            "--by",
            "tflite_int8_latency_ms_p50",
        ],
    )
    assert rec.exit_code == 0, rec.output
    assert "tflite_int8_latency_ms_p50" in rec.output and rec.output.startswith("tiny_test")
    too_small = CliRunner().invoke(
        cli,
        [
            "recommend",
            "--results-dir",
            str(runs_dir),
            "--min-accuracy",
            "0",
            "--by",
            "tflite_int8_latency_ms_p50",
            "--max-size-mb",
            "0.000001",
        ],
    )
    assert too_small.exit_code == 2
    report = CliRunner().invoke(
        cli,
        [
            "report",
            "--results-dir",
            str(runs_dir),
            "--output-dir",
            str(tmp_path / "rep"),
            "--speed",
            "tflite_none_latency_ms_p50",
            "--min-accuracy",
            "0",
        ],
    )
    assert report.exit_code == 0, report.output
    assert "ms (tflite_none_latency_ms_p50)" in (tmp_path / "rep" / "report.html").read_text()


@pytest.mark.slow
def test_real_mobilenet_float_tflite_matches_savedmodel_and_int8_is_small(
    medium_flowers, keras_home, tmp_path
):
    env = dict(os.environ, KERAS_HOME=str(keras_home))
    out = tmp_path / "m"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness",
            "train",
            "--image-dir",
            str(medium_flowers),
            "--backbone",
            "mobilenet_v1_025",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--steps",
            "1000",
            "--output-dir",
            str(out),
            "--export",
            "tflite",
            "--quantize",
            "none,int8",
            "--testing-percentage",
            "30",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr
    assert "TFLite int8" in done.stdout + done.stderr
    assert "bias correction on 27 layers" in done.stdout + done.stderr
    from harness.deploy.label import classify_files, load_classifier
    from harness.pipeline.dataset import prepare_dataset

    test_files = [img.path for img in prepare_dataset(medium_flowers, 10, 30).splits["testing"]]
    saved, _ = classify_files(load_classifier(out), test_files, 1)
    flt, _ = classify_files(load_classifier(out / "model.tflite"), test_files, 1)
    int8, _ = classify_files(load_classifier(out / "model_int8.tflite"), test_files, 1)
    labels = [[r["top"][0]["label"] for r in rows] for rows in (saved, flt, int8)]
    assert sum(a != b for a, b in zip(labels[0], labels[1])) <= 1
    # 4 bytes per weight become 1; on this smallest MobileNet (0.22M weights) the fixed
    # overhead of the graph and quantization parameters keeps the ratio a little under 3.
    assert (out / "model.tflite").stat().st_size >= 2.5 * (out / "model_int8.tflite").stat().st_size
    # 2 of these 49 differ here (3 without bias correction, which test_quantize checks
    # more finely); the margin allows another CPU's kernels to flip one or two more.
    agreement = np.mean([a == b for a, b in zip(labels[0], labels[2])])
    assert agreement >= 0.9, agreement
