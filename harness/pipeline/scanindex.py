"""What a scan already knows: (path, size, mtime, inode) -> content hash, like git's index.

A warm scan then only stats each file; a file whose size, modification time or inode
changed (or a new one) is read and hashed again. The index lives in the cache folder,
one JSON file per image folder, written atomically after each scan; files no longer
there are dropped from it.

The file stores columns (paths, sizes, mtimes, inodes, hashes, formats), not one object
per file: a warm scan of 100,000 files spends its time in ``stat`` and in the lookup,
and flat lists parse several times faster than nested ones and zip into tuples in C.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from harness.atomic import atomic_write

FORMAT = "harness.scan-index/2"
COLUMNS = ("path", "size", "mtime_ns", "inode", "sha1", "image_format")
Entry = tuple[int, int, int, str, str]


class ScanIndex:
    """Hashes of the image files under one folder, keyed by their relative path."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._old: dict[str, Entry] = {}
        self._seen: list[str] = []  # unchanged entries met by this scan
        self._changed: dict[str, Entry] = {}  # new or re-hashed entries
        self.hits = 0
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("index") == FORMAT:
                paths, *rest = (data[name] for name in COLUMNS)
                if all(isinstance(c, list) and len(c) == len(paths) for c in rest):
                    self._old = dict(zip(paths, zip(*rest)))
        except (OSError, ValueError, KeyError, AttributeError, TypeError):
            pass  # missing, damaged or older: the scan just reads every file, as without one

    def lookup(self, rel: str, st: os.stat_result) -> tuple[str, str] | None:
        """The (sha1, format) of an unchanged file, or None if it must be read."""
        entry = self._old.get(rel)
        if entry is None or entry[0] != st.st_size or entry[1] != st.st_mtime_ns or entry[2] != st.st_ino:
            return None
        self.hits += 1
        self._seen.append(rel)
        return entry[3], entry[4]

    def record(self, rel: str, st: os.stat_result, digest: str, fmt: str) -> None:
        self._changed[rel] = (st.st_size, st.st_mtime_ns, st.st_ino, digest, fmt)

    def save(self) -> None:
        """Write what this scan saw (best effort: an index that cannot be written is no error)."""
        if not self._changed and self.hits == len(self._old):
            return  # every entry met unchanged, nothing new: the file on disk is current
        entries = {rel: self._old[rel] for rel in self._seen}
        entries.update(self._changed)
        columns = [list(entries), *map(list, zip(*entries.values()))] if entries else [[] for _ in COLUMNS]
        data = json.dumps({"index": FORMAT, **dict(zip(COLUMNS, columns))}, separators=(",", ":")).encode()
        try:
            atomic_write(self.path, data, what="scan index")
        except Exception:
            pass
