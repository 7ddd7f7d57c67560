"""Table cells as a reader sees them, formatted as :mod:`harness.schema` declares."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from harness.plan import Weights
from harness.schema import Column, Table, table_columns


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _pct(value: Any) -> str:
    return "" if _is_missing(value) else f"{value * 100:.1f}%"


def format_cell(c: Column, row: dict[str, Any]) -> Any:
    """A cell as the comparison table shows it (``row`` supplies companion columns)."""
    value = row.get(c.name)
    if c.real_only and row.get("weights") == Weights.RANDOM:
        return "n/a (random weights)" if c.name.endswith("test_accuracy") else "n/a"
    if c.fmt == "percent":
        return _pct(value)
    if c.fmt == "percent_sd":
        stem = c.name.removesuffix("_mean")
        if _is_missing(value):
            return ""
        sd = row.get(f"{stem}_std")
        return _pct(value) + ("" if _is_missing(sd) else f" ± {sd * 100:.1f}")
    if c.fmt == "percent_ci":
        if _is_missing(value):
            return ""
        low, high = row.get(f"{c.name}_ci_low"), row.get(f"{c.name}_ci_high")
        return f"{_pct(value)} ({_pct(low)}-{_pct(high)})"
    if _is_missing(value):
        return None
    if c.kind == "int":
        return int(value)
    if c.digits is not None and isinstance(value, int | float):
        return round(float(value), c.digits)
    return value


def visible_columns(rows: Iterable[dict[str, Any]], table: Table | None = None) -> list[Column]:
    """Table columns to show for ``rows``: sparse ones only where some row has a value."""
    rows = list(rows)
    return [
        c for c in table_columns(table) if not c.sparse or any(not _is_missing(r.get(c.name)) for r in rows)
    ]
