"""CareStack extraction over real HTTP on loopback into a real landing zone, with the same fault
suite as Open Dental, both auth schemes, and location matching."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import duckdb
import httpx
import polars as pl
import pytest

from chairside.config import Location
from extract.carestack.connector import sync_entity
from extract.carestack.contracts import parse_instant
from extract.carestack.locations import match_locations, similarity
from extract.carestack.streams import ENTITIES, STREAMS
from extract.http import ApiError
from extract.state import SyncState
from simulators.carestack import wire
from simulators.faults import FaultRule
from tests.test_carestack_simulator import (
    ACCOUNT,
    CareStack,
    carestack_world,
    organisation_for,
    serve_carestack,
)

SYNCED = tuple(e for e in ENTITIES if e != "location_matches")
FEEDS = ("patients", "appointments", "appointment_requests", "conversation_calls")


@pytest.fixture
def carestack(monkeypatch) -> CareStack:
    with serve_carestack(carestack_world(), monkeypatch, page_size=60) as cs:
        yield cs


@pytest.fixture
def landing_root(tmp_path: Path) -> Path:
    return tmp_path / "landing"


def sync_all(org, landing_root: Path, mode: str = "incremental", entities=ENTITIES) -> dict:
    connection = org.connection("cs_main")
    return {
        entity: sync_entity(
            connection, entity, landing_root=landing_root, mode=mode, locations=org.locations
        )
        for entity in entities
    }


def landed_latest(landing_root: Path, entity: str) -> dict[str, dict]:
    """The latest landed version of each record, by key (ties: newest extraction)."""
    glob = str(landing_root / "carestack" / entity / "**" / "*.parquet")
    with duckdb.connect() as con:
        rows = con.sql(
            f"""
            select _record_key, _record from read_parquet('{glob}', union_by_name=true)
            qualify row_number() over (partition by _connection_id, _record_key
                order by _extracted_at desc, _load_id desc, _batch_seq desc, _row_seq desc) = 1
            """
        ).fetchall()
    return {key: json.loads(record) for key, record in rows}


def served(cs: CareStack, entity: str) -> dict[str, dict]:
    """What the simulator serves now for ``entity``, by key."""
    if entity in FEEDS:
        return {str(r["id"]): r for r in cs.served(entity).to_dicts()}
    lists = {
        "locations": lambda: cs.sim.locations(ACCOUNT),
        "appointment_statuses": lambda: cs.sim.status_list(ACCOUNT),
        "providers": lambda: wire.providers(cs.world, cs.sim.accounts[ACCOUNT]),
        "operatories": lambda: wire.operatories(cs.world, cs.sim.accounts[ACCOUNT]),
    }
    return {str(r["Id"]): r for r in lists[entity]()}


def assert_landing_matches_simulator(cs: CareStack, landing_root: Path, entities=SYNCED) -> None:
    for entity in entities:
        assert landed_latest(landing_root, entity) == served(cs, entity), entity


def count_landed(landing_root: Path, entity: str) -> int:
    glob = str(landing_root / "carestack" / entity / "**" / "*.parquet")
    with duckdb.connect() as con:
        return con.execute(f"select count(*) from read_parquet('{glob}')").fetchone()[0]


# --------------------------------------------------------------------------- full and incremental


def test_full_sync_lands_every_record_as_served(carestack, landing_root):
    org = organisation_for(carestack)
    results = sync_all(org, landing_root, mode="full")
    assert_landing_matches_simulator(carestack, landing_root)
    assert all(r.quarantined == 0 for r in results.values())
    assert results["conversation_calls"].batches >= 2  # several checkpoints per sync
    newest = max(r["lastModifiedOn"] for r in served(carestack, "appointments").values())
    assert parse_instant(results["appointments"].cursor_after) == parse_instant(newest)
    assert results["locations"].cursor_after is None  # snapshots keep no cursor


def test_second_sync_changes_nothing_and_edits_appear_after_the_world_advances(
    carestack, landing_root
):
    org = organisation_for(carestack)
    sync_all(org, landing_root)
    before = {e: landed_latest(landing_root, e) for e in SYNCED}
    second = sync_all(org, landing_root)
    for entity in SYNCED:
        assert landed_latest(landing_root, entity) == before[entity], entity
    # Incremental: the second pass re-reads only the overlap window.
    assert second["appointments"].rows < len(before["appointments"]) / 10
    assert second["appointments"].cursor_before == second["appointments"].cursor_after

    counts = carestack.world.advance(timedelta(days=2), seed=5)
    assert counts["appointments_created"] > 0 and counts["appointments_edited"] > 0
    third = sync_all(org, landing_root)
    assert_landing_matches_simulator(carestack, landing_root)
    changed = [
        k
        for k, r in landed_latest(landing_root, "appointments").items()
        if before["appointments"].get(k) != r
    ]
    assert changed and third["appointments"].rows < len(before["appointments"])
    assert third["appointments"].cursor_after > second["appointments"].cursor_after


def test_late_change_inside_the_overlap_window_is_still_read(carestack, landing_root):
    """A change committed after a sync but stamped just before its cursor (a slow transaction)
    is caught by the next run's overlap."""
    org = organisation_for(carestack, overlap_minutes=10)
    connection = org.connection("cs_main")
    first = sync_entity(connection, "patients", landing_root=landing_root)
    cursor = parse_instant(first.cursor_after)
    office = carestack.world.office("cs_hillcrest")
    local = cursor.astimezone(__import__("zoneinfo").ZoneInfo(office.timezone))
    late_stamp = local.replace(tzinfo=None) - timedelta(minutes=5)
    with carestack.world.lock:
        patients = carestack.world.tables["patients"]
        target = (pl.col("office") == office.key) & (pl.col("PatNum") == 3)
        carestack.world.tables["patients"] = patients.with_columns(
            Email=pl.when(target).then(pl.lit("late.change@example.com")).otherwise("Email"),
            DateTStamp=pl.when(target).then(pl.lit(late_stamp)).otherwise("DateTStamp"),
        )
    second = sync_entity(connection, "patients", landing_root=landing_root)
    assert second.rows >= 1
    landed = landed_latest(landing_root, "patients")[str(wire.ID_STRIDE + 3)]
    assert landed["email"] == "late.change@example.com"


