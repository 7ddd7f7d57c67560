"""Fine-tuning: after the head is trained on cached bottlenecks, train it and the top of the
backbone end to end on the images (TF Hub's ``make_image_classifier --do_fine_tuning``,
Model Maker's ``train_whole_model``).

The loop is plain TensorFlow on the backbone's own model: Adam at a small learning rate,
the backbone called with ``training=False`` so batch norm keeps its ImageNet statistics
(its scale and offset still learn), images decoded on the fly with the run's distortions,
early stopping on validation accuracy with the best weights kept. Validation accuracy
before the first epoch (the head-only model) counts as a candidate: fine-tuning that never
beats it hands back the head-only weights, and says so.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import tensorflow as tf

from harness.errors import HarnessError
from harness.pipeline import tfops
from harness.pipeline.augment import distorted_file
from harness.pipeline.backbone import Backbone, features_of
from harness.pipeline.train import Head
from harness.plan import Augmentation, FineTuneConfig

Progress = Callable[[str, int, int], None]
#: Class names of layers that normalise rather than compute features: not counted as layers.
NORMALIZATION = ("BatchNormalization", "LayerNormalization", "GroupNormalization", "Normalization")


@dataclass
class FineTuned:
    """What fine-tuning produced; the backbone's model now holds the kept weights."""

    head: Head
    layers: list[str]  # names of the layers trained, top first, batch norms included
    counted: int  # of which layers with weights that are not normalisations (``--fine-tune N``)
    params_trained: int
    history: list[dict[str, float]] = field(default_factory=list)  # one row per epoch, 0 = head only
    best_epoch: int = 0
    stopped: str = "epochs"  # epochs, early stopping, interrupted
    seconds: float = 0.0


def top_layers(model: Any, count: int | None) -> list[Any]:
    """The top ``count`` layers with weights (None: all), with the batch norms among them.

    Layers are counted as the model lists them, top down; a normalisation layer is not
    counted but is trained with the layers around it.

    Raises:
        HarnessError: the model has no Keras layers (a TF Hub module) or no weights.
    """
    layers = getattr(model, "layers", None)
    if layers is None:
        raise HarnessError(f"cannot fine-tune a {type(model).__name__}: it has no Keras layers")
    chosen, counted = [], 0
    for layer in reversed(layers):
        if not layer.trainable_weights:
            continue
        if count is not None and counted == count:
            break
        chosen.append(layer)
        counted += type(layer).__name__ not in NORMALIZATION
    if not counted:
        raise HarnessError(f"cannot fine-tune {getattr(model, 'name', 'the model')}: no layer has weights")
    return chosen


