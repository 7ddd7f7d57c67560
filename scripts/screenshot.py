"""Render an HTML report in headless Chromium and check that it really drew something.

Usage: python scripts/screenshot.py REPORT.html OUT.png

Exit 0 and print "rendered ..." when the page loaded, its DOM holds the report's
comparison table, and the screenshot has a plausible amount of non-white pixels.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def main(html: Path, png: Path) -> int:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if chromium is None:
        print("no chromium on PATH", file=sys.stderr)
        return 2
    url = html.resolve().as_uri()
    with tempfile.TemporaryDirectory() as profile:
        base = [chromium, *FLAGS, f"--user-data-dir={profile}"]
        dom = subprocess.run([*base, "--dump-dom", url], capture_output=True, text=True, timeout=60)
        subprocess.run(
            [*base, "--window-size=1300,2000", f"--screenshot={png}", url], capture_output=True, timeout=60
        )
    if "<h2>Comparison</h2>" not in dom.stdout or "<table" not in dom.stdout:
        print("the browser's DOM has no comparison table", file=sys.stderr)
        return 1
    if not png.is_file():
        print("chromium wrote no screenshot", file=sys.stderr)
        return 1
    from PIL import Image

    with Image.open(png) as image:
        gray = image.convert("L")
        ink = gray.point(lambda p: 255 if p < 200 else 0).histogram()[255] / (gray.width * gray.height)
        size = image.size
    if ink < 0.01:
        print(f"the screenshot is blank ({ink:.2%} ink)", file=sys.stderr)
        return 1
    print(f"rendered {png} ({size[0]}x{size[1]}, {ink:.1%} ink)")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
