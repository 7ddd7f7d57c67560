"""Scan an image folder (one sub-folder per class) and split it like retrain.py.

Files are recognised by content, not by extension: JPEG, PNG, GIF (first frame) and
BMP. Anything else is skipped with a reason, never silently dropped.
"""

from __future__ import annotations

import errno
import gc
import hashlib
import os
import stat
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from harness.errors import HarnessError, escaped, is_control
from harness.pipeline.scanindex import ScanIndex

MIN_IMAGES_WARNING = 20


class ImageFile(NamedTuple):
    """One usable image: where it is, its class, and a hash of its bytes.

    A named tuple, not a frozen dataclass: a scan makes one per file, and a frozen
    dataclass's ``__init__`` costs a third of a warm scan of 100,000 files.
    """

    file: str  # its path; a string, since Path objects cost too
    label: str
    content_hash: str  # sha1 hex of the file's bytes: the bottleneck cache key
    format: str

    @property
    def path(self) -> Path:
        return Path(self.file)

    @property
    def name(self) -> str:
        return os.path.basename(self.file)


@dataclass
class ImageSet:
    """The result of a scan: usable images, class names and what was skipped."""

    root: Path
    classes: list[str]
    images: list[ImageFile]
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    warnings: list[str] = field(default_factory=list)
    indexed: int = 0  # images whose hash came from the scan index, unread


def sniff_format(head: bytes) -> str | None:
    """The image format of a file from its first bytes, or None."""
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head.startswith(b"BM") and len(head) >= 14:
        return "bmp"
    return None


def _unusable_label(name: str, seen: dict[str, str]) -> str | None:
    """Why a class folder's name cannot be a label, or None (then it is remembered in ``seen``).

    labels.txt holds one label per line, so a control character (a newline) would shift
    every label after it; two names that differ only in Unicode normalisation (NFC and NFD)
    look identical and would be told apart by nobody.
    """
    bad = [c for c in name if is_control(c)]
    if bad:
        return (
            f"class folder name has a control character ({ascii(bad[0])}), which labels.txt "
            "(one label per line) cannot hold; rename the folder"
        )
    key = unicodedata.normalize("NFC", name)
    if key in seen:
        return (
            f"class folder name is {seen[key]!r} in another Unicode normalisation (NFC/NFD); "
            "the two would be indistinguishable labels: merge or rename them"
        )
    seen[key] = name
    return None


def not_a_file_reason(path: Path) -> str:
    """Why ``path`` (not a regular file, nor a folder) cannot be an image, in plain words."""
    try:
        mode = os.lstat(path).st_mode
    except OSError as exc:
        return f"cannot be read: {exc.strerror or exc}"
    if stat.S_ISLNK(mode):
        try:
            os.stat(path)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return "symbolic link loop"
            return f"broken link (to {os.readlink(path)})"
        mode = os.stat(path).st_mode
    kinds = [
        (stat.S_ISFIFO, "named pipe (FIFO), not a file"),
        (stat.S_ISSOCK, "socket, not a file"),
        (stat.S_ISCHR, "character device, not a file"),
        (stat.S_ISBLK, "block device, not a file"),
        (stat.S_ISDIR, "folder"),
    ]
    return next((text for test, text in kinds if test(mode)), "not a regular file")


