"""The row schema: one declaration per column, everything else derived from it."""

import pytest

from harness.results.cells import format_cell, visible_columns
from harness.schema import COLUMNS, column, complete_row, row_columns, speed_columns


def test_every_column_is_declared_once_with_consistent_fields():
    names = row_columns()
    assert len(names) == len(set(names))
    assert names[:2] == ["run_id", "backbone"] and names[-1] == "error"
    for c in COLUMNS:
        assert c.kind in ("text", "int", "float")
        if c.rankable:
            assert c.higher_is_better is not None and c.unit, c.name
        if c.fmt == "percent_ci":
            assert f"{c.name}_ci_low" in names and f"{c.name}_ci_high" in names


def test_speed_choices_and_directions_come_from_the_schema():
    speeds = speed_columns()
    assert speeds["bottleneck_img_per_s"] is True
    assert speeds["latency_ms_p50"] is False
    assert speeds["tflite_int8_latency_ms_p50"] is False
    assert "test_accuracy" not in speeds
    assert column("bottleneck_img_per_s").unit == "img/s"


def test_complete_row_fills_every_column_derives_and_refuses_typos():
    row = complete_row({"backbone": "b", "params": 3_228_864})
    assert list(row) == row_columns()
    assert row["params_m"] == 3.23 and row["error"] is None
    with pytest.raises(KeyError, match="bottleneck_img_per_sec"):
        complete_row({"bottleneck_img_per_sec": 1.0})


def test_cells_are_formatted_as_declared():
    row = {
        "weights": "imagenet",
        "test_accuracy": 0.874,
        "test_accuracy_ci_low": 0.81,
        "test_accuracy_ci_high": 0.92,
    }
    assert format_cell(column("test_accuracy"), row) == "87.4% (81.0%-92.0%)"
    assert format_cell(column("test_accuracy"), row | {"weights": "random"}) == "n/a (random weights)"
    assert format_cell(column("validation_accuracy"), {"weights": "random"}) == "n/a"
    assert format_cell(column("bottleneck_img_per_s"), {"bottleneck_img_per_s": 174.6789}) == 174.7
    assert format_cell(column("input_size"), {"input_size": 224.0}) == 224


def test_sparse_columns_show_only_where_some_row_has_them():
    shown = [c.name for c in visible_columns([{"tflite_int8_size_mb": 1.0}])]
    assert "tflite_int8_size_mb" in shown and "tflite_float16_size_mb" not in shown
    assert shown[-1] == "error"