def test_cursor_ties_split_across_pages_lose_nothing(monkeypatch, landing_root):
    """A batch job stamps 25 appointments in one second; pages of 7 rows cut through that tie,
    and keyset paging on (lastModifiedOn, id) keeps every row. The next run re-reads the tie."""
    world = carestack_world()
    with world.lock:
        appts = world.tables["appointments"]
        batch = pl.col("AptNum").is_between(10, 34) & (pl.col("office") == "cs_bayview")
        world.tables["appointments"] = appts.with_columns(
            DateTStamp=pl.when(batch)
            .then(pl.lit(world.office_now("cs_bayview") - timedelta(hours=1)))
            .otherwise("DateTStamp")
        )
    with serve_carestack(world, monkeypatch, page_size=7) as cs:
        assert cs.served("appointments")["lastModifiedOn"].value_counts()["count"].max() == 25
        connection = organisation_for(cs).connection("cs_main")
        first = sync_entity(connection, "appointments", landing_root=landing_root)
        assert landed_latest(landing_root, "appointments") == served(cs, "appointments")
        assert first.rows == len(served(cs, "appointments"))
        second = sync_entity(connection, "appointments", landing_root=landing_root)
    cursor = parse_instant(first.cursor_after)
    at_or_after = [
        r for r in served(cs, "appointments").values()
        if parse_instant(r["lastModifiedOn"]) >= cursor - timedelta(minutes=10)
    ]  # fmt: skip
    assert second.rows == len(at_or_after) > 0


def test_new_statuses_and_locations_appear_on_the_next_sync(carestack, landing_root):
    org = organisation_for(carestack)
    sync_all(org, landing_root, entities=("locations", "appointment_statuses"))
    httpx.post(f"{carestack.url}/_sim/appointment-statuses", json={"name": "Pre-Medicated"})
    httpx.post(f"{carestack.url}/_sim/locations", json={"name": "Lakeview Orthodontics"})
    sync_all(org, landing_root, entities=("locations", "appointment_statuses", "location_matches"))
    statuses = {r["Name"] for r in landed_latest(landing_root, "appointment_statuses").values()}
    assert {"Checked Out", "Pre-Medicated"} <= statuses
    assert "Lakeview Orthodontics" in {
        r["Name"] for r in landed_latest(landing_root, "locations").values()
    }
    matches = landed_latest(landing_root, "location_matches")
    assert matches["carestack:3"]["status"] == "unmatched"


