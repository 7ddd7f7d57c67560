"""MobileNet v1, v2 and v3 variants from ``keras.applications``.

Names follow timm: ``mobilenet_v1_100`` is alpha 1.0 at 224 px, ``mobilenet_v1_050_160``
is alpha 0.5 at 160 px, ``mobilenet_v2_035`` is MobileNetV2 alpha 0.35.
"""

from __future__ import annotations

from backbones.keras_apps import KerasWeights, build_keras_application
from harness.registry import BackboneSpec

_V1_BASE = "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet/"
_V2_BASE = "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/"
_V3_BASE = "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v3/"

# Parameter counts of the average-pooled feature extractors, as Keras builds them.
_V1_PARAMS = {0.25: 218_544, 0.5: 829_536, 0.75: 1_832_976, 1.0: 3_228_864}
_V2_PARAMS = {
    0.35: 410_208,
    0.5: 706_224,
    0.75: 1_382_064,
    1.0: 2_257_984,
    1.3: 3_766_048,
    1.4: 4_363_712,
}
_V3_PARAMS = {
    ("small", 0.75, False): 583_160,
    ("small", 1.0, False): 939_120,
    ("large", 0.75, False): 1_808_736,
    ("large", 1.0, False): 2_996_352,
    ("small", 1.0, True): 441_000,
    ("large", 1.0, True): 1_437_608,
}
_V3_FEATURES = {"small": 576, "large": 960}
# Keras' MD5 of each no-top MobileNetV3 file (keras.applications.mobilenet_v3.WEIGHTS_HASHES).
_V3_MD5 = {
    "large_224_0.75_float": "40af19a13ebea4e2ee0c676887f69a2e",
    "large_224_1.0_float": "07fb09a5933dd0c8eaafa16978110389",
    "large_minimalistic_224_1.0_float": "ec5221f64a2f6d1ef965a614bdae7973",
    "small_224_0.75_float": "ebdb5cc8e0b497cd13a7c275d475c819",
    "small_224_1.0_float": "d3e8ec802a04aa4fc771ee12a9a9b836",
    "small_minimalistic_224_1.0_float": "cde8136e733e811080d9fcd8a252f7e4",
}


def _alpha_tag(alpha: float) -> str:
    return f"{round(alpha * 100):03d}"


def retrain_py_names(alpha: float, size: int) -> tuple[str, ...]:
    """retrain.py's ``--architecture`` names for MobileNet v1 (``mobilenet_0.50_160`` ...).

    retrain.py took the width as written in the checkpoint names (1.0, 0.75, 0.50,
    0.25); ``0.5`` is accepted too. ``mobilenet`` alone is its default MobileNet, 1.0 at 224.
    """
    widths = {1.0: ("1.0",), 0.75: ("0.75",), 0.5: ("0.50", "0.5"), 0.25: ("0.25",)}[alpha]
    names = tuple(f"mobilenet_{w}_{size}" for w in widths)
    return (("mobilenet",) if (alpha, size) == (1.0, 224) else ()) + names


def retrain_py_quantized_names(alpha: float, size: int) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """retrain.py's ``..._quantized`` names meant an 8-bit exported graph: harness retrains
    the float network and adds the int8 TFLite export for them."""
    plain = [n for n in retrain_py_names(alpha, size) if n != "mobilenet"]
    return tuple((f"{n}_quantized", ("int8",)) for n in plain)


def mobilenet_v1_specs() -> list[BackboneSpec]:
    out = []
    for alpha, text in ((0.25, "2_5"), (0.5, "5_0"), (0.75, "7_5"), (1.0, "1_0")):
        for size in (224, 192, 160, 128):
            name = f"mobilenet_v1_{_alpha_tag(alpha)}" + ("" if size == 224 else f"_{size}")
            file = f"mobilenet_{text}_{size}_tf_no_top.h5"
            out.append(
                BackboneSpec(
                    name=name,
                    family="mobilenet_v1",
                    builder=build_keras_application,
                    input_size=size,
                    feature_size=int(1024 * alpha),
                    preprocessing="tf",
                    weights=KerasWeights(file, _V1_BASE + file),
                    params=_V1_PARAMS[alpha],
                    options=(("constructor", "MobileNet"), ("alpha", alpha)),
                    description=f"MobileNet v1, alpha {alpha}, {size} px",
                    aliases=retrain_py_names(alpha, size),
                    alias_exports=retrain_py_quantized_names(alpha, size),
                )
            )
    return out


def mobilenet_v2_specs() -> list[BackboneSpec]:
    out = []
    for alpha in (0.35, 0.5, 0.75, 1.0, 1.3, 1.4):
        file = f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{float(alpha)}_224_no_top.h5"
        out.append(
            BackboneSpec(
                name=f"mobilenet_v2_{_alpha_tag(alpha)}",
                family="mobilenet_v2",
                builder=build_keras_application,
                input_size=224,
                feature_size=1280 if alpha <= 1.0 else int(1280 * alpha),
                preprocessing="tf",
                weights=KerasWeights(file, _V2_BASE + file),
                params=_V2_PARAMS[alpha],
                options=(("constructor", "MobileNetV2"), ("alpha", alpha)),
                description=f"MobileNetV2, alpha {alpha}, 224 px",
            )
        )
    return out


def mobilenet_v3_specs() -> list[BackboneSpec]:
    out = []
    variants = [(k, a, False) for k in ("small", "large") for a in (1.0, 0.75)]
    variants += [("small", 1.0, True), ("large", 1.0, True)]
    for kind, alpha, minimal in variants:
        model_name = f"{kind}{'_minimalistic' if minimal else ''}_224_{alpha}_float"
        file = f"weights_mobilenet_v3_{model_name}_no_top_v2.h5"
        name = f"mobilenet_v3_{kind}" + ("_minimal" if minimal else "")
        if alpha != 1.0:
            name += f"_{_alpha_tag(alpha)}"
        out.append(
            BackboneSpec(
                name=name,
                family="mobilenet_v3",
                builder=build_keras_application,
                input_size=224,
                feature_size=int(_V3_FEATURES[kind] * alpha),
                # Keras' MobileNetV3 rescales its input itself.
                preprocessing="none",
                weights=KerasWeights(file, _V3_BASE + file, md5=_V3_MD5[model_name]),
                params=_V3_PARAMS[(kind, alpha, minimal)],
                options=(
                    ("constructor", f"MobileNetV3{kind.capitalize()}"),
                    ("alpha", alpha),
                    ("minimalistic", minimal),
                ),
                description=f"MobileNetV3 {kind}{' minimalistic' if minimal else ''}, alpha {alpha}, 224 px",
            )
        )
    return out
