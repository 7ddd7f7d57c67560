"""Matplotlib figures for the HTML report, returned as PNG bytes."""

from __future__ import annotations

import io
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from harness.results.analysis import SPEED_COLUMNS, accuracy_column, pareto_front, per_backbone, usable  # noqa: E402


def _text(label: str) -> str:
    """Plain text for matplotlib: a '$' would otherwise start mathtext."""
    return str(label).replace("$", r"\$")


def _png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def accuracy_vs_speed(
    frame: pd.DataFrame, speed: str = "bottleneck_img_per_s", splits: dict[str, list[float]] | None = None
) -> bytes | None:
    """Accuracy against speed, one point per row, the Pareto front joined by a line.

    ``splits`` (backbone -> test accuracy on each repeated split) adds the spread: one
    small grey dot per split beside the backbone's point.
    """
    accuracy = accuracy_column(speed)
    if speed not in frame or accuracy not in frame:
        return None
    rows = per_backbone(usable(frame, accuracy).dropna(subset=[speed]), speed)
    if rows.empty:
        return None
    front = pareto_front(rows, speed)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for device, group in rows.groupby("device"):
        yerr = None
        if accuracy == "test_accuracy":
            yerr = [  # never negative, whatever a stored run says (matplotlib refuses it)
                ((group["test_accuracy"] - group["test_accuracy_ci_low"]) * 100).clip(lower=0).fillna(0),
                ((group["test_accuracy_ci_high"] - group["test_accuracy"]) * 100).clip(lower=0).fillna(0),
            ]
        ax.errorbar(group[speed], group[accuracy] * 100, yerr=yerr, fmt="o", capsize=3, label=_text(device))
    for _, row in rows.iterrows():
        scores = (splits or {}).get(row["backbone"])
        if scores and accuracy == "test_accuracy":
            ax.scatter(
                [row[speed]] * len(scores), [a * 100 for a in scores], s=9, color="grey", alpha=0.5, zorder=1
            )
        ax.annotate(
            _text(row["backbone"]),
            (row[speed], row[accuracy] * 100),
            fontsize=8,
            xytext=(4, 4),
            textcoords="offset points",
        )
    edge = rows[front].sort_values(speed)
    ax.plot(edge[speed], edge[accuracy] * 100, "--", color="black", lw=1, label="Pareto front")
    if splits and accuracy == "test_accuracy":
        ax.scatter([], [], s=9, color="grey", alpha=0.5, label="each repeated split")
    label = speed.replace("_", " ")
    ax.set_xlabel(
        label + ("  (higher is faster)" if SPEED_COLUMNS.get(speed, True) else "  (lower is faster)")
    )
    ax.set_ylabel(accuracy.replace("_", " ") + " %" + (" (95% CI)" if accuracy == "test_accuracy" else ""))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)


def training_curves(history: list[dict[str, float]], title: str) -> bytes | None:
    """Train and validation accuracy and cross-entropy per logged step."""
    if not history:
        return None
    h = pd.DataFrame(history)
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.2))
    left.plot(h["step"], h["train_accuracy"] * 100, label="train")
    if "validation_accuracy" in h:
        left.plot(h["step"], h["validation_accuracy"] * 100, label="validation")
    left.set_xlabel("step")
    left.set_ylabel("accuracy %")
    left.legend(fontsize=8)
    right.plot(h["step"], h["cross_entropy"], label="train")
    if "validation_cross_entropy" in h:
        right.plot(h["step"], h["validation_cross_entropy"], label="validation")
    right.set_xlabel("step")
    right.set_ylabel("cross-entropy")
    right.legend(fontsize=8)
    fig.suptitle(_text(title), fontsize=10)
    return _png(fig)


def confusion_matrix(confusion: list[list[int]], classes: list[str], title: str) -> bytes | None:
    if not confusion:
        return None
    n = len(classes)
    fig, ax = plt.subplots(figsize=(1.2 + 0.6 * n, 1.0 + 0.6 * n))
    ax.imshow(confusion, cmap="Blues")
    ax.set_xticks(range(n), [_text(c) for c in classes], rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(n), [_text(c) for c in classes], fontsize=8)
    top = max(max(r) for r in confusion) or 1
    for i in range(n):
        for j in range(n):
            value = confusion[i][j]
            ax.text(
                j,
                i,
                str(value),
                ha="center",
                va="center",
                fontsize=8,
                color="white" if value > top / 2 else "black",
            )
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(_text(title), fontsize=10)
    return _png(fig)


