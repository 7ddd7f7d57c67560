"""Render runs as CSV, Markdown and a single-file HTML report (plots embedded)."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import pandas as pd
from jinja2 import Environment, PackageLoader

from harness.atomic import atomic_write
from harness.errors import HarnessError, printable
from harness.results import plots
from harness.results.analysis import (
    accuracy_column,
    compare_runs,
    pareto_front,
    per_backbone,
    recommend,
    usable,
)
from harness.results.store import runs_frame
from harness.schema import Column, format_cell, visible_columns

TEMPLATE = "report.html.j2"


def display_frame(frame: pd.DataFrame, columns: list[Column] | None = None) -> pd.DataFrame:
    """The comparison table as a reader sees it: labelled, rounded, with units and notes.

    Columns, headings and formats come from :mod:`harness.schema`; TFLite columns only
    where some row has them.
    """
    records = frame.astype(object).where(frame.notna(), None).to_dict("records")
    shown = columns if columns is not None else visible_columns(records)
    cells = [{c.label: format_cell(c, row) for c in shown} for row in records]
    return pd.DataFrame(cells, columns=[c.label for c in shown])


def _b64(png: bytes | None) -> str | None:
    return base64.b64encode(png).decode() if png else None


def _merged_dataset(runs: list[dict[str, Any]]) -> dict[str, Any]:
    first = runs[-1].get("dataset", {})
    if len({r.get("dataset", {}).get("fingerprint") for r in runs}) > 1:
        return dict(first, fingerprint="several (runs on different data)")
    return first


def _skipped_files(runs: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """Files not used by any of ``runs``, with the reason, each listed once."""
    out: dict[str, str] = {}
    for run in runs:
        items = run.get("skipped_files")
        if items is None:  # older runs kept only the scan's list
            items = [{"path": p, "reason": r} for p, r in run.get("dataset", {}).get("skipped", [])]
        out.update({printable(item["path"]): item["reason"] for item in items})
    return sorted(out.items())


def render_report(
    runs: list[dict[str, Any]],
    output_dir: str | os.PathLike[str],
    *,
    title: str = "harness report",
    min_accuracy: float = 0.9,
    speed: str = "bottleneck_img_per_s",
) -> dict[str, Path]:
    """Write ``report.csv``, ``report.md`` and ``report.html`` for ``runs``.

    Returns:
        The paths written, by format.
    """
    if not runs:
        raise HarnessError("no runs to report")
    frame = runs_frame(runs)
    out = Path(output_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HarnessError(f"cannot write reports to {out}: {exc.strerror or exc}") from exc
    table = display_frame(frame)
    rec = recommend(frame, min_accuracy, speed=speed)
    recommendation = f"Fastest backbone with at least {min_accuracy:.0%} test accuracy: {rec.message}."
    summary = per_backbone(usable(frame, accuracy_column(speed)), speed)
    front = pareto_front(summary, speed) if not summary.empty else pd.Series(dtype=bool)
    if front.any():
        names = ", ".join(summary.loc[front[front].index, "backbone"])
        recommendation += f" Pareto front (no backbone both faster and more accurate): {names}."

    cache_table = None
    phases = frame.dropna(subset=["bottleneck_phase"])
    if phases["bottleneck_phase"].nunique() > 1 or len(runs) > 1:
        pivot = phases.pivot_table(
            index="backbone", columns="bottleneck_phase", values="bottleneck_phase_s", aggfunc="min"
        ).round(2)
        if "cold" in pivot and "warm" in pivot:
            pivot["cold / warm"] = (pivot["cold"] / pivot["warm"]).round(1)
        pivot.columns = [f"{c} phase s" if c in ("cold", "warm", "mixed") else c for c in pivot.columns]
        cache_table = pivot.reset_index().to_html(index=False, escape=True, na_rep="")

    speedup_table = None
    groups = [g for _, g in frame[frame["error"].isna()].groupby(["run_id"], sort=True)]
    if len(groups) >= 2:
        keys = {(g["device"].iloc[0], g["hostname"].iloc[0]) for g in groups}
        if len(keys) > 1:
            speedup_table = (
                compare_runs(groups[0], groups[-1]).round(3).to_html(index=False, escape=True, na_rep="")
            )

    curves, confusions = [], []
    latest: dict[str, tuple[str, dict[str, Any]]] = {}  # one figure per backbone: its latest run
    for run in runs:
        for name, detail in run.get("details", {}).items():
            if detail:
                latest[name] = (run["run_id"], detail)
    for name, (run_id, detail) in latest.items():
        suffix = f" ({run_id})" if len(runs) > 1 else ""
        curve = _b64(plots.training_curves(detail.get("history") or [], name + suffix))
        if curve:
            curves.append((name + suffix, curve))
        matrix = _b64(
            plots.confusion_matrix(detail.get("confusion") or [], detail.get("classes", []), name + suffix)
        )
        if matrix:
            confusions.append((name + suffix, matrix))

    html = (
        Environment(loader=PackageLoader("harness.results"), autoescape=True)
        .get_template(TEMPLATE)
        .render(
            title=title,
            runs=runs,
            dataset=_merged_dataset(runs),
            recommendation=recommendation,
            table=table.to_html(index=False, escape=True, na_rep="", classes="comparison"),
            cache_table=cache_table,
            speedup_table=speedup_table,
            scatter=_b64(plots.accuracy_vs_speed(frame, speed)),
            curves=curves,
            confusions=confusions,
            skipped=_skipped_files(runs),
        )
    )
    markdown = "\n".join(
        [
            f"# {title}",
            "",
            recommendation,
            "",
            table.astype(object).where(table.notna(), "").to_markdown(index=False),
            "",
            "Accuracy from random weights is not a result: those rows are for speed only.",
            "",
        ]
    )
    paths = {"csv": out / "report.csv", "md": out / "report.md", "html": out / "report.html"}
    # Each replaced atomically: a full disk leaves the previous report intact.
    atomic_write(paths["csv"], frame.to_csv(index=False).encode())
    atomic_write(paths["md"], markdown.encode())
    atomic_write(paths["html"], html.encode())
    return paths
