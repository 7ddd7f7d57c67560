"""The result row, declared once: every column's name, unit, label, direction and group.

Everything that stores, shows or ranks results derives from :data:`COLUMNS`: the run
JSON and CSV (all columns, in this order), the Markdown and HTML comparison table and
the console summary (columns with a ``label``, formatted as declared), the speed
columns that ``--speed``/``--by`` accept and which way each one is better. Adding a
metric means adding one :class:`Column` here and measuring it where it is measured.

This module imports neither TensorFlow nor pandas: the CLI reads it at start-up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

SCHEMA = "harness.run/1"

#: TFLite variants harness can export; each adds :data:`TFLITE_FIELDS` columns to a row.
QUANTIZATIONS = ("none", "float16", "dynamic", "int8")

Kind = Literal["text", "int", "float"]
Format = Literal["plain", "percent", "percent_ci", "percent_sd"]
Table = Literal["main", "details", "deploy"]


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
            ``details``: cache and timing, ``deploy``: the TFLite variants, one row each).
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


def _params_m(row: dict[str, Any]) -> float | None:
    return None if row.get("params") is None else round(row["params"] / 1e6, 2)


C = Column
_BASE: list[Column] = [
    C("run_id", "text", group="run"),
    C("backbone", "text", label="backbone", group="backbone", console=True, table="main"),
    C("family", "text", group="backbone"),
    C("device", "text", label="device", group="run", table="main"),
    C("weights", "text", label="weights", group="backbone", console=True, table="main"),
    C("weights_source", "text", group="backbone", help="the weights file used, or random"),
    C("input_size", "int", "px", label="input px", group="backbone"),
    C("feature_size", "int", group="backbone"),
    C("params", "int", group="backbone"),
    C("params_m", unit="M", label="params (M)", group="backbone", derive=_params_m, digits=2, table="main"),
    C("model_size_mb", "float", "MB", "model MB", False, "deploy", digits=1, table="main"),
    C("n_classes", "int", group="data"),
    C("n_train", "int", group="data"),
    C("n_validation", "int", group="data"),
    C("n_test", "int", group="data"),
    C("n_failed_images", "int", group="data"),
    C("build_s", unit="s", higher_is_better=False, group="speed"),
    C("bottleneck_phase", "text", label="cache", group="cache", console=True),
    C("bottleneck_cached", "int", group="cache"),
    C("bottleneck_computed", "int", group="cache"),
    C("bottleneck_phase_s", unit="s", label="bottleneck phase s", group="cache", digits=3),
    C("bottleneck_cold_img_per_s", unit="img/s", higher_is_better=True, group="cache"),
    C("bottleneck_batch_size", "int", group="speed"),
    C(
        "bottleneck_runtime",
        "text",
        label="runtime",
        group="speed",
        help="tf or litert: what ran the backbone",
    ),
    C(
        "bottleneck_img_per_s",
        unit="img/s",
        label="bottleneck img/s",
        higher_is_better=True,
        group="speed",
        digits=1,
        console=True,
        rankable=True,
        table="main",
        help="throughput of the extraction pipeline on the real image files",
    ),
    C("bottleneck_img_per_s_p90", unit="img/s", higher_is_better=True, group="speed"),
    C("bottleneck_ms_per_img_p50", "float", "ms", "ms/img p50", False, "speed", digits=2, rankable=True),
    C("bottleneck_ms_per_img_p90", unit="ms", higher_is_better=False, group="speed"),
    C("bottleneck_spread", unit="fraction", label="img/s spread", group="speed", digits=3),
    C("train_s", unit="s", label="train s", higher_is_better=False, group="speed", digits=2),
    C("export_s", unit="s", higher_is_better=False, group="speed"),
    C("model_load_s", unit="s", higher_is_better=False, group="speed"),
    C("latency_ms_first", unit="ms", higher_is_better=False, group="speed"),
    C(
        "latency_ms_p50",
        unit="ms",
        label="latency ms p50",
        higher_is_better=False,
        group="speed",
        digits=1,
        console=True,
        rankable=True,
        table="main",
        help="the exported SavedModel on one encoded image",
    ),
    C("latency_ms_p90", unit="ms", label="latency ms p90", higher_is_better=False, group="speed", digits=1),
    C(
        "validation_accuracy",
        unit="fraction",
        label="validation acc",
        higher_is_better=True,
        group="accuracy",
        fmt="percent",
        real_only=True,
        table="main",
    ),
    C(
        "test_accuracy",
        unit="fraction",
        label="test acc (95% CI)",
        higher_is_better=True,
        group="accuracy",
        fmt="percent_ci",
        real_only=True,
        console=True,
        table="main",
    ),
    C("test_accuracy_ci_low", unit="fraction", group="accuracy"),
    C("test_accuracy_ci_high", unit="fraction", group="accuracy"),
    C("n_splits", "int", group="accuracy", help="splits the head was retrained on (--repeats)"),
    C(
        "split_accuracy_mean",
        unit="fraction",
        label="acc over splits (± sd)",
        higher_is_better=True,
        group="accuracy",
        fmt="percent_sd",
        real_only=True,
        sparse=True,
        table="main",
        help="test accuracy over --repeats splits of the cached bottlenecks: mean and sd",
    ),
    C("split_accuracy_std", unit="fraction", group="accuracy"),
]


def _tflite_columns(q: str) -> list[Column]:
    prefix = f"tflite_{q}_"
    return [
        C(
            prefix + "size_mb",
            unit="MB",
            label=f"tflite {q} MB",
            higher_is_better=False,
            group="deploy",
            digits=2,
            sparse=True,
            table="deploy",
        ),
        C(
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
        C(
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
        C(
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
        C(prefix + "latency_ms_p90", unit="ms", higher_is_better=False, group="deploy", sparse=True),
    ]


#: What each TFLite variant adds to a row, as ``tflite_<variant>_<field>``.
TFLITE_FIELDS = tuple(c.name.removeprefix("tflite_none_") for c in _tflite_columns("none"))

COLUMNS: list[Column] = [
    *_BASE,
    *[c for q in QUANTIZATIONS for c in _tflite_columns(q)],
    C("tflite_threads", "int", group="deploy"),
    C("error", "text", label="error", group="run", console=True, table="main"),
]


def by_name() -> dict[str, Column]:
    return {c.name: c for c in COLUMNS}


def column(name: str) -> Column:
    """The column called ``name``; KeyError for an unknown one."""
    return by_name()[name]


def row_columns() -> list[str]:
    """Every column name, in report order (the JSON and CSV order)."""
    return [c.name for c in COLUMNS]


def text_columns() -> set[str]:
    return {c.name for c in COLUMNS if c.kind == "text"}


#: Shown in every focused table, so that each reads on its own.
KEY_COLUMNS = ("backbone", "device")


def table_columns(table: Table | None = None) -> list[Column]:
    """Columns of one focused table (all labelled ones if None), in order, errors last."""
    shown = [c for c in COLUMNS if c.label and (table is None or c.table == table or c.name in KEY_COLUMNS)]
    if table not in (None, "main"):
        return shown
    return [c for c in shown if c.name != "error"] + [c for c in shown if c.name == "error"]


def console_columns() -> list[Column]:
    return [c for c in table_columns() if c.console]


def speed_columns() -> dict[str, bool]:
    """Rankable speed columns and whether higher is better."""
    return {c.name: bool(c.higher_is_better) for c in COLUMNS if c.rankable}


def complete_row(values: dict[str, Any]) -> dict[str, Any]:
    """A row with every column, in order: missing ones None, derived ones computed.

    Raises:
        KeyError: for a value whose name is not a column (a typo would otherwise be lost).
    """
    known = by_name()
    unknown = [k for k in values if k not in known]
    if unknown:
        raise KeyError(f"not result columns: {', '.join(unknown)} (declare them in harness.schema)")
    row = {name: values.get(name) for name in known}
    for c in COLUMNS:
        if c.derive is not None and row[c.name] is None:
            row[c.name] = c.derive(row)
    return row
