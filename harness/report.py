"""Render runs as CSV, Markdown and a single-file HTML report (plots embedded)."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import pandas as pd
from jinja2 import Environment, PackageLoader

from harness import plots
from harness.analysis import accuracy_column, compare_runs, pareto_front, per_backbone, recommend, usable
from harness.atomic import atomic_write
from harness.errors import HarnessError
from harness.results import QUANTIZATIONS, runs_frame

#: Column -> heading of the comparison table, in order.
DISPLAY = {
    "backbone": "backbone",
    "device": "device",
    "weights": "weights",
    "input_size": "input px",
    "params_m": "params (M)",
    "model_size_mb": "model MB",
    "bottleneck_img_per_s": "bottleneck img/s",
    "bottleneck_spread": "img/s spread",
    "bottleneck_ms_per_img_p50": "ms/img p50",
    "latency_ms_p50": "latency ms p50",
    "latency_ms_p90": "latency ms p90",
    "bottleneck_phase": "cache",
    "bottleneck_phase_s": "bottleneck phase s",
    "train_s": "train s",
    "validation_accuracy_text": "validation acc",
    "test_accuracy_text": "test acc (95% CI)",
    "error": "error",
}

TEMPLATE = "report.html.j2"


def _pct(value: Any) -> str:
    return "" if pd.isna(value) else f"{value * 100:.1f}%"


def display_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The comparison table as a reader sees it: rounded, with units and notes."""
    out = frame.copy()
    out["params_m"] = (out["params"] / 1e6).round(2)
    out["input_size"] = out["input_size"].astype("Int64")
    random = out["weights"] == "random"
    out["test_accuracy_text"] = [
        "n/a (random weights)" if r else (f"{_pct(a)} ({_pct(lo)}-{_pct(hi)})" if not pd.isna(a) else "")
        for r, a, lo, hi in zip(
            random, out["test_accuracy"], out["test_accuracy_ci_low"], out["test_accuracy_ci_high"]
        )
    ]
    out["validation_accuracy_text"] = [
        "n/a" if r else _pct(v) for r, v in zip(random, out["validation_accuracy"])
    ]
    for column, digits in {
        "model_size_mb": 1,
        "bottleneck_img_per_s": 1,
        "bottleneck_spread": 3,
        "bottleneck_ms_per_img_p50": 2,
        "latency_ms_p50": 1,
        "latency_ms_p90": 1,
        "bottleneck_phase_s": 3,
        "train_s": 2,
    }.items():
        out[column] = out[column].round(digits)
    columns = dict(DISPLAY)
    for q in QUANTIZATIONS:  # TFLite columns only where some row has them
        size, acc, p50 = (f"tflite_{q}_size_mb", f"tflite_{q}_test_accuracy", f"tflite_{q}_latency_ms_p50")
        agree = f"tflite_{q}_agreement"
        if size in out and out[size].notna().any():
            out[size] = out[size].round(2)
            out[p50] = out[p50].round(1)
            out[acc] = ["n/a (random weights)" if r else _pct(a) for r, a in zip(random, out[acc])]
            out[agree] = ["n/a" if r else _pct(a) for r, a in zip(random, out[agree])]
            columns[size] = f"tflite {q} MB"
            columns[acc] = f"tflite {q} acc"
            columns[agree] = f"tflite {q} same top-1"
            columns[p50] = f"tflite {q} ms p50"
    columns["error"] = columns.pop("error")  # errors last
    return out[list(columns)].rename(columns=columns)


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
        out.update({item["path"]: item["reason"] for item in items})
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
        Environment(loader=PackageLoader("harness"), autoescape=True)
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