def _read_image_file(path: Path) -> tuple[str | None, str | None, str]:  # fmt, sha1, reason
    """Returns (format, sha1, reason-if-unusable)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        return None, None, f"unreadable: {exc.strerror or exc}"
    if not data:
        return None, None, "empty file"
    fmt = sniff_format(data[:16])
    if fmt is None:
        return None, None, "not a JPEG, PNG, GIF or BMP image"
    return fmt, hashlib.sha1(data).hexdigest(), ""


def scan_images(image_dir: str | os.PathLike[str], index: ScanIndex | None = None) -> ImageSet:
    """Find the classes and images under ``image_dir``.

    Each direct sub-folder is a class named after the folder; images in nested folders
    below it belong to it too. Symlinked folders are not followed (no loops). With an
    ``index``, unchanged files are only stat'ed, not read (see :mod:`.scanindex`).

    Raises:
        HarnessError: if the folder is missing or has fewer than 2 classes with images.
    """
    root = Path(image_dir)
    if not root.is_dir():
        raise HarnessError(f"image directory not found: {root}")
    images: list[ImageFile] = []
    skipped: list[tuple[str, str]] = []
    warnings: list[str] = []
    real_root = root.resolve()
    class_dirs = []
    seen_labels: dict[str, str] = {}  # NFC form -> folder name
    for entry in sorted(root.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir() and (reason := _unusable_label(escaped(entry.name), seen_labels)):
            skipped.append((entry.name, reason))
            continue
        if entry.is_dir():
            target = entry.resolve()
            # A linked class folder is fine; one pointing back into the image folder loops.
            if entry.is_symlink() and (
                target == real_root or real_root in target.parents or target in real_root.parents
            ):
                skipped.append((entry.name, "symlink to a folder inside or above the image folder (loop)"))
                continue
            class_dirs.append(entry)
        elif entry.is_file():
            skipped.append((entry.name, "not inside a class folder"))
        else:
            skipped.append((entry.name, not_a_file_reason(entry)))
    classes: list[str] = []
    for class_dir in class_dirs:
        label = escaped(class_dir.name)
        if label != class_dir.name:
            warnings.append(
                f"class folder name '{label}' is not valid UTF-8 (a Latin-1 archive?): "
                f"labelled '{label}'; rename the folder to choose its label"
            )
        with _gc_paused():
            found = _scan_class(str(root), str(class_dir), label, index, images, skipped)
        if found == 0:
            warnings.append(f"class folder {label!r} has no usable images; ignored")
            continue
        if found < MIN_IMAGES_WARNING:
            warnings.append(
                f"class {label!r} has only {found} images (under {MIN_IMAGES_WARNING}); "
                "its accuracy will be unreliable"
            )
        classes.append(label)
    if index is not None:
        index.save()
    if len(classes) < 2:
        raise HarnessError(f"need at least 2 class folders with images under {root}, found {len(classes)}")
    indexed = index.hits if index is not None else 0
    return ImageSet(
        root=root, classes=classes, images=images, skipped=skipped, warnings=warnings, indexed=indexed
    )


@contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a scan adds one tuple per file (none form cycles).

    Otherwise the collector walks the growing image list again and again: about a
    quarter of a warm scan of 100,000 files.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _scan_class(
    root: str,
    folder: str,
    label: str,
    index: ScanIndex | None,
    images: list[ImageFile],
    skipped: list[tuple[str, str]],
) -> int:
    """Add the images under one class ``folder`` (and its sub-folders) to ``images``.

    Plain strings and ``os.scandir``, not pathlib or ``os.walk``: a warm scan of 100,000
    files is this loop plus one ``stat`` and one index lookup per file.
    """
    found = 0
    lookup = index.lookup if index is not None else None
    with os.scandir(folder) as it:
        entries = sorted(it, key=lambda e: e.name)
    rel_dir = os.path.relpath(folder, root) + os.sep
    subfolders = []
    for entry in entries:
        name = entry.name
        rel = rel_dir + name
        if name.startswith("."):
            if not entry.is_dir(follow_symlinks=False):
                skipped.append((rel, "hidden file"))
            continue
        if entry.is_dir(follow_symlinks=False):
            subfolders.append(entry.path)
            continue
        try:
            st = os.stat(entry.path)
        except OSError:
            st = None
        if st is not None and stat.S_ISDIR(st.st_mode):  # a link: real folders were met above
            skipped.append((rel, "symlinked folder inside a class is not followed (it could loop)"))
            continue
        if st is None or not stat.S_ISREG(st.st_mode):
            skipped.append((rel, not_a_file_reason(Path(entry.path))))
            continue
        known = lookup(rel, st) if lookup is not None else None
        if known is not None:
            digest, fmt = known
        else:
            fmt, digest, reason = _read_image_file(Path(entry.path))
            if fmt is None or digest is None:
                skipped.append((rel, reason))
                continue
            if index is not None:
                index.record(rel, st, digest, fmt)
        images.append(ImageFile(entry.path, label, digest, fmt))
        found += 1
    for sub in subfolders:
        found += _scan_class(root, sub, label, index, images, skipped)
    return found