def fine_tune(
    backbone: Backbone,
    head: Head,
    train: tuple[Sequence[str], np.ndarray],
    validation: tuple[Sequence[str], np.ndarray],
    config: FineTuneConfig,
    augmentation: Augmentation | None = None,
    *,
    log: Callable[[str], None] = lambda _: None,
    progress: Progress | None = None,
) -> FineTuned:
    """Train ``head`` and the backbone's top layers end to end on image files.

    Args:
        backbone: Built with TensorFlow (its model is trained in place).
        head: The layer trained on bottlenecks: the starting point.
        train: Training files and class indices.
        validation: Validation files and class indices, scored after every epoch.
        config: Layers, epochs, learning rate, batch size, patience and seed.
        augmentation: The run's distortions, applied to training images only.
        log: One line per epoch, and why training stopped.
        progress: ``progress(phase, done, total)`` over each epoch's images.

    Returns:
        The kept (best) head and what was trained. Ctrl-C during an epoch keeps the best
        weights so far and returns with ``stopped == "interrupted"``.
    """
    model, spec = backbone.model, backbone.spec
    augmentation = augmentation or Augmentation()
    layers = top_layers(model, config.layers)
    # A Keras 3 variable wraps a tf.Variable (``.value``): the tape and the updates use that.
    variables = [_tf_variable(v) for layer in layers for v in layer.trainable_weights]
    weights = tf.Variable(head.weights, name="head_weights")
    bias = tf.Variable(head.bias, name="head_bias")
    variables += [weights, bias]
    adam = _Adam(variables, config)

    def logits_of(pixels: tf.Tensor) -> tf.Tensor:
        return features_of(model, pixels, spec.preprocessing) @ weights + bias

    @tf.function(reduce_retracing=True)
    def step(pixels: tf.Tensor, labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        # Only the chosen variables are watched: nothing below them is kept for the backward pass.
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(variables)
            logits = logits_of(pixels)
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
        adam.apply(tape.gradient(loss, variables))
        return loss, tf.reduce_sum(tf.cast(tf.argmax(logits, 1) == labels, tf.int32))

    predict = tf.function(lambda pixels: tf.argmax(logits_of(pixels), 1), reduce_retracing=True)
    rng = np.random.default_rng(config.seed)
    val_paths, val_labels = validation

    def val_accuracy() -> float:
        if not len(val_labels):
            return float("nan")
        batches = _images(val_paths, val_labels, spec.input_size, 64, None, None)
        right = sum(int(np.sum(predict(x).numpy() == y.numpy())) for x, y in batches)
        return right / len(val_labels)

    counted = sum(type(layer).__name__ not in NORMALIZATION for layer in layers)
    result = FineTuned(head=head, layers=[layer.name for layer in layers], counted=counted, params_trained=0)
    result.params_trained = int(sum(np.prod(v.shape) for v in variables))
    start = time.perf_counter()
    best = (val_accuracy(), [v.numpy() for v in variables])
    result.history.append({"epoch": 0, "validation_accuracy": best[0], "seconds": 0.0})
    log(
        f"fine-tuning the top {counted} layers and the head ({result.params_trained:,} parameters); "
        f"validation accuracy before: {best[0]:.1%}"
    )
    since_best = 0
    try:
        for epoch in range(1, config.epochs + 1):
            order = rng.permutation(len(train[1]))
            seeds = rng.integers(0, 2**31 - 1, (len(order), 2)) if augmentation.enabled else None
            paths = [train[0][i] for i in order]
            batches = _images(paths, train[1][order], spec.input_size, config.batch_size, augmentation, seeds)
            losses, right, seen = [], 0, 0
            phase = f"fine-tune epoch {epoch}/{config.epochs}"
            for pixels, labels in batches:
                loss, hits = step(pixels, labels)
                losses.append(float(loss) * len(labels))
                right, seen = right + int(hits), seen + len(labels)
                if progress:
                    progress(phase, seen, len(order))
            accuracy = val_accuracy()
            result.history.append(
                {
                    "epoch": epoch,
                    "train_loss": sum(losses) / max(seen, 1),
                    "train_accuracy": right / max(seen, 1),
                    "validation_accuracy": accuracy,
                    "seconds": time.perf_counter() - start,
                }
            )
            improved = accuracy > best[0]
            log(
                f"epoch {epoch}: train accuracy {right / max(seen, 1):.1%}, validation accuracy "
                f"{accuracy:.1%}" + (" (best)" if improved else "")
            )
            if improved:
                best, since_best, result.best_epoch = (accuracy, [v.numpy() for v in variables]), 0, epoch
            else:
                since_best += 1
                if since_best >= config.patience:
                    result.stopped = "early stopping"
                    break
    except KeyboardInterrupt:
        result.stopped = "interrupted"
        log(
            f"interrupted: keeping the best weights so far (epoch {result.best_epoch}, "
            f"validation accuracy {best[0]:.1%})"
        )
    for var, value in zip(variables, best[1]):
        var.assign(value)
    result.seconds = time.perf_counter() - start
    result.head = Head(weights=weights.numpy(), bias=bias.numpy())
    if result.best_epoch == 0:
        log("fine-tuning never beat the head-only validation accuracy: kept the head-only weights")
    return result


class _Adam:
    """Adam, as ``keras.optimizers.Adam`` computes it (epsilon 1e-7).

    Adam, not SGD: with batch norm frozen, a convolution's gradient is scaled by its
    batch norm's ``gamma / sqrt(variance)``, which spans orders of magnitude across
    MobileNet's layers; one SGD rate either moves nothing or wrecks the depthwise layers
    (measured on mobilenet_v1_025: validation accuracy fell from 83% to 33% in one epoch at
    SGD 0.001 with momentum). Adam scales each parameter's step by its own gradient size.
    """

    def __init__(self, variables: list[tf.Variable], config: FineTuneConfig) -> None:
        self.variables = variables
        self.m = [tf.Variable(tf.zeros_like(v), trainable=False) for v in variables]
        self.v = [tf.Variable(tf.zeros_like(v), trainable=False) for v in variables]
        self.step = tf.Variable(0.0, trainable=False)
        self.lr, self.b1, self.b2 = config.learning_rate, config.beta_1, config.beta_2

    def apply(self, grads: list[tf.Tensor]) -> None:
        self.step.assign_add(1.0)
        rate = self.lr * tf.sqrt(1.0 - self.b2**self.step) / (1.0 - self.b1**self.step)
        for var, m, v, g in zip(self.variables, self.m, self.v, grads):
            m.assign(self.b1 * m + (1.0 - self.b1) * g)
            v.assign(self.b2 * v + (1.0 - self.b2) * tf.square(g))
            var.assign_sub(rate * m / (tf.sqrt(v) + 1e-7))


def _tf_variable(variable: Any) -> tf.Variable:
    inner = variable if isinstance(variable, tf.Variable) else getattr(variable, "value", None)
    if not isinstance(inner, tf.Variable):
        raise HarnessError(f"cannot fine-tune: {type(variable).__name__} is not a TensorFlow variable")
    return inner


def _images(
    paths: Sequence[str],
    labels: np.ndarray,
    size: int,
    batch_size: int,
    augmentation: Augmentation | None,
    seeds: np.ndarray | None,
) -> tf.data.Dataset:
    """Batches of ``(pixels, labels)`` decoded on the fly, in the given order; distorted
    with per-image seeds when ``seeds`` is given (the same seeds give the same pixels)."""
    ds = tf.data.Dataset.from_tensor_slices(
        (
            [os.fsencode(p) for p in paths],
            labels.astype(np.int64),
            seeds if seeds is not None else np.zeros((len(paths), 2)),
        )
    )

    def load(path: tf.Tensor, label: tf.Tensor, seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        if seeds is None or augmentation is None:
            return tfops.load_resized(path, size), label
        return distorted_file(path, size, augmentation, tf.cast(seed, tf.int64)), label

    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.batch(batch_size).prefetch(2)
