"""Write a file so that readers see the old content or the new, never half of it."""

from __future__ import annotations

import os
from pathlib import Path

from harness.errors import HarnessError


def atomic_write(path: Path, data: bytes, *, what: str | None = None) -> None:
    """Write ``data`` to a temporary sibling, fsync it, and rename it over ``path``.

    A crash or a full disk leaves ``path`` as it was. The temporary name carries the
    writer's pid, so the cache can sweep files of writers that were killed.

    Raises:
        HarnessError: naming ``what`` (default: the path) and the OS reason.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise HarnessError(f"cannot write {what or path}: {exc.strerror or exc}") from exc
