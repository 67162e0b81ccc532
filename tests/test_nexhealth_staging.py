"""End to end: NexHealth simulator -> extraction -> landing -> `dbt build` -> staging in DuckDB.

Runs the real dbt CLI (only the NexHealth staging models, with their data and unit tests) against
a throwaway landing root and warehouse, then compares the staging tables with what the simulator
serves (its export) and with the world itself, row for row.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import httpx
import polars as pl
import pytest

from extract.nexhealth.streams import ENTITIES
from simulators.nexhealth import data
from tests.test_nexhealth_extract import KEY_ENV, organisation_for, sync_all
from tests.test_nexhealth_simulator import API_KEY, NexHealth, nexhealth_world, serve_nexhealth

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
PROJECT_DIR = REPO / "dbt_project"


def run_dbt(root: Path, *args: str) -> subprocess.CompletedProcess:
    executable = Path(sys.executable).with_name("dbt")
    dbt = str(executable) if executable.exists() else shutil.which("dbt")
    if not dbt:
        pytest.skip("dbt CLI not installed")
    env = {
        **os.environ,
        "CHAIRSIDE_LANDING": str(root / "landing"),
        "CHAIRSIDE_WAREHOUSE": str(root / "warehouse" / "chairside.duckdb"),
        "DO_NOT_TRACK": "1",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    command = [
        dbt, *args, "--select", "path:models/staging/nexhealth",
        "--project-dir", str(PROJECT_DIR), "--profiles-dir", str(PROJECT_DIR),
        "--target-path", str(root / "target"), "--log-path", str(root / "logs"),
    ]  # fmt: skip
    return subprocess.run(
        command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False
    )


def build(root: Path) -> None:
    result = run_dbt(root, "build")
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]


def staging(root: Path, entity: str) -> list[dict]:
    with duckdb.connect(str(root / "warehouse" / "chairside.duckdb"), read_only=True) as con:
        relation = con.sql(f"select * from staging.stg_nexhealth__{entity} order by id")
        return [dict(zip(relation.columns, row, strict=True)) for row in relation.fetchall()]


def iso(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def wire_value(value):
    """A staging value written the way the API sent it."""
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    return value


def truth(export: Path, entity: str) -> dict[int, dict]:
    """The simulator's records, nested objects flattened by staging's rule (bio.x -> bio_x)."""
    frame = pl.read_parquet(export / f"nexhealth_{entity}.parquet")
    for column, dtype in frame.schema.items():
        if isinstance(dtype, pl.Struct):
            frame = frame.with_columns(
                pl.col(column).struct.rename_fields([f"{column}_{f.name}" for f in dtype.fields])
            ).unnest(column)
    return {row["id"]: row for row in frame.to_dicts()}


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> Iterator[tuple[NexHealth, Path]]:
    root = tmp_path_factory.mktemp("nexhealth_staging")
    (root / "warehouse").mkdir()
    with pytest.MonkeyPatch.context() as patch, serve_nexhealth(nexhealth_world()) as nx:
        patch.setenv(KEY_ENV, API_KEY)
        yield nx, root


def assert_staging_equals_truth(nx: NexHealth, root: Path) -> None:
    export = root / "export"
    httpx.post(f"{nx.url}/_sim/export", json={"dir": str(export)}, timeout=60).raise_for_status()
    for entity in ENTITIES:
        expected = truth(export, entity)
        rows = {row["id"]: row for row in staging(root, entity)}
        assert set(rows) == set(expected), entity
        for key, record in expected.items():
            row = rows[key]
            got = {c: wire_value(row[c]) for c in record}
            if entity == "providers":
                got["locations"] = json.loads(row["locations"])
            assert got == record, (entity, key)


def test_staging_equals_the_simulator_row_for_row_through_syncs_and_edits(pipeline):
    nx, root = pipeline
    org = organisation_for(nx)
    landing = root / "landing"

    # Two syncs: the second lands the overlap window again. Staging keeps one row per record
    # (the build's unique tests pass) and equals what the simulator serves, row for row.
    sync_all(org, landing)
    sync_all(org, landing)
    build(root)
    assert_staging_equals_truth(nx, root)
    landed_twice = duckdb.sql(
        f"select count(*) - count(distinct _record_key) from read_parquet("
        f"'{landing}/nexhealth/appointments/**/*.parquet', union_by_name=true)"
    ).fetchall()[0][0]
    assert landed_twice > 0  # the overlap really was landed twice

    counts = nx.world.advance(timedelta(days=3), seed=9)
    assert counts["appointments_edited"] and counts["patients_created"]
    sync_all(org, landing)
    build(root)
    assert_staging_equals_truth(nx, root)
    assert_staging_matches_the_world(nx, root)


def assert_staging_matches_the_world(nx: NexHealth, root: Path) -> None:
    """Independent of the simulator's rendering: statuses, amounts and times from world rows."""
    appointments = {r["id"]: r for r in staging(root, "appointments")}
    payments = {r["id"]: r for r in staging(root, "payments")}
    patients = {r["id"]: r for r in staging(root, "patients")}
    for loc in nx.simulator.locations:
        rows = nx.world.table("appointments", loc.office).join(
            nx.world.table("truth_appointments", loc.office).drop("office"), on="AptNum"
        )
        for row in rows.filter(~pl.col("AptStatus").is_in(["Planned", "UnschedList"])).iter_rows(
            named=True
        ):
            staged = appointments[data.nex_id(loc.id, row["AptNum"])]
            broken = row["AptStatus"] == "Broken"
            assert staged["cancelled"] == (broken and row["broken_reason"] == "cancelled")
            assert staged["patient_missed"] == (broken and row["broken_reason"] == "missed")
            assert staged["checked_out"] == (row["AptStatus"] == "Complete")
            start = row["AptDateTime"].replace(tzinfo=ZoneInfo(loc.timezone))
            assert staged["start_time"] == start
            assert staged["location_id"] == loc.id
        for row in nx.world.table("payments", loc.office).iter_rows(named=True):
            staged = payments[data.nex_id(loc.id, row["PayNum"])]
            assert staged["payment_amount_amount"] == -Decimal(f"{row['PayAmt']:.2f}")
            assert staged["paid_at"] == row["PayDate"]
        for row in nx.world.table("patients", loc.office).iter_rows(named=True):
            staged = patients[data.nex_id(loc.id, row["PatNum"])]
            assert staged["bio_date_of_birth"] == row["Birthdate"]
            assert staged["updated_at"] == row["DateTStamp"].replace(tzinfo=ZoneInfo(loc.timezone))
            assert staged["location_ids"] == [loc.id]
