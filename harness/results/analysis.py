"""Choosing a model from result rows: Pareto front, recommendation, run comparison."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from harness.plan import Weights
from harness.schema import column, speed_columns

#: Speed columns a user can rank by, and whether higher is better (from the schema).
SPEED_COLUMNS = speed_columns()


def size_column(speed: str) -> str:
    """The model size that goes with a speed column: the TFLite file's, or the SavedModel's."""
    return speed.replace("latency_ms_p50", "size_mb") if speed.startswith("tflite_") else "model_size_mb"


def accuracy_column(speed: str) -> str:
    """A TFLite speed is judged with that TFLite model's own accuracy."""
    return (
        speed.replace("latency_ms_p50", "test_accuracy") if speed.startswith("tflite_") else "test_accuracy"
    )


def usable(frame: pd.DataFrame, accuracy: str = "test_accuracy") -> pd.DataFrame:
    """Rows with a real accuracy: no error, ImageNet (not random) weights."""
    ok = frame["error"].isna() & (frame["weights"] != Weights.RANDOM.value) & frame[accuracy].notna()
    return frame[ok]


def latest_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Each backbone's rows from the latest run that has it (rows are oldest run first): a
    report of several runs shows a backbone once, not once per run."""
    if frame.empty:
        return frame
    latest = frame.groupby("backbone", sort=False)["run_id"].transform("last")
    return frame[frame["run_id"] == latest]


def per_backbone(frame: pd.DataFrame, speed: str) -> pd.DataFrame:
    """One row per backbone and device: the median speed over runs (accuracy is the same
    for the same data and seed, so the median changes nothing there)."""
    if frame.empty:
        return frame
    numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])]
    agg = frame.groupby(["backbone", "device", "weights"], sort=False, dropna=False)[numeric].median()
    out = agg.reset_index()
    out["error"] = None
    return out


def pareto_front(
    frame: pd.DataFrame, speed: str = "bottleneck_img_per_s", accuracy: str | None = None
) -> pd.Series:
    """True for rows no other row beats on both accuracy and speed (and ties excluded)."""
    accuracy = accuracy or accuracy_column(speed)
    higher = SPEED_COLUMNS.get(speed, True)
    rows = frame[[speed, accuracy]].dropna()
    s = rows[speed] if higher else -rows[speed]
    a = rows[accuracy]
    front = pd.Series(False, index=frame.index)
    for i in rows.index:
        dominated = ((s >= s[i]) & (a >= a[i]) & ((s > s[i]) | (a > a[i]))).any()
        front[i] = not dominated
    return front


@dataclass
class Recommendation:
    """The fastest backbone meeting the accuracy target, or why there is none."""

    row: dict[str, Any] | None
    message: str
    candidates: pd.DataFrame


def recommend(
    frame: pd.DataFrame,
    min_accuracy: float,
    *,
    device: str | None = None,
    speed: str = "bottleneck_img_per_s",
    accuracy: str | None = None,
    max_size_mb: float | None = None,
) -> Recommendation:
    """The fastest backbone whose ``accuracy`` is at least ``min_accuracy``.

    Args:
        frame: Result rows.
        min_accuracy: Accuracy target in [0, 1].
        device: Only rows measured on this device.
        speed: Column to rank by (see :data:`SPEED_COLUMNS`).
        accuracy: Accuracy column; by default the one matching ``speed``.
        max_size_mb: Only models at most this large (the size matching ``speed``).
    """
    accuracy = accuracy or accuracy_column(speed)
    if speed not in frame or accuracy not in frame:
        return Recommendation(None, f"no {speed} figures in these runs", frame.iloc[0:0])
    rows = usable(frame, accuracy)
    if device:
        rows = rows[rows["device"] == device]
    rows = rows.dropna(subset=[speed])
    if max_size_mb is not None:
        rows = rows[rows[size_column(speed)] <= max_size_mb]
    higher = SPEED_COLUMNS.get(speed, True)
    meeting = rows[rows[accuracy] >= min_accuracy].sort_values(speed, ascending=not higher)
    where = f" on {device}" if device else ""
    limit = f" within {max_size_mb:g} MB" if max_size_mb is not None else ""
    if rows.empty:
        return Recommendation(None, f"no backbone with a real accuracy{where} to choose from", meeting)
    if meeting.empty:
        best = rows.sort_values(accuracy, ascending=False).iloc[0]
        return Recommendation(
            None,
            f"no backbone{where}{limit} reaches {min_accuracy:.1%} test accuracy; the most accurate is "
            f"{best['backbone']} at {best[accuracy]:.1%}",
            meeting,
        )
    pick = meeting.iloc[0]
    unit = column(speed).unit
    interval = (
        f" (95% CI {pick['test_accuracy_ci_low']:.1%}-{pick['test_accuracy_ci_high']:.1%})"
        if accuracy == "test_accuracy"
        else ""
    )
    size = pick.get(size_column(speed))
    size_text = f", {size:.1f} MB" if size is not None and not pd.isna(size) else ""
    message = (
        f"{pick['backbone']}: {pick[accuracy]:.1%} test accuracy{interval}, "
        f"{pick[speed]:.1f} {unit} ({speed}){size_text}, on {pick['device']}; "
        f"{len(meeting)} of {len(rows)} results meet {min_accuracy:.1%}"
    )
    return Recommendation(pick.to_dict(), message, meeting)


def compare_runs(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """Per-backbone speed-up of run ``b`` over run ``a`` (e.g. GPU over CPU).

    Ratios above 1 mean ``b`` is faster: throughput ``b / a``, latency ``a / b``.
    """
    keep = ["backbone", "device", "hostname", "bottleneck_img_per_s", "latency_ms_p50", "test_accuracy"]
    merged = a[keep].merge(b[keep], on="backbone", suffixes=("_a", "_b"))
    merged["throughput_speedup"] = merged["bottleneck_img_per_s_b"] / merged["bottleneck_img_per_s_a"]
    merged["latency_speedup"] = merged["latency_ms_p50_a"] / merged["latency_ms_p50_b"]
    return merged


def fastest_not_worse(
    summary: pd.DataFrame,
    pairs: list[dict[str, Any]],
    speed: str = "bottleneck_img_per_s",
    alpha: float = 0.05,
) -> str | None:
    """The fastest backbone not significantly less accurate (McNemar) than the most accurate.

    Args:
        summary: One row per backbone with real accuracy (see :func:`per_backbone`).
        pairs: McNemar results (:func:`harness.results.significance.paired_tests`).
        speed: The speed column to rank by.
        alpha: Significance level.

    Returns:
        A sentence, or None when fewer than two backbones were compared.
    """
    from harness.results.significance import p_value_between

    rows = summary.dropna(subset=["test_accuracy", speed]).drop_duplicates("backbone")
    if len(rows) < 2 or not pairs:
        return None
    best = rows.sort_values("test_accuracy", ascending=False).iloc[0]
    higher = SPEED_COLUMNS.get(speed, True)
    kept = []
    for _, row in rows.iterrows():
        p = (
            1.0
            if row["backbone"] == best["backbone"]
            else p_value_between(pairs, best["backbone"], row["backbone"])
        )
        if p is not None and p >= alpha:
            kept.append((row, p))
    pick, p = sorted(kept, key=lambda item: item[0][speed], reverse=higher)[0]
    if pick["backbone"] == best["backbone"]:
        faster = rows[rows[speed] > best[speed]] if higher else rows[rows[speed] < best[speed]]
        if faster.empty:
            return f"{best['backbone']} is both the most accurate and the fastest backbone."
        return (
            f"{best['backbone']} is the most accurate backbone ({best['test_accuracy']:.1%}), and every "
            f"faster one is significantly less accurate (McNemar p < {alpha:g})."
        )
    return (
        f"{pick['backbone']} is the fastest backbone not significantly less accurate than the most "
        f"accurate one, {best['backbone']} ({pick['test_accuracy']:.1%} against {best['test_accuracy']:.1%}, "
        f"McNemar p = {p:.2f}; by {speed})."
    )
