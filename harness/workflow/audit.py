"""Audit the photos before trusting an accuracy: label issues, duplicates, leaks, imbalance.

Everything works on the cached bottlenecks (no photo is decoded for it, except the few
near-duplicate candidates whose perceptual hash confirms them):

- **label issues**: out-of-fold probabilities from K layers trained together on the other
  folds (the run's own trainer), ranked by cleanlab's ``find_label_issues``
  (self-confidence), most suspicious first;
- **exact duplicates**: the same bytes (the cache's content hash) under two names;
- **near duplicates**: nearest neighbours by bottleneck cosine, confirmed by a perceptual
  hash (``imagehash.phash``): re-encoded, resized and slightly cropped copies;
- **leaks** (a pair split between training or validation and testing) and **conflicts**
  (a pair filed under two classes), and the test accuracy with leaked test photos left out;
- **imbalance**: photos per class and the ratio of the largest class to the smallest.

cleanlab and imagehash come with the ``audit`` extra.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from harness.errors import escaped
from harness.pipeline.dataset import Dataset
from harness.pipeline.images import ImageFile
from harness.plan import PipelineOptions, TrainConfig

#: Out-of-fold probabilities for the label audit: FOLDS-fold, averaged over REPEATS
#: shuffles (all FOLDS x REPEATS layers trained together).
FOLDS = 5
REPEATS = 2
#: Training steps of each fold's layer: enough for the ranking (planted label errors among the
#: first 2N suspects: 80-87% on three corpora from 1,000 steps, 83-87% from 4,000, in a third of the time).
FOLD_STEPS = 1000
#: Near-duplicate candidates: among each photo's NEIGHBOURS nearest by bottleneck cosine,
#: at least NEAR_COSINE; a perceptual hash at most PHASH_DISTANCE bits apart (of 64)
#: confirms them. Re-encoded, resized and cropped copies of the shared photos measured
#: cosines of 0.85-0.93 and hash distances of 2-8; two different photos are about 32 apart.
NEAR_COSINE = 0.75
PHASH_DISTANCE = 12
NEIGHBOURS = 5
#: How cleanlab orders the suspects.
RANK_BY = "self_confidence"


#: Every kind of finding, in the order they are listed.
KINDS = ("label_issue", "exact_duplicate", "near_duplicate", "leak", "conflict")


@dataclass(frozen=True)
class Finding:
    """One thing the audit found; ``other`` names the second photo of a pair."""

    kind: str  # label_issue, exact_duplicate, near_duplicate, leak, conflict
    path: str
    other: str | None = None
    given: str | None = None
    suggested: str | None = None
    score: float = 0.0

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class AuditResult:
    """What :func:`audit` found, and the figures beside it."""

    findings: list[Finding]
    class_counts: dict[str, int]
    test_accuracy: float | None = None
    test_accuracy_without_leaks: float | None = None
    leaked_test_photos: int = 0
    per_class_recall: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def imbalance_ratio(self) -> float:
        counts = [c for c in self.class_counts.values() if c]
        return max(counts) / min(counts) if counts else float("nan")

    def of_kind(self, kind: str) -> list[Finding]:
        return [f for f in self.findings if f.kind == kind]

    def summary(self) -> list[str]:
        """What the audit found, in three lines: counts, photos per class, test accuracy."""
        counts = ", ".join(f"{len(self.of_kind(k))} {k.replace('_', ' ')}s" for k in KINDS)
        lines = [
            f"audit of {sum(self.class_counts.values())} photos in {self.seconds:.1f}s: {counts}",
            f"photos per class: {', '.join(f'{c} {n}' for c, n in self.class_counts.items())} "
            f"(largest / smallest {self.imbalance_ratio:.2f})",
        ]
        if self.test_accuracy is not None:
            line = f"test accuracy {self.test_accuracy:.1%}"
            if self.test_accuracy_without_leaks is not None:
                line += (
                    f"; without the {self.leaked_test_photos} leaked test photos "
                    f"{self.test_accuracy_without_leaks:.1%}"
                )
            lines.append(line)
        return lines

    def as_details(self) -> dict[str, Any]:
        """For the run JSON and the report: every finding, most suspicious label first."""
        return {
            "findings": [f.as_json() for f in self.findings],
            "class_counts": self.class_counts,
            "imbalance_ratio": self.imbalance_ratio,
            "test_accuracy": self.test_accuracy,
            "test_accuracy_without_leaks": self.test_accuracy_without_leaks,
            "leaked_test_photos": self.leaked_test_photos,
            "per_class_recall": self.per_class_recall,
            "seconds": self.seconds,
        }


def audit(
    images: list[ImageFile],
    features: np.ndarray,
    dataset: Dataset,
    options: PipelineOptions,
) -> AuditResult:
    """Audit ``images`` (those whose bottlenecks ``features`` holds, row for row)."""
    start = time.perf_counter()
    classes = dataset.classes
    index = {c: i for i, c in enumerate(classes)}
    labels = np.array([index[img.label] for img in images], dtype=np.int64)
    names = [escaped(str(img.path.relative_to(dataset.images.root))) for img in images]
    split_of = {id(img): name for name, imgs in dataset.splits.items() for img in imgs}
    splits = [split_of.get(id(img), "training") for img in images]
    pairs = exact_pairs(images) + near_pairs(images, features)
    # A photo filed twice under two classes is reported as a conflict, not as a label issue.
    conflicted = {names[i] for a, b, _, _ in pairs if labels[a] != labels[b] for i in (a, b)}
    findings = [
        f for f in label_issues(features, labels, classes, names, options.train) if f.path not in conflicted
    ]
    leaked: set[int] = set()
    for a, b, kind, score in pairs:
        findings.append(Finding(kind, names[a], names[b], classes[labels[a]], classes[labels[b]], score))
        if labels[a] != labels[b]:
            findings.append(
                Finding("conflict", names[a], names[b], classes[labels[a]], classes[labels[b]], score)
            )
        if (splits[a] == "testing") != (splits[b] == "testing"):
            findings.append(Finding("leak", names[a], names[b], splits[a], splits[b], score))
            leaked.add(a if splits[a] == "testing" else b)
    result = AuditResult(findings, {c: int(np.sum(labels == i)) for i, c in enumerate(classes)})
    _test_accuracy(result, features, labels, splits, leaked, classes, options.train)
    result.seconds = time.perf_counter() - start
    return result


def label_issues(
    features: np.ndarray, labels: np.ndarray, classes: list[str], names: list[str], config: TrainConfig
) -> list[Finding]:
    """Photos whose label the other folds' layers doubt, most suspicious first."""
    from cleanlab.filter import find_label_issues

    from harness.pipeline.heads import train_heads_together

    n = len(labels)
    if n < 2 * FOLDS or len(set(labels.tolist())) < 2:
        return []
    rng = np.random.default_rng(config.seed)
    folds = [rng.permutation(n) % FOLDS for _ in range(REPEATS)]
    members = np.stack([fold != k for fold in folds for k in range(FOLDS)])
    quick = replace(config, steps=min(config.steps, FOLD_STEPS))
    heads = train_heads_together(features, labels, members, len(classes), quick)
    probs = np.zeros((n, len(classes)), np.float32)
    for (r, k), head in zip(((r, k) for r in range(REPEATS) for k in range(FOLDS)), heads):
        held = folds[r] == k
        probs[held] += head.probabilities(features[held]) / REPEATS
    ranked = find_label_issues(labels, probs, return_indices_ranked_by=RANK_BY)
    return [
        Finding(
            "label_issue",
            names[i],
            given=classes[labels[i]],
            suggested=classes[int(np.argmax(probs[i]))],
            score=float(1 - probs[i, labels[i]]),
        )
        for i in ranked
    ]


