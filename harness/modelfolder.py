"""Replace a model folder as one unit (see :mod:`harness.outputs` for the rules).

Everything is built in a staging folder beside the model, then swapped in with one
``renameat2(RENAME_EXCHANGE)`` (Linux), so a reader sees the old model or the new one,
complete, at every instant, whatever is killed when. Writers of one folder take turns (a
lock on its parent); staging folders left by killed writers are removed.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import re
import shutil
import stat
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from harness.errors import HarnessError
from harness.outputs import (
    MODEL_MARKER,
    STAGING_TAG,
    Log,
    check_model_folder,
    list_entries,
    locked,
    marker_files,
    sha256_of,
    shown,
)


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
    for name in list_entries(out.parent):
        stale = out.parent / name
        if stale.is_symlink() or not stale.is_dir():
            continue
        ours = name.startswith(prefix) and (
            (stale / ".harness-staging").exists() or marker_files(stale) is not None
        )
        if ours or (legacy.fullmatch(name) and marker_files(stale) is not None):
            if not _remove_ours(stale) and log is not None:
                log(f"warning: could not remove the stale staging folder {shown(stale)}")


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


def _file_hashes(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folder``, by relative path (the marker's record)."""
    out = {}
    for root, _dirs, files in os.walk(folder):
        for name in files:
            full = Path(root) / name
            rel = full.relative_to(folder).as_posix()
            if rel not in (MODEL_MARKER, ".harness-staging"):
                out[rel] = sha256_of(full) or ""
    return dict(sorted(out.items()))


def _write_marker(staging: Path) -> None:
    files = sorted(n for n in os.listdir(staging) if n not in (MODEL_MARKER, ".harness-staging"))
    record = {"written_by": "harness", "files": files, "sha256": _file_hashes(staging)}
    (staging / MODEL_MARKER).write_text(json.dumps(record, indent=1))
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
        raise HarnessError(f"cannot create {shown(out.parent)}: {exc.strerror or exc}") from None
    with locked(out.parent, log, f"{what} {shown(out)}"):
        check_model_folder(out, what=what)
        _clean_stale(out, log)
        try:
            staging = Path(tempfile.mkdtemp(prefix=f".{out.name}{STAGING_TAG}", dir=out.parent))
            umask = os.umask(0)
            os.umask(umask)
            staging.chmod(0o777 & ~umask)  # mkdtemp's 0700 would hide the model from other users
            (staging / ".harness-staging").touch()
        except OSError as exc:
            raise HarnessError(f"{what} {shown(out)} is not writable: {exc.strerror or exc}") from None
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
            raise HarnessError(f"cannot write the {what} {shown(out)}: {exc.strerror or exc}") from None
        except BaseException:
            _remove_ours(staging)
            raise
        # ``staging`` now holds the previous model.
        if not _remove_ours(staging) and log is not None:
            log(f"warning: could not remove the previous model, now in {shown(staging)}")