# --------------------------------------------------------------------------- location matching


def test_location_matching_proposes_close_names_and_never_applies_them(carestack, landing_root):
    org = organisation_for(
        carestack,
        locations=[
            {"id": "hillcrest", "name": "Hilcrest Family Dental", "connection": "cs_main"},
            {"id": "bayview", "name": "Bayview Dental Care", "connection": "cs_main"},
            {"id": "uptown", "name": "Uptown Dental", "connection": "cs_main",
             "pms_location_id": "77"},
        ],
    )  # fmt: skip
    result = sync_all(org, landing_root, entities=("location_matches",))["location_matches"]
    assert result.rows == 3 and result.requests == 1
    matches = landed_latest(landing_root, "location_matches")
    hill, bay, uptown = matches["carestack:1"], matches["carestack:2"], matches["config:uptown"]
    assert (hill["status"], hill["locationId"], hill["proposedLocationId"]) == (
        "proposed", None, "hillcrest",
    )  # fmt: skip
    assert 0.5 <= hill["score"] < 1
    assert (bay["status"], bay["locationId"]) == ("exact", "bayview")
    assert uptown["status"] == "missing"  # its pms_location_id names no CareStack location


def test_match_locations_rules():
    def loc(id_, name, pms=None):
        return Location(id=id_, name=name, connection="c", pms_location_id=pms)

    carestack = [
        {"Id": 1, "Name": "Hillcrest Family Dentistry"},
        {"Id": 2, "Name": "Bayview Dental Care"},
        {"Id": 3, "Name": "Main St. Dental & Ortho"},
        {"Id": 4, "Name": "Riverside"},
    ]
    configured = [
        loc("main", "Main St Dental and Ortho"),  # exact once punctuation and & are ignored
        loc("hill", "Hillcrest Dental"),
        loc("bay_a", "Bayview Dental Care", pms="2"),  # confirmed wins over the name
        loc("bay_b", "Bayview Dental"),
        loc("north", "Northgate Smiles"),
    ]
    got = {m.key: m for m in match_locations(carestack, configured)}
    assert got["carestack:1"].status == "proposed"
    assert got["carestack:1"].proposed_location_id == "hill"
    assert got["carestack:1"].location_id is None
    assert (got["carestack:2"].status, got["carestack:2"].location_id) == ("confirmed", "bay_a")
    assert (got["carestack:3"].status, got["carestack:3"].location_id) == ("exact", "main")
    assert got["carestack:4"].status == "unmatched"
    # Nothing resembles these config locations (bay_b is not proposed twice for Bayview).
    assert {k for k, m in got.items() if m.status == "missing"} == {"config:bay_b", "config:north"}
    assert similarity("Hillcrest Family Dentistry", "Hilcrest Dental") > similarity(
        "Hillcrest Family Dentistry", "Bayview Dental Care"
    )


# --------------------------------------------------------------------------- faults


@pytest.mark.parametrize(
    "rule",
    [
        FaultRule(path="^/sync/patients", kind="status", code=429, retry_after=1, times=2),
        FaultRule(path="^/sync/patients", kind="status", code=429, retry_after=1,
                  retry_after_date=True),
        FaultRule(path="^/sync/patients", kind="status", code=429, times=2),
        FaultRule(path="^/sync/patients", kind="status", code=503, times=2),
        FaultRule(path="^/sync/patients", kind="status", code=502, skip=1),
        FaultRule(path="^/sync/patients", kind="slow", delay=3.0, skip=1),
        FaultRule(path="^/sync/patients", kind="truncate", skip=1),
        FaultRule(path="^/sync/patients", kind="non_json", times=2),
        FaultRule(path="^/sync/patients", kind="shift", rows=7, skip=1),
    ],
    ids=["429-retry-after", "429-http-date", "429-bare", "503", "502", "slow", "truncated",
         "html", "repeated-rows"],
)  # fmt: skip
def test_transient_faults_are_survived_with_identical_results(carestack, landing_root, rule):
    org = organisation_for(carestack, read_timeout_s=1.0)
    carestack.faults.add(rule)
    result = sync_entity(org.connection("cs_main"), "patients", landing_root=landing_root)
    assert result.quarantined == 0
    assert landed_latest(landing_root, "patients") == served(carestack, "patients")
    assert rule.spent or rule.times is None, "the fault never fired"


