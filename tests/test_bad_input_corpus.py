"""Issue 16's corpus in one real run: names that break files, a 20000 x 20000 JPEG, a FIFO,
a device link, and a weights file Keras would delete, with the real Inception v3."""

import json
import os
import shutil
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest
from PIL import Image

SHARED_MODELS = Path(__file__).resolve().parents[2] / "shared" / "keras_home" / "models"
INCEPTION = SHARED_MODELS / "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"


def _corpus(real: Path, root: Path) -> tuple[dict[str, str], set[str]]:
    """Returns (usable relative path -> label, relative paths that must be skipped)."""
    usable: dict[str, str] = {}
    unusable: set[str] = set()
    # Two folders named Café, NFC and NFD: the first by sort order (NFD's plain "e" sorts
    # before "é") is the class, the other is skipped.
    first, twin = sorted({unicodedata.normalize(form, "Café") for form in ("NFC", "NFD")})
    sources = {
        "daisy": "daisy",
        "roses": "roses",
        first: "tulips",
        twin: "sunflowers",
        "tulips\nred": "tulips",
    }
    for folder, source in sources.items():
        (root / folder).mkdir(parents=True)
        for photo in sorted((real / source).iterdir())[:6]:
            shutil.copy(photo, root / folder / photo.name)
            if folder == twin or "\n" in folder:
                continue
            usable[f"{folder}/{photo.name}"] = folder
    unusable |= {twin, "tulips\nred"}
    Image.new("RGB", (20000, 20000), (200, 180, 40)).save(root / "daisy" / "panorama.jpg", quality=30)
    usable["daisy/panorama.jpg"] = "daisy"
    os.mkfifo(root / "daisy" / "pipe.jpg")
    (root / "roses" / "null.jpg").symlink_to("/dev/null")
    (root / "roses" / "name\nwith newline.jpg").write_bytes((root / "roses" / next(iter(
        p.name for p in sorted((real / "roses").iterdir())[:1]))).read_bytes())  # fmt: skip
    usable["roses/name\nwith newline.jpg"] = "roses"  # a file name is not a label: usable
    unusable |= {"daisy/pipe.jpg", "roses/null.jpg"}
    return usable, unusable


@pytest.mark.skipif(not INCEPTION.is_file(), reason="Inception v3 weights are not in ../shared")
def test_the_issue_16_corpus_runs_to_the_end_and_keeps_the_weights_file(flowers, tmp_path):
    root = tmp_path / "photos"
    usable, unusable = _corpus(flowers, root)
    home = tmp_path / "keras_home"
    (home / "models").mkdir(parents=True)
    weights = home / "models" / INCEPTION.name
    shutil.copy(INCEPTION, weights)  # its MD5 is not the one Keras expects
    env = dict(os.environ, KERAS_HOME=str(home), TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("HARNESS_WEIGHTS_DIR", None)
    args = [
        sys.executable, "-m", "harness", "run", "--image-dir", str(root), "--backbones", "inception_v3",
        "--cache-dir", str(tmp_path / "cache"), "--results-dir", str(tmp_path / "results"),
        "--models-dir", str(tmp_path / "models"), "--steps", "30", "--timing-images", "4",
        "--timing-repeats", "1", "--latency-runs", "1", "--testing-percentage", "25",
    ]  # fmt: skip
    done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert weights.is_file() and weights.stat().st_size == INCEPTION.stat().st_size
    assert "leaving it in place" in done.stderr + done.stdout

    (run_file,) = (tmp_path / "results" / "runs").glob("*.json")
    record = json.loads(run_file.read_text())
    (row,) = record["rows"]
    assert row["error"] is None and row["weights"] == "imagenet"
    skipped = {item["path"]: item["reason"] for item in record["skipped_files"]}
    assert set(skipped) == unusable, skipped
    assert "control character" in skipped["tulips\nred"]
    assert "NFC/NFD" in skipped[unicodedata.normalize("NFC", "Café")]
    assert skipped["daisy/pipe.jpg"].startswith("named pipe")
    assert skipped["roses/null.jpg"].startswith("character device")
    for reason in skipped.values():  # plain, one line, no TensorFlow internals
        assert "\n" not in reason and "function_node" not in reason and "Op:" not in reason
    # Nothing lost: every usable file was trained, validated or tested on.
    assert row["n_train"] + row["n_validation"] + row["n_test"] == len(usable)
    assert row["n_failed_images"] == 0
    labels = (tmp_path / "models" / "inception_v3" / "labels.txt").read_text(encoding="utf-8")
    assert labels.splitlines() == sorted({*usable.values()})
    # Every line the user saw is one line per message: the newline names are escaped.
    assert "tulips\\nred" in done.stderr and "roses/name\\nwith newline.jpg" not in labels
