"""retrain.py's split: each file's name, hashed, decides its set, so adding images moves none."""

from __future__ import annotations

import hashlib
import re

from harness.errors import HarnessError
from harness.pipeline.images import ImageFile, ImageSet

#: retrain.py's bucket count: SHA-1 of the name modulo 2**27 decides the set.
MAX_NUM_IMAGES_PER_CLASS = 2**27 - 1
SPLITS = ("training", "validation", "testing")


def which_set(file_name: str, validation_percentage: float, testing_percentage: float, salt: str = "") -> str:
    """retrain.py's stable assignment of one file name to a set.

    The SHA-1 of the file name (ignoring anything after ``_nohash_``, so variants of
    one photo stay together) picks a bucket; adding images never moves existing ones.
    A ``salt`` (prefixed to the name) draws another split with the same properties;
    without one it is retrain.py's.
    """
    return _bucket_set(salt + _hash_name(file_name), validation_percentage, testing_percentage)


def _hash_name(file_name: str) -> str:
    return re.sub(r"_nohash_.*$", "", file_name)


def _bucket_set(hash_name: str, validation_percentage: float, testing_percentage: float) -> str:
    hashed = int(hashlib.sha1(hash_name.encode("utf-8", "surrogateescape")).hexdigest(), 16)
    percentage = (hashed % (MAX_NUM_IMAGES_PER_CLASS + 1)) * (100.0 / MAX_NUM_IMAGES_PER_CLASS)
    if percentage < validation_percentage:
        return "validation"
    if percentage < testing_percentage + validation_percentage:
        return "testing"
    return "training"


def split_images(
    images: list[ImageFile], validation_percentage: float = 10, testing_percentage: float = 10, salt: str = ""
) -> dict[str, list[ImageFile]]:
    """Split images into training, validation and testing lists (see :func:`which_set`)."""
    return salted_splits(images, validation_percentage, testing_percentage, [salt])[0]


def salted_splits(
    images: list[ImageFile], validation_percentage: float, testing_percentage: float, salts: list[str]
) -> list[dict[str, list[ImageFile]]]:
    """:func:`split_images` once per salt, each name read once (``--repeats`` draws ten)."""
    if not (
        0 <= validation_percentage
        and 0 <= testing_percentage
        and validation_percentage + testing_percentage < 100
    ):
        raise HarnessError("validation and testing percentages must be >= 0 and add up to under 100")
    out: list[dict[str, list[ImageFile]]] = [{name: [] for name in SPLITS} for _ in salts]
    for img in images:
        hash_name = _hash_name(img.name)
        for splits, salt in zip(out, salts):
            splits[_bucket_set(salt + hash_name, validation_percentage, testing_percentage)].append(img)
    return out


def dataset_fingerprint(image_set: ImageSet, splits: dict[str, list[ImageFile]]) -> str:
    """A hash of the file list, their content and the split: equal means same data."""
    digest = hashlib.sha256()
    for name in SPLITS:
        for img in sorted(splits[name], key=lambda i: str(i.path)):
            rel = img.path.relative_to(image_set.root)
            line = f"{name}\t{img.label}\t{rel}\t{img.content_hash}\n"
            digest.update(line.encode("utf-8", "surrogateescape"))
    return digest.hexdigest()[:16]
