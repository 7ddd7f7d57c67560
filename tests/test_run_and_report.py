"""`harness run`, the result store and the reports, with tiny backbones on real photos."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli import cli
from harness.errors import HarnessError
from harness.registry import BackboneSpec, registry
from harness.results.store import find_runs, load_run, runs_frame, save_run
from harness.schema import SCHEMA, row_columns


def _broken_builder(spec, weights):
    raise RuntimeError("this backbone is broken on purpose")


@pytest.fixture
def broken_backbone():
    spec = BackboneSpec(
        name="broken_test", family="tiny", builder=_broken_builder, input_size=32, feature_size=4
    )
    registry.names()
    registry.register(spec, replace=True)
    yield spec
    registry.unregister(spec.name)


def _run(photos, tmp_path, backbones, *extra):
    return CliRunner().invoke(
        cli,
        [
            "run",
            "--image-dir",
            str(photos),
            "--backbones",
            backbones,
            "--cache-dir",
            str(tmp_path / "cache"),
            "--results-dir",
            str(tmp_path / "reports"),
            "--models-dir",
            str(tmp_path / "models"),
            "--steps",
            "40",
            "--eval-interval",
            "20",
            "--batch-size",
            "16",
            "--timing-images",
            "24",
            "--timing-repeats",
            "2",
            "--latency-runs",
            "3",
            "--extract-batch-size",
            "8",
            *extra,
        ],
    )


def test_run_records_rows_and_a_failing_backbone_does_not_stop_it(
    tiny_backbone, broken_backbone, small_flowers, tmp_path
):
    result = _run(small_flowers, tmp_path, "broken_test,tiny_test")
    assert result.exit_code == 0, result.output
    assert "broken_test: FAILED: RuntimeError: this backbone is broken on purpose" in result.output
    [path] = find_runs(None, tmp_path / "reports" / "runs")
    record = load_run(path)
    assert record["schema"] == SCHEMA
    for key in ("hostname", "cpu", "cpu_count", "os", "versions", "gpus", "git_commit"):
        assert key in record["environment"]
    assert record["environment"]["versions"]["tensorflow"]
    assert record["dataset"]["fingerprint"] and record["config"]["seed"] == 0
    broken, tiny = record["rows"]
    assert set(tiny) == set(row_columns())
    assert broken["error"].startswith("RuntimeError") and broken["test_accuracy"] is None
    assert tiny["error"] is None and tiny["bottleneck_phase"] == "cold"
    assert tiny["bottleneck_img_per_s"] > 0 and tiny["latency_ms_p50"] > 0
    assert tiny["bottleneck_ms_per_img_p90"] >= tiny["bottleneck_ms_per_img_p50"]
    assert 0 <= tiny["test_accuracy_ci_low"] <= tiny["test_accuracy"] <= tiny["test_accuracy_ci_high"] <= 1
    assert len(record["details"]["tiny_test"]["timing"]["bottleneck"]["samples_img_per_s"]) == 2
    assert (tmp_path / "models" / "tiny_test" / "saved_model.pb").is_file()
    report_dir = tmp_path / "reports" / record["run_id"]
    for name in ("report.csv", "report.md", "report.html"):
        assert (report_dir / name).stat().st_size > 0
    html = (report_dir / "report.html").read_text()
    assert "data:image/png;base64," in html and "this backbone is broken on purpose" in html

    # A second run is served from the cache; the combined report shows cold and warm apart.
    again = _run(small_flowers, tmp_path, "tiny_test")
    assert again.exit_code == 0, again.output
    runs = [load_run(p) for p in find_runs(None, tmp_path / "reports" / "runs")]
    assert len(runs) == 2  # never overwritten
    frame = runs_frame(runs)
    tiny_rows = frame[frame["backbone"] == "tiny_test"]
    assert sorted(tiny_rows["bottleneck_phase"]) == ["cold", "warm"]
    out = tmp_path / "combined"
    combined = CliRunner().invoke(
        cli, ["report", "--results-dir", str(tmp_path / "reports"), "--output-dir", str(out)]
    )
    assert combined.exit_code == 0, combined.output
    html = (out / "report.html").read_text()
    assert "Cold versus warm cache" in html and "cold phase s" in html and "warm phase s" in html
    # Each backbone once, from its latest run; every run with --all-runs; the CSV keeps both.
    main = (out / "report.md").read_text().split("## Accuracy and speed")[1].split("## ")[0]
    assert main.count("tiny_test") == 1 and (out / "report.csv").read_text().count("tiny_test") == 2
    every = CliRunner().invoke(
        cli, ["report", "--results-dir", str(tmp_path / "reports"), "--output-dir", str(out), "--all-runs"]
    )
    assert every.exit_code == 0, every.output
    main = (out / "report.md").read_text().split("## Accuracy and speed")[1].split("## ")[0]
    assert main.count("tiny_test") == 2

    rec = CliRunner().invoke(
        cli, ["recommend", "--results-dir", str(tmp_path / "reports"), "--min-accuracy", "0"]
    )
    assert rec.exit_code == 0, rec.output
    assert rec.output.startswith("tiny_test:")
    ids = [r["run_id"] for r in runs]
    cmp = CliRunner().invoke(cli, ["compare", ids[0], ids[1], "--results-dir", str(tmp_path / "reports")])
    assert cmp.exit_code == 0, cmp.output
    assert (
        "bottleneck img/s" in cmp.output
        and "tiny_test" in cmp.output
        and "intervals hold together" in cmp.output
    )


def test_random_weights_rows_never_show_accuracy(tiny_backbone, small_flowers, tmp_path):
    result = _run(small_flowers, tmp_path, "tiny_test", "--weights", "random")
    assert result.exit_code == 0, result.output
    [path] = find_runs(None, tmp_path / "reports" / "runs")
    row = load_run(path)["rows"][0]
    assert row["weights"] == "random" and row["test_accuracy"] is None and row["bottleneck_img_per_s"] > 0
    html = (tmp_path / "reports" / row["run_id"] / "report.html").read_text()
    assert "n/a (random weights)" in html


def test_gpu_without_gpu_is_a_clear_error(tiny_backbone, small_flowers, tmp_path):
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        pytest.skip("this machine has a GPU")
    result = _run(small_flowers, tmp_path, "tiny_test", "--device", "gpu")
    assert result.exit_code == 1
    assert "TensorFlow sees no GPU" in result.output


def test_run_store_never_overwrites(tmp_path):
    record = {"schema": SCHEMA, "run_id": "20260101T000000Z-abcdef", "rows": [], "environment": {}}
    save_run(record, tmp_path)
    with pytest.raises(HarnessError, match="exists already"):
        save_run(record, tmp_path)
    assert json.loads((tmp_path / "20260101T000000Z-abcdef.json").read_text())["run_id"] == record["run_id"]


HOSTILE = "<script>alert(1)</script>"


def test_hostile_names_are_escaped_in_html(tiny_backbone, small_flowers, tmp_path):
    photos = tmp_path / "photos"
    shutil.copytree(small_flowers, photos)
    (photos / "daisy").rename(photos / "<img src=x onerror=alert(1)>")
    sorted((photos / "roses").iterdir())[0].rename(photos / "roses" / "<b>bold<_b> $x$.jpg")
    result = _run(photos, tmp_path, "tiny_test")
    assert result.exit_code == 0, result.output
    [path] = find_runs(None, tmp_path / "reports" / "runs")
    record = load_run(path)
    # A class name that cannot be a folder name still reaches the report through a run file.
    record["dataset"]["classes"].append(HOSTILE)
    record["details"]["tiny_test"]["classes"] = record["dataset"]["classes"][:3]
    record["details"]["tiny_test"]["classes"][0] = HOSTILE
    record["rows"][0]["error"] = HOSTILE
    record["skipped_files"] = [{"path": HOSTILE + ".jpg", "reason": "not an image"}]
    from harness.results.report import render_report

    html = render_report([record], tmp_path / "hostile")["html"].read_text()
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img src=x" not in html


def test_report_renders_in_headless_chromium(tiny_backbone, small_flowers, tmp_path):
    """Two backbones with repeats, learning curves and TFLite variants: every table of the
    report drawn by a real browser, none wider than 1,400 px (scripts/screenshot.py)."""
    if not shutil.which("chromium"):
        pytest.skip("chromium is not installed (.ci/run installs it)")
    from dataclasses import replace

    from harness.registry import registry

    registry.register(replace(tiny_backbone, name="tiny_test_48", input_size=48), replace=True)
    try:
        result = _run(small_flowers, tmp_path, "tiny_test,tiny_test_48", "--repeats", "3", "--learning-curve",
                      "--export", "tflite", "--quantize", "none,dynamic")  # fmt: skip
    finally:
        registry.unregister("tiny_test_48")
    assert result.exit_code == 0, result.output
    [path] = find_runs(None, tmp_path / "reports" / "runs")
    record = load_run(path)
    assert [r["n_splits"] for r in record["rows"]] == [3, 3]
    assert [len(d["splits"]) for d in record["details"].values()] == [3, 3]
    assert all(d["learning_curve"] and d["test_outcomes"]["images"] for d in record["details"].values())
    (pair,) = record["paired"]
    assert (pair["a"], pair["b"], pair["n_images"]) == (
        "tiny_test",
        "tiny_test_48",
        record["rows"][0]["n_test"],
    )
    html = tmp_path / "reports" / record["run_id"] / "report.html"
    text = html.read_text()
    for heading in ("Paired comparison", "repeated splits", "How many photos", "Deployment variants"):
        assert heading in text
    script = Path(__file__).resolve().parent.parent / "scripts" / "screenshot.py"
    shot = tmp_path / "report.png"
    done = subprocess.run(
        [sys.executable, str(script), str(html), str(shot)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "rendered" in done.stdout


def test_a_column_declared_once_reaches_every_output(tiny_backbone, small_flowers, tmp_path, monkeypatch):
    """One new Column in harness.schema shows in the JSON, CSV, Markdown, HTML and console."""
    import pandas as pd

    from harness import schema

    fake = schema.Column(
        "fake_score",
        "int",
        unit="points",
        label="fake score",
        console=True,
        table="main",
        derive=lambda row: row["n_classes"] * 7 if row["n_classes"] else None,
    )
    monkeypatch.setattr(schema, "COLUMNS", [*schema.COLUMNS[:-1], fake, schema.COLUMNS[-1]])
    result = _run(small_flowers, tmp_path, "tiny_test")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    at = next(i for i, line in enumerate(lines) if line.split()[:1] == ["backbone"])  # the summary table
    assert "fake score" in lines[at]
    assert lines[at + 2].startswith("tiny_test") and "21" in lines[at + 2].split()  # 3 classes x 7
    [path] = find_runs(None, tmp_path / "reports" / "runs")
    record = load_run(path)
    assert record["rows"][0]["fake_score"] == 21
    report = tmp_path / "reports" / record["run_id"]
    assert pd.read_csv(report / "report.csv")["fake_score"].tolist() == [21]
    markdown = (report / "report.md").read_text()
    table = [line for line in markdown.splitlines() if line.startswith("|")]  # heading, rule, row
    headings, cells = ([c.strip() for c in line.split("|")] for line in (table[0], table[2]))
    assert cells[headings.index("fake score")] == "21"
    html = (report / "report.html").read_text()
    assert "<th>fake score</th>" in html and "<td>21</td>" in html


def test_everything_a_run_writes_stays_in_the_folders_named(tiny_backbone, small_flowers, tmp_path):
    results = tmp_path / "mine" / "results"
    result = CliRunner().invoke(
        cli,
        ["run", "--image-dir", str(small_flowers), "--backbones", "tiny_test", "--results-dir", str(results),
         "--cache-dir", str(tmp_path / "cache"), "--models-dir", str(tmp_path / "models"), "--steps", "10",
         "--timing-images", "12", "--timing-repeats", "1", "--latency-runs", "1"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    [run] = (results / "runs").glob("*.json")
    assert sorted(p.name for p in (results / run.stem).iterdir()) == [
        ".harness-files",  # what harness wrote there, so it replaces only those
        "report.csv",
        "report.html",
        "report.md",
    ]
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["results"]  # nothing beside it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "mine", "models"]
    assert f"run saved to {run}" in result.output
