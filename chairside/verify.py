"""Compare the warehouse's Open Dental staging tables with the simulator's world, row for row.

Used by the tests and printed by the demo: it is how we know that extraction + landing + dbt
reproduce exactly what the offices hold (ids, statuses, amounts, timestamps).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl

from extract.opendental.streams import STREAMS

_SNAKE = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def snake(name: str) -> str:
    """Open Dental column name -> staging column name (PatNum -> pat_num, Mode_ -> mode)."""
    return _SNAKE.sub("_", name).lower().rstrip("_")


@dataclass
class TableDiff:
    table: str
    truth_rows: int
    staging_rows: int
    missing: int = 0  # in the world, not in staging
    extra: int = 0  # in staging, not in the world
    mismatched: dict[str, int] = field(default_factory=dict)  # column -> rows that differ

    @property
    def ok(self) -> bool:
        return not (self.missing or self.extra or self.mismatched)


def compare_staging_to_truth(
    warehouse: Path, truth_dir: Path, offices: list[str], entities: list[str] | None = None
) -> list[TableDiff]:
    """Compare the staging tables with the world's tables of ``offices`` (Open Dental ones)."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return [_compare(con, truth_dir, offices, e) for e in entities or list(STREAMS)]


def _compare(
    con: duckdb.DuckDBPyConnection, truth_dir: Path, offices: list[str], entity: str
) -> TableDiff:
    key = snake(STREAMS[entity].key)
    truth = pl.read_parquet(truth_dir / f"{entity}.parquet")
    truth = truth.filter(pl.col("office").is_in(offices))
    if entity == "clinics":
        truth = truth.filter(~pl.col("IsHidden"))  # the API lists only visible clinics
    truth = truth.rename({c: snake(c) for c in truth.columns}).rename({"office": "connection_id"})
    columns = truth.columns
    selected = ", ".join(columns)
    staging = pl.from_arrow(
        con.execute(
            f"select {selected} from staging.stg_opendental__{entity} "
            "where list_contains($offices, connection_id)",
            {"offices": offices},
        ).to_arrow_table()
    )
    diff = TableDiff(entity, truth.height, staging.height)
    both = truth.join(staging, on=["connection_id", key], how="inner", suffix="__stg")
    diff.extra = staging.height - both.height
    diff.missing = truth.height - both.height
    for column in columns:
        if column in ("connection_id", key):
            continue
        left, right = _comparable(both[column]), _comparable(both[f"{column}__stg"])
        differ = (left != right) | (left.is_null() != right.is_null())
        count = int(differ.fill_null(False).sum())
        if count:
            diff.mismatched[column] = count
    return diff


def _comparable(series: pl.Series) -> pl.Series:
    """Bring both sides to one representation: money to cents, text as-is, others by value."""
    if series.dtype in (pl.Float32, pl.Float64) or isinstance(series.dtype, pl.Decimal):
        return (series.cast(pl.Float64) * 100).round(0).cast(pl.Int64)
    if series.dtype == pl.Datetime or isinstance(series.dtype, pl.Datetime):
        return series.cast(pl.Datetime("us"))
    return series