def exact_pairs(images: list[ImageFile]) -> list[tuple[int, int, str, float]]:
    """Photos with the same bytes: each copy paired with the first."""
    first: dict[str, int] = {}
    out = []
    for i, img in enumerate(images):
        if img.content_hash in first:
            out.append((first[img.content_hash], i, "exact_duplicate", 1.0))
        else:
            first[img.content_hash] = i
    return out


def near_pairs(images: list[ImageFile], features: np.ndarray) -> list[tuple[int, int, str, float]]:
    """Different bytes, the same photo: close bottlenecks confirmed by a perceptual hash.

    Score: the bottleneck cosine. Candidates come from each photo's few nearest
    neighbours, found by a matrix product over chunks of 1,024 photos (memory stays
    1,024 x N); only candidates are decoded, for their perceptual hash.
    """
    unit = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    candidates: dict[tuple[int, int], float] = {}
    for start in range(0, len(unit), 1024):
        sims = unit[start : start + 1024] @ unit.T
        for row, i in enumerate(range(start, min(start + 1024, len(unit)))):
            sims[row, i] = -1
            for j in np.argpartition(-sims[row], min(NEIGHBOURS, len(unit) - 1))[:NEIGHBOURS]:
                cosine = float(sims[row, j])
                if cosine >= NEAR_COSINE and images[i].content_hash != images[int(j)].content_hash:
                    candidates[(min(i, int(j)), max(i, int(j)))] = cosine
    import os
    from concurrent.futures import ThreadPoolExecutor

    wanted = sorted({i for pair in candidates for i in pair})
    # Decoding is most of the audit's time here, and PIL decodes without the GIL: one thread a core.
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        hashes = dict(zip(wanted, pool.map(lambda i: _phash(images[i]), wanted)))
    out = []
    for (a, b), cosine in sorted(candidates.items()):
        ha, hb = hashes[a], hashes[b]
        if ha is not None and hb is not None and ha - hb <= PHASH_DISTANCE:
            out.append((a, b, "near_duplicate", cosine))
    return out


