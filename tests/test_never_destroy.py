"""Issue 23's corpus: a hostile but ordinary user's folders, names, kills and races.

Every case ends with exit 0 where the data allow it, or one plain line naming the file;
no file of the user's is ever lost; a model folder read at any moment is one whole model.
"""

import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from harness.cli import cli
from harness.outputs import MODEL_MARKER, damaged_model_file

SHARED_MODELS = Path(__file__).resolve().parents[2] / "shared" / "keras_home" / "models"
WEIGHTS = "mobilenet_2_5_224_tf_no_top.h5"  # mobilenet_v1_025, real ImageNet weights
pytestmark = pytest.mark.skipif(not (SHARED_MODELS / WEIGHTS).is_file(), reason="weights not in ../shared")


@pytest.fixture(scope="module")
def photos(flowers, tmp_path_factory, copy_subset):
    return copy_subset(flowers, tmp_path_factory.mktemp("nd") / "photos", 12, ["daisy", "roses", "tulips"])


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("nd-cache")


def _args(photos, out, cache, *extra):
    return [
        "train", "--image-dir", str(photos), "--backbone", "mobilenet_v1_025", "--output-dir", str(out),
        "--cache-dir", str(cache), "--weights-dir", str(SHARED_MODELS), "--steps", "30", *extra,
    ]  # fmt: skip


def _invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def _one_line_error(result, *needles):
    assert result.exit_code == 1, result.output
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("Error: ") and "Traceback" not in result.output, result.output
    for needle in needles:
        assert needle in last, last
    return last


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# --- 1. --output-dir never deletes what harness did not write ------------------------------