def test_token_expiry_mid_sync_is_refreshed_and_replayed(monkeypatch, landing_root):
    world = carestack_world()
    with serve_carestack(
        world, monkeypatch, auth_mode="oauth_password", token_max_requests=3, page_size=40
    ) as cs:
        org = organisation_for(cs, auth_mode="oauth_password")
        results = sync_all(org, landing_root, entities=("appointment_statuses", "appointments"))
        assert_landing_matches_simulator(cs, landing_root, ("appointment_statuses", "appointments"))
        stats = cs.stats.snapshot()
    assert results["appointments"].requests > 6
    expired = sum(s["count"] for s in stats if s["status"] == 401)
    tokens = sum(s["count"] for s in stats if s["path"] == "/connect/token")
    assert expired >= 2 and tokens >= expired


def test_refused_token_request_fails_fast_naming_the_source(monkeypatch, landing_root):
    world = carestack_world(n_persons=40)
    with serve_carestack(world, monkeypatch, auth_mode="oauth_password") as cs:
        monkeypatch.setenv("CS_CLIENT_SECRET", "revoked-client-secret")
        org = organisation_for(cs, auth_mode="oauth_password")
        with pytest.raises(ApiError) as error:
            sync_entity(org.connection("cs_main"), "locations", landing_root=landing_root)
    message = str(error.value)
    assert "carestack[cs_main]" in message and "invalid_client" in message
    assert "revoked-client-secret" not in message


def test_failure_mid_sync_keeps_the_cursor_and_the_rerun_resumes(carestack, landing_root):
    org = organisation_for(carestack, max_attempts=2)
    connection = org.connection("cs_main")
    sync_entity(connection, "appointments", landing_root=landing_root)
    state = SyncState(landing_root)
    cursor = state.cursor("cs_main", "carestack", "appointments")
    carestack.world.advance(timedelta(days=1), seed=3)

    # A full sync that dies after four pages (batches of 150 rows = 3 pages of 60: one
    # checkpoint) with a persistent 500.
    carestack.faults.add(
        FaultRule(path="^/sync/appointments", kind="status", code=500, skip=4, times=None)
    )
    with pytest.raises(ApiError) as error:
        sync_entity(connection, "appointments", landing_root=landing_root, mode="full")
    message = str(error.value)
    assert "carestack[cs_main] GET /sync/appointments" in message and "HTTP 500" in message
    assert state.cursor("cs_main", "carestack", "appointments") == cursor
    failed = [r for r in state.runs("cs_main") if r["status"] == "failed"]
    assert len(failed) == 1 and json.loads(failed[0]["resume_token"])["continueToken"]
    landed_before = count_landed(landing_root, "appointments")

    carestack.faults.clear()
    result = sync_entity(connection, "appointments", landing_root=landing_root, mode="full")
    assert result.resumed and result.load_id == failed[0]["load_id"]
    assert state.cursor("cs_main", "carestack", "appointments") > cursor
    assert landed_latest(landing_root, "appointments") == served(carestack, "appointments")
    # The resumed run read only what the failed run had not made durable: nothing twice.
    with duckdb.connect() as con:
        glob = str(landing_root / "carestack" / "appointments" / "**" / "*.parquet")
        dupes = con.execute(
            f"select count(*) - count(distinct _record_key) from read_parquet('{glob}') "
            f"where _load_id = '{result.load_id}'"
        ).fetchone()[0]
    assert dupes == 0
    assert (
        count_landed(landing_root, "appointments") - landed_before
        == result.rows - (failed[0]["rows"])
    )


