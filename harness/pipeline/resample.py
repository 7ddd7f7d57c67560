"""Accuracy beyond one split, from cached bottlenecks: repeated splits, data-efficiency curves.

Both retrain only the new layer, with the run's own trainer and options, on features
already extracted: a head takes about a second, an extraction minutes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from harness.pipeline.heads import train_heads_together
from harness.pipeline.images import ImageFile
from harness.pipeline.split import salted_splits
from harness.pipeline.train import cached_sampler, class_weights_for, train_head
from harness.plan import TrainConfig

#: Images per class of the data-efficiency curve; None is every training image.
CURVE_SIZES: tuple[int | None, ...] = (5, 10, 20, 50, 100, None)


def split_salt(k: int) -> str:
    """Split 0 is retrain.py's own; split k > 0 hashes the names with a salt."""
    return "" if k == 0 else f"harness-repeat-{k}:"


def _accuracy(
    x: np.ndarray, y: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, n_classes: int, config: TrainConfig
) -> float:
    # Logged only once (eval_interval = steps): the history is not kept, only the head.
    quiet = TrainConfig(**{**config.as_dict(), "eval_interval": config.steps})
    weights = class_weights_for(y, n_classes, config)
    head, _ = train_head(cached_sampler(x, y), x.shape[1], n_classes, quiet, class_weights=weights)
    return float(np.mean(np.argmax(head.logits(x_test), axis=1) == y_test))


def repeated_splits(
    images: Sequence[ImageFile],
    features: dict[str, np.ndarray],
    classes: list[str],
    config: TrainConfig,
    repeats: int,
    validation_percentage: float,
    testing_percentage: float,
    first: float | None = None,
) -> list[dict[str, float]]:
    """Test accuracy of the head retrained on ``repeats`` different splits of ``images``.

    Args:
        images: The images with features (those that failed to decode are left out).
        features: Bottleneck per content hash.
        classes: Class names; an image's label indexes them.
        config: The run's training options (steps, rate, batch, seed).
        repeats: Number of splits; split 0 is the run's own.
        first: The run's own test accuracy, if its head was trained on cached bottlenecks
            (no distortions): split 0 then reuses it instead of training it again;
            otherwise split 0 is retrained exactly as the run trains its layer.

    The other splits' layers are trained together (:func:`train_heads_together`): the
    same SGD, with batches of the run's batch size on average.

    Returns:
        One row per split: ``split``, ``n_train``, ``n_test``, ``test_accuracy``.
    """
    index = {c: i for i, c in enumerate(classes)}
    position = {img.file: i for i, img in enumerate(images)}
    x = np.stack([features[img.content_hash] for img in images]).astype(np.float32)
    y = np.array([index[img.label] for img in images])
    planned = []  # (split, train rows, test rows)
    salts = [split_salt(k) for k in range(repeats)]
    for k, splits in enumerate(salted_splits(list(images), validation_percentage, testing_percentage, salts)):
        train = [position[i.file] for i in splits["training"]]
        test = [position[i.file] for i in splits["testing"]]
        if train and test:
            planned.append((k, train, test))
    # Split 0 is the run's own: its accuracy is known, or retrained exactly as the run
    # trained it (distortions aside). The others are trained together.
    accuracy: dict[int, float] = {}
    if planned and planned[0][0] == 0:
        _, train, test = planned[0]
        accuracy[0] = (
            float(first)
            if first is not None
            else _accuracy(x[train], y[train], x[test], y[test], len(classes), config)
        )
    to_train = [p for p in planned if p[0] != 0]
    members = np.zeros((len(to_train), len(images)), bool)
    for row, (_, train, _) in enumerate(to_train):
        members[row, train] = True
    heads = train_heads_together(x, y, members, len(classes), config) if to_train else []
    for (k, _, test), head in zip(to_train, heads):
        accuracy[k] = float(np.mean(np.argmax(head.logits(x[test]), axis=1) == y[test]))
    return [
        {"split": k, "n_train": len(train), "n_test": len(test), "test_accuracy": accuracy[k]}
        for k, train, test in planned
    ]


def learning_curve(
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    n_classes: int,
    config: TrainConfig,
    sizes: Sequence[int | None] = CURVE_SIZES,
    draws: int = 3,
) -> list[dict[str, float]]:
    """Test accuracy when training on ``n`` images per class, for each ``n`` in ``sizes``.

    Each size is drawn ``draws`` times (without replacement, per class, seeded by the
    run's seed, the size and the draw); a class with fewer images gives all it has.
    Sizes at or above the largest class are one point, "all" (None).

    Returns:
        One row per size and draw: ``per_class`` (an int, or None for all),
        ``n_train``, ``draw``, ``test_accuracy``.
    """
    x, y = train
    by_class = [np.flatnonzero(y == c) for c in range(n_classes)]
    largest = max(len(members) for members in by_class)
    rows = []
    for size in sizes:
        if size is not None and size >= largest:
            continue
        for draw in range(1 if size is None else draws):
            rng = np.random.default_rng([config.seed, size or 0, draw])
            if size is None:
                chosen = np.arange(len(y))
            else:
                chosen = np.concatenate([rng.permutation(m)[:size] for m in by_class])
            accuracy = _accuracy(x[chosen], y[chosen], *test, n_classes, config)
            rows.append(
                {"per_class": size, "n_train": int(len(chosen)), "draw": draw, "test_accuracy": accuracy}
            )
    return rows
