"""An image folder scanned and split: what every backbone of a run trains and tests on."""

from __future__ import annotations

import os
from dataclasses import dataclass

from harness.errors import HarnessError
from harness.pipeline.cacheroot import CacheRoot
from harness.pipeline.images import ImageFile, ImageSet, scan_images
from harness.pipeline.split import dataset_fingerprint, split_images


@dataclass
class Dataset:
    """A scanned and split image folder."""

    images: ImageSet
    splits: dict[str, list[ImageFile]]
    fingerprint: str
    validation_percentage: float
    testing_percentage: float

    @property
    def classes(self) -> list[str]:
        return self.images.classes

    def split_sizes(self) -> dict[str, int]:
        return {k: len(v) for k, v in self.splits.items()}


def split_warnings(classes: list[str], splits: dict[str, list[ImageFile]]) -> list[str]:
    """One line per class the split leaves without training images, and one for an empty
    test set (retrain.py's hash split puts each file by its name, so a small class can land
    wholly in one set)."""
    from collections import Counter

    training = Counter(img.label for img in splits["training"])
    elsewhere = Counter(img.label for name, imgs in splits.items() if name != "training" for img in imgs)
    out = [
        f"class '{label}' has no training image (its {elsewhere[label]} fall in validation or "
        "testing): the model cannot learn it; add photos to it"
        for label in classes
        if not training[label]
    ]
    if not splits["testing"]:
        out.append(
            "no test images after the split: test accuracy cannot be measured "
            "(add photos or raise --testing-percentage)"
        )
    return out


def prepare_dataset(
    image_dir: str | os.PathLike[str],
    validation_percentage: float = 10,
    testing_percentage: float = 10,
    cache_dir: str | os.PathLike[str] | None = None,
) -> Dataset:
    """Scan ``image_dir`` and split it (see :mod:`harness.pipeline.images`).

    With a ``cache_dir``, the scan keeps an index there, so unchanged files are not read.

    Raises:
        HarnessError: a missing folder, fewer than 2 classes, or no training image.
    """
    index = CacheRoot(cache_dir).scan_index(image_dir) if cache_dir is not None else None
    images = scan_images(image_dir, index)
    splits = split_images(images.images, validation_percentage, testing_percentage)
    if not splits["training"]:
        raise HarnessError("no training images after the split; add images or lower the percentages")
    images.warnings.extend(split_warnings(images.classes, splits))
    return Dataset(
        images=images,
        splits=splits,
        fingerprint=dataset_fingerprint(images, splits),
        validation_percentage=validation_percentage,
        testing_percentage=testing_percentage,
    )