def test_a_refused_saved_continue_token_restarts_the_runs_filter(carestack, landing_root):
    """How long a continueToken lives is unknown: a resume whose token the server refuses
    re-reads the run's filter instead of failing forever."""
    org = organisation_for(carestack, max_attempts=1)
    connection = org.connection("cs_main")
    carestack.faults.add(
        FaultRule(path="^/sync/appointments", kind="status", code=500, skip=3, times=None)
    )
    with pytest.raises(ApiError):
        sync_entity(connection, "appointments", landing_root=landing_root)
    state = SyncState(landing_root)
    [failed] = [r for r in state.runs("cs_main") if r["status"] == "failed"]
    assert json.loads(failed["resume_token"])["continueToken"]
    with sqlite3.connect(state.path) as db:
        db.execute(
            "update sync_runs set resume_token = ? where load_id = ?",
            (json.dumps({"continueToken": "long-expired", "done": False}), failed["load_id"]),
        )
    carestack.faults.clear()
    result = sync_entity(connection, "appointments", landing_root=landing_root)
    assert result.resumed
    assert landed_latest(landing_root, "appointments") == served(carestack, "appointments")


def test_killed_extraction_loses_and_duplicates_nothing(carestack, landing_root, tmp_path):
    """kill -9 a real extraction process mid-way, re-run, compare with the simulator."""
    org = organisation_for(carestack, batch_rows=100)
    # Slow every page down so the process is surely mid-way when it is killed.
    carestack.faults.add(FaultRule(path="^/sync/conversation", kind="slow", delay=0.2, times=None))
    config = tmp_path / "org.json"
    config.write_text(org.model_dump_json())
    script = (
        "import sys; from chairside.config import Organisation; "
        "from extract.carestack.connector import sync_entity; "
        "org = Organisation.model_validate_json(open(sys.argv[1]).read()); "
        "sync_entity(org.connection('cs_main'), 'conversation_calls', "
        "landing_root=sys.argv[2], mode='full')"
    )
    process = subprocess.Popen([sys.executable, "-c", script, str(config), str(landing_root)],
                               env=os.environ.copy())  # fmt: skip
    batches = landing_root / "carestack" / "conversation_calls" / "cs_main"
    deadline = time.monotonic() + 60
    while len(list(batches.glob("*/part-*.parquet"))) < 2:
        assert process.poll() is None, "extraction finished before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    carestack.faults.clear()

    state = SyncState(landing_root)
    assert state.cursor("cs_main", "carestack", "conversation_calls") is None
    result = sync_entity(org.connection("cs_main"), "conversation_calls",
                         landing_root=landing_root, mode="full")  # fmt: skip
    assert result.resumed
    assert landed_latest(landing_root, "conversation_calls") == served(
        carestack, "conversation_calls"
    )
    assert not list(landing_root.rglob("*.tmp")), "a half-written batch was left behind"


def test_persistent_429_fails_with_source_and_endpoint_and_moves_no_cursor(carestack, landing_root):
    org = organisation_for(carestack, max_attempts=3)
    carestack.faults.add(FaultRule(path="^/sync/conversation", kind="status", code=429, times=None))
    with pytest.raises(
        ApiError, match=r"carestack\[cs_main\] GET /sync/conversation-calls: gave up"
    ):
        sync_entity(org.connection("cs_main"), "conversation_calls", landing_root=landing_root)
    assert SyncState(landing_root).cursor("cs_main", "carestack", "conversation_calls") is None
    assert {"path": "/sync/conversation-calls", "status": 429, "count": 3} in (
        carestack.stats.snapshot()
    )


def test_unconfirmed_endpoints_are_settings(monkeypatch, landing_root):
    world = carestack_world(n_persons=40)
    paths = {"appointment_requests_path": "/online-booking/requests",
             "conversation_calls_path": "/conversation/calls"}  # fmt: skip
    with serve_carestack(world, monkeypatch, **paths) as cs:
        org = organisation_for(cs, **paths)
        sync_all(org, landing_root, entities=("appointment_requests", "conversation_calls"))
        entities = ("appointment_requests", "conversation_calls")
        assert_landing_matches_simulator(cs, landing_root, entities)
        used = {s["path"] for s in cs.stats.snapshot()}
    assert used == {"/online-booking/requests", "/conversation/calls"}


