"""Write a file so that readers see the old content or the new, never half of it."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from harness.errors import HarnessError, escaped


def atomic_write(path: Path, data: bytes, *, what: str | None = None, overwrite: bool = True) -> None:
    """Write ``data`` to a temporary sibling, fsync it, and rename it over ``path``.

    A crash or a full disk leaves ``path`` as it was. The temporary name carries the
    writer's pid, so the cache can sweep files of writers that were killed.

    Args:
        overwrite: False links the file into place instead, failing if ``path`` exists,
            so that two writers can never replace each other's file.

    Raises:
        HarnessError: naming ``what`` (default: the path) and the OS reason, or that
            ``path`` exists when ``overwrite`` is False.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)
    except FileExistsError as exc:
        raise HarnessError(f"{what or path} exists already; not overwriting it") from exc
    except OSError as exc:
        raise HarnessError(f"cannot write {what or path}: {exc.strerror or exc}") from exc
    finally:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass  # a read-only file system: the error above is the one to report


def ensure_writable(*folders: Path | None) -> None:
    """Fail before any long work if an output folder cannot be written (None: skipped).

    Raises:
        HarnessError: naming the folder and the OS reason.
    """
    import tempfile

    for folder in folders:
        if folder is None:
            continue
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=folder):
                pass
        except OSError as exc:
            raise HarnessError(f"output directory {folder} is not writable: {exc.strerror or exc}") from None


def json_safe(value: Any) -> Any:
    """``value`` with NaN and infinities as null (JSON has neither: strict parsers refuse them)
    and non-UTF-8 bytes of file names escaped."""
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, str):
        return escaped(value)  # a file name that was not UTF-8
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def json_text(value: Any, indent: int | None = 2) -> str:
    """Strict JSON (no NaN, no Infinity) of ``value``; unknown types as their ``str``."""
    return json.dumps(json_safe(value), indent=indent, default=str, allow_nan=False)
