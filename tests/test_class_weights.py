"""--class-weights balanced on an imbalanced folder of real photos, with real ImageNet weights."""

import numpy as np
import pytest

from harness.bench.measure import balanced_accuracy
from harness.errors import HarnessError
from harness.pipeline.dataset import prepare_dataset
from harness.pipeline.train import class_weights_for
from harness.plan import PipelineOptions, TrainConfig
from harness.registry import get_backbone
from harness.workflow import retrain_final_layer

pytestmark = pytest.mark.slow


def test_balanced_weights_are_scikit_learns():
    labels = np.array([0] * 40 + [1] * 8 + [2] * 2)
    weights = class_weights_for(labels, 4, TrainConfig(class_weight="balanced"))
    # n / (k * n_c) over the 3 classes present; a class with no photo keeps 1.
    assert np.allclose(weights, [50 / 120, 50 / 24, 50 / 6, 1.0])
    assert class_weights_for(labels, 4, TrainConfig()) is None
    with pytest.raises(HarnessError, match="one of none, balanced"):
        TrainConfig(class_weight="inverse")


def test_balanced_weights_move_answers_towards_the_small_classes(flowers, copy_subset, tmp_path):
    photos = tmp_path / "photos"
    copy_subset(flowers, photos / "a", 60, ["daisy"])
    copy_subset(flowers, photos / "b", 8, ["roses", "tulips"])
    for group in ("a", "b"):
        for folder in (photos / group).iterdir():
            folder.rename(photos / folder.name)
        (photos / group).rmdir()
    dataset = prepare_dataset(photos)
    outcomes = {}
    for weighting in ("none", "balanced"):
        train = TrainConfig(steps=300, batch_size=16, eval_interval=300, class_weight=weighting)
        options = PipelineOptions(cache_dir=str(tmp_path / "cache"), train=train)
        result = retrain_final_layer(get_backbone("mobilenet_v1_025"), dataset, options, None)
        x = result.extraction.matrix(result.images["training"])
        small = [i for i, c in enumerate(dataset.classes) if c != "daisy"]
        daisy = dataset.classes.index("daisy")
        prior = result.head.bias[small].mean() - result.head.bias[daisy]
        outcomes[weighting] = (result.head.probabilities(x)[:, small].sum(1).mean(), prior)
        assert 0 <= balanced_accuracy(result.evaluation.per_class) <= 1
    # Daisy has 60 photos to the others' 8: weighting moves probability to roses and tulips,
    # and the layer's bias (its prior over classes) away from daisy.
    assert outcomes["balanced"][0] > outcomes["none"][0]
    assert outcomes["balanced"][1] > outcomes["none"][1]
