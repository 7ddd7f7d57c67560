"""Issue 14: McNemar on known counts, repeated splits, the learning curve, the report's tables."""

import math

import numpy as np
import pandas as pd
import pytest

from harness.pipeline.resample import learning_curve, repeated_splits, split_salt
from harness.plan import TrainConfig
from harness.results.analysis import fastest_not_worse
from harness.results.significance import mcnemar_exact, paired_tests


def test_mcnemar_exact_on_hand_computed_counts():
    assert mcnemar_exact(0, 0) == 1.0  # no discordant image: no evidence at all
    assert mcnemar_exact(1, 6) == pytest.approx(2 * (1 + 7) / 2**7)  # 0.125
    assert mcnemar_exact(6, 1) == mcnemar_exact(1, 6)  # two-sided
    assert mcnemar_exact(0, 5) == pytest.approx(2 / 2**5)  # 0.0625: 5 to 0 is not yet significant
    assert mcnemar_exact(0, 6) == pytest.approx(2 / 2**6)  # 0.03125: 6 to 0 is
    assert mcnemar_exact(3, 3) == 1.0  # capped at 1
    # Large counts: the exact tail is close to the continuity-corrected normal approximation.
    z = (abs(30 - 50) - 1) / math.sqrt(80)
    normal = math.erfc(z / math.sqrt(2))
    assert mcnemar_exact(30, 50) == pytest.approx(normal, abs=0.003)
    assert mcnemar_exact(30, 50) < 0.05 < mcnemar_exact(35, 45)


def test_paired_tests_count_only_the_images_scored_differently():
    a = {"1": True, "2": True, "3": False, "4": True, "5": False}
    b = {"1": True, "2": False, "3": True, "4": False, "6": True}  # 5 and 6 are not common
    (row,) = paired_tests({"a": a, "b": b})
    assert (row["n_images"], row["a_only"], row["b_only"]) == (4, 2, 1)
    assert row["p_value"] == pytest.approx(mcnemar_exact(2, 1)) == 1.0
    assert row["accuracy_a"] == 0.75 and row["accuracy_b"] == 0.5


def _summary(rows):
    return pd.DataFrame(rows, columns=["backbone", "test_accuracy", "bottleneck_img_per_s"])


def test_the_recommendation_picks_the_fastest_backbone_not_significantly_worse():
    summary = _summary([("big", 0.90, 10), ("mid", 0.88, 50), ("fast", 0.70, 200)])
    pairs = [
        {"a": "big", "b": "mid", "p_value": 0.62},
        {"a": "big", "b": "fast", "p_value": 0.001},
        {"a": "mid", "b": "fast", "p_value": 0.01},
    ]
    text = fastest_not_worse(summary, pairs)
    assert (
        text.startswith("mid is the fastest backbone not significantly less accurate") and "p = 0.62" in text
    )
    pairs[0]["p_value"] = 0.01
    assert "every faster one is significantly less accurate" in fastest_not_worse(summary, pairs)
    assert fastest_not_worse(summary.iloc[:1], pairs) is None


def _features(n_per_class=40, n_classes=3, dim=8, seed=0):
    """Two draws (train, test) of 3 noisy clusters with the same centres."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1.5, (n_classes, dim))
    y = np.repeat(np.arange(n_classes), n_per_class)
    draw = [((centres[y] + rng.normal(0, 1.0, (len(y), dim))).astype(np.float32), y) for _ in range(2)]
    return draw[0], draw[1]


def test_learning_curve_draws_the_asked_images_per_class_deterministically():
    (x, y), test = _features()
    config = TrainConfig(steps=200, learning_rate=0.5)
    rows = learning_curve((x, y), test, 3, config, sizes=(5, 10, 40, 100, None), draws=2)
    sizes = [(r["per_class"], r["n_train"]) for r in rows]
    # 40 and 100 are not below the largest class (40): only "all" stands for them.
    assert sizes == [(5, 15), (5, 15), (10, 30), (10, 30), (None, 120)]
    assert rows == learning_curve((x, y), test, 3, config, sizes=(5, 10, 40, 100, None), draws=2)
    assert rows[0]["test_accuracy"] != rows[1]["test_accuracy"] or rows[2] != rows[3]  # draws differ
    assert rows[-1]["test_accuracy"] > 0.6  # all the data: clearly above chance (1/3)


def test_salted_splits_differ_but_keep_retrain_py_proportions():
    from harness.pipeline.images import ImageFile
    from harness.pipeline.split import split_images

    images = [ImageFile(f"/p/c{i % 2}/img_{i}.jpg", f"c{i % 2}", f"{i:040x}", "jpeg") for i in range(2000)]
    first = split_images(images, 10, 10, split_salt(0))
    assert first == split_images(images, 10, 10)  # split 0 is retrain.py's
    other = split_images(images, 10, 10, split_salt(1))
    assert {i.file for i in first["testing"]} != {i.file for i in other["testing"]}
    for split in (first, other):
        assert 150 < len(split["testing"]) < 250 and 150 < len(split["validation"]) < 250


def test_repeats_from_the_cache_reproduce_the_runs_own_accuracy_and_vary(train_tiny, small_flowers, tmp_path):
    """Split 0 retrained from the bottlenecks gives the run's test accuracy exactly (the tiny
    backbone is seeded, so its features are the run's)."""
    from harness.pipeline.dataset import prepare_dataset
    from harness.pipeline.extract import extract_features

    result = train_tiny(small_flowers, tmp_path / "m", "--steps", "300", "--testing-percentage", "30")
    assert result.exit_code == 0, result.output
    reported = float(result.output.split("test accuracy")[-1].split("%")[0].strip(" :=")) / 100
    from harness.pipeline.backbone import load_backbone
    from harness.pipeline.cacheroot import CacheRoot
    from harness.registry import registry

    spec = registry.get("tiny_test")
    backbone = load_backbone(spec, "random")
    dataset = prepare_dataset(small_flowers, 10, 30)
    cache = CacheRoot(tmp_path / "cache").bottlenecks(spec, "random", backbone.feature_size)
    ex = extract_features(backbone, dataset.images.images, cache)
    assert not ex.failed
    rows = repeated_splits(
        dataset.images.images, ex.features, dataset.classes, TrainConfig(steps=300), 4, 10, 30
    )
    assert rows[0]["test_accuracy"] == pytest.approx(reported, abs=0.0051)  # printed with one decimal
    assert len({r["n_test"] for r in rows} | {r["test_accuracy"] for r in rows}) > 2  # the splits differ


