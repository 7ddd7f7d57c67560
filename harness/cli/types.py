"""Click parameter types for harness' list-valued options."""

from __future__ import annotations

from typing import Any

import click

from harness.plan import PlanChoice
from harness.schema import QUANTIZATIONS


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


class ThreadCounts(click.ParamType):
    """Comma-separated thread counts, each at least 1."""

    name = "threads"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[int, ...]:
        if isinstance(value, tuple):
            return value
        try:
            counts = tuple(dict.fromkeys(int(v) for v in str(value).split(",") if v.strip()))
        except ValueError:
            self.fail(f"{value!r}: comma-separated thread counts, e.g. 1,4", param, ctx)
        if any(n < 1 for n in counts):
            self.fail(f"{value!r}: a thread count is at least 1", param, ctx)
        return counts


class choice(click.Choice):  # noqa: N801 -- used like click.Choice
    """A click choice of a plan enum: the command gets the enum member, checked by it."""

    def __init__(self, enum: type[PlanChoice]) -> None:
        super().__init__(enum.values())
        self.enum = enum

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        return self.enum.parse(super().convert(value, param, ctx))
