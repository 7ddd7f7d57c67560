import hashlib
import io
import os
import shutil

import pytest
from PIL import Image

from harness.errors import HarnessError
from harness.pipeline.images import scan_images
from harness.pipeline.split import split_images, which_set


def _retrain_py_which_set(file_name, validation, testing):
    # retrain.py's formula, written out independently as the reference.
    import re

    name = re.sub(r"_nohash_.*$", "", file_name)
    value = int(hashlib.sha1(name.encode()).hexdigest(), 16)
    pct = (value % (2**27)) * (100.0 / (2**27 - 1))
    return "validation" if pct < validation else "testing" if pct < validation + testing else "training"


def test_split_matches_retrain_py_and_groups_nohash():
    names = [f"img{i}.jpg" for i in range(500)]
    for n in names:
        assert which_set(n, 10, 10) == _retrain_py_which_set(n, 10, 10)
    sets = {which_set(f"photo_nohash_{i}.jpg", 10, 10) for i in range(30)}
    assert len(sets) == 1
    counts = {s: sum(which_set(n, 10, 10) == s for n in names) for s in ("training", "validation", "testing")}
    assert 30 < counts["testing"] < 75 and 30 < counts["validation"] < 75


def test_adding_images_never_moves_existing_ones(small_flowers, tmp_path):
    before = scan_images(small_flowers)
    split_before = {str(i.path.name): s for s, imgs in split_images(before.images).items() for i in imgs}
    grown = tmp_path / "grown"
    shutil.copytree(small_flowers, grown)
    for k in range(15):
        Image.new("RGB", (40, 30), (k * 10, 100, 50)).save(grown / "daisy" / f"new_{k}.png")
    after = scan_images(grown)
    split_after = {str(i.path.name): s for s, imgs in split_images(after.images).items() for i in imgs}
    assert len(split_after) == len(split_before) + 15
    assert all(split_after[name] == s for name, s in split_before.items())


def test_formats_by_content_not_extension(tmp_path):
    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        for k in range(2):
            Image.new("RGB", (8, 8), (k, 0, 0)).save(tmp_path / cls / f"ok{k}.jpg")
    png = io.BytesIO()
    Image.new("RGB", (8, 8)).save(png, format="PNG")
    (tmp_path / "a" / "png_named.jpg").write_bytes(png.getvalue())
    Image.new("RGB", (8, 8)).save(tmp_path / "a" / "pic.bmp")
    Image.new("P", (8, 8)).save(tmp_path / "b" / "anim.gif")
    (tmp_path / "a" / "notes.jpg").write_text("not an image")
    (tmp_path / "b" / "empty.jpg").write_bytes(b"")
    (tmp_path / "b" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    result = scan_images(tmp_path)
    formats = {i.path.name: i.format for i in result.images}
    assert formats["png_named.jpg"] == "png" and formats["pic.bmp"] == "bmp" and formats["anim.gif"] == "gif"
    reasons = dict(result.skipped)
    assert reasons["a/notes.jpg"].startswith("not a JPEG")
    assert reasons["b/empty.jpg"] == "empty file"
    assert reasons["b/.DS_Store"] == "hidden file"
    assert any("only 4 images" in w for w in result.warnings)


def test_fewer_than_two_classes_is_an_error(tmp_path):
    (tmp_path / "only").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "only" / "x.jpg")
    (tmp_path / "empty").mkdir()
    with pytest.raises(HarnessError, match="at least 2 class folders"):
        scan_images(tmp_path)
    with pytest.raises(HarnessError, match="not found"):
        scan_images(tmp_path / "missing")


def test_files_that_are_not_files_get_a_plain_reason(tmp_path, flowers):
    import socket

    from harness.pipeline.images import scan_images

    root = tmp_path / "photos"
    for label in ("daisy", "roses"):
        (root / label).mkdir(parents=True)
        for photo in sorted((flowers / label).iterdir())[:2]:
            (root / label / photo.name).write_bytes(photo.read_bytes())
    os.mkfifo(root / "daisy" / "pipe.jpg")
    (root / "daisy" / "device.jpg").symlink_to("/dev/null")
    (root / "daisy" / "gone.jpg").symlink_to(root / "nowhere.jpg")
    (root / "daisy" / "self.jpg").symlink_to(root / "daisy" / "self.jpg")
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(root / "roses" / "sock.jpg"))
    try:
        reasons = dict(scan_images(root).skipped)
    finally:
        server.close()
    assert reasons["daisy/pipe.jpg"] == "named pipe (FIFO), not a file"
    assert reasons["daisy/device.jpg"] == "character device, not a file"
    assert reasons["daisy/gone.jpg"].startswith("broken link (to ")
    assert reasons["daisy/self.jpg"] == "symbolic link loop"
    assert reasons["roses/sock.jpg"] == "socket, not a file"


