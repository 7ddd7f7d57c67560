"""Messy photo folders: every file used or skipped with a reason; clear one-line errors."""

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from harness.cli import cli
from harness.results.store import find_runs, load_run

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
    from harness.pipeline.images import scan_images

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
