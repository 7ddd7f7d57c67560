"""``--fine-tune`` and its options, shared by ``harness run`` and ``harness train``."""

from __future__ import annotations

from typing import Any

import click

from harness.cli.options import AT_LEAST_1, option_group

#: ``--fine-tune`` alone: the top 10 layers with weights (in MobileNet v1 its last five
#: depthwise-separable blocks; in Inception v3 about its last mixed block).
DEFAULT_FINE_TUNE_LAYERS = "10"


class LayerCount(click.ParamType):
    """A positive number of layers, or ``all``."""

    name = "N|all"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int | str:
        if isinstance(value, int):
            return value
        text = str(value).strip().lower()
        if text == "all":
            return text
        if text.isdigit() and int(text) > 0:
            return int(text)
        self.fail(f"{value!r}: give a number of layers (1 or more) or 'all'", param, ctx)


def build_fine_tune(
    fine_tune: int | str | None,
    fine_tune_epochs: int,
    fine_tune_learning_rate: float,
    fine_tune_batch_size: int,
    fine_tune_patience: int,
) -> Any:
    """:class:`harness.pipeline.tune_backbone.FineTuneConfig`, or None without ``--fine-tune``."""
    if fine_tune is None:
        return None
    from harness.plan import FineTuneConfig

    return FineTuneConfig(
        layers=None if fine_tune == "all" else int(fine_tune),
        epochs=fine_tune_epochs,
        learning_rate=fine_tune_learning_rate,
        batch_size=fine_tune_batch_size,
        patience=fine_tune_patience,
    )


fine_tune_options = option_group(
    "fine_tune",
    build_fine_tune,
    click.option(
        "--fine-tune",
        type=LayerCount(),
        is_flag=False,
        flag_value=DEFAULT_FINE_TUNE_LAYERS,
        default=None,
        metavar="[N|all]",
        help="After the head, also train the top N layers with weights (batch norms not counted; "
        f"default {DEFAULT_FINE_TUNE_LAYERS}, or all) end to end on the images, and report the "
        "fine-tuned model (<backbone>+ftN) beside the head-only one.",
    ),
    click.option(
        "--fine-tune-epochs", type=AT_LEAST_1, default=10, show_default=True, help="At most this many epochs."
    ),
    click.option(
        "--fine-tune-learning-rate",
        type=click.FloatRange(min=0, min_open=True),
        default=1e-5,
        show_default=True,
        help="Adam learning rate for fine-tuning (small: the backbone is already trained).",
    ),
    click.option("--fine-tune-batch-size", type=AT_LEAST_1, default=32, show_default=True),
    click.option(
        "--fine-tune-patience",
        type=AT_LEAST_1,
        default=2,
        show_default=True,
        help="Stop after this many epochs without a better validation accuracy; the best is kept.",
    ),
)
