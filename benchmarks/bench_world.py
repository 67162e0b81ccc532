"""Time world generation (and a one-day advance) for growing numbers of persons.

Run: python benchmarks/bench_world.py [n_persons ...]   (default: 1k 10k 100k 1M)
"""

from __future__ import annotations

import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from simulators.generate import generate_world
from simulators.world import WorldSpec

SIZES = (1_000, 10_000, 100_000, 1_000_000)


def bench(n_persons: int) -> None:
    started = time.perf_counter()
    world = generate_world(WorldSpec(n_persons=n_persons))
    elapsed = time.perf_counter() - started
    rows = sum(len(frame) for frame in world.tables.values())
    started = time.perf_counter()
    world.advance(timedelta(days=1), seed=1)
    advance = time.perf_counter() - started
    print(
        f"n_persons={n_persons:>9,}  generate={elapsed:7.2f}s  rows={rows:>11,}  "
        f"rows/s={rows / elapsed:>11,.0f}  advance(1 day)={advance:6.2f}s"
    )


def main() -> None:
    sizes = [int(arg) for arg in sys.argv[1:]] or SIZES
    for n_persons in sizes:
        bench(n_persons)


if __name__ == "__main__":
    main()