def _phash(img: ImageFile) -> Any:
    import imagehash
    from PIL import Image

    try:
        with Image.open(img.file) as im:
            im.draft("RGB", (64, 64))  # JPEG: decode at 1/2-1/8 scale; the hash reads 32 x 32
            return imagehash.phash(im.convert("RGB"))
    except Exception:  # a file PIL cannot read is no candidate
        return None


def _test_accuracy(
    result: AuditResult,
    features: np.ndarray,
    labels: np.ndarray,
    splits: list[str],
    leaked: set[int],
    classes: list[str],
    config: TrainConfig,
) -> None:
    """The layer trained on the training split, tested with and without leaked photos."""
    from harness.pipeline.heads import train_heads_together

    split = np.array(splits)
    test = np.flatnonzero(split == "testing")
    if not len(test) or not np.any(split == "training"):
        return
    (head,) = train_heads_together(features, labels, (split == "training")[None], len(classes), config)
    right = head.probabilities(features[test]).argmax(1) == labels[test]
    result.test_accuracy = float(right.mean())
    kept = np.array([i not in leaked for i in test])
    result.leaked_test_photos = int((~kept).sum())
    result.test_accuracy_without_leaks = float(right[kept].mean()) if kept.any() else None
    recall: dict[str, list[bool]] = defaultdict(list)
    for i, ok in zip(test, right):
        recall[classes[labels[i]]].append(bool(ok))
    result.per_class_recall = {c: float(np.mean(v)) for c, v in recall.items()}


def audit_folder(
    target: Any, dataset: Dataset, options: PipelineOptions, log: Any, progress: Any = None
) -> AuditResult:
    """Bottlenecks of every photo (straight from the cache when all are there), then
    :func:`audit` on them."""
    from harness.workflow.bottlenecks import bottlenecks, cached_bottlenecks

    extraction = cached_bottlenecks(target, dataset, options, log)
    if extraction is None:
        extraction = bottlenecks(target, dataset, options, log, progress).extraction
    return audit_extracted(extraction, dataset, options)


def audit_extracted(extraction: Any, dataset: Dataset, options: PipelineOptions) -> AuditResult:
    """:func:`audit` on the photos an :class:`~harness.pipeline.extract.Extraction` has (``--audit``
    on run and train: the bottlenecks the training used, nothing decoded again)."""
    images = [img for img in dataset.images.images if img.content_hash in extraction.features]
    return audit(images, extraction.matrix(images), dataset, options)
