"""Is one backbone really more accurate than another on the same test images?

McNemar's test looks only at the images the two got differently: ``b`` right by the
first and wrong by the second, ``c`` the reverse. Under "equally accurate" each such
image is a fair coin, so the exact two-sided p-value is a binomial tail, computed here
with integers (exact for any count, no normal approximation).
"""

from __future__ import annotations

from itertools import combinations
from typing import Any

from harness.pipeline.evaluate import mcnemar_counts, mcnemar_exact

__all__ = ["mcnemar_counts", "mcnemar_exact", "outcomes_of", "p_value_between", "paired_tests"]


def paired_tests(outcomes: dict[str, dict[str, bool]]) -> list[dict[str, Any]]:
    """McNemar for every pair of backbones on the test images both were scored on.

    Args:
        outcomes: Per backbone, image -> whether its top-1 was right.

    Returns:
        One row per pair: ``a``, ``b``, ``n_images`` (common images), ``a_only``
        (right by a, wrong by b), ``b_only``, ``p_value`` and ``accuracy_a/b`` on
        the common images.
    """
    rows = []
    for a, b in combinations(outcomes, 2):
        common = sorted(set(outcomes[a]) & set(outcomes[b]))
        if not common:
            continue
        a_only = sum(outcomes[a][i] and not outcomes[b][i] for i in common)
        b_only = sum(outcomes[b][i] and not outcomes[a][i] for i in common)
        rows.append(
            {
                "a": a,
                "b": b,
                "n_images": len(common),
                "a_only": a_only,
                "b_only": b_only,
                "p_value": mcnemar_exact(a_only, b_only),
                "accuracy_a": sum(outcomes[a][i] for i in common) / len(common),
                "accuracy_b": sum(outcomes[b][i] for i in common) / len(common),
            }
        )
    return rows


def outcomes_of(details: dict[str, Any]) -> dict[str, dict[str, bool]]:
    """Per backbone, image -> right or wrong, from a run's ``details`` (real weights only)."""
    out = {}
    for name, detail in details.items():
        scored = (detail or {}).get("test_outcomes")
        if scored:
            out[name] = dict(zip(scored["images"], map(bool, scored["correct"])))
    return out


def p_value_between(pairs: list[dict[str, Any]], a: str, b: str) -> float | None:
    for row in pairs:
        if {row["a"], row["b"]} == {a, b}:
            return row["p_value"]
    return None
