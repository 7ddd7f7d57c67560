"""Warm scans only stat files: a cold scan of N small files against a warm one, same process.

    .venv/bin/python benchmarks/scan_index.py [--files 100000] [--bytes 20000]

Writes N image files (a real JPEG's first bytes plus a unique tail, so every file hashes
differently) into 5 class folders, then times ``scan_images`` without an index (every file
read and hashed), with an empty index (the same, plus writing it) and with the full index
(every file only stat'ed), and prints the ratio. The files are in the page cache for
every pass, which favours the cold scan: on a disk, reading costs more.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--bytes", type=int, default=20_000, help="size of each file")
    args = parser.parse_args()

    from harness.pipeline.images import scan_images
    from harness.pipeline.scanindex import ScanIndex

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
        for name, indexed in (
            ("cold, no index", False),
            ("cold, building the index", True),
            ("warm, from the index", True),
        ):
            start = time.perf_counter()  # loading the index is part of the scan's cost
            scanned = scan_images(root, ScanIndex.for_folder(cache, root) if indexed else None)
            timings[name] = time.perf_counter() - start
            counts = f"{len(scanned.images):,} images, {scanned.indexed:,} not read"
            print(f"{name}: {timings[name]:.2f} s ({counts})")
        ratio = timings["warm, from the index"] / timings["cold, no index"]
        print(f"warm / cold = {ratio:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
