"""What a scan already knows: (path, size, mtime, inode) -> content hash, like git's index.

A warm scan then only stats each file; a file whose size, modification time or inode
changed (or a new one) is read and hashed again. The index lives in the cache folder,
one JSON file per image folder, written atomically after each scan; files no longer
there are dropped from it.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from harness.atomic import atomic_write

FORMAT = "harness.scan-index/1"


class ScanIndex:
    """Hashes of the image files under one folder, keyed by their relative path."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._old: dict[str, list] = {}
        self._new: dict[str, list] = {}
        self.hits = 0
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("format") == FORMAT:
                self._old = data["entries"]
        except (OSError, ValueError, KeyError, AttributeError):
            pass  # missing or damaged: the scan just reads every file, as without an index

    @classmethod
    def for_folder(cls, cache_dir: str | os.PathLike[str], image_dir: str | os.PathLike[str]) -> ScanIndex:
        key = hashlib.sha256(str(Path(image_dir).resolve()).encode()).hexdigest()[:16]
        return cls(Path(cache_dir) / "scan-index" / f"{key}.json")

    def lookup(self, rel: str, st: os.stat_result) -> tuple[str, str] | None:
        """The (sha1, format) of an unchanged file, or None if it must be read."""
        entry = self._old.get(rel)
        if entry is None or entry[:3] != [st.st_size, st.st_mtime_ns, st.st_ino]:
            return None
        self.hits += 1
        self._new[rel] = entry
        return entry[3], entry[4]

    def record(self, rel: str, st: os.stat_result, digest: str, fmt: str) -> None:
        self._new[rel] = [st.st_size, st.st_mtime_ns, st.st_ino, digest, fmt]

    def save(self) -> None:
        """Write what this scan saw (best effort: an index that cannot be written is no error)."""
        if self._new == self._old:
            return
        data = json.dumps({"format": FORMAT, "entries": self._new}, separators=(",", ":")).encode()
        try:
            atomic_write(self.path, data, what="scan index")
        except Exception:
            pass
