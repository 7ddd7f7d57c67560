"""Classify images with an exported model, like label_image.py."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import HarnessError, first_line, plain_reason
from harness.outputs import damaged_model_file
from harness.pipeline.images import not_a_file_reason, sniff_format
from harness.pipeline.savedmodel import LABELS_FILE, METADATA_FILE

BATCH = 32


@dataclass
class Classifier:
    """A loaded exported model and its labels."""

    path: Path
    labels: list[str]
    metadata: dict[str, Any]
    _predict: Any

    def predict(self, encoded: list[bytes], calibrated: bool = True) -> np.ndarray:
        """Class probabilities ``[N, classes]`` for encoded image files: as the model outputs
        them, or temperature-scaled where the export recorded a temperature (``calibrated``)."""
        probabilities = self._predict(encoded)
        if calibrated and self.temperature is not None and self.temperature != 1.0:
            from harness.pipeline.calibration import rescale

            probabilities = rescale(np.asarray(probabilities), self.temperature)
        return probabilities

    @property
    def temperature(self) -> float | None:
        value = (self.metadata.get("calibration") or {}).get("temperature")
        return float(value) if isinstance(value, int | float) and value > 0 else None


def load_classifier(model: str | os.PathLike[str]) -> Classifier:
    """Load an exported SavedModel directory or a ``.tflite`` file beside its labels.txt.

    Raises:
        HarnessError: one line naming the file that is missing or damaged.
    """
    path = Path(model)
    is_tflite = path.is_file() and path.suffix == ".tflite"
    folder = path.parent if is_tflite else path
    if not is_tflite and not (path / "saved_model.pb").is_file():
        raise HarnessError(f"no exported model at {path} (expected saved_model.pb or a .tflite file)")
    if damage := damaged_model_file(folder):
        raise HarnessError(f"{damage}: export the model again")
    labels_file = folder / LABELS_FILE
    if not labels_file.is_file():
        raise HarnessError(f"{labels_file} is missing")
    try:
        labels = labels_file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise HarnessError(f"{labels_file} is damaged ({_reason(exc)}): export the model again") from None
    meta_file = folder / METADATA_FILE
    try:
        metadata = json.loads(meta_file.read_text(encoding="utf-8")) if meta_file.is_file() else {}
    except (OSError, ValueError) as exc:
        raise HarnessError(f"{meta_file} is damaged ({_reason(exc)}): export the model again") from None
    if is_tflite:
        from harness.deploy.tflite import TFLiteModel

        try:
            tflite = TFLiteModel(path)
        except Exception as exc:
            raise HarnessError(f"{path} is not a readable TFLite model ({_reason(exc)})") from None
        _check_labels(labels_file, labels, int(tflite.interpreter.get_output_details()[0]["shape"][-1]))
        return Classifier(path=path, labels=labels, metadata=metadata, _predict=tflite.predict_encoded)

    import tensorflow as tf

    try:
        loaded = tf.saved_model.load(str(path))
        signature = loaded.signatures["serving_default"]
    except Exception as exc:
        raise HarnessError(
            f"the SavedModel in {path} is damaged ({_reason(exc)}): export the model again"
        ) from None
    _check_labels(labels_file, labels, int(signature.structured_outputs["probabilities"].shape[-1]))

    def predict(encoded: list[bytes]) -> np.ndarray:
        return signature(images=tf.constant(encoded, dtype=tf.string))["probabilities"].numpy()

    return Classifier(path=path, labels=labels, metadata=metadata, _predict=predict)


def _reason(exc: BaseException) -> str:
    return type(exc).__name__ if not first_line(exc) else first_line(exc)[:200]


def _check_labels(labels_file: Path, labels: list[str], outputs: int) -> None:
    """A label per output, or every answer could name the wrong class."""
    if len(labels) != outputs:
        raise HarnessError(
            f"{labels_file} has {len(labels)} lines but the model has {outputs} outputs: "
            "it does not belong to this model (one label per line, in output order)"
        )


def collect_images(inputs: list[str]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Image files among ``inputs`` (files or folders, searched recursively), and skips."""
    found: list[Path] = []
    skipped: list[tuple[str, str]] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            candidates = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
        elif path.is_file():
            candidates = [path]
        elif path.exists() or path.is_symlink():
            skipped.append((item, not_a_file_reason(path)))
            continue
        else:
            skipped.append((item, "no such file"))
            continue
        for file in candidates:
            try:
                with open(file, "rb") as fh:
                    head = fh.read(16)
            except OSError as exc:
                skipped.append((str(file), f"unreadable: {exc.strerror or exc}"))
                continue
            if sniff_format(head) is None:
                skipped.append((str(file), "not a JPEG, PNG, GIF or BMP image"))
            else:
                found.append(file)
    return found, skipped


def classify_files(
    classifier: Classifier, files: list[Path], top_k: int = 5, min_confidence: float = 0.0
) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """Top-k labels of each file; files that fail to decode are returned as skips. A file
    whose best score is under ``min_confidence`` is marked ``"unknown": true``."""
    results: list[dict[str, Any]] = []
    skipped: list[tuple[str, str]] = []
    k = max(1, min(top_k, len(classifier.labels)))

    def rows(batch: list[Path], probs: np.ndarray) -> None:
        for file, p in zip(batch, probs):
            order = np.argsort(-p)[:k]
            results.append(
                {
                    "image": str(file),
                    "top": [{"label": classifier.labels[i], "score": float(p[i])} for i in order],
                    "unknown": bool(p[order[0]] < min_confidence),
                }
            )

    for start in range(0, len(files), BATCH):
        batch = files[start : start + BATCH]
        data = []
        for file in list(batch):
            try:
                data.append(file.read_bytes())
            except OSError as exc:
                batch.remove(file)
                skipped.append((str(file), f"unreadable: {exc.strerror or exc}"))
        if not batch:
            continue
        try:
            rows(batch, classifier.predict(data))
        except Exception:  # one bad file fails the batch: retry one by one to isolate it
            for file, blob in zip(batch, data):
                try:
                    rows([file], classifier.predict([blob]))
                except Exception as exc:
                    skipped.append((str(file), "cannot decode: " + plain_reason(exc)))
    return results, skipped