@pytest.mark.parametrize("dual", [False, True])
def test_heads_trained_together_learn_only_from_their_own_images(dual):
    from harness.pipeline.heads import train_heads_together
    from harness.pipeline.train import cached_sampler, train_head

    (x, y), (x_test, y_test) = _features(60)
    config = TrainConfig(steps=300, learning_rate=0.5, batch_size=30)
    members = np.ones((3, len(y)), bool)
    members[1, y == 2] = False  # layer 1 never sees class 2
    members[2, ::2] = False  # layer 2 sees half the images
    heads = train_heads_together(x, y, members, 3, config, dual=dual)
    accuracy = [float(np.mean(np.argmax(h.logits(x_test), 1) == y_test)) for h in heads]
    alone, _ = train_head(cached_sampler(x, y), x.shape[1], 3, config)
    single = float(np.mean(np.argmax(alone.logits(x_test), 1) == y_test))
    assert abs(accuracy[0] - single) < 0.05 and accuracy[2] > 0.8  # the same SGD, in effect
    assert np.mean(np.argmax(heads[1].logits(x_test), 1) == 2) < 0.02  # never taught class 2
    assert accuracy[1] < 0.7
    again = train_heads_together(x, y, members, 3, config, dual=dual)
    assert all(np.array_equal(a.weights, b.weights) for a, b in zip(heads, again))  # seeded


def test_dual_and_primal_forms_train_the_same_layers():
    """The dual form (Gram matrix, one coefficient row per image) is the same SGD as the
    primal one: the same layers up to float rounding, and the cheaper form is chosen."""
    from harness.pipeline.heads import train_heads_together, use_dual

    (x, y), (x_test, _) = _features(50, n_classes=4, dim=96, seed=3)
    members = np.random.default_rng(0).random((5, len(y))) < 0.8
    config = TrainConfig(steps=400, learning_rate=0.05, batch_size=40)
    primal = train_heads_together(x, y, members, 4, config, dual=False)
    dual = train_heads_together(x, y, members, 4, config, dual=True)
    for a, b in zip(primal, dual):
        scale = np.abs(a.weights).max()
        assert scale > 0.05  # the layers learned something
        np.testing.assert_allclose(b.weights, a.weights, atol=1e-4 * scale)
        np.testing.assert_allclose(b.bias, a.bias, atol=1e-4 * scale)
        np.testing.assert_array_equal(np.argmax(a.logits(x_test), 1), np.argmax(b.logits(x_test), 1))
    assert use_dual(1500, 1024) and use_dual(1500, 2048) and not use_dual(1500, 256)
    assert not use_dual(20000, 2048)  # its Gram matrix would not fit


@pytest.mark.parametrize("scale", [1.0, 300.0])
def test_head_gradient_matches_a_stable_softmax_even_where_exp_overflows(scale):
    """The fast softmax skips the max subtraction; logits of +-300 must fall back to it."""
    from harness.pipeline.heads import _Gradient

    rng = np.random.default_rng(0)
    b, k, c, width = 6, 3, 4, 16
    logits = np.zeros((b, width), np.float32)
    logits[:, : k * c] = rng.normal(0, scale, (b, k * c))
    weight = rng.random((b, k)).astype(np.float32)
    labels = rng.integers(0, c, (b, k))
    target = np.zeros((b, width), np.float32)
    np.put_along_axis(target, np.arange(k) * c + labels, weight, axis=1)
    v = logits[:, : k * c].reshape(b, k, c).astype(np.float64)
    p = np.exp(v - v.max(axis=2, keepdims=True))
    p /= p.sum(axis=2, keepdims=True)
    p[np.arange(b)[:, None], np.arange(k)[None, :], labels] -= 1.0
    expected = (p * weight[:, :, None]).reshape(b, k * c)
    grad = _Gradient(b, k, c, width)(logits, weight, target)
    np.testing.assert_allclose(grad[:, : k * c], expected, atol=1e-6)
    assert not grad[:, k * c :].any()  # the padding learns nothing