def learning_curves(curves: dict[str, list[dict[str, Any]]], n_classes: int) -> bytes | None:
    """Test accuracy against training images per class: one line per backbone through the
    mean of its draws, each draw a dot. x is the images per class actually used (the
    mean over classes), so "all" sits at the training set's real size."""
    curves = {name: points for name, points in curves.items() if points}
    if not curves or n_classes < 1:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for name, points in curves.items():
        h = pd.DataFrame(points)
        h["x"] = h["n_train"] / n_classes
        mean = h.groupby("x")["test_accuracy"].mean()
        (line,) = ax.plot(mean.index, mean.to_numpy() * 100, marker="o", label=_text(name))
        ax.scatter(h["x"], h["test_accuracy"] * 100, s=10, color=line.get_color(), alpha=0.4)
    ax.set_xscale("log")
    ax.set_xlabel("training images per class (log scale; the last point is all of them)")
    ax.set_ylabel("test accuracy %")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return _png(fig)


def fine_tune_curves(histories: dict[str, list[dict[str, Any]]]) -> bytes | None:
    """Validation accuracy per fine-tuning epoch, one line per model; epoch 0 is head-only
    and the kept epoch is ringed."""
    histories = {name: h for name, h in histories.items() if h}
    if not histories:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for name, history in histories.items():
        h = pd.DataFrame(history)
        (line,) = ax.plot(h["epoch"], h["validation_accuracy"] * 100, marker="o", label=_text(name))
        best = h.loc[h["validation_accuracy"].idxmax()]
        ax.scatter(
            [best["epoch"]],
            [best["validation_accuracy"] * 100],
            s=140,
            facecolors="none",
            edgecolors=line.get_color(),
        )
    ax.set_xlabel("fine-tuning epoch (0: the head-only model)")
    ax.set_ylabel("validation accuracy %")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)


def latency_vs_accuracy(frame: pd.DataFrame) -> bytes | None:
    """One panel per deployment target: test accuracy against batch-1 latency p50 (95% interval),
    each backbone a point; points further left answer sooner on that target."""
    rows = frame[frame["error"].isna()].dropna(subset=["latency_ms_p50", "test_accuracy"])
    if rows.empty:
        return None
    targets = list(dict.fromkeys(rows["target"]))
    fig, axes = plt.subplots(1, len(targets), figsize=(4.2 * len(targets), 3.8), sharey=True, squeeze=False)
    for ax, target in zip(axes[0], targets):
        group = rows[rows["target"] == target]
        xerr = [
            (group["latency_ms_p50"] - group["latency_ms_p50_ci_low"]).clip(lower=0).fillna(0),
            (group["latency_ms_p50_ci_high"] - group["latency_ms_p50"]).clip(lower=0).fillna(0),
        ]
        ax.errorbar(group["latency_ms_p50"], group["test_accuracy"] * 100, xerr=xerr, fmt="o", capsize=3)
        for _, row in group.iterrows():
            label = (
                f"{row['backbone']} ({int(row['threads'])}t)"
                if group["threads"].nunique() > 1
                else row["backbone"]
            )
            ax.annotate(
                _text(label),
                (row["latency_ms_p50"], row["test_accuracy"] * 100),
                fontsize=7,
                xytext=(4, 4),
                textcoords="offset points",
            )
        ax.set_xscale("log")
        ax.set_title(_text(target), fontsize=9)
        ax.set_xlabel("latency ms p50, batch 1 (lower is faster)")
        ax.grid(alpha=0.3, which="both")
    axes[0][0].set_ylabel("the file's own test accuracy %")
    return _png(fig)


def reliability_diagrams(calibrations: dict[str, dict[str, Any]]) -> bytes | None:
    """Per backbone, accuracy against confidence on the test photos, as trained and
    temperature-scaled; on the diagonal, a 90% answer is right 90% of the time."""
    shown = {n: c for n, c in calibrations.items() if c and c.get("reliability")}
    if not shown:
        return None
    fig, axes = plt.subplots(1, len(shown), figsize=(3.4 * len(shown), 3.4), squeeze=False, sharey=True)
    for ax, (name, cal) in zip(axes[0], shown.items()):
        ax.plot([0, 1], [0, 1], ":", color="grey", lw=1)
        for key, label, marker in (("reliability", "as trained", "o"), ("reliability_scaled", "scaled", "s")):
            points = cal.get(key) or []
            ece = cal.get("ece" if key == "reliability" else "ece_scaled")
            ax.scatter(
                [p["confidence"] for p in points],
                [p["accuracy"] for p in points],
                s=[12 + p["count"] for p in points],
                marker=marker,
                alpha=0.6,
                label=f"{label} (ECE {ece:.3f})" if ece is not None else label,
            )
        ax.set_title(_text(f"{name}, T = {cal.get('temperature', 1):.2f}"), fontsize=9)
        ax.set_xlabel("confidence of the top answer")
        ax.set_xlim(0, 1.02)
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper left")
    axes[0][0].set_ylabel("accuracy (marker area: photos)")
    return _png(fig)
