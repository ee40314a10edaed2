"""Small pure helpers shared by the benchmark modules."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path


def percentile(samples: Sequence[float], fraction: float) -> float:
    """The ``fraction`` quantile by the nearest-rank method (no interpolation: a real sample)."""
    if not samples:
        raise ValueError("no samples")
    ordered = sorted(samples)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def p50(samples: Sequence[float]) -> float:
    return percentile(samples, 0.50)


def p95(samples: Sequence[float]) -> float:
    return percentile(samples, 0.95)


def rss_mb(pid: int | str = "self") -> float:
    """Resident memory of a process in MiB, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")
