"""End to end: the CareStack simulator -> real extraction -> landing -> `dbt build` of the CareStack
staging models -> DuckDB, compared row for row with what the simulator serves.

One module fixture syncs everything, syncs again (no change), lets the practice add a status and a
location and the world move on two days, syncs incrementally and runs one real `dbt build`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from extract.carestack.locations import match_locations
from extract.carestack.streams import ENTITIES
from extract.landing import BatchMeta, LandedRecord, Landing
from tests.test_carestack_extract import served, sync_all
from tests.test_carestack_simulator import (
    ACCOUNT,
    carestack_world,
    organisation_for,
    serve_carestack,
)
from tests.test_dbt_staging import run_dbt

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
MODELS = REPO / "dbt_project" / "models" / "staging" / "carestack"
SELECT = ("--select", "path:models/staging/carestack")
LINEAGE = ("source_timezone", "_load_id", "_extracted_at")


def model_fields(entity: str) -> list[tuple[str, str]]:
    """(API field, wire type) as the staging model declares them."""
    sql = (MODELS / f"stg_carestack__{entity}.sql").read_text()
    return re.findall(r"\('(\w+)',\s*'(\w+)'\)", sql)


def snake(field: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", field).lower()


def typed(value, wire_type: str):
    """A served JSON value as DuckDB hands back the staged column."""
    if value is None:
        return None
    if wire_type == "instant":
        moment = datetime.fromisoformat(value)
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    if wire_type == "local":
        return datetime.fromisoformat(value)
    if wire_type == "date":
        return date.fromisoformat(value)
    if wire_type == "decimal":
        return Decimal(str(value)).quantize(Decimal("0.001"))
    return value


@dataclass
class Build:
    root: Path
    output: str
    returncode: int
    expected: dict[str, list[tuple]]  # entity -> served rows, typed, ordered by key


def expected_rows(records: list[dict], entity: str) -> list[tuple]:
    fields = model_fields(entity)
    rows = [tuple(typed(r.get(f), t) for f, t in fields) for r in records]
    return sorted(rows, key=lambda row: str(row[0]))


def query(root: Path, sql: str, params=None) -> list[tuple]:
    with duckdb.connect(str(root / "warehouse" / "chairside.duckdb"), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def staged_rows(root: Path, entity: str) -> list[tuple]:
    rows = query(
        root,
        f"select * exclude (connection_id, {', '.join(LINEAGE)}) "
        f"from staging.stg_carestack__{entity} where connection_id = 'cs_main'",
    )
    return sorted(rows, key=lambda row: str(row[0]))


def land_unknown_status(landing_root: Path) -> None:
    """An appointment of another account whose status that account's list does not have."""
    meta = BatchMeta(
        connection_id="cs_other",
        vendor="carestack",
        entity="appointments",
        load_id="20261101T150000000000Z-ffff0001",
        batch_seq=1,
        cursor_field="lastModifiedOn",
        cursor_value=None,
        source_timezone="America/Denver",
        extracted_at=datetime(2026, 11, 1, 15, tzinfo=UTC),
    )
    record = {"id": 7, "patientId": 1, "locationId": 1, "statusId": 999,
              "lastModifiedOn": "2026-11-01T14:00:00Z"}  # fmt: skip
    Landing(landing_root).write_batch(meta, [LandedRecord("7", record)])


@pytest.fixture(scope="module")
def build(tmp_path_factory) -> Build:
    """Full sync, a second sync that changes nothing, then the practice adds a status and a
    location and the world moves on two days, an incremental sync, and one `dbt build`."""
    root = tmp_path_factory.mktemp("carestack_staging")
    (root / "warehouse").mkdir()
    landing = root / "landing"
    monkeypatch = pytest.MonkeyPatch()
    try:
        with serve_carestack(carestack_world(n_persons=120), monkeypatch, page_size=80) as cs:
            org = organisation_for(cs)
            sync_all(org, landing, mode="full")
            sync_all(org, landing)
            cs.sim.add_status("Pre-Medicated")
            cs.sim.add_location("Lakeview Orthodontics", "America/Denver")
            cs.world.advance(timedelta(days=2), seed=4)
            sync_all(org, landing)
            land_unknown_status(landing)
            result = run_dbt(root, "build", *SELECT)
            expected = {e: expected_rows(list(served(cs, e).values()), e) for e in ENTITIES[:-1]}
            matches = match_locations(cs.sim.locations(ACCOUNT), org.locations)
    finally:
        monkeypatch.undo()
    expected["location_matches"] = expected_rows([m.record() for m in matches], "location_matches")
    return Build(root, result.stdout + result.stderr, result.returncode, expected)


def test_build_passes_with_the_unit_tests(build):
    assert build.returncode == 0, build.output[-6000:]
    results = json.loads((build.root / "target" / "run_results.json").read_text())
    units = [r for r in results["results"] if r["unique_id"].startswith("unit_test.")]
    assert len(units) >= 3 and {r["status"] for r in units} == {"pass"}


def test_columns_are_the_api_fields_in_snake_case(build):
    columns_sql = (
        "select column_name, data_type from information_schema.columns where "
        "table_schema = 'staging' and table_name = ? order by ordinal_position"
    )
    for entity in ENTITIES:
        names = [c for c, _ in query(build.root, columns_sql, [f"stg_carestack__{entity}"])]
        fields = [snake(f) for f, _ in model_fields(entity)]
        assert names == ["connection_id", *fields, *LINEAGE], entity
    types = dict(query(build.root, columns_sql, ["stg_carestack__appointments"]))
    assert types["last_modified_on"] == "TIMESTAMP WITH TIME ZONE"
    assert types["date_time"] == "TIMESTAMP"
    assert types["provider_ids"] == "BIGINT[]"
    assert types["status_id"] == "BIGINT"
    requests = dict(query(build.root, columns_sql, ["stg_carestack__appointment_requests"]))
    assert requests["date_of_birth"] == "DATE"


def test_staging_equals_the_simulator_row_for_row_without_duplicates(build):
    for entity in ENTITIES:
        rows = staged_rows(build.root, entity)
        assert rows == build.expected[entity], entity
        assert len({row[0] for row in rows}) == len(rows), entity
    # The latest versions come from several loads: the dedupe across loads was exercised.
    [(loads,)] = query(
        build.root, "select count(distinct _load_id) from staging.stg_carestack__appointments"
    )
    assert loads >= 2


def test_the_practice_configuration_follows_carestack(build):
    statuses = {row[1] for row in staged_rows(build.root, "appointment_statuses")}
    assert {"Checked Out", "Pre-Medicated"} <= statuses
    locations = {row[1] for row in staged_rows(build.root, "locations")}
    assert "Lakeview Orthodontics" in locations
    matches = {row[0]: row[1] for row in staged_rows(build.root, "location_matches")}
    assert matches == {
        "carestack:1": "proposed",
        "carestack:2": "exact",
        "carestack:3": "unmatched",
    }


def test_a_status_missing_from_the_synced_list_is_flagged(build):
    """The status list is the practice's own: an appointment's status_id is checked against the
    synced list (not a fixed set of names), as a warning that does not stop the build."""
    flagged = [
        line
        for line in build.output.splitlines()
        if "WARN" in line and "stg_carestack__appointments_status_id__appointment_statuses" in line
    ]
    assert flagged, build.output[-4000:]
    assert build.returncode == 0
