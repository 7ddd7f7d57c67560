"""The plugin contract: entry points, duplicate names, factories and what builders return."""

import pytest

from harness import registry as registry_module
from harness.errors import HarnessError
from harness.registry import BackboneSpec, Registry


class FakeDist:
    def __init__(self, name):
        self.metadata = {"Name": name}


class FakeEntryPoint:
    def __init__(self, name, value, package, load):
        self.name, self.value, self.dist, self._load = name, value, FakeDist(package), load

    def load(self):
        return self._load


def _spec(name):
    return BackboneSpec(name=name, family="x", builder=lambda s, w: None, input_size=8, feature_size=1)


def _with_entry_points(monkeypatch, groups):
    monkeypatch.setattr(registry_module.metadata, "entry_points", lambda group: groups.get(group, []))


def test_a_name_from_two_packages_is_an_error_naming_both(monkeypatch):
    _with_entry_points(
        monkeypatch,
        {
            "harness.backbones": [
                FakeEntryPoint("a", "pkg_a.nets:specs", "pkg-a", lambda: [_spec("same_net")]),
                FakeEntryPoint("b", "pkg_b.nets:specs", "pkg-b", lambda: [_spec("same_net")]),
            ]
        },
    )
    with pytest.raises(HarnessError, match="same_net.*pkg-a.*pkg-b"):
        Registry().names()


def test_a_broken_plugin_does_not_break_the_others(monkeypatch):
    def broken():
        raise ImportError("no module named nets")

    _with_entry_points(
        monkeypatch,
        {
            "harness.backbones": [
                FakeEntryPoint("bad", "bad:specs", "bad", lambda: broken()),
                FakeEntryPoint("good", "good:specs", "good", lambda: [_spec("good_net")]),
            ]
        },
    )
    registry = Registry()
    assert registry.names() == ["good_net"]
    assert "no module named nets" in registry.load_errors[0]


def test_factories_serve_prefixed_names(monkeypatch):
    made = []

    def factory(handle, input_size):
        made.append((handle, input_size))
        return _spec(f"toy:{handle}")

    _with_entry_points(
        monkeypatch, {"harness.backbone_factories": [FakeEntryPoint("toy", "t:f", "toy", factory)]}
    )
    spec = Registry().get("toy:some/where", input_size=96)
    assert spec.name == "toy:some/where" and made == [("some/where", 96)]
    assert "/" not in spec.safe_name() and spec.safe_name().startswith("toy_")


def test_a_builder_must_return_a_feature_model():
    from harness.pipeline.backbone import load_backbone

    spec = BackboneSpec(name="not_a_model", family="x", builder=lambda s, w: 42, input_size=8, feature_size=1)
    with pytest.raises(HarnessError, match="not_a_model.*int.*count_params"):
        load_backbone(spec, "random")
