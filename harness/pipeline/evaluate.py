"""Test-set evaluation: accuracy with a confidence interval, per-class metrics, errors."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np


def wilson_interval(correct: int, total: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval for an accuracy of ``correct / total``."""
    if total == 0:
        return (float("nan"), float("nan"))
    p = correct / total
    denom = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denom
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denom
    # Rounding can put a bound a hair past p (0.9999999999999999 at 100%): it always holds p.
    return (max(0.0, min(p, centre - half)), min(1.0, max(p, centre + half)))


# McNemar's test looks only at the images two models got differently: ``b`` right by the
# first and wrong by the second, ``c`` the reverse. Under "equally accurate" each such image
# is a fair coin, so the exact two-sided p-value is a binomial tail, computed with integers.


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value for discordant counts ``b`` and ``c``."""
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(b, c) + 1))
    return min(1.0, 2 * tail / 2**n)


def mcnemar_counts(a_correct: list[bool], b_correct: list[bool]) -> tuple[int, int, float]:
    """Two models' right/wrong on the same images: (only a right, only b right, exact p)."""
    a_only = sum(bool(a) and not b for a, b in zip(a_correct, b_correct))
    b_only = sum(bool(b) and not a for a, b in zip(a_correct, b_correct))
    return a_only, b_only, mcnemar_exact(a_only, b_only)


@dataclass
class Evaluation:
    """How the trained layer did on a set of images."""

    accuracy: float
    n: int
    ci95: tuple[float, float]
    confusion: list[list[int]]  # rows: true class, columns: predicted class
    per_class: list[dict[str, Any]]
    misclassified: list[dict[str, Any]] = field(default_factory=list)
    predictions: list[int] = field(default_factory=list)


def evaluate(
    probabilities: np.ndarray,
    labels: np.ndarray,
    classes: list[str],
    names: list[str] | None = None,
) -> Evaluation:
    """Score predicted ``probabilities`` ``[N, C]`` against integer ``labels``.

    Args:
        probabilities: Class probabilities per image.
        labels: True class index per image.
        classes: Class names, in index order.
        names: Image names (relative paths) for the misclassified list.
    """
    n_classes = len(classes)
    predicted = np.argmax(probabilities, axis=1) if len(labels) else np.zeros(0, int)
    confusion = np.zeros((n_classes, n_classes), dtype=int)
    np.add.at(confusion, (labels, predicted), 1)
    correct = int(np.trace(confusion))
    total = int(len(labels))
    per_class = []
    for c, name in enumerate(classes):
        tp = int(confusion[c, c])
        support = int(confusion[c].sum())
        predicted_c = int(confusion[:, c].sum())
        precision = tp / predicted_c if predicted_c else float("nan")
        recall = tp / support if support else float("nan")
        f1 = (
            2 * precision * recall / (precision + recall)
            if predicted_c and support and (precision + recall) > 0
            else float("nan")
        )
        per_class.append(
            {"class": name, "precision": precision, "recall": recall, "f1": f1, "support": support}
        )
    misclassified = []
    for i in np.flatnonzero(predicted != labels):
        misclassified.append(
            {
                "image": names[i] if names else str(i),
                "true": classes[int(labels[i])],
                "predicted": classes[int(predicted[i])],
                "confidence": float(probabilities[i, predicted[i]]),
            }
        )
    return Evaluation(
        accuracy=correct / total if total else float("nan"),
        n=total,
        ci95=wilson_interval(correct, total),
        confusion=confusion.tolist(),
        per_class=per_class,
        misclassified=misclassified,
        predictions=[int(p) for p in predicted],
    )
