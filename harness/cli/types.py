"""Click parameter types for harness' list-valued options, and retrain.py's quantized names."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from harness.schema import QUANTIZATIONS

#: retrain.py's ``mobilenet_<width>_<size>_quantized`` meant an 8-bit graph: such a name
#: retrains the float network and adds the int8 TFLite export.
QUANTIZED_SUFFIX = "_quantized"


def with_quantized_export(options: Any, name: str, log: Callable[[str], None]) -> Any:
    """retrain.py's ``..._quantized`` names: the same network, plus the int8 TFLite export."""
    import dataclasses

    log(
        f"{name}: retrain.py's quantized MobileNet; harness retrains the float network and also "
        "exports int8 TFLite (model_int8.tflite)"
    )
    tflite = tuple(dict.fromkeys([*options.tflite, "int8"]))
    return dataclasses.replace(options, tflite=tflite)


class BackboneList(click.ParamType):
    """A comma-separated list of backbone names and wildcards (``mobilenet_v1_*``)."""

    name = "backbones"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> list[str]:
        if isinstance(value, list):
            return value
        names = [v.strip() for v in str(value).split(",") if v.strip()]
        if not names:
            self.fail("give at least one backbone", param, ctx)
        return names


class QuantizeList(click.ParamType):
    """Comma-separated TFLite quantizations."""

    name = "quantizations"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[str, ...]:
        if isinstance(value, tuple):
            return value
        items = tuple(dict.fromkeys(v.strip() for v in str(value).split(",") if v.strip()))
        bad = [v for v in items if v not in QUANTIZATIONS]
        if bad or not items:
            self.fail(f"{', '.join(bad) or 'nothing'}: choose from {', '.join(QUANTIZATIONS)}", param, ctx)
        return items
