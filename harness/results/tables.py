"""The report's focused tables, each narrow enough to read on a laptop screen.

Accuracy and speed (one row per backbone and run), paired McNemar tests, repeated
splits, the learning curve, the deployment variants (one row per backbone and TFLite
variant, not four variants side by side) and cache and timing details. Every number
stays in the CSV and the run JSON; these are views.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from harness.results.cells import format_cell, visible_columns
from harness.schema import KEY_COLUMNS, QUANTIZATIONS, Column, Table, by_name


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def display_frame(
    frame: pd.DataFrame, columns: list[Column] | None = None, table: Table | None = "main"
) -> pd.DataFrame:
    """One focused table as a reader sees it: labelled, rounded, with units and notes.

    Columns, headings and formats come from :mod:`harness.schema`; sparse columns only
    where some row has them. ``columns`` overrides ``table``.
    """
    rows = records(frame)
    shown = columns if columns is not None else visible_columns(rows, table)
    cells = [{c.label: format_cell(c, row) for c in shown} for row in rows]
    return pd.DataFrame(cells, columns=[c.label for c in shown])


def deployment_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per backbone and exported TFLite variant: size, accuracy, agreement, latency."""
    columns = by_name()
    out = []
    for row in records(frame):
        for q in QUANTIZATIONS:
            prefix = f"tflite_{q}_"
            fields = [c for c in columns.values() if c.name.startswith(prefix) and c.table == "deploy"]
            if all(row.get(c.name) is None for c in fields):
                continue
            cells = {columns[k].label: row.get(k) for k in KEY_COLUMNS}
            cells["variant"] = q
            for c in fields:
                cells[c.label.replace(f"tflite {q} ", "")] = format_cell(c, row)
            out.append(cells)
    return pd.DataFrame(out)


#: The fine-tuning table: accuracy first, then what it cost.
FINE_TUNE_COLUMNS = (
    "backbone",
    "device",
    "head_only_test_accuracy",
    "test_accuracy",
    "fine_tune_gain",
    "head_only_only_right",
    "fine_tuned_only_right",
    "head_only_p_value",
    "fine_tune_s",
    "fine_tune_epochs",
    "fine_tune_best_epoch",
    "fine_tune_stopped",
    "head_only_latency_ms_p50",
    "latency_ms_p50",
)


def fine_tune_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per fine-tuned model: its accuracy against its head-only model's, what it cost."""
    if "fine_tune_s" not in frame:
        return pd.DataFrame()
    tuned = frame[frame["fine_tune_s"].notna()]
    if tuned.empty:
        return pd.DataFrame()
    columns = by_name()
    return display_frame(tuned, [columns[name] for name in FINE_TUNE_COLUMNS])


def paired_frame(pairs: list[dict[str, Any]]) -> pd.DataFrame:
    """McNemar's exact test for each pair of backbones on their common test images."""
    rows = [
        {
            "A": p["a"],
            "B": p["b"],
            "test images": p["n_images"],
            "A acc": f"{p['accuracy_a']:.1%}",
            "B acc": f"{p['accuracy_b']:.1%}",
            "only A right": p["a_only"],
            "only B right": p["b_only"],
            "p (exact)": round(p["p_value"], 3),
            "verdict": "differ (p < 0.05)" if p["p_value"] < 0.05 else "no significant difference",
        }
        for p in pairs
    ]
    return pd.DataFrame(rows)


def splits_frame(details: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """Test accuracy of each backbone on each repeated split, with mean and sd."""
    rows = []
    for name, detail in details.items():
        splits = detail.get("splits") or []
        if not splits:
            continue
        scores = pd.Series([s["test_accuracy"] for s in splits])
        row: dict[str, Any] = {"backbone": name, "splits": len(scores)}
        row["mean"] = f"{scores.mean():.1%}"
        row["sd"] = f"{scores.std(ddof=1) * 100:.1f}" if len(scores) > 1 else ""
        row["min"], row["max"] = f"{scores.min():.1%}", f"{scores.max():.1%}"
        row["per split"] = " ".join(f"{s * 100:.0f}" for s in scores)
        rows.append(row)
    return pd.DataFrame(rows)


def curve_frame(details: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """Mean test accuracy per backbone (rows) and training images per class (columns)."""
    rows = []
    for name, detail in details.items():
        for point in detail.get("learning_curve") or []:
            size = point["per_class"]
            column = "all" if size is None else f"{size} / class"
            rows.append({"backbone": name, "column": column, "order": size or 10**9, **point})
    if not rows:
        return pd.DataFrame()
    long = pd.DataFrame(rows)
    order = long.drop_duplicates("column").sort_values("order")["column"].tolist()
    table = long.pivot_table(
        index="backbone", columns="column", values="test_accuracy", aggfunc="mean", sort=False
    )
    table = table[order].map(lambda v: "" if pd.isna(v) else f"{v:.1%}")
    table.columns.name = None
    return table.reset_index()


def targets_display(frame: pd.DataFrame, *, with_run: bool = False) -> pd.DataFrame:
    """One row per backbone and target (and thread count): the deployment decision's table."""
    from harness.deployschema import TARGET_COLUMNS

    shown = [c for c in TARGET_COLUMNS if c.label and (c.name != "error" or frame["error"].notna().any())]
    rows = []
    for row in records(frame):
        cells = {"run": row["run_id"]} if with_run else {}
        for c in shown:
            cells[c.label] = format_cell(c, row)
        low, high = row.get("latency_ms_p50_ci_low"), row.get("latency_ms_p50_ci_high")
        if low is not None and high is not None:
            cells["ms p50"] = f"{cells['ms p50']} ({low:.2f}-{high:.2f})"
        rows.append(cells)
    return pd.DataFrame(rows)
