import numpy as np
import pytest

from harness.pipeline.evaluate import evaluate, wilson_interval
from harness.pipeline.train import cached_sampler, train_head
from harness.plan import TrainConfig


def _blobs(seed, n=300, d=8, classes=3):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3, (classes, d))
    y = rng.integers(0, classes, n)
    return (centres[y] + rng.normal(0, 1, (n, d))).astype(np.float32), y


def test_learns_separable_data_and_logs_each_interval():
    x, y = _blobs(0)
    vx, vy = _blobs(0, n=60)
    config = TrainConfig(steps=500, learning_rate=0.05, batch_size=50, eval_interval=100)
    head, history = train_head(cached_sampler(x, y), 8, 3, config, validation=(vx, vy))
    assert [r["step"] for r in history] == [1, 100, 200, 300, 400, 500]
    assert set(history[0]) == {
        "step",
        "train_accuracy",
        "cross_entropy",
        "validation_accuracy",
        "validation_cross_entropy",
    }
    assert history[0]["validation_accuracy"] < 0.7
    assert history[-1]["validation_accuracy"] > 0.9
    assert history[-1]["cross_entropy"] < history[0]["cross_entropy"]


def test_same_seed_same_weights_other_seed_differs():
    x, y = _blobs(1)
    config = TrainConfig(steps=200, batch_size=32, seed=7)
    a, _ = train_head(cached_sampler(x, y), 8, 3, config)
    b, _ = train_head(cached_sampler(x, y), 8, 3, config)
    c, _ = train_head(cached_sampler(x, y), 8, 3, TrainConfig(steps=200, batch_size=32, seed=8))
    np.testing.assert_array_equal(a.weights, b.weights)
    assert not np.array_equal(a.weights, c.weights)


def test_evaluation_metrics_on_crafted_predictions():
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    labels = np.array([0, 1, 1, 1])
    ev = evaluate(probs, labels, ["cat", "dog"], ["a.jpg", "b.jpg", "c.jpg", "d.jpg"])
    assert ev.accuracy == 0.75
    assert ev.confusion == [[1, 0], [1, 2]]
    cat, dog = ev.per_class
    assert cat["precision"] == 0.5 and cat["recall"] == 1.0
    assert dog["precision"] == 1.0 and dog["recall"] == pytest.approx(2 / 3)
    assert ev.misclassified == [{"image": "c.jpg", "true": "dog", "predicted": "cat", "confidence": 0.6}]


def test_wilson_interval():
    low, high = wilson_interval(90, 100)
    assert low == pytest.approx(0.8256, abs=1e-3) and high == pytest.approx(0.9448, abs=1e-3)
    assert wilson_interval(0, 10)[0] == 0.0
    assert wilson_interval(10, 10)[1] == 1.0
