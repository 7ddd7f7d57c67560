"""Warm scans only stat files: cold scans of N small files against a warm one, same process.

    .venv/bin/python benchmarks/scan_index.py [--files 100000] [--bytes 20000]

Writes N image files (a real JPEG's first bytes plus a unique tail, so every file hashes
differently) into 5 class folders, then times ``scan_images``:

- cold, from disk: no index, every file read and hashed after its pages were dropped from
  the page cache (``posix_fadvise(DONTNEED)``), as on a first run over a collection larger
  than memory: the case the index exists for;
- cold, from the page cache: the same with every byte already in memory, a lower bound;
- building the index: a cold scan that also writes the index;
- warm: every file only stat'ed and looked up;
- the floor: nothing but listing and ``stat`` of every file, which no scan that notices a
  changed file can skip.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path


def _drop_from_page_cache(root: Path) -> None:
    os.sync()  # dirty pages (files just written) are not dropped until written back
    for folder in root.iterdir():
        for file in folder.iterdir():
            fd = os.open(file, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def _stat_floor(root: Path) -> int:
    count = 0
    for folder in sorted(root.iterdir()):
        with os.scandir(folder) as it:
            for entry in sorted(it, key=lambda e: e.name):
                os.stat(entry.path)
                count += 1
    return count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--bytes", type=int, default=20_000, help="size of each file")
    args = parser.parse_args()

    from harness.pipeline.cacheroot import CacheRoot
    from harness.pipeline.images import scan_images

    photo = Path(__file__).resolve().parents[2] / "shared" / "data" / "flower_photos_subset" / "daisy"
    head = sorted(photo.iterdir())[0].read_bytes()[: args.bytes - 8] if photo.is_dir() else b"\xff\xd8\xff"
    with tempfile.TemporaryDirectory() as tmp:
        root, cache = Path(tmp) / "photos", Path(tmp) / "cache"
        start = time.perf_counter()
        for i in range(args.files):
            folder = root / f"class{i % 5}"
            if i < 5:
                folder.mkdir(parents=True)
            (folder / f"{i:07d}.jpg").write_bytes(head.ljust(args.bytes - 8, b"\0") + i.to_bytes(8, "little"))
        print(f"wrote {args.files:,} files of {args.bytes:,} bytes in {time.perf_counter() - start:.1f} s")
        timings = {}
        passes = (
            ("cold, from disk", False, True),
            ("cold, from the page cache", False, False),
            ("cold, building the index", True, False),
            ("warm, from the index", True, False),
        )
        for name, indexed, evict in passes:
            if evict:
                _drop_from_page_cache(root)
            start = time.perf_counter()  # loading the index is part of the scan's cost
            scanned = scan_images(root, CacheRoot(cache).scan_index(root) if indexed else None)
            timings[name] = time.perf_counter() - start
            counts = f"{len(scanned.images):,} images, {scanned.indexed:,} not read"
            print(f"{name}: {timings[name]:.2f} s ({counts})")
        start = time.perf_counter()
        _stat_floor(root)
        floor = time.perf_counter() - start
        print(f"floor, list and stat only: {floor:.2f} s")
        warm = timings["warm, from the index"]
        print(f"warm / cold from disk       = {warm / timings['cold, from disk']:.3f}")
        print(f"warm / cold from page cache = {warm / timings['cold, from the page cache']:.3f}")
        print(f"warm / floor                = {warm / floor:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
