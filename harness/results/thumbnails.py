"""The photos behind the numbers, as small JPEG thumbnails embedded in the report.

Per backbone (its latest run): the misclassified test photos of each confusion-matrix
cell, and with ``--audit`` the top label-issue suspects with both classes and the
duplicate pairs side by side. Photos are read from the run's image folder; one that is no
longer there, or whose name was escaped (not valid UTF-8), is left out.
"""

from __future__ import annotations

import base64
import io
from collections import defaultdict
from pathlib import Path
from typing import Any

SIZE = 96  # pixels, the longer side
PER_CELL = 6  # photos shown per confusion-matrix cell
CELLS = 8  # cells shown per backbone, most photos first
TOP = 8  # label-issue suspects and duplicate pairs shown per backbone


def thumbnail(path: Path, size: int = SIZE) -> str | None:
    """``path`` as a base64 JPEG at most ``size`` pixels on a side, or None if unreadable."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.draft("RGB", (size, size))
            im = im.convert("RGB")
            im.thumbnail((size, size))
            buffer = io.BytesIO()
            im.save(buffer, format="JPEG", quality=80)
    except Exception:  # missing, moved, not an image any more: no picture, no error
        return None
    return base64.b64encode(buffer.getvalue()).decode()


def _photo(root: Path, name: str | None) -> str | None:
    if not name or "\\x" in name:  # escaped bytes name no file
        return None
    return thumbnail(root / name)


def misclassified_cells(detail: dict[str, Any], root: Path) -> list[dict[str, Any]]:
    """The confusion matrix's off-diagonal cells, most photos first, each with its photos."""
    cells: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for item in detail.get("misclassified") or []:
        cells[(item["true"], item["predicted"])].append(item)
    out = []
    for (true, predicted), items in sorted(cells.items(), key=lambda kv: -len(kv[1]))[:CELLS]:
        photos = []
        for item in sorted(items, key=lambda i: -i.get("confidence", 0))[:PER_CELL]:
            thumb = _photo(root, item["image"])
            if thumb:
                photos.append({"name": item["image"], "thumb": thumb, "confidence": item.get("confidence")})
        out.append({"true": true, "predicted": predicted, "count": len(items), "photos": photos})
    return out


def audit_gallery(audit: dict[str, Any] | None, root: Path) -> dict[str, list[dict[str, Any]]]:
    """The first label-issue suspects and duplicate pairs (marked leak or conflict) of an audit."""
    if not audit:
        return {}
    findings = audit.get("findings") or []
    suspects = []
    for f in [f for f in findings if f["kind"] == "label_issue"][:TOP]:
        suspects.append({**f, "thumb": _photo(root, f["path"])})
    flags = defaultdict(set)
    for f in findings:
        if f["kind"] in ("leak", "conflict"):
            flags[(f["path"], f["other"])].add(f["kind"])
    pairs = []
    for f in [f for f in findings if f["kind"] in ("exact_duplicate", "near_duplicate")][:TOP]:
        pairs.append(
            {
                **f,
                "thumb": _photo(root, f["path"]),
                "other_thumb": _photo(root, f["other"]),
                "flags": sorted(flags.get((f["path"], f["other"]), ())),
            }
        )
    return {"suspects": suspects, "pairs": pairs}


def galleries(
    runs: list[dict[str, Any]], latest: dict[str, tuple[str, dict[str, Any]]]
) -> list[dict[str, Any]]:
    """Per backbone (its latest run): its misclassified cells and its audit's pictures."""
    roots = {run["run_id"]: Path(run.get("dataset", {}).get("root") or ".") for run in runs}
    out = []
    for name, (run_id, detail) in latest.items():
        root = roots.get(run_id, Path("."))
        cells = misclassified_cells(detail, root)
        audit = audit_gallery(detail.get("audit"), root)
        if any(c["photos"] for c in cells) or audit.get("suspects") or audit.get("pairs"):
            out.append({"backbone": name, "cells": cells, **audit})
    return out