def test_client_rate_limit_keeps_under_the_servers_throttle(monkeypatch, landing_root):
    """The simulator allows 25 req/s per account; a client limited to 20 req/s never sees 429."""
    world = carestack_world(n_persons=60)
    throttle = {"requests_per_second": 25.0, "throttle_burst": 2.0, "page_size": 20}
    with serve_carestack(world, monkeypatch, **throttle) as cs:
        org = organisation_for(cs, requests_per_second=20.0)
        result = sync_entity(org.connection("cs_main"), "appointments", landing_root=landing_root)
        statuses = {row["status"] for row in cs.stats.snapshot()}
    assert result.requests >= 3
    assert statuses == {200}


def test_bad_records_are_quarantined_with_field_and_reason(carestack, landing_root):
    carestack.faults.add(
        FaultRule(path="^/sync/appointments", kind="corrupt", record_field="lastModifiedOn",
                  value="last tuesday", times=1)
    )  # fmt: skip
    org = organisation_for(carestack)
    result = sync_entity(org.connection("cs_main"), "appointments", landing_root=landing_root)
    assert result.quarantined == 1
    assert result.rows == len(served(carestack, "appointments")) - 1
    glob = str(landing_root / "_quarantine" / "**" / "*.parquet")
    with duckdb.connect() as con:
        rows = con.execute(
            f"select _entity, _reason from read_parquet('{glob}', union_by_name=true)"
        ).fetchall()
    assert len(rows) == 1
    assert rows[0][0] == "appointments"
    assert rows[0][1].startswith("lastModifiedOn: expected an ISO-8601")
    assert "tuesday" not in rows[0][1]


def test_a_request_with_an_unreadable_birth_date_is_quarantined_without_it(carestack, landing_root):
    carestack.faults.add(
        FaultRule(path="^/sync/appointment-requests", kind="corrupt", record_field="dateOfBirth",
                  value="13/31/1984", times=1)
    )  # fmt: skip
    org = organisation_for(carestack)
    connection = org.connection("cs_main")
    result = sync_entity(connection, "appointment_requests", landing_root=landing_root)
    assert result.quarantined == 1
    assert result.rows == len(served(carestack, "appointment_requests")) - 1
    glob = str(landing_root / "_quarantine" / "**" / "*.parquet")
    with duckdb.connect() as con:
        [(reason,)] = con.execute(f"select _reason from read_parquet('{glob}')").fetchall()
    assert reason.startswith("dateOfBirth: expected a date")
    assert "1984" not in reason


def test_logs_and_errors_carry_no_patient_data(carestack, landing_root, caplog):
    caplog.set_level(logging.DEBUG)
    carestack.faults.add(FaultRule(path="^/sync/patients", kind="status", code=503, times=1))
    carestack.faults.add(
        FaultRule(path="^/sync/appointment-requests", kind="corrupt", record_field="id",
                  value="x", times=1)
    )  # fmt: skip
    org = organisation_for(carestack)
    sync_all(org, landing_root)
    people = [*served(carestack, "patients").values(), *served(carestack, "appointment_requests")
              .values()]  # fmt: skip
    sentinels = {
        str(person[field])
        for person in people
        for field in ("firstName", "lastName", "email", "mobile", "phone", "dob", "dateOfBirth")
        if person.get(field) and len(str(person[field])) > 3
    }
    sentinels |= {r["phoneNumber"] for r in served(carestack, "conversation_calls").values()}
    text = caplog.text
    assert "quarantined" in text  # the log does speak, just without PHI
    # Whole words: a surname like "Hill" may be part of a location name ("Hillcrest").
    assert not [s for s in sentinels if re.search(rf"(?<!\w){re.escape(s)}(?!\w)", text)]


def test_stream_table_covers_every_entity():
    assert set(STREAMS) == set(ENTITIES)
    assert ENTITIES.index("appointment_statuses") < ENTITIES.index("appointments")
