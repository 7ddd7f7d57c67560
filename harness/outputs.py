"""Where harness may write, and how it replaces what it wrote.

Rules, checked before any long work and again under a lock at the moment of writing:

- A **model folder** is written only where nothing is, into an empty folder, or over a
  model folder harness wrote: one holding :data:`MODEL_MARKER` (the list of files it
  wrote) and nothing else. A folder with any other file is refused with one line; harness
  never deletes what it did not write.
- A model folder is replaced as one unit (:mod:`harness.modelfolder`).
- A **single output file** (a report, retrain.py's ``output_graph.pb``) replaces only a file
  harness wrote there, as recorded in the folder's :data:`FILES_MANIFEST` with its hash.
- The image folder, its parents and its children are never outputs.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

from harness.atomic import atomic_write
from harness.errors import HarnessError, printable

#: In every model folder harness writes: JSON ``{"written_by": "harness", "files": [...]}``.
MODEL_MARKER = ".harness-model"
#: What a model folder written before the marker existed may hold (recognised by harness.json).
LEGACY_MODEL_FILES = frozenset(
    {
        "saved_model.pb",
        "fingerprint.pb",
        "variables",
        "assets",
        "labels.txt",
        "harness.json",
        "output_graph.pb",
        "output_labels.txt",
        "model.tflite",
        "model_float16.tflite",
        "model_dynamic.tflite",
        "model_int8.tflite",
    }
)
#: Beside single output files: their names and the SHA-256 of what harness wrote.
FILES_MANIFEST = ".harness-files"
STAGING_TAG = ".staging-"

Log = Callable[[str], None]


def shown(path: Path) -> str:
    return printable(str(path))


# --- what a path is ---------------------------------------------------------------------


def list_entries(folder: Path) -> list[str]:
    try:
        return sorted(os.listdir(folder))
    except OSError as exc:
        raise HarnessError(f"cannot read {shown(folder)}: {exc.strerror or exc}") from None


def marker_files(folder: Path) -> set[str] | None:
    """The files harness recorded in ``folder``'s marker, or None if it holds no model of ours."""
    marker = folder / MODEL_MARKER
    try:
        data = json.loads(marker.read_text(encoding="utf-8"))
    except FileNotFoundError:
        data = None
    except (OSError, ValueError):
        return None
    if isinstance(data, dict) and data.get("written_by") == "harness" and isinstance(data.get("files"), list):
        return {str(f) for f in data["files"]} | {MODEL_MARKER}
    try:  # a model written before the marker: its harness.json names a backbone and classes
        meta = json.loads((folder / "harness.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if isinstance(meta, dict) and "backbone" in meta and "classes" in meta:
        return set(LEGACY_MODEL_FILES)
    return None


def foreign_files(folder: Path) -> list[str] | None:
    """Entries of an existing model folder that harness did not write there.

    Returns:
        None when ``folder`` holds no model harness wrote (and is not empty); else the
        names harness would have to delete to replace it (empty: it may be replaced).
    """
    names = list_entries(folder)
    if not names:
        return []
    ours = marker_files(folder)
    if ours is None:
        return None
    return [n for n in names if n not in ours]


def check_apart_from_images(
    path: Path, image_dir: Path | None, what: str, *, container: bool = False
) -> None:
    """The image folder, its parents and its children are never outputs.

    Args:
        container: ``path`` only receives new entries (a folder of runs or of model
            folders), so it may hold the image folder; it may not be or be inside it.
    """
    if image_dir is None:
        return
    out, images = path.resolve(), Path(image_dir).resolve()
    if out == images or (out in images.parents and not container):
        where = "is" if out == images else "holds"
        raise HarnessError(
            f"{what} {shown(path)} {where} the image folder {shown(image_dir)}: "
            "writing there would replace your photos; choose a folder outside it"
        )
    if images in out.parents:
        raise HarnessError(
            f"{what} {shown(path)} is inside the image folder {shown(image_dir)} "
            "(it would be read as a class); choose a folder outside it"
        )


def check_model_folder(path: Path, image_dir: Path | None = None, what: str = "model folder") -> None:
    """Refuse, with one line, a model folder harness may not write or replace.

    Raises:
        HarnessError: ``path`` is a file, holds files harness did not write, is
            write-protected, holds the current folder, or touches the image folder.
    """
    check_apart_from_images(path, image_dir, what)
    resolved = path.resolve()
    if resolved == Path.cwd() or resolved in Path.cwd().parents:
        raise HarnessError(
            f"{what} {shown(path)} holds the current folder, which harness would replace; "
            "name a new folder such as harness-model"
        )
    if not path.exists() and not path.is_symlink():
        return
    if not path.is_dir():
        raise HarnessError(f"{what} {shown(path)} exists and is not a folder; choose another path")
    foreign = foreign_files(path)
    if foreign is None:
        raise HarnessError(
            f"{what} {shown(path)} holds files harness did not write; it replaces only its own "
            "model folders: choose a new or empty folder"
        )
    if foreign:
        names = ", ".join(printable(n) for n in foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        raise HarnessError(
            f"{what} {shown(path)} holds files harness did not write ({names}); move them out "
            "or choose another folder"
        )
    if not path.stat().st_mode & stat.S_IWUSR:
        raise HarnessError(
            f"{what} {shown(path)} is write-protected; harness leaves it as it is "
            "(make it writable to replace it, or choose another folder)"
        )


@contextlib.contextmanager
def locked(folder: Path, log: Log | None, what: str) -> Iterator[None]:
    """An exclusive lock on ``folder`` (a directory): writers of the folders in it take turns."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if log is not None:
                log(f"waiting for another harness writing {what}")
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def damaged_model_file(folder: Path) -> str | None:
    """The first file of a model folder harness wrote that changed since (truncated,
    corrupted), as one line; None when all there are whole or nothing was recorded.

    A damaged TFLite file can crash the interpreter, so this is checked before loading.
    """
    try:
        record = json.loads((folder / MODEL_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    hashes = record.get("sha256") if isinstance(record, dict) else None
    if not isinstance(hashes, dict):
        return None
    for rel, digest in hashes.items():
        found = sha256_of(folder / rel)
        # A file removed on purpose (a TFLite file not shipped) is for the loader to miss.
        if found is not None and found != digest:
            return f"{shown(folder / rel)} is damaged (not the file harness wrote)"
    return None


# --- single output files ----------------------------------------------------------------


def sha256_of(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _manifest(folder: Path) -> dict[str, str]:
    try:
        data = json.loads((folder / FILES_MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def check_output_file(path: Path, image_dir: Path | None = None, what: str = "output file") -> None:
    """Refuse, with one line, to replace a file harness did not write.

    Raises:
        HarnessError: ``path`` exists and is not a file harness wrote (unchanged since).
    """
    if image_dir is not None:
        check_apart_from_images(path.parent, image_dir, f"the folder of {what}", container=True)
    if not path.exists() and not path.is_symlink():
        return
    if path.is_dir():
        raise HarnessError(f"{what} {shown(path)} is a folder; name a file")
    if _manifest(path.parent).get(path.name) != sha256_of(path):
        raise HarnessError(
            f"{what} {shown(path)} exists and harness did not write it; move it or choose another path"
        )


def write_output_files(folder: Path, files: dict[str, bytes], *, what: str = "output") -> dict[str, Path]:
    """Write ``files`` (name -> bytes) into ``folder``, each atomically, replacing only
    files harness wrote there; the folder's manifest records what was written.

    Raises:
        HarnessError: a file there is not harness's, or the folder cannot be written.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HarnessError(f"cannot write {what} to {shown(folder)}: {exc.strerror or exc}") from None
    written = {}
    with locked(folder, None, f"{what} in {shown(folder)}"):
        for name in files:
            check_output_file(folder / name, what=what)
        manifest = _manifest(folder)
        for name, data in files.items():
            atomic_write(folder / name, data, what=f"{what} {shown(folder / name)}")
            manifest[name] = hashlib.sha256(data).hexdigest()
            written[name] = folder / name
        atomic_write(folder / FILES_MANIFEST, json.dumps(manifest, indent=1).encode(), what=what)
    return written


REPORT_FILES = {"csv": "report.csv", "md": "report.md", "html": "report.html"}


def check_report_dir(folder: Path, image_dir: Path | None = None) -> None:
    """Before any work: the report's files there may be (re)written by harness.

    Raises:
        HarnessError: one of them exists and harness did not write it.
    """
    for name in REPORT_FILES.values():
        check_output_file(folder / name, image_dir, what="report")
