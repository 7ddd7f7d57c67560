"""One result column: :class:`Column`, declared in :mod:`harness.schema`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

Kind = Literal["text", "int", "float"]
Format = Literal["plain", "percent", "percent_ci", "percent_sd"]
Table = Literal["main", "details", "deploy", "fine_tune"]


@dataclass(frozen=True)
class Column:
    """One column of a result row.

    Attributes:
        name: Key in the row and the JSON/CSV header; units are in the name (``_s``, ``_mb``).
        kind: ``text``, ``int`` or ``float``; all but text are numeric in pandas.
        unit: Unit of the value, for readers (``img/s``, ``ms``, ``MB``, ``fraction``).
        label: Heading in the comparison table; None keeps the column in data files only.
        higher_is_better: Direction for ranking and plots; None where it has none.
        group: What the column is about (``run``, ``backbone``, ``data``, ``speed``,
            ``cache``, ``accuracy``, ``deploy``).
        help: One line for ``--help`` and the README.
        digits: Rounding in the comparison table.
        fmt: ``percent`` shows a fraction as ``87.4%``; ``percent_ci`` also appends
            ``(<name>_ci_low-<name>_ci_high)``; ``percent_sd`` reads ``<stem>_mean`` and
            appends ``± <stem>_std`` in points.
        table: The report's focused table that shows it (``main``: accuracy and speed,
            ``details``: cache and timing, ``deploy``: the TFLite variants, one row each,
            ``fine_tune``: what fine-tuning bought).
        real_only: Meaningless from random weights: such rows show ``n/a``.
        sparse: Shown in tables only when some row has a value (TFLite variants).
        console: Part of the summary ``harness run`` prints.
        rankable: A speed ``--speed``/``--by`` can rank by.
        derive: Computes the value from the other values of the row when the row is
            completed (:func:`complete_row`), for columns nobody measures directly.
    """

    name: str
    kind: Kind = "float"
    unit: str = ""
    label: str | None = None
    higher_is_better: bool | None = None
    group: str = "run"
    help: str = ""
    digits: int | None = None
    fmt: Format = "plain"
    table: Table = "details"
    real_only: bool = False
    sparse: bool = False
    console: bool = False
    rankable: bool = False
    derive: Callable[[dict[str, Any]], Any] | None = None


def tflite_columns(q: str) -> list[Column]:
    """The columns one TFLite variant ``q`` adds to a row (``tflite_<q>_<field>``)."""
    prefix = f"tflite_{q}_"
    return [
        Column(
            prefix + "size_mb",
            unit="MB",
            label=f"tflite {q} MB",
            higher_is_better=False,
            group="deploy",
            digits=2,
            sparse=True,
            table="deploy",
        ),
        Column(
            prefix + "test_accuracy",
            unit="fraction",
            label=f"tflite {q} acc",
            higher_is_better=True,
            group="deploy",
            fmt="percent",
            real_only=True,
            sparse=True,
            table="deploy",
        ),
        Column(
            prefix + "agreement",
            unit="fraction",
            label=f"tflite {q} same top-1",
            higher_is_better=True,
            group="deploy",
            fmt="percent",
            real_only=True,
            sparse=True,
            table="deploy",
            help="share of test images whose top-1 equals the float SavedModel's",
        ),
        Column(
            prefix + "latency_ms_p50",
            unit="ms",
            label=f"tflite {q} ms p50",
            higher_is_better=False,
            group="deploy",
            digits=1,
            sparse=True,
            rankable=True,
            table="deploy",
        ),
        Column(prefix + "latency_ms_p90", unit="ms", higher_is_better=False, group="deploy", sparse=True),
    ]
