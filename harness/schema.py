"""The result row, declared once: every column's name, unit, label, direction and group.

Everything that stores, shows or ranks results derives from :data:`COLUMNS`: the run
JSON and CSV (all columns, in this order), the Markdown and HTML comparison table and
the console summary (columns with a ``label``, formatted as declared), the speed
columns that ``--speed``/``--by`` accept and which way each one is better. Adding a
metric means adding one :class:`Column` here and measuring it where it is measured.

This module imports neither TensorFlow nor pandas: the CLI reads it at start-up.
"""

from __future__ import annotations

from typing import Any

from harness.columns import Column, Table, tflite_columns

SCHEMA = "harness.run/1"

#: TFLite variants harness can export; each adds :data:`TFLITE_FIELDS` columns to a row.
QUANTIZATIONS = ("none", "float16", "dynamic", "int8")


def _params_m(row: dict[str, Any]) -> float | None:
    return None if row.get("params") is None else round(row["params"] / 1e6, 2)


def _gain(row: dict[str, Any]) -> float | None:
    before, after = row.get("head_only_test_accuracy"), row.get("test_accuracy")
    return None if before is None or after is None else after - before


C = Column
_PERCENT: dict[str, Any] = {
    "unit": "fraction",
    "higher_is_better": True,
    "group": "accuracy",
    "fmt": "percent",
}
_PERCENT |= {"real_only": True, "table": "main"}
_ECE: dict[str, Any] = {
    "unit": "fraction",
    "higher_is_better": False,
    "digits": 3,
    "real_only": True,
    "group": "accuracy",
}
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
        help="tf, litert or openvino: what ran the backbone (with --runtime auto, the fastest here)",
    ),
    C(
        "bottleneck_precision",
        "text",
        label="precision",
        group="speed",
        help="fp32, or bf16 where asked for: the arithmetic of extraction",
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
    # --fine-tune: a second row per backbone, named <backbone>+ft<N>; its speed columns are
    # the head-only row's (the same network), its accuracy, latency and exports its own.
    C(
        "trained",
        "text",
        label="trained",
        group="training",
        sparse=True,
        table="main",
        help="head (the new layer on cached bottlenecks) or head + top N layers (--fine-tune)",
    ),
    C("fine_tune_layers", "int", group="training", help="top layers fine-tuned, batch norms not counted"),
    C("fine_tune_params", "int", group="training", help="parameters fine-tuned, the head's included"),
    C("fine_tune_s", unit="s", label="fine-tune s", group="training", digits=1, table="fine_tune"),
    C("fine_tune_epochs", "int", label="epochs", group="training", table="fine_tune"),
    C("fine_tune_best_epoch", "int", label="kept epoch", group="training", table="fine_tune"),
    C("fine_tune_stopped", "text", label="stopped by", group="training", table="fine_tune"),
    C("head_only_test_accuracy", unit="fraction", label="head-only acc", fmt="percent", table="fine_tune"),
    C(
        "fine_tune_gain",
        unit="fraction",
        label="gain",
        higher_is_better=True,
        group="training",
        fmt="percent",
        table="fine_tune",
        derive=_gain,
        help="test accuracy fine-tuned minus head-only, on the same test images",
    ),
    C("head_only_only_right", "int", label="only head-only right", group="training", table="fine_tune"),
    C("fine_tuned_only_right", "int", label="only fine-tuned right", group="training", table="fine_tune"),
    C(
        "head_only_p_value",
        unit="p",
        label="McNemar p",
        group="training",
        digits=3,
        table="fine_tune",
        help="McNemar's exact test of fine-tuned against head-only on the test images",
    ),
    C("head_only_latency_ms_p50", unit="ms", label="head-only ms p50", digits=1, table="fine_tune"),
    # Expected calibration error on the test photos, as trained and temperature-scaled.
    C("test_ece", label="ECE", **_ECE),
    C("test_ece_scaled", label="ECE scaled", **_ECE),
    C("temperature", label="T", group="accuracy", digits=2, real_only=True, help="fitted out of fold"),
    C("test_balanced_accuracy", label="balanced acc", **_PERCENT, help="mean per-class recall on test"),
    C(
        "fp32_test_accuracy",
        unit="fraction",
        label="fp32 test accuracy",
        fmt="percent",
        group="accuracy",
        table="details",
        real_only=True,
        sparse=True,
        help="with reduced precision: the same layer trained on fp32 features (same split, seed)",
    ),
    C("only_fp32_right", "int", label="only fp32 right", group="accuracy", table="details", sparse=True),
    C(
        "only_reduced_right",
        "int",
        label="only reduced right",
        group="accuracy",
        table="details",
        sparse=True,
    ),
    C(
        "precision_p_value",
        unit="p",
        label="McNemar p vs fp32",
        group="accuracy",
        digits=3,
        table="details",
        sparse=True,
        help="McNemar's exact test of the reduced-precision layer against the fp32 one",
    ),
]


#: What each TFLite variant adds to a row, as ``tflite_<variant>_<field>``.
TFLITE_FIELDS = tuple(c.name.removeprefix("tflite_none_") for c in tflite_columns("none"))

COLUMNS: list[Column] = [
    *_BASE,
    *[c for q in QUANTIZATIONS for c in tflite_columns(q)],
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