def test_output_folders_that_are_not_harness_models_are_refused_before_any_work(
    photos, cache, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    (work / "thesis.txt").write_text("my thesis")
    models = tmp_path / "models"
    (models / "other").mkdir(parents=True)
    (models / "other" / "saved_model.pb").write_bytes(b"someone's model")
    before = {p: _snapshot(p) for p in (work, models, photos)}
    cases = {
        work: "holds files harness did not write",
        photos: "is the image folder",
        photos.parent: "holds the image folder",
        photos / "daisy" / "model": "inside the image folder",
        models: "holds files harness did not write",
        Path("."): "holds the current folder",
    }
    for out, needle in cases.items():
        result = _invoke(*_args(photos, out, cache))
        _one_line_error(result, needle)
        assert "images in" not in result.output  # refused before the scan
    for folder, files in before.items():
        assert _snapshot(folder) == files
    assert sorted(p.name for p in tmp_path.iterdir()) == ["models", "work"]


def test_a_harness_model_folder_is_replaced_but_never_one_with_a_file_of_yours(photos, cache, tmp_path):
    out = tmp_path / "model"
    assert _invoke(*_args(photos, out, cache)).exit_code == 0
    first = _snapshot(out)
    assert _invoke(*_args(photos, out, cache, "--seed", "1")).exit_code == 0  # ours: replaced
    assert _snapshot(out) != first and damaged_model_file(out) is None
    (out / "notes.txt").write_text("mine")
    _one_line_error(_invoke(*_args(photos, out, cache)), "notes.txt", "did not write")
    assert (out / "notes.txt").read_text() == "mine"
    (out / "notes.txt").unlink()
    out.chmod(0o555)  # write-protected: left as it is, and later runs say why
    try:
        for _ in range(2):
            _one_line_error(_invoke(*_args(photos, out, cache)), "write-protected", str(out))
    finally:
        out.chmod(0o755)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no staging litter


# --- 3. kill -9 and concurrent writers: a reader always sees one whole model --------------


def _whole(folder: Path) -> bool | None:
    """True: one complete model; None: the read spanned a swap (the folder changed inode)."""
    try:
        before = os.stat(folder).st_ino
        ok = (folder / MODEL_MARKER).is_file() and damaged_model_file(folder) is None
        return ok if os.stat(folder).st_ino == before else None
    except FileNotFoundError:
        return False


class Reader(threading.Thread):
    """Reads the model folder over and over, as a serving process would."""

    def __init__(self, folder: Path) -> None:
        super().__init__(daemon=True)
        self.folder, self.stop, self.reads, self.broken = folder, threading.Event(), 0, []

    def run(self) -> None:
        appeared = False  # before the first writer is done there is no model yet
        while not self.stop.is_set():
            seen = _whole(self.folder)
            appeared = appeared or bool(seen)
            if seen is False and appeared:
                self.broken.append(time.monotonic())
            self.reads += seen is not None
            time.sleep(0.002)


def _writer(photos, out, cache, seed):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    args = [sys.executable, "-m", "harness", *_args(photos, out, cache, "--export", "tflite", "--seed", seed)]
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _tflite_agrees_with_savedmodel(out: Path, image: Path) -> None:
    """The two files in the folder are one model (not the SavedModel of one run beside the
    TFLite file of another)."""
    from harness.deploy.label import classify_files, load_classifier

    saved = classify_files(load_classifier(out), [image], 3)[0][0]["top"]
    lite = classify_files(load_classifier(out / "model.tflite"), [image], 3)[0][0]["top"]
    assert [t["label"] for t in saved] == [t["label"] for t in lite]
    np.testing.assert_allclose([t["score"] for t in saved], [t["score"] for t in lite], atol=2e-3)


@pytest.mark.slow
def test_kill_9_during_export_leaves_the_old_or_the_new_model_whole(photos, cache, tmp_path):
    out = tmp_path / "model"
    (tmp_path / "mine.txt").write_text("beside the model")
    first = _writer(photos, out, cache, "0")
    assert first.wait(timeout=300) == 0, first.stderr.read()[-2000:]
    reader = Reader(out)
    reader.start()
    rng, killed = random.Random(23), 0
    for trial in range(3):
        child = _writer(photos, out, cache, str(trial + 1))
        deadline = time.monotonic() + 240
        while child.poll() is None and time.monotonic() < deadline:  # until the export starts
            if any(".staging-" in p.name for p in tmp_path.iterdir()):
                break
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 2.0))  # somewhere in SavedModel, TFLite and the swap
        if child.poll() is None:
            child.kill()
            killed += 1
        child.wait(timeout=60)
    reader.stop.set()
    reader.join()
    assert killed >= 2, "the kill landed after the export too often to test anything"
    assert reader.broken == [] and reader.reads > 20
    assert _whole(out) and (tmp_path / "mine.txt").read_text() == "beside the model"
    final = _writer(photos, out, cache, "9")
    assert final.wait(timeout=300) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.txt", "model"]  # stale staging swept
    _tflite_agrees_with_savedmodel(out, next(photos.glob("daisy/*")))


@pytest.mark.slow
def test_two_writers_of_one_folder_take_turns(photos, cache, tmp_path):
    out = tmp_path / "model"
    reader = Reader(out)
    writers = [_writer(photos, out, cache, str(seed)) for seed in (1, 2)]
    reader.start()
    for writer in writers:
        assert writer.wait(timeout=400) == 0, writer.stderr.read()[-2000:]
    reader.stop.set()
    reader.join()
    assert _whole(out) and reader.broken == [] and reader.reads > 20
    _tflite_agrees_with_savedmodel(out, next(photos.glob("roses/*")))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


# --- 4-7. names, damaged inputs, degenerate data -----------------------------------------


def test_names_that_are_not_utf8_are_used_with_an_escaped_name(photos, cache, tmp_path):
    root = tmp_path / "latin1"
    shutil.copytree(photos, root)
    os.rename(bytes(root / "roses"), bytes(root) + b"/ros\xe9s")
    first = sorted((root / "daisy").iterdir())[0]
    os.rename(bytes(first), bytes(root) + b"/daisy/caf\xe9.jpg")
    result = _invoke(*_args(root, tmp_path / "m", cache, "--testing-percentage", "40"))
    assert result.exit_code == 0, result.output
    assert "ros\\xe9s" in result.output and "not valid UTF-8" in result.output
    labels = (tmp_path / "m" / "labels.txt").read_text(encoding="utf-8").splitlines()
    assert labels == ["daisy", "ros\\xe9s", "tulips"]
    json.loads((tmp_path / "m" / "harness.json").read_text(encoding="utf-8"))


