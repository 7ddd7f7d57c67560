"""Render an HTML report in headless Chromium and check that it really drew something.

Usage: python scripts/screenshot.py REPORT.html OUT.png [--height PX]

Exit 0 and print "rendered ..." when the page loaded, its DOM holds the report's
comparison table, the screenshot has a plausible amount of non-white pixels, and no
table is wider than a laptop screen (1,400 px, measured by the browser's own layout).
"""

from __future__ import annotations

import json
import re
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


WIDTH = 1400
#: Appended to a copy of the page: the browser writes each table's laid-out width into the DOM.
MEASURE = (
    "<script>document.body.setAttribute('data-table-widths', JSON.stringify("
    "[...document.querySelectorAll('table')].map(t => Math.ceil(t.getBoundingClientRect().width))));"
    "</script>"
)


def main(html: Path, png: Path, height: int = 2000) -> int:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if chromium is None:
        print("no chromium on PATH", file=sys.stderr)
        return 2
    url = html.resolve().as_uri()
    with tempfile.TemporaryDirectory() as profile:
        measured = Path(profile) / "measured.html"
        measured.write_text(html.read_text(encoding="utf-8").replace("</body>", MEASURE + "</body>"))
        base = [chromium, *FLAGS, f"--user-data-dir={profile}", f"--window-size={WIDTH},{height}"]
        dom = subprocess.run(
            [*base, "--dump-dom", measured.as_uri()], capture_output=True, text=True, timeout=60
        )
        subprocess.run([*base, f"--screenshot={png}", url], capture_output=True, timeout=60)
    if "<h2>Comparison</h2>" not in dom.stdout or "<table" not in dom.stdout:
        print("the browser's DOM has no comparison table", file=sys.stderr)
        return 1
    found = re.search(r'data-table-widths="([^"]*)"', dom.stdout)
    widths = json.loads(found.group(1).replace("&quot;", '"')) if found else []
    if not widths:
        print("the browser measured no table", file=sys.stderr)
        return 1
    if max(widths) > WIDTH:
        print(f"a table is {max(widths)} px wide, over {WIDTH} px: {widths}", file=sys.stderr)
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
    tables = f"widest of {len(widths)} tables: {max(widths)} px"
    print(f"rendered {png} ({size[0]}x{size[1]}, {ink:.1%} ink); {tables}")
    return 0


if __name__ == "__main__":
    argv = sys.argv[1:]
    tall = 2000
    if "--height" in argv:
        at = argv.index("--height")
        tall = int(argv[at + 1])
        del argv[at : at + 2]
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(Path(argv[0]), Path(argv[1]), tall))
