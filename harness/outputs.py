"""Where harness may write, and how it replaces what it wrote.

Rules, checked before any long work and again under a lock at the moment of writing:

- A **model folder** is written only where nothing is, into an empty folder, or over a
  model folder harness wrote: one holding :data:`MODEL_MARKER` (the list of files it
  wrote) and nothing else. A folder with any other file is refused with one line; harness
  never deletes what it did not write.
- A model folder is replaced as one unit: everything is built in a staging folder beside
  it, then swapped in with one ``renameat2(RENAME_EXCHANGE)`` (Linux), so a reader sees the
  old model or the new one, complete, at every instant. Writers of one folder take turns
  (a lock on its parent); staging folders left by killed writers are removed.
- A **single output file** (a report, retrain.py's ``output_graph.pb``) replaces only a file
  harness wrote there, as recorded in the folder's :data:`FILES_MANIFEST` with its hash.
- The image folder, its parents and its children are never outputs.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import stat
import sys
import tempfile
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


def _shown(path: Path) -> str:
    return printable(str(path))


# --- what a path is ---------------------------------------------------------------------


def _entries(folder: Path) -> list[str]:
    try:
        return sorted(os.listdir(folder))
    except OSError as exc:
        raise HarnessError(f"cannot read {_shown(folder)}: {exc.strerror or exc}") from None


def _marker_files(folder: Path) -> set[str] | None:
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
    names = _entries(folder)
    if not names:
        return []
    ours = _marker_files(folder)
    if ours is None:
        return None
    return [n for n in names if n not in ours]


def _related(a: Path, b: Path) -> bool:
    return a == b or a in b.parents or b in a.parents


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
            f"{what} {_shown(path)} {where} the image folder {_shown(image_dir)}: "
            "writing there would replace your photos; choose a folder outside it"
        )
    if images in out.parents:
        raise HarnessError(
            f"{what} {_shown(path)} is inside the image folder {_shown(image_dir)} "
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
            f"{what} {_shown(path)} holds the current folder, which harness would replace; "
            "name a new folder such as harness-model"
        )
    if not path.exists() and not path.is_symlink():
        return
    if not path.is_dir():
        raise HarnessError(f"{what} {_shown(path)} exists and is not a folder; choose another path")
    foreign = foreign_files(path)
    if foreign is None:
        raise HarnessError(
            f"{what} {_shown(path)} holds files harness did not write; it replaces only its own "
            "model folders: choose a new or empty folder"
        )
    if foreign:
        shown = ", ".join(printable(n) for n in foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        raise HarnessError(
            f"{what} {_shown(path)} holds files harness did not write ({shown}); move them out "
            "or choose another folder"
        )
    if not path.stat().st_mode & stat.S_IWUSR:
        raise HarnessError(
            f"{what} {_shown(path)} is write-protected; harness leaves it as it is "
            "(make it writable to replace it, or choose another folder)"
        )


# --- replacing a model folder ------------------------------------------------------------


@contextlib.contextmanager
def _locked(folder: Path, log: Log | None, what: str) -> Iterator[None]:
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


def _remove_ours(folder: Path) -> bool:
    """Delete a folder harness wrote, write-protected parts included; False if it could not."""

    def make_writable(func: Callable[..., object], name: str, _exc: object) -> None:
        parent = os.path.dirname(name)
        with contextlib.suppress(OSError):
            os.chmod(parent, os.stat(parent).st_mode | stat.S_IWUSR | stat.S_IXUSR)
        func(name)

    try:
        folder.chmod(folder.stat().st_mode | stat.S_IWUSR | stat.S_IXUSR)
        shutil.rmtree(folder, onerror=make_writable)
    except OSError:
        return False
    return True


def _clean_stale(out: Path, log: Log | None) -> None:
    """Staging folders of killed writers (only under the lock: no live writer has one),
    and those earlier versions of harness left (``.NAME.old``, ``.NAME.xxxxxxxx``)."""
    prefix = f".{out.name}{STAGING_TAG}"
    legacy = re.compile(re.escape(f".{out.name}.") + r"(old|[a-z0-9_]{8})")
    for name in _entries(out.parent):
        stale = out.parent / name
        if stale.is_symlink() or not stale.is_dir():
            continue
        ours = name.startswith(prefix) and (
            (stale / ".harness-staging").exists() or _marker_files(stale) is not None
        )
        if ours or (legacy.fullmatch(name) and _marker_files(stale) is not None):
            if not _remove_ours(stale) and log is not None:
                log(f"warning: could not remove the stale staging folder {_shown(stale)}")


_RENAME_EXCHANGE = 2


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (Linux renameat2); False where that is unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd = -100
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _fsync_tree(folder: Path) -> None:
    for root, _dirs, files in os.walk(folder):
        for name in files:
            with open(os.path.join(root, name), "rb") as fh:
                os.fsync(fh.fileno())
        fd = os.open(root, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_marker(staging: Path) -> None:
    files = sorted(n for n in os.listdir(staging) if n not in (MODEL_MARKER, ".harness-staging"))
    (staging / MODEL_MARKER).write_text(json.dumps({"written_by": "harness", "files": files}))
    (staging / ".harness-staging").unlink(missing_ok=True)


@contextlib.contextmanager
def replacing_model_folder(
    path: str | os.PathLike[str], *, log: Log | None = None, what: str = "model folder"
) -> Iterator[Path]:
    """Yield a staging folder to write a whole model into; on success it becomes ``path``.

    The swap is one atomic step, so ``path`` holds the old model or the new one, complete,
    at every instant, whatever is killed when. On an error the staging folder is removed
    and ``path`` is left as it was.

    Raises:
        HarnessError: ``path`` may not be replaced (see :func:`check_model_folder`) or
            cannot be written, in one line naming it.
    """
    out = Path(path)
    if out.name in ("", ".", "..") or out.is_symlink():
        out = out.resolve()  # a link is the user's: the folder it names is replaced
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HarnessError(f"cannot create {_shown(out.parent)}: {exc.strerror or exc}") from None
    with _locked(out.parent, log, f"{what} {_shown(out)}"):
        check_model_folder(out, what=what)
        _clean_stale(out, log)
        try:
            staging = Path(tempfile.mkdtemp(prefix=f".{out.name}{STAGING_TAG}", dir=out.parent))
            umask = os.umask(0)
            os.umask(umask)
            staging.chmod(0o777 & ~umask)  # mkdtemp's 0700 would hide the model from other users
            (staging / ".harness-staging").touch()
        except OSError as exc:
            raise HarnessError(f"{what} {_shown(out)} is not writable: {exc.strerror or exc}") from None
        try:
            yield staging
            _write_marker(staging)
            _fsync_tree(staging)
            if out.exists() or out.is_symlink():
                if not _exchange(staging, out):
                    # No atomic exchange here: two renames, the old kept until the new is in.
                    os.replace(out, staging.with_name(staging.name + ".old"))
                    os.replace(staging, out)
                    staging = staging.with_name(staging.name + ".old")
            else:
                os.rename(staging, out)
                return
        except OSError as exc:
            _remove_ours(staging)
            raise HarnessError(f"cannot write the {what} {_shown(out)}: {exc.strerror or exc}") from None
        except BaseException:
            _remove_ours(staging)
            raise
        # ``staging`` now holds the previous model.
        if not _remove_ours(staging) and log is not None:
            log(f"warning: could not remove the previous model, now in {_shown(staging)}")


# --- single output files ----------------------------------------------------------------


def _sha256(path: Path) -> str | None:
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
        raise HarnessError(f"{what} {_shown(path)} is a folder; name a file")
    if _manifest(path.parent).get(path.name) != _sha256(path):
        raise HarnessError(
            f"{what} {_shown(path)} exists and harness did not write it; move it or choose another path"
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
        raise HarnessError(f"cannot write {what} to {_shown(folder)}: {exc.strerror or exc}") from None
    written = {}
    with _locked(folder, None, f"{what} in {_shown(folder)}"):
        for name in files:
            check_output_file(folder / name, what=what)
        manifest = _manifest(folder)
        for name, data in files.items():
            atomic_write(folder / name, data, what=f"{what} {_shown(folder / name)}")
            manifest[name] = hashlib.sha256(data).hexdigest()
            written[name] = folder / name
        atomic_write(folder / FILES_MANIFEST, json.dumps(manifest, indent=1).encode(), what=what)
    return written
