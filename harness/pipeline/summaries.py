"""Training curves as TensorBoard event files, as retrain.py wrote them.

``<folder>/train`` and ``<folder>/validation`` each get the scalars ``accuracy`` and
``cross_entropy`` at every logged step, so ``tensorboard --logdir <folder>`` shows the
same two charts retrain.py's users know, with train and validation as two runs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import tensorflow as tf


class Summaries:
    """Writers for one training run; :meth:`write` takes a row of the training history."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        root = Path(folder)
        self.folder = root
        self._writers = {
            split: tf.summary.create_file_writer(str(root / split)) for split in ("train", "validation")
        }

    def write(self, row: dict[str, Any]) -> None:
        step = int(row["step"])
        values = {
            "train": (row.get("train_accuracy"), row.get("cross_entropy")),
            "validation": (row.get("validation_accuracy"), row.get("validation_cross_entropy")),
        }
        for split, (accuracy, cross_entropy) in values.items():
            if accuracy is None:
                continue
            with self._writers[split].as_default():
                tf.summary.scalar("accuracy", accuracy, step=step)
                tf.summary.scalar("cross_entropy", cross_entropy, step=step)

    def close(self) -> None:
        for writer in self._writers.values():
            writer.flush()
            writer.close()
