"""Shared fixtures: real photos from ../shared, offline weights, a tiny fast backbone."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
FLOWERS = SHARED / "data" / "flower_photos_subset"
SHARED_WEIGHTS = SHARED / "keras_home" / "models"

_KERAS_HOME = Path(tempfile.mkdtemp(prefix="harness-keras-home-"))


def pytest_configure(config: pytest.Config) -> None:
    # Keras reads KERAS_HOME once, when it is first imported, so set it before any test
    # module imports TensorFlow. It must be writable, hence links, not the shared folder.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    # Runs measure no deployment target unless a test names them (tests/test_targets.py).
    os.environ["HARNESS_TARGETS"] = "none"
    models = _KERAS_HOME / "models"
    models.mkdir(parents=True, exist_ok=True)
    if SHARED_WEIGHTS.is_dir():
        for file in SHARED_WEIGHTS.glob("*.h5"):
            link = models / file.name
            if not link.exists():
                link.symlink_to(file.resolve())
    os.environ["KERAS_HOME"] = str(_KERAS_HOME)


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(_KERAS_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def keras_home() -> Path:
    """A writable KERAS_HOME whose models/ links the offline ImageNet weights."""
    return _KERAS_HOME


@pytest.fixture(scope="session")
def flowers() -> Path:
    if not FLOWERS.is_dir():
        pytest.fail(f"the shared flower photos are missing at {FLOWERS}")
    return FLOWERS


def _copy_subset(source: Path, target: Path, per_class: int, classes: list[str] | None = None) -> Path:
    """Copy the first ``per_class`` photos (by name) of each class folder."""
    for class_dir in sorted(p for p in source.iterdir() if p.is_dir()):
        if classes and class_dir.name not in classes:
            continue
        (target / class_dir.name).mkdir(parents=True)
        for file in sorted(class_dir.iterdir())[:per_class]:
            shutil.copy(file, target / class_dir.name / file.name)
    return target


@pytest.fixture(scope="session")
def copy_subset():
    """``copy_subset(source, target, per_class, classes=None)``: a real-photo subset folder."""
    return _copy_subset


@pytest.fixture(scope="session")
def small_flowers(flowers: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 classes x 12 real photos: enough for fast pipeline tests."""
    return _copy_subset(
        flowers, tmp_path_factory.mktemp("small") / "photos", 12, ["daisy", "roses", "sunflowers"]
    )


@pytest.fixture(scope="session")
def medium_flowers(flowers: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """5 classes x 40 real photos, for end-to-end runs with real weights."""
    return _copy_subset(flowers, tmp_path_factory.mktemp("medium") / "photos", 40)


def _build_tiny(spec, weights):  # noqa: ANN001, ANN202
    import keras

    keras.utils.set_random_seed(1)
    inputs = keras.Input((spec.input_size, spec.input_size, 3))
    x = keras.layers.Conv2D(8, 3, strides=4, activation="relu")(inputs)
    x = keras.layers.Conv2D(16, 3, strides=2, activation="relu")(x)
    outputs = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, outputs)


def _registered(name: str, builder, feature_size: int, description: str):  # noqa: ANN001, ANN202
    """Register a random-weights test backbone (32 px) for one test, then remove it."""
    from harness.registry import BackboneSpec, registry

    spec = BackboneSpec(
        name=name,
        family="tiny",
        builder=builder,
        input_size=32,
        feature_size=feature_size,
        preprocessing="tf",
        description=description,
    )
    registry.names()  # load the entry points first
    registry.register(spec, replace=True)
    yield spec
    registry.unregister(spec.name)


@pytest.fixture
def tiny_backbone():
    """A registered random-weights backbone small enough for unit tests."""
    yield from _registered("tiny_test", _build_tiny, 16, "tiny test backbone")


@pytest.fixture
def train_tiny(tiny_backbone, tmp_path):
    """``train_tiny(photos, out, *options)``: `harness train` on the tiny backbone, in-process."""
    from click.testing import CliRunner

    from harness.cli import cli

    def run(photos: Path, out: Path, *options: str):  # noqa: ANN202
        args = [
            "train",
            "--image-dir",
            str(photos),
            "--backbone",
            tiny_backbone.name,
            "--output-dir",
            str(out),
        ]
        return CliRunner().invoke(cli, [*args, "--cache-dir", str(tmp_path / "cache"), *options])

    return run


def _build_unconvertible(spec, weights):  # noqa: ANN001, ANN202
    """A random-weights backbone LiteRT cannot convert (an SVD has no TFLite builtin)."""
    import tensorflow as tf

    class Unconvertible(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.kernel = tf.Variable(tf.random.stateless_normal([3, 4], seed=[1, 2]))

        @tf.autograph.experimental.do_not_convert  # plain TensorFlow ops: nothing to convert
        def __call__(self, pixels, training=False):  # noqa: ANN001, ANN204
            pooled = tf.reduce_mean(pixels, axis=[1, 2]) @ self.kernel  # [N, 4]
            return tf.linalg.svd(pooled[:, :, None] * pooled[:, None, :], compute_uv=False)

        def count_params(self) -> int:
            return 12

    return Unconvertible()


@pytest.fixture
def unconvertible_backbone():
    """A registered backbone that runs on TensorFlow but not on LiteRT."""
    yield from _registered("unconvertible_test", _build_unconvertible, 4, "a backbone LiteRT cannot convert")
