"""Percentiles of one run's samples, and the median and range of a figure over rounds."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


def percentile(samples: Sequence[float], pct: float) -> float:
    """Nearest rank: of 50 samples, p50 is the 25th smallest and p99 the largest."""
    ordered = sorted(samples)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def median_and_range(values: Sequence[float], digits: int = 1) -> str:
    """`12.3 (11.0-14.2)`: the median over rounds, then the lowest and highest."""
    if not values:
        return "-"
    fmt = f"{{:.{digits}f}}"
    middle = fmt.format(statistics.median(values))
    if len(values) == 1:
        return middle
    return f"{middle} ({fmt.format(min(values))}-{fmt.format(max(values))})"
