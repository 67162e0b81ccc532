"""NexHealth extraction over real HTTP on loopback into a real landing zone: the fault suite."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import polars as pl
import pytest

from chairside.config import Organisation
from extract.http import ApiError
from extract.nexhealth.connector import sync_entity
from extract.nexhealth.streams import ENTITIES
from extract.state import SyncBusyError, SyncState
from simulators.faults import FaultRule
from simulators.nexhealth import data
from tests.test_nexhealth_simulator import (
    API_KEY,
    ELSEWHERE,
    NEXHEALTH_OFFICES,
    SUBDOMAIN,
    NexHealth,
    nexhealth_world,
    serve_nexhealth,
)

CONNECTION = "nx_demo"
KEY_ENV = "NX_TEST_API_KEY"
# World table and key behind each entity read from the world (the rest are NexHealth's own).
WORLD_KEYS = {
    "providers": ("providers", "ProvNum"),
    "operatories": ("operatories", "OperatoryNum"),
    "patients": ("patients", "PatNum"),
    "appointments": ("appointments", "AptNum"),
    "payments": ("payments", "PayNum"),
}


@pytest.fixture
def nx(monkeypatch: pytest.MonkeyPatch) -> Iterator[NexHealth]:
    monkeypatch.setenv(KEY_ENV, API_KEY)
    with serve_nexhealth(nexhealth_world()) as served:
        yield served


@pytest.fixture
def landing_root(tmp_path: Path) -> Path:
    return tmp_path / "landing"


def organisation_for(nx: NexHealth, **settings) -> Organisation:
    connection = {
        "id": CONNECTION,
        "vendor": "nexhealth",
        "base_url": nx.url,
        "api_key_env": KEY_ENV,
        "subdomain": SUBDOMAIN,
        "timezone": "America/New_York",
        "requests_per_second": 500.0,
        "page_size": 50,  # small pages, so every location spans several
        "batch_rows": 150,  # small batches, so every sync spans several checkpoints
        "read_timeout_s": 5.0,
        **settings,
    }
    return Organisation.model_validate({"id": "g", "name": "G", "connections": [connection]})


def sync_all(org: Organisation, landing_root: Path, mode: str = "incremental") -> dict:
    connection = org.connection(CONNECTION)
    return {e: sync_entity(connection, e, landing_root=landing_root, mode=mode) for e in ENTITIES}


def landed(landing_root: Path, entity: str) -> pl.DataFrame:
    glob = str(landing_root / "nexhealth" / entity / "**" / "*.parquet")
    with duckdb.connect() as con:
        return pl.from_arrow(
            con.sql(f"select * from read_parquet('{glob}', union_by_name=true)").to_arrow_table()
        )


def landed_latest(landing_root: Path, entity: str) -> dict[int, dict]:
    """The latest landed version of each record, by id (newest extraction wins)."""
    rows = landed(landing_root, entity).sort("_extracted_at", "_load_id", "_batch_seq", "_row_seq")
    return {int(key): json.loads(record) for key, record in rows.select("_record_key", "_record")
            .iter_rows()}  # fmt: skip


def world_ids(nx: NexHealth, entity: str) -> set[int]:
    locations = nx.simulator.locations
    if entity == "locations":
        return {loc.id for loc in locations}
    if entity == "appointment_types":
        return {t["id"] for loc in locations for t in data.appointment_types(loc)}
    table, key = WORLD_KEYS[entity]
    ids = set()
    for loc in locations:
        rows = nx.world.table(table, loc.office)
        if entity == "appointments":
            rows = rows.filter(~pl.col("AptStatus").is_in(["Planned", "UnschedList"]))
        ids |= {data.nex_id(loc.id, k) for k in rows[key]}
    return ids


def assert_landing_matches_world(nx: NexHealth, landing_root: Path) -> None:
    for entity in ENTITIES:
        assert set(landed_latest(landing_root, entity)) == world_ids(nx, entity), entity


def cursor(landing_root: Path, entity: str) -> str | None:
    return SyncState(landing_root).cursor(CONNECTION, "nexhealth", entity)


# --------------------------------------------------------------------------- happy paths


def test_full_sync_lands_every_record_of_every_location(nx, landing_root):
    results = sync_all(organisation_for(nx), landing_root, mode="full")
    assert_landing_matches_world(nx, landing_root)
    assert all(r.quarantined == 0 for r in results.values())
    appointments = results["appointments"]
    assert appointments.batches >= 2
    # One cursor per location: the newest updated_at each had when the run started.
    cursors = json.loads(appointments.cursor_after)
    assert set(cursors) == {str(loc.id) for loc in nx.simulator.locations}
    assert results["locations"].cursor_after is None  # snapshots keep no cursor


def test_second_sync_changes_nothing_and_edits_appear_after_the_world_advances(nx, landing_root):
    org = organisation_for(nx)
    sync_all(org, landing_root)
    before = {e: landed_latest(landing_root, e) for e in ENTITIES}
    second = sync_all(org, landing_root)
    for entity in ENTITIES:
        assert landed_latest(landing_root, entity) == before[entity], entity
    # The second pass only re-reads the overlap window.
    assert second["appointments"].rows < len(before["appointments"])

    counts = nx.world.advance(timedelta(days=2), seed=5)
    assert counts["appointments_created"] and counts["appointments_edited"]
    results = sync_all(org, landing_root)
    assert_landing_matches_world(nx, landing_root)
    assert results["appointments"].rows < len(world_ids(nx, "appointments"))
    # Every appointment's latest landed version is the one the API serves now.
    latest = landed_latest(landing_root, "appointments")
    served = {}
    for loc in nx.simulator.locations:
        frame = nx.simulator.frames.get("appointments", loc)
        served |= dict(zip(frame["id"], frame["updated_at"], strict=True))
    assert {i: r["updated_at"] for i, r in latest.items()} == served


def test_ties_and_late_commits_inside_the_overlap_are_read_again(nx, landing_root):
    """A change stamped exactly at the cursor, or a little before it (a late commit), lands."""
    org = organisation_for(nx)
    sync_entity(org.connection(CONNECTION), "patients", landing_root=landing_root)
    location = nx.simulator.locations[0]
    stamp = datetime.fromisoformat(json.loads(cursor(landing_root, "patients"))[str(location.id)])
    local = stamp.astimezone(ZoneInfo(location.timezone)).replace(tzinfo=None)
    edits = {1: ("Tie", local), 2: ("Late", local - timedelta(minutes=5))}
    with nx.world.lock:
        patients = nx.world.tables["patients"]
        for patnum, (name, when) in edits.items():
            row = (pl.col("office") == location.office) & (pl.col("PatNum") == patnum)
            patients = patients.with_columns(
                LName=pl.when(row).then(pl.lit(name)).otherwise("LName"),
                DateTStamp=pl.when(row).then(pl.lit(when)).otherwise("DateTStamp"),
            )
        nx.world.tables["patients"] = patients
    sync_entity(org.connection(CONNECTION), "patients", landing_root=landing_root)
    latest = landed_latest(landing_root, "patients")
    for patnum, (name, _) in edits.items():
        assert latest[data.nex_id(location.id, patnum)]["last_name"] == name


def test_location_ids_limit_the_sync(nx, landing_root):
    only = nx.simulator.locations[1].id
    org = organisation_for(nx, location_ids=[only])
    sync_entity(org.connection(CONNECTION), "locations", landing_root=landing_root)
    sync_entity(org.connection(CONNECTION), "patients", landing_root=landing_root)
    assert set(landed_latest(landing_root, "locations")) == {only}
    patients = landed_latest(landing_root, "patients")
    assert patients and {data.native_key(i)[0] for i in patients} == {only}
    assert nx.requests("/locations", 200) == 1  # the configured ids need no lookup


# --------------------------------------------------------------------------- tokens and access


def test_token_expiry_mid_sync_refreshes_once_and_replays(monkeypatch, landing_root):
    monkeypatch.setenv(KEY_ENV, API_KEY)
    with serve_nexhealth(nexhealth_world(), token_ttl_s=0.3) as nx:
        # The third patients page is slow, so the token has expired when the fourth is asked.
        nx.faults.add(FaultRule(path="^/patients", kind="slow", delay=0.5, skip=2))
        org = organisation_for(nx, page_size=20)
        result = sync_entity(org.connection(CONNECTION), "patients", landing_root=landing_root)
        assert nx.requests("/patients", 401) == 1
        assert nx.requests("/authenticates", 201) == 2
    assert result.rows == len(world_ids(nx, "patients"))
    assert set(landed_latest(landing_root, "patients")) == world_ids(nx, "patients")


def test_a_rejected_key_fails_at_once_naming_source_and_endpoint_but_not_the_key(
    nx, landing_root, monkeypatch
):
    monkeypatch.setenv(KEY_ENV, "revoked-key-123")
    with pytest.raises(ApiError) as error:
        sync_entity(organisation_for(nx).connection(CONNECTION), "providers",
                    landing_root=landing_root)  # fmt: skip
    message = str(error.value)
    assert f"nexhealth[{CONNECTION}] GET /locations: authentication failed" in message
    assert "HTTP 401" in message and "revoked-key-123" not in message
    assert nx.requests("/authenticates", 401) == 1  # 401 is final: no retries
    assert cursor(landing_root, "providers") is None


def test_a_forbidden_institution_fails_naming_source_and_endpoint(monkeypatch, landing_root):
    monkeypatch.setenv(KEY_ENV, API_KEY)
    world = nexhealth_world(offices=(*NEXHEALTH_OFFICES, ELSEWHERE))
    forbidden = rf"nexhealth\[{CONNECTION}\] GET /locations: HTTP 403"
    with (
        serve_nexhealth(world, api_keys={API_KEY: ("other-group",)}) as nx,
        pytest.raises(ApiError, match=forbidden),
    ):
        sync_entity(organisation_for(nx).connection(CONNECTION), "patients",
                    landing_root=landing_root)  # fmt: skip
    assert cursor(landing_root, "patients") is None


# --------------------------------------------------------------------------- failures and resume


def test_failure_mid_sync_keeps_the_cursor_and_the_rerun_resumes(nx, landing_root):
    org = organisation_for(nx, max_attempts=2)
    connection = org.connection(CONNECTION)
    sync_entity(connection, "appointments", landing_root=landing_root)
    before = cursor(landing_root, "appointments")
    nx.world.advance(timedelta(days=1), seed=3)

    # A full sync that dies with a persistent 500 after a few pages.
    nx.faults.add(FaultRule(path="^/appointments", kind="status", code=500, skip=8, times=None))
    with pytest.raises(ApiError) as error:
        sync_entity(connection, "appointments", landing_root=landing_root, mode="full")
    assert f"nexhealth[{CONNECTION}] GET /appointments" in str(error.value)
    assert "HTTP 500" in str(error.value)
    assert cursor(landing_root, "appointments") == before
    [failed] = [r for r in SyncState(landing_root).runs() if r["status"] == "failed"]
    token = json.loads(failed["resume_token"])
    assert token["end_cursor"] and token["location_id"] in {
        loc.id for loc in nx.simulator.locations
    }

    nx.faults.clear()
    result = sync_entity(connection, "appointments", landing_root=landing_root, mode="full")
    assert result.resumed and result.load_id == failed["load_id"]
    assert cursor(landing_root, "appointments") != before
    assert set(landed_latest(landing_root, "appointments")) == world_ids(nx, "appointments")
    # Nothing duplicated: the resumed load holds each record exactly once.
    load = landed(landing_root, "appointments").filter(pl.col("_load_id") == failed["load_id"])
    assert load.height == load["_record_key"].n_unique() == len(world_ids(nx, "appointments"))


def test_killed_extraction_loses_and_duplicates_nothing(nx, landing_root, tmp_path):
    """kill -9 a real extraction process mid-way, re-run, compare with the world."""
    org = organisation_for(nx, page_size=20, batch_rows=40)
    nx.faults.add(FaultRule(path="^/appointments", kind="slow", delay=0.2, times=None))
    config = tmp_path / "org.json"
    config.write_text(org.model_dump_json())
    script = (
        "import sys; from chairside.config import Organisation; "
        "from extract.nexhealth.connector import sync_entity; "
        "org = Organisation.model_validate_json(open(sys.argv[1]).read()); "
        f"sync_entity(org.connection('{CONNECTION}'), 'appointments', "
        "landing_root=sys.argv[2], mode='full')"
    )
    process = subprocess.Popen([sys.executable, "-c", script, str(config), str(landing_root)],
                               env=os.environ.copy())  # fmt: skip
    batches = landing_root / "nexhealth" / "appointments" / CONNECTION
    deadline = time.monotonic() + 60
    while len(list(batches.glob("*/part-*.parquet"))) < 2:
        assert process.poll() is None, "extraction finished before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    nx.faults.clear()

    assert cursor(landing_root, "appointments") is None
    result = sync_entity(org.connection(CONNECTION), "appointments", landing_root=landing_root,
                         mode="full")  # fmt: skip
    assert result.resumed
    load = landed(landing_root, "appointments").filter(pl.col("_load_id") == result.load_id)
    assert load.height == load["_record_key"].n_unique() == len(world_ids(nx, "appointments"))
    assert not list(landing_root.rglob("*.tmp")), "a half-written batch was left behind"


@pytest.mark.parametrize(
    "rule",
    [
        FaultRule(path="^/patients", kind="status", code=429, retry_after=1, times=2),
        FaultRule(path="^/patients", kind="status", code=429, retry_after=1,
                  retry_after_date=True),
        FaultRule(path="^/patients", kind="status", code=429, times=2),
        FaultRule(path="^/patients", kind="status", code=503, times=2),
        FaultRule(path="^/patients", kind="status", code=502, skip=2),
        FaultRule(path="^/authenticates", kind="status", code=503),
        FaultRule(path="^/patients", kind="slow", delay=3.0, skip=2),
        FaultRule(path="^/patients", kind="truncate", skip=2),
        FaultRule(path="^/patients", kind="non_json", times=2),
        FaultRule(path="^/patients", kind="shift", rows=7, skip=2),
        FaultRule(path="^/patients", kind="corrupt", record_field="envelope.data", value=[],
                  skip=2, times=2),
    ],
    ids=["429-retry-after", "429-http-date", "429-bare", "503", "502", "auth-503", "slow",
         "truncated", "html", "cursor-overlap", "empty-page-claiming-more"],
)  # fmt: skip
def test_transient_faults_are_survived_with_identical_results(nx, landing_root, rule):
    # Pages of 20: each location spans several, so a fault after the first page hits mid-way.
    org = organisation_for(nx, read_timeout_s=1.0, page_size=20)
    nx.faults.add(rule)
    result = sync_entity(org.connection(CONNECTION), "patients", landing_root=landing_root)
    assert result.quarantined == 0
    assert set(landed_latest(landing_root, "patients")) == world_ids(nx, "patients")
    assert rule.spent, "the fault never fired"


def test_pages_that_never_bring_rows_fail_the_run_without_moving_the_cursor(nx, landing_root):
    # After the clock reading and the first page, every page is empty yet claims more.
    nx.faults.add(FaultRule(path="^/patients", kind="corrupt", record_field="envelope.data",
                            value=[], skip=2, times=None))  # fmt: skip
    with pytest.raises(ApiError, match=r"GET /patients: paging is not advancing"):
        sync_entity(organisation_for(nx, page_size=20).connection(CONNECTION), "patients",
                    landing_root=landing_root)  # fmt: skip
    assert cursor(landing_root, "patients") is None


def test_persistent_429_fails_with_source_and_endpoint_and_moves_no_cursor(nx, landing_root):
    org = organisation_for(nx, max_attempts=3)
    nx.faults.add(FaultRule(path="^/providers", kind="status", code=429, times=None))
    with pytest.raises(ApiError, match=rf"nexhealth\[{CONNECTION}\] GET /providers: gave up"):
        sync_entity(org.connection(CONNECTION), "providers", landing_root=landing_root)
    assert cursor(landing_root, "providers") is None
    assert nx.requests("/providers", 429) == 3


def test_client_rate_limit_keeps_under_the_servers_throttle(monkeypatch, landing_root):
    """GET /appointments is throttled at 25/s; a client limited to 20/s never gets a 429."""
    monkeypatch.setenv(KEY_ENV, API_KEY)
    limits = {"appointments_requests_per_second": 25.0, "throttle_burst": 2.0}
    with serve_nexhealth(nexhealth_world(), **limits) as nx:
        org = organisation_for(nx, requests_per_second=20.0, page_size=25)
        result = sync_entity(org.connection(CONNECTION), "appointments",
                             landing_root=landing_root, mode="full")  # fmt: skip
        statuses = {row["status"] for row in nx.stats.snapshot()}
    assert result.requests >= 10
    assert statuses == {200, 201}


def test_bad_records_are_quarantined_with_field_and_reason(nx, landing_root):
    # skip=1: the first request is the clock reading (sort=-updated_at), not a landed page.
    nx.faults.add(FaultRule(path="^/payments", kind="corrupt", record_field="payment_amount",
                            value={"amount": "twelve", "currency": "USD"}, skip=1))  # fmt: skip
    result = sync_entity(organisation_for(nx).connection(CONNECTION), "payments",
                         landing_root=landing_root)  # fmt: skip
    assert result.quarantined == 1
    assert result.rows == len(world_ids(nx, "payments")) - 1
    glob = str(landing_root / "_quarantine" / "**" / "*.parquet")
    with duckdb.connect() as con:
        rows = con.execute(
            f"select _entity, _record_key, _reason, _record from read_parquet('{glob}', "
            "union_by_name=true)"
        ).fetchall()
    [(entity, key, reason, record)] = rows
    assert entity == "payments" and key == str(json.loads(record)["id"])
    assert reason == "payment_amount.amount: expected a decimal amount as a string"


def test_logs_and_errors_carry_no_patient_data(nx, landing_root, caplog):
    caplog.set_level(logging.DEBUG)
    nx.faults.add(FaultRule(path="^/patients", kind="status", code=503, times=1))
    # skip=1 lets the retried clock reading through, so a landed page carries the bad record.
    nx.faults.add(FaultRule(path="^/patients", kind="corrupt", record_field="bio",
                            value={"date_of_birth": "31/12/1980"}, skip=1))  # fmt: skip
    sync_all(organisation_for(nx), landing_root)
    patients = nx.world.table("patients")
    sentinels = {
        value
        for column in ("LName", "FName", "Email", "WirelessPhone", "HmPhone")
        for value in patients[column].to_list()
        if value and len(value) > 3
    }
    # The log does speak (which record, which field, which rule), just without PHI.
    assert "bio.date_of_birth: expected a date as YYYY-MM-DD" in caplog.text
    assert not [s for s in sentinels if s in caplog.text]
    assert API_KEY not in caplog.text


def test_two_syncs_of_one_stream_cannot_overlap(nx, landing_root):
    state = SyncState(landing_root)
    with state.exclusive(CONNECTION, "nexhealth", "patients"), pytest.raises(SyncBusyError):
        sync_entity(organisation_for(nx).connection(CONNECTION), "patients",
                    landing_root=landing_root)  # fmt: skip
