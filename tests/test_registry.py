import subprocess
import sys

import pytest

from harness.errors import HarnessError
from harness.registry import get_backbone, list_backbones, registry, weights_available


def test_builtins_come_from_entry_points():
    names = registry.names()
    for expected in [
        "inception_v3",
        "mobilenet_v1_100",
        "mobilenet_v1_025_128",
        "mobilenet_v2_035",
        "mobilenet_v2_140",
        "mobilenet_v3_small",
        "mobilenet_v3_large",
    ]:
        assert expected in names
    assert len(list_backbones("mobilenet_v1_*")) == 16
    assert get_backbone("inception_v3").input_size == 299


def test_wildcards_keep_order_and_drop_duplicates():
    specs = registry.match(["mobilenet_v2_0*", "inception_v3", "mobilenet_v2_035"])
    assert [s.name for s in specs] == [
        "mobilenet_v2_035",
        "mobilenet_v2_050",
        "mobilenet_v2_075",
        "inception_v3",
    ]


def test_unknown_backbone_suggests_close_names():
    with pytest.raises(HarnessError, match="did you mean.*mobilenet_v1_100"):
        get_backbone("mobilenet_v1_10")
    with pytest.raises(HarnessError, match="no backbone matches"):
        registry.match(["resnet*"])


def test_offline_weights_are_found_in_keras_home(keras_home):
    assert weights_available(get_backbone("mobilenet_v1_100")) is True
    assert weights_available(get_backbone("mobilenet_v2_035")) is True
    # ../shared provides Google's 2015 Inception v3; no MobileNetV3 weights are offline.
    assert weights_available(get_backbone("inception_v3")) is True
    assert weights_available(get_backbone("mobilenet_v3_small")) is False


@pytest.mark.parametrize(
    "name", ["mobilenet_v1_025", "mobilenet_v2_035", "mobilenet_v3_small", "mobilenet_v3_small_075"]
)
def test_declared_sizes_match_the_built_model(name):
    from harness.pipeline.backbone import load_backbone

    spec = get_backbone(name)
    built = load_backbone(spec, "random")
    assert built.params == spec.params
    assert built.feature_size == spec.feature_size


def test_cache_identity_depends_on_weights_and_spec():
    a, b = get_backbone("mobilenet_v1_100"), get_backbone("mobilenet_v1_075")
    assert a.cache_identity("imagenet") != a.cache_identity("random")
    assert a.cache_identity("imagenet") != b.cache_identity("imagenet")
    assert a.cache_identity("imagenet") == get_backbone("mobilenet_v1_100").cache_identity("imagenet")


def test_listing_backbones_does_not_import_tensorflow():
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from harness.cli import cli\n"
        "r = CliRunner().invoke(cli, ['backbones'])\n"
        "assert r.exit_code == 0, r.output\n"
        "assert 'mobilenet_v3_small' in r.output\n"
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"
