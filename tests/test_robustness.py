"""Messy folders, interruptions, concurrency, full disks and hostile names (issue: robustness)."""

import errno
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from harness.cache import BottleneckCache
from harness.cli import cli
from harness.errors import HarnessError
from harness.registry import BackboneSpec
from harness.results import find_runs, load_run

CHILD = Path(__file__).with_name("robustness_child.py")
WEIRD_CLASS = "wild flowers ✿ $(x)"


def build_corpus(real: Path, root: Path) -> tuple[dict[str, str], set[str]]:
    """A real photo folder with every kind of bad and odd input mixed in.

    Returns:
        usable: relative path -> expected label, for every file that must be used.
        unusable: relative paths that must be skipped with a reason.
    """
    photos = sorted((real / "daisy").iterdir())[:8]
    roses = sorted((real / "roses").iterdir())[:8]
    usable: dict[str, str] = {}
    unusable: set[str] = set()
    daisy = root / "daisy"
    (daisy / "nested" / "deeper").mkdir(parents=True)
    for i, photo in enumerate(photos):
        target = daisy / ("nested/deeper" if i == 0 else "") / photo.name
        shutil.copy(photo, target)
        usable[str(target.relative_to(root))] = "daisy"
    weird = root / WEIRD_CLASS
    weird.mkdir()
    names = [
        "with space.jpg",
        "ünïcødé 花.jpg",
        "semi;colon&amp|pipe.jpg",
        "`back`$HOME'q\".jpg",
        "dash-.jpeg",
        "UPPER.JPG",
        "no_extension",
        "x.png.jpg",
    ]
    for name, photo in zip(names, roses):
        shutil.copy(photo, weird / name)
        usable[f"{WEIRD_CLASS}/{name}"] = WEIRD_CLASS

    def add(rel: str, ok: bool, write) -> None:
        path = root / rel
        write(path)
        if ok:
            usable[rel] = rel.split("/")[0]
        else:
            unusable.add(rel)

    good = photos[1].read_bytes()
    add("daisy/truncated.jpg", False, lambda p: p.write_bytes(good[: len(good) // 3]))
    add("daisy/zero.jpg", False, lambda p: p.write_bytes(b""))
    add("daisy/text.jpg", False, lambda p: p.write_text("this is not a photo"))
    add("daisy/.DS_Store", False, lambda p: p.write_bytes(b"\0\0\0\1Bud1\0"))
    add(
        "daisy/png_named.jpg", True, lambda p: Image.new("RGB", (64, 48), (250, 250, 0)).save(p, format="PNG")
    )
    add(
        "daisy/cmyk.jpg", True, lambda p: Image.new("CMYK", (64, 48), (0, 50, 200, 10)).save(p, format="JPEG")
    )
    add("daisy/gray.jpg", True, lambda p: Image.new("L", (64, 48), 120).save(p, format="JPEG"))
    add("daisy/rgba.png", True, lambda p: Image.new("RGBA", (64, 48), (0, 0, 255, 100)).save(p))
    add("daisy/deep16.png", True, lambda p: Image.new("I;16", (64, 48), 40000).save(p))
    add("daisy/palette.bmp", True, lambda p: Image.new("RGB", (64, 48), (9, 9, 9)).save(p, format="BMP"))

    def animated(p: Path) -> None:
        frames = [Image.new("P", (40, 30), c) for c in (10, 90, 200)]
        frames[0].save(p, format="GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)

    add(f"{WEIRD_CLASS}/animated.gif", True, animated)
    add(
        f"{WEIRD_CLASS}/huge.jpg",
        True,
        lambda p: Image.new("RGB", (12000, 9000), (30, 140, 60)).save(p, format="JPEG", quality=30),
    )
    (root / "empty class").mkdir()
    (weird / "loop").symlink_to("..")  # a directory symlink loop inside a class
    unusable.add(f"{WEIRD_CLASS}/loop")
    (root / "loop").symlink_to(".")  # and one at the top
    unusable.add("loop")
    (daisy / "self.jpg").symlink_to("self.jpg")  # a file symlink loop
    unusable.add("daisy/self.jpg")
    return usable, unusable


@pytest.fixture(scope="module")
def corpus(flowers, tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus") / "photos"
    root.mkdir()
    usable, unusable = build_corpus(flowers, root)
    return root, usable, unusable


def test_messy_folder_run_completes_and_accounts_for_every_file(tiny_backbone, corpus, tmp_path):
    root, usable, unusable = corpus
    result = CliRunner().invoke(
        cli,
        [
            "run",
            "--image-dir",
            str(root),
            "--backbones",
            "tiny_test",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--results-dir",
            str(tmp_path / "runs"),
            "--models-dir",
            str(tmp_path / "models"),
            "--steps",
            "20",
            "--timing-images",
            "12",
            "--timing-repeats",
            "1",
            "--latency-runs",
            "2",
            "--extract-batch-size",
            "4",
            "--testing-percentage",
            "20",
        ],
    )
    assert result.exit_code == 0, result.output
    record = load_run(find_runs(None, tmp_path / "runs")[0])
    row = record["rows"][0]
    assert row["error"] is None
    skipped = {item["path"]: item["reason"] for item in record["skipped_files"]}
    assert set(skipped) == unusable, skipped
    assert all(reason for reason in skipped.values())
    for path in unusable:  # listed in the console too
        assert path in result.output
    assert row["n_train"] + row["n_validation"] + row["n_test"] == len(usable)
    assert row["n_failed_images"] == 1  # the truncated JPEG, found when decoding
    assert record["dataset"]["classes"] == ["daisy", WEIRD_CLASS]
    assert "empty class" in result.output


def test_scan_labels_and_finds_every_usable_file(corpus):
    from harness.images import scan_images

    root, usable, unusable = corpus
    scanned = scan_images(root)
    found = {str(img.path.relative_to(root)): img.label for img in scanned.images}
    assert found == {k: v for k, v in usable.items()} | {"daisy/truncated.jpg": "daisy"}


@pytest.mark.parametrize(
    "args, message",
    [
        (["--image-dir", "/nonexistent"], "image directory not found"),
        (["--backbones", "mobilenet_v1_10"], "did you mean"),
        (["--device", "gpu"], "sees no GPU"),
        (["--results-dir", "/proc/harness-runs"], "is not writable"),
    ],
)
def test_clear_one_line_errors(args, message, small_flowers, tmp_path):
    import tensorflow as tf

    if "gpu" in args and tf.config.list_physical_devices("GPU"):
        pytest.skip("this machine has a GPU")
    base = {
        "--image-dir": str(small_flowers),
        "--backbones": "mobilenet_v1_025",
        "--weights": "random",
        "--cache-dir": str(tmp_path / "c"),
        "--results-dir": str(tmp_path / "r"),
        "--models-dir": str(tmp_path / "m"),
    }
    base.update(dict(zip(args[::2], args[1::2])))
    result = CliRunner().invoke(cli, ["run", *[x for kv in base.items() for x in kv]])
    assert result.exit_code == 1, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and message in errors[0], result.output
    assert "Traceback" not in result.output


def test_one_usable_class_is_an_error(tmp_path, flowers):
    root = tmp_path / "photos"
    (root / "daisy").mkdir(parents=True)
    shutil.copy(sorted((flowers / "daisy").iterdir())[0], root / "daisy")
    (root / "broken").mkdir()
    (root / "broken" / "a.jpg").write_text("nope")
    result = CliRunner().invoke(cli, ["train", "--image-dir", str(root), "--backbone", "mobilenet_v1_025"])
    assert result.exit_code == 1 and "at least 2 class folders" in result.output


def test_backbone_names_cannot_escape_output_folders():
    for bad in ["../evil", "a/b", "..", ".hidden", "x/../../y"]:
        with pytest.raises(ValueError):
            BackboneSpec(name=bad, family="x", builder=lambda s, w: None, input_size=8, feature_size=1)
    from backbones.hub import hub_spec

    spec = hub_spec(str(Path(__file__).parent), 32)
    assert "/" not in spec.safe_name() and spec.safe_name().startswith("hub_")


def test_nothing_is_unpickled_from_the_cache(tmp_path):
    cache = BottleneckCache(tmp_path, "bb", "id", 2)
    shard = cache.write(["a" * 40], np.ones((1, 2), np.float32))
    # A shard whose features are a pickled object array, under a valid checksum name.
    import hashlib
    import io

    buffer = io.BytesIO()
    np.save(buffer, np.array([b"b" * 40], dtype="S40"))
    np.save(buffer, np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    data = buffer.getvalue()
    evil = shard.with_name(f"evil-{hashlib.sha256(data).hexdigest()[:16]}.shard")
    evil.write_bytes(data)
    loaded = cache.load()
    assert evil.name in loaded.corrupt_shards and set(loaded.features) == {"a" * 40}


# --- full disks ---------------------------------------------------------------------


def crafted_run():
    from harness.results import ROW_COLUMNS, SCHEMA

    row = {c: None for c in ROW_COLUMNS} | {
        "run_id": "20260101T000000Z-000001",
        "backbone": "mobilenet_v1_100",
        "device": "cpu",
        "weights": "imagenet",
        "params": 3228864,
        "input_size": 224,
        "bottleneck_img_per_s": 40.0,
        "test_accuracy": 0.87,
        "test_accuracy_ci_low": 0.8,
        "test_accuracy_ci_high": 0.91,
        "bottleneck_phase": "cold",
        "bottleneck_phase_s": 37.0,
    }
    return {
        "schema": SCHEMA,
        "run_id": row["run_id"],
        "created": "2026-01-01T00:00:00+00:00",
        "environment": {"hostname": "h", "cpu": "c", "gpus": []},
        "dataset": {"root": "photos", "classes": ["a", "b"], "split_sizes": {}, "fingerprint": "f"},
        "rows": [row],
        "details": {
            "mobilenet_v1_100": {
                "classes": ["a", "b"],
                "confusion": [[3, 1], [0, 4]],
                "history": [{"step": 1, "train_accuracy": 0.5, "cross_entropy": 0.7}],
            }
        },
    }


def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_disk_full_writing_the_cache_keeps_previous_entries(tmp_path, monkeypatch):
    cache = BottleneckCache(tmp_path, "bb", "id", 2)
    cache.write(["a" * 40], np.ones((1, 2), np.float32))
    monkeypatch.setattr("harness.atomic.os.fsync", _enospc)
    with pytest.raises(HarnessError, match="No space left on device"):
        cache.write(["b" * 40], np.ones((1, 2), np.float32))
    monkeypatch.undo()
    assert set(cache.load().features) == {"a" * 40}
    assert not list(cache.directory.glob(".*.tmp"))


def test_disk_full_writing_a_report_keeps_the_previous_one(tmp_path, monkeypatch):
    from harness import report

    record = crafted_run()
    paths = report.render_report([record], tmp_path)
    before = {k: p.read_bytes() for k, p in paths.items()}
    monkeypatch.setattr("harness.atomic.os.fsync", _enospc)
    with pytest.raises(HarnessError, match="No space left on device"):
        report.render_report([record], tmp_path, title="new title")
    monkeypatch.undo()
    assert {k: p.read_bytes() for k, p in paths.items()} == before
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.fixture
def tiny_disk(tmp_path):
    """A real 2 MiB file system (tmpfs), where mounting is allowed (root in CI)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


def test_really_full_disk_gives_clear_errors_and_keeps_what_was_there(tiny_disk):
    from harness import report
    from harness.results import save_run

    record = crafted_run()
    saved = save_run(record, tiny_disk / "runs")
    cache = BottleneckCache(tiny_disk, "bb", "id", 256)
    cache.write([f"{i:040x}" for i in range(100)], np.ones((100, 256), np.float32))
    paths = report.render_report([record], tiny_disk / "report")
    with open(tiny_disk / "filler", "wb") as fh:  # fill the disk to the last byte
        try:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        except OSError:
            pass
    with pytest.raises(HarnessError, match="No space left on device"):
        cache.write([f"{i:040x}" for i in range(100, 400)], np.ones((300, 256), np.float32))
    with pytest.raises(HarnessError, match="No space left on device"):
        save_run(dict(record, run_id="20990101T000000Z-ffffff"), tiny_disk / "runs")
    assert len(cache.load().features) == 100
    assert load_run(saved)["run_id"] == record["run_id"]
    assert paths["html"].read_text().startswith("<!doctype html>")


# --- kill -9 and concurrency --------------------------------------------------------


@pytest.fixture(scope="module")
def kill_photos(flowers, tmp_path_factory):
    from conftest import copy_subset

    return copy_subset(flowers, tmp_path_factory.mktemp("kill") / "photos", 16, ["daisy", "roses", "tulips"])


def _child(photos, cache, out, **popen):
    env = dict(os.environ, HARNESS_CACHE_SHARD_SIZE="8", TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.Popen(
        [sys.executable, str(CHILD), str(photos), str(cache), str(out)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        **popen,
    )


def _features(npz):
    data = np.load(npz, allow_pickle=False)
    return dict(zip(data["keys"], data["features"]))


@pytest.fixture(scope="module")
def reference(kill_photos, tmp_path_factory):
    """Features from one uninterrupted run into an empty cache."""
    tmp = tmp_path_factory.mktemp("reference")
    child = _child(kill_photos, tmp / "cache", tmp / "ref.npz")
    assert child.wait(timeout=300) == 0
    return _features(tmp / "ref.npz")


@pytest.mark.slow
def test_kill_9_during_extraction_never_corrupts_the_cache(kill_photos, reference, tmp_path):
    rng = random.Random(1234)
    cache = tmp_path / "cache"
    kills = 0
    for trial in range(10):
        child = _child(kill_photos, cache, tmp_path / f"t{trial}.npz")
        assert child.stdout.readline().strip() == "extracting"
        time.sleep(rng.uniform(0.0, 0.4))  # somewhere inside extraction and shard writes
        if child.poll() is None:
            child.kill()
            kills += 1
        child.wait(timeout=60)
        loaded = BottleneckCache(cache, "mobilenet_v1_025", _identity(), 256).load()
        assert loaded.corrupt_shards == [], f"trial {trial}: corrupt shard after kill -9"
    assert kills >= 5, "the kill landed after the work finished too often to test anything"
    final = _child(kill_photos, cache, tmp_path / "final.npz")
    assert final.wait(timeout=300) == 0
    got = _features(tmp_path / "final.npz")
    assert not list(cache.rglob(".*.tmp")), "temporary files of killed writers were not swept"
    assert set(got) == set(reference)
    for key, vector in reference.items():
        np.testing.assert_allclose(got[key], vector, rtol=1e-4, atol=1e-5)


def _identity():
    from harness.registry import get_backbone

    return get_backbone("mobilenet_v1_025").cache_identity("random")


@pytest.mark.slow
def test_two_processes_share_one_cache(kill_photos, reference, tmp_path):
    cache = tmp_path / "cache"
    children = [_child(kill_photos, cache, tmp_path / f"p{i}.npz") for i in range(2)]
    for child in children:
        assert child.wait(timeout=300) == 0
    for i in range(2):
        got = _features(tmp_path / f"p{i}.npz")
        assert set(got) == set(reference)
        for key, vector in reference.items():
            np.testing.assert_allclose(got[key], vector, rtol=1e-4, atol=1e-5)
    loaded = BottleneckCache(cache, "mobilenet_v1_025", _identity(), 256).load()
    assert loaded.corrupt_shards == [] and set(loaded.features) == set(reference)


@pytest.mark.slow
def test_two_harness_runs_at_once(kill_photos, tmp_path):
    def start(i):
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "harness",
                "run",
                "--image-dir",
                str(kill_photos),
                "--backbones",
                "mobilenet_v1_025",
                "--weights",
                "random",
                "--cache-dir",
                str(tmp_path / "cache"),
                "--results-dir",
                str(tmp_path / "runs"),
                "--models-dir",
                str(tmp_path / f"models{i}"),
                "--report-dir",
                str(tmp_path / f"report{i}"),
                "--steps",
                "50",
                "--timing-images",
                "16",
                "--timing-repeats",
                "1",
                "--latency-runs",
                "2",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=dict(os.environ, HARNESS_CACHE_SHARD_SIZE="8"),
        )

    procs = [start(0), start(1)]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    for p, out in zip(procs, outputs):
        assert p.returncode == 0, out
    runs = [load_run(p) for p in find_runs(None, tmp_path / "runs")]
    assert len(runs) == 2
    assert all(r["rows"][0]["error"] is None for r in runs)
    assert runs[0]["dataset"]["fingerprint"] == runs[1]["dataset"]["fingerprint"]