def test_damaged_weights_files_are_one_line_before_the_scan(photos, cache, tmp_path):
    source = (SHARED_MODELS / WEIGHTS).read_bytes()
    broken = {
        "empty": b"",
        "truncated": source[: len(source) // 3],
        "corrupted": source[:4096] + bytes(len(source) - 4096),
    }
    for kind, data in broken.items():
        folder = tmp_path / kind
        folder.mkdir()
        (folder / WEIGHTS).write_bytes(data)
        args = [a if a != str(SHARED_MODELS) else str(folder) for a in _args(photos, tmp_path / "m", cache)]
        result = _invoke(*args)
        _one_line_error(result, str(folder / WEIGHTS), "damaged")
        assert "images in" not in result.output, kind
        listing = _invoke("backbones", "mobilenet_v1_025", "--weights-dir", folder)
        assert "damaged" in listing.output and "on disk" not in listing.output, kind
        assert (folder / WEIGHTS).read_bytes() == data  # left in place


def test_label_says_which_file_is_damaged(photos, cache, tmp_path):
    out = tmp_path / "m"
    assert _invoke(*_args(photos, out, cache, "--export", "tflite")).exit_code == 0
    image = next(photos.glob("daisy/*"))
    damage = {
        "harness.json": b"{not json",
        "labels.txt": b"da\xffsy\n",
        "model.tflite": (out / "model.tflite").read_bytes()[:5000],  # would crash the interpreter
        "saved_model.pb": b"\x00" * 100,
        "variables/variables.index": b"",
    }
    for name, data in damage.items():
        broken = tmp_path / f"broken-{name.replace('/', '-')}"
        shutil.copytree(out, broken)
        (broken / name).write_bytes(data)
        for runtime in ("tf", "litert"):
            result = _invoke("label", "--model", broken, "--runtime", runtime, image)
            _one_line_error(result, name.split("/")[-1], "damaged")
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(image.read_bytes()[:2000])
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    result = _invoke("label", "--model", out, truncated, fifo, image)
    assert result.exit_code == 0, result.output
    assert f"skipped {truncated}: cannot decode: corrupt or truncated JPEG data" in result.output
    assert f"skipped {fifo}: named pipe (FIFO), not a file" in result.output


def test_an_unwritable_summaries_folder_is_refused_before_extraction(photos, cache, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("in the way")
    result = _invoke(*_args(photos, tmp_path / "m", cache, "--summaries-dir", blocker / "logs"))
    _one_line_error(result, str(blocker / "logs"), "not writable")
    assert "bottlenecks" not in result.output


def test_a_damaged_converted_backbone_in_the_cache_is_rebuilt(photos, tmp_path):
    cache = tmp_path / "cache"
    assert _invoke(*_args(photos, tmp_path / "m", cache)).exit_code == 0
    (converted,) = (cache / "litert").glob("*.tflite")
    converted.write_bytes(converted.read_bytes()[:20000])
    result = _invoke(*_args(photos, tmp_path / "m", cache))
    assert result.exit_code == 0, result.output
    assert "LiteRT cannot run" not in result.output
    assert "bottlenecks on litert" in result.output
    assert len(converted.read_bytes()) > 20000


def test_degenerate_splits_warn_per_class_and_keep_json_strict(flowers, cache, tmp_path, copy_subset):
    two = copy_subset(flowers, tmp_path / "two", 2, ["daisy", "roses", "tulips"])
    result = _invoke(*_args(two, tmp_path / "m", cache))
    assert result.exit_code == 0, result.output
    assert "no test images after the split" in result.output
    assert "not measured (no test images)" in result.output
    for line in (tmp_path / "m" / "harness.json").read_text().split():
        assert "NaN" not in line and "Infinity" not in line
    # a class whose every photo lands outside training: warned by name
    result = _invoke(*_args(two, tmp_path / "m2", cache, "--testing-percentage", "50"))
    no_train = [line for line in result.output.splitlines() if "has no training image" in line]
    assert no_train, result.output


# --- 2, 8, 9. reports: every accuracy, damaged run files, formula cells, quiet stderr ------


@pytest.mark.slow
def test_a_perfect_run_reports_and_bad_run_files_are_skipped(flowers, tmp_path, copy_subset):
    root = copy_subset(flowers, tmp_path / "easy", 12, ["daisy"])
    (root / "black").mkdir()
    for i in range(12):  # plain black frames: every model gets them all right
        Image.new("RGB", (64 + i, 64), (i, i, i)).save(root / "black" / f"{i}.jpg")
    weights = tmp_path / "=HYPERLINK(1)"  # a path a spreadsheet would run as a formula
    weights.mkdir()
    (weights / WEIGHTS).symlink_to(SHARED_MODELS / WEIGHTS)
    env = dict(os.environ)
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    args = [
        sys.executable, "-m", "harness", "run", "--image-dir", str(root), "--backbones", "mobilenet_v1_025",
        "--weights-dir", weights.name, "--cache-dir", str(tmp_path / "cache"), "--results-dir", "results",
        "--models-dir", "models", "--steps", "100", "--timing-images", "8", "--timing-repeats", "1",
        "--latency-runs", "2", "--export", "tflite", "--testing-percentage", "30",
    ]  # fmt: skip
    done = subprocess.run(args, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    for chatter in ("oneDNN", "cudart", "XNNPACK", "trackable_obj", "absl::InitializeLog"):
        assert chatter not in done.stderr, done.stderr
    (run_file,) = (tmp_path / "results" / "runs").glob("*.json")
    record = json.loads(run_file.read_text())
    assert record["rows"][0]["test_accuracy"] == 1.0
    report = tmp_path / "results" / record["run_id"]
    assert (report / "report.html").stat().st_size > 10_000
    for line in (report / "report.csv").read_text().splitlines():
        assert not any(cell.startswith(("=", "+", "-", "@")) for cell in line.split(","))
    assert "'=HYPERLINK(1)" in (report / "report.csv").read_text()

    runs = tmp_path / "results" / "runs"
    (runs / "truncated.json").write_text(run_file.read_text()[:300])
    (runs / "rows-string.json").write_text(json.dumps({**record, "run_id": "x", "rows": "oops"}))
    result = _invoke("report", "--results-dir", tmp_path / "results", "--output-dir", tmp_path / "r")
    assert result.exit_code == 0, result.output
    assert "truncated.json" in result.output and "rows-string.json" in result.output
    assert (tmp_path / "r" / "report.html").is_file()
    result = _invoke("recommend", "--results-dir", tmp_path / "results", "--min-accuracy", "0.5")
    assert result.exit_code == 0 and "mobilenet_v1_025" in result.output, result.output
    # a report file of yours is never overwritten
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "report.html").write_text("my page")
    result = _invoke("report", "--results-dir", tmp_path / "results", "--output-dir", tmp_path / "mine")
    _one_line_error(result, "report.html", "did not write")
    assert (tmp_path / "mine" / "report.html").read_text() == "my page"


def test_report_on_a_read_only_file_system_says_so_in_one_line(tiny_backbone, small_flowers, tmp_path):
    results = tmp_path / "results"
    done = _invoke(
        "run", "--image-dir", small_flowers, "--backbones", tiny_backbone.name, "--results-dir", results,
        "--cache-dir", tmp_path / "cache", "--models-dir", tmp_path / "models", "--steps", "10",
        "--timing-images", "12", "--timing-repeats", "1", "--latency-runs", "1",
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    folder = tmp_path / "ro"
    folder.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(folder)]).returncode != 0:
        pytest.skip("cannot mount a file system here (needs root)")
    try:
        shutil.copytree(results / "runs", folder / "runs")
        subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
        _one_line_error(_invoke("report", "--results-dir", folder), "Read-only file system", str(folder))
    finally:
        subprocess.run(["umount", str(folder)])
