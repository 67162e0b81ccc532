"""Time, random and array helpers shared by every row builder of the generator.

Times are integer seconds of the office's naive local wall clock ("local epoch seconds", see
``local_seconds``) and dates integer days since 1970-01-01; ``ts`` and ``days_to_dates`` turn such
numpy arrays into polars columns. The rest are small vectorised building blocks: weighted and
uniform draws, string pools, money in cents, weekday and business-hour moves, primary keys in
creation order.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

DAY = 86_400
HOUR = 3_600
MINUTE = 60
EPOCH = datetime(1970, 1, 1)


def local_seconds(now_utc: datetime, timezone: str) -> int:
    """The office's wall clock at ``now_utc`` as naive local epoch seconds."""
    local = now_utc.astimezone(ZoneInfo(timezone)).replace(tzinfo=None, microsecond=0)
    return int((local - EPOCH).total_seconds())


def ts(seconds: np.ndarray, null: np.ndarray | None = None) -> pl.Series:
    """Local epoch seconds -> naive Datetime series; ``null`` marks empty values."""
    values = (np.asarray(seconds, dtype=np.int64) * 1_000_000).astype("datetime64[us]")
    if null is not None:
        values[null] = np.datetime64("NaT")
    return pl.Series(values)


def days_to_dates(days: np.ndarray, null: np.ndarray | None = None) -> pl.Series:
    values = np.asarray(days, dtype=np.int64).astype("datetime64[D]")
    if null is not None:
        values[null] = np.datetime64("NaT")
    return pl.Series(values)


def pick(pool: tuple[str, ...] | list[str], idx: np.ndarray) -> pl.Series:
    """Vectorised ``pool[idx]`` for string pools."""
    return pl.Series(list(pool), dtype=pl.String).gather(np.asarray(idx, dtype=np.int64))


def concat(*parts: pl.Series | pl.Expr) -> pl.Series:
    """Element-wise string concatenation of equal-length series (and literals)."""
    return pl.select(
        pl.concat_str([pl.lit(p) if isinstance(p, pl.Series) else p for p in parts])
    ).to_series()


def choose(rng: np.random.Generator, n: int, weights: tuple[float, ...]) -> np.ndarray:
    """Category indices drawn with the given (unnormalised) weights."""
    p = np.asarray(weights, dtype=float)
    return rng.choice(len(p), size=n, p=p / p.sum())


def uniform_int(rng: np.random.Generator, low, high, size: int | None = None) -> np.ndarray:
    """Integers in [low, high] (inclusive, elementwise; ``size`` when both bounds are scalars)."""
    low = np.asarray(low, dtype=np.int64)
    high = np.maximum(np.asarray(high, dtype=np.int64), low)
    shape = np.broadcast_shapes(low.shape, high.shape, () if size is None else (size,))
    return low + (rng.random(shape) * (high - low + 1)).astype(np.int64)


def weekday_shift(days: np.ndarray) -> np.ndarray:
    """Move weekend days to the next Monday (offices are closed; never moves backwards)."""
    dow = (days + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    return days + np.where(dow >= 5, 7 - dow, 0)


def run_starts(values: np.ndarray) -> np.ndarray:
    """For sorted ``values``: True where a new run of equal values begins."""
    starts = np.ones(len(values), dtype=bool)
    starts[1:] = values[1:] != values[:-1]
    return starts


def cents(amount: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(amount) * 100).astype(np.int64)


def money(cents_: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(cents_, dtype=np.int64) / 100.0, 2)


def business_time(rng: np.random.Generator, day: np.ndarray) -> np.ndarray:
    """A moment during front-desk hours (8:00-17:00) on ``day``."""
    return day * DAY + 8 * HOUR + rng.integers(0, 9 * HOUR, len(day))


def assign_keys(created: np.ndarray, first: int) -> np.ndarray:
    """Primary keys in creation order (ties keep generation order), starting at ``first``."""
    order = np.argsort(created, kind="stable")
    keys = np.empty(len(created), dtype=np.int64)
    keys[order] = np.arange(first, first + len(created))
    return keys


def seconds_of(series: pl.Series) -> np.ndarray:
    return series.dt.epoch("s").to_numpy()
