"""Train the new final layer: one softmax layer, plain SGD, like retrain.py.

It runs in NumPy on cached bottlenecks: 4000 steps take well under a second, and the
same inputs and seed give bit-identical weights.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from harness.plan import TrainConfig

BatchSampler = Callable[[np.random.Generator, int], tuple[np.ndarray, np.ndarray]]


@dataclass
class Head:
    """The trained layer: ``softmax(features @ weights + bias)``."""

    weights: np.ndarray  # [feature_size, n_classes]
    bias: np.ndarray  # [n_classes]

    def logits(self, features: np.ndarray) -> np.ndarray:
        return features @ self.weights + self.bias

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        return softmax(self.logits(features))


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def cross_entropy(probs: np.ndarray, labels: np.ndarray) -> float:
    picked = probs[np.arange(len(labels)), labels]
    return float(-np.mean(np.log(np.maximum(picked, 1e-12))))


def initial_weights(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """retrain.py's initialisation: a truncated normal of stddev 0.001."""
    return np.clip(rng.normal(0, 0.001, shape), -0.002, 0.002).astype(np.float32)


def train_head(
    sample: BatchSampler,
    feature_size: int,
    n_classes: int,
    config: TrainConfig,
    validation: tuple[np.ndarray, np.ndarray] | None = None,
    log: Callable[[dict[str, float]], None] | None = None,
    class_weights: np.ndarray | None = None,
) -> tuple[Head, list[dict[str, float]]]:
    """Train a softmax layer with SGD on batches from ``sample(rng, batch_size)``.

    Args:
        sample: Returns a ``(features, labels)`` training batch; cached bottlenecks or
            freshly distorted images, the trainer does not care.
        feature_size: Bottleneck length.
        n_classes: Number of classes.
        config: Steps, learning rate, batch size, eval interval and seed.
        validation: ``(features, labels)`` evaluated every interval.
        log: Called with each history row as it is made.
        class_weights: Per class, the weight of its examples in the loss (None: all 1);
            see :func:`class_weights_for`.

    Returns:
        The trained head and its history: one row per interval with ``step``,
        ``train_accuracy``, ``cross_entropy``, ``validation_accuracy`` and
        ``validation_cross_entropy``.
    """
    rng = np.random.default_rng(config.seed)
    head = Head(weights=initial_weights(rng, (feature_size, n_classes)), bias=np.zeros(n_classes, np.float32))
    history: list[dict[str, float]] = []
    lr = np.float32(config.learning_rate)
    for step in range(1, config.steps + 1):
        x, y = sample(rng, config.batch_size)
        probs = head.probabilities(x)
        if step == 1 or step % config.eval_interval == 0 or step == config.steps:
            # Logged before this step's update, as retrain.py does.
            row = {
                "step": step,
                "train_accuracy": float(np.mean(np.argmax(probs, axis=1) == y)),
                "cross_entropy": cross_entropy(probs, y),
            }
            if validation is not None and len(validation[1]):
                val_probs = head.probabilities(validation[0])
                row["validation_accuracy"] = float(np.mean(np.argmax(val_probs, axis=1) == validation[1]))
                row["validation_cross_entropy"] = cross_entropy(val_probs, validation[1])
            history.append(row)
            if log:
                log(row)
        grad = probs  # d(cross-entropy)/d(logits), built in place
        grad[np.arange(len(y)), y] -= 1.0
        if class_weights is not None:
            grad *= class_weights[y][:, np.newaxis]
        grad /= len(y)
        # grad.T @ x, transposed, is x.T @ grad; for a [100, 1024] batch and a few classes
        # OpenBLAS does it in about half the time, and these products are most of a step.
        head.weights -= lr * (grad.T @ x).T
        head.bias -= lr * grad.sum(axis=0)
    return head, history


def class_weights_for(labels: np.ndarray, n_classes: int, config: TrainConfig) -> np.ndarray | None:
    """``--class-weights balanced``: class c's examples weigh n / (k * n_c), as scikit-learn's
    ``balanced``, so every class counts as much in the loss whatever its photo count; None
    for ``none``."""
    if config.class_weight == "none" or not len(labels):
        return None
    counts = np.bincount(labels, minlength=n_classes).astype(np.float32)
    present = counts > 0
    weights = np.ones(n_classes, np.float32)
    weights[present] = len(labels) / (present.sum() * counts[present])
    return weights


def cached_sampler(features: np.ndarray, labels: np.ndarray) -> BatchSampler:
    """Random batches, with replacement, from cached training bottlenecks."""
    if len(labels) == 0:
        raise ValueError("no training images")

    def sample(rng: np.random.Generator, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        idx = rng.integers(0, len(labels), batch_size)
        return features[idx], labels[idx]

    return sample
