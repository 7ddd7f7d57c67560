"""Full disks: one clear error, and what was written before stays intact."""

import errno
import os
import subprocess

import numpy as np
import pytest

from harness.errors import HarnessError
from harness.pipeline.cacheroot import CacheRoot
from harness.results.store import load_run


def crafted_run():
    from harness.schema import SCHEMA, row_columns

    row = {c: None for c in row_columns()} | {
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
    cache = CacheRoot(tmp_path).bottleneck_cache("bb", "id", 2)
    cache.write(["a" * 40], np.ones((1, 2), np.float32))
    monkeypatch.setattr("harness.atomic.os.fsync", _enospc)
    with pytest.raises(HarnessError, match="No space left on device"):
        cache.write(["b" * 40], np.ones((1, 2), np.float32))
    monkeypatch.undo()
    assert set(cache.load().features) == {"a" * 40}
    assert not list(cache.directory.glob(".*.tmp"))


def test_disk_full_writing_a_report_keeps_the_previous_one(tmp_path, monkeypatch):
    from harness.results import report

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
    from harness.results import report
    from harness.results.store import save_run

    record = crafted_run()
    saved = save_run(record, tiny_disk / "runs")
    cache = CacheRoot(tiny_disk).bottleneck_cache("bb", "id", 256)
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