def test_decoder_failures_read_as_plain_lines():
    from harness.errors import plain_reason

    tf_text = (
        "{{function_node __wrapped__DecodeImage_device_/job:localhost/replica:0/task:0/device:CPU:0}} "
        "jpeg::Uncompress failed. Invalid JPEG data or crop window. [Op:DecodeImage] name: "
    )
    assert plain_reason(RuntimeError(tf_text)) == "corrupt or truncated JPEG data"
    other = plain_reason(RuntimeError("{{function_node __wrapped__X}} odd failure [Op:Foo] name: x\ntrace"))
    assert other == "odd failure"


def test_class_names_that_cannot_be_labels_are_skipped_with_a_reason(tmp_path, flowers):
    from harness.pipeline.images import scan_images

    root = tmp_path / "photos"
    names = ["daisy", "tulips\nred", "caf\u00e9", "cafe\u0301", "roses"]  # the last two: NFC and NFD
    for name, label in zip(names, ["daisy", "tulips", "tulips", "tulips", "roses"]):
        (root / name).mkdir(parents=True)
        for photo in sorted((flowers / label).iterdir())[:2]:
            (root / name / photo.name).write_bytes(photo.read_bytes())
    scanned = scan_images(root)
    reasons = dict(scanned.skipped)
    assert scanned.classes == ["caf\u00e9", "daisy", "roses"] or scanned.classes == [
        "cafe\u0301",
        "daisy",
        "roses",
    ]
    assert "control character ('\\n')" in reasons["tulips\nred"]
    (other,) = {"caf\u00e9", "cafe\u0301"} - set(scanned.classes)
    assert "another Unicode normalisation" in reasons[other]
    assert all("\n" not in label for label in scanned.classes)


def test_a_20000_pixel_jpeg_is_decoded_downscaled_and_used(tiny_backbone, tmp_path, flowers):
    """TensorFlow fails on it at full size; harness decodes it at 1/8 in the DCT."""
    import tensorflow as tf

    from harness.pipeline import tfops
    from harness.pipeline.backbone import load_backbone
    from harness.pipeline.extract import extract_features

    root = tmp_path / "photos"
    for label in ("daisy", "roses"):
        (root / label).mkdir(parents=True)
        for photo in sorted((flowers / label).iterdir())[:2]:
            (root / label / photo.name).write_bytes(photo.read_bytes())
    huge = root / "daisy" / "panorama.jpg"
    Image.new("RGB", (20000, 20000), (200, 180, 40)).save(huge, quality=30)
    pixels = tfops.load_resized(tf.constant(str(huge)), 299).numpy()
    assert pixels.shape == (299, 299, 3)
    assert abs(pixels[..., 0].mean() - 200) < 3 and abs(pixels[..., 2].mean() - 40) < 3
    images = scan_images(root).images
    assert str(huge) in {str(i.path) for i in images}
    result = extract_features(load_backbone(tiny_backbone, "random"), images, None, batch_size=2)
    assert result.failed == {} and result.computed == len(images)


def test_the_scan_index_reads_only_new_or_changed_files(tmp_path, flowers, monkeypatch):
    import harness.pipeline.images as images_module
    from harness.pipeline.cacheroot import CacheRoot
    from harness.pipeline.scanindex import ScanIndex

    root = tmp_path / "photos"
    for label in ("daisy", "roses"):
        (root / label).mkdir(parents=True)
        for photo in sorted((flowers / label).iterdir())[:3]:
            (root / label / photo.name).write_bytes(photo.read_bytes())
    reads = []
    real_read = images_module._read_image_file
    monkeypatch.setattr(images_module, "_read_image_file", lambda p: reads.append(p.name) or real_read(p))

    def scan():
        reads.clear()
        return {
            str(i.path.relative_to(root)): i.content_hash
            for i in scan_images(root, CacheRoot(tmp_path / "c").scan_index(root)).images
        }

    first = scan()
    assert len(reads) == 6
    assert scan() == first and reads == []  # warm: nothing read
    changed = sorted((root / "roses").iterdir())[0]
    changed.write_bytes(sorted((flowers / "tulips").iterdir())[0].read_bytes())
    (root / "daisy" / sorted(p.name for p in (root / "daisy").iterdir())[0]).unlink()
    third = scan()
    assert reads == [changed.name]
    assert third[str(changed.relative_to(root))] != first[str(changed.relative_to(root))]
    assert len(third) == 5
    os.utime(changed, ns=(1, 1))  # same bytes, new mtime: read again, same hash
    assert scan() == third and reads == [changed.name]
    index_file = CacheRoot(tmp_path / "c").scan_index(root).path
    assert len(ScanIndex(index_file)._old) == 5  # the deleted file left the index
    index_file.write_text('{"index": "harness.scan-index/2", "path": ["x"]}')  # damaged
    assert scan() == third and len(reads) == 5  # read again, nothing wrong
