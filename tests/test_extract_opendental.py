"""Open Dental extraction over real HTTP on loopback into a real landing zone."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest

from extract.http import ApiError
from extract.opendental.connector import sync_entity
from extract.opendental.streams import ENTITIES, STREAMS
from extract.state import SyncBusyError, SyncState
from simulators.faults import FaultRule
from simulators.generate import generate_world
from simulators.world import WorldSpec
from tests.conftest import OPENDENTAL_OFFICES, OpenDental, organisation_for, serve_opendental


def sync_all(org, landing_root: Path, mode: str = "incremental") -> dict:
    results = {}
    for connection in org.connections:
        for entity in ENTITIES:
            results[(connection.id, entity)] = sync_entity(
                connection, entity, landing_root=landing_root, mode=mode
            )
    return results


def landed_latest(landing_root: Path, entity: str) -> pl.DataFrame:
    """The latest landed version of each record: (connection_id, key, record JSON)."""
    glob = str(landing_root / "opendental" / entity / "**" / "*.parquet")
    with duckdb.connect() as con:
        return pl.from_arrow(
            con.sql(
                f"""
            select _connection_id as connection_id, _record_key as key, _record as record
            from read_parquet('{glob}', union_by_name=true)
            qualify row_number() over (partition by _connection_id, _record_key
                order by _extracted_at desc, _load_id desc, _batch_seq desc, _row_seq desc) = 1
            """
            ).to_arrow_table()
        )


def world_keys(od: OpenDental, entity: str) -> set[tuple[str, str]]:
    offices = [o.key for o in od.world.offices_on("opendental")]
    frame = od.world.table(entity).filter(pl.col("office").is_in(offices))
    if entity == "clinics":
        frame = frame.filter(~pl.col("IsHidden"))
    key = STREAMS[entity].key
    return {(o, str(k)) for o, k in frame.select("office", key).iter_rows()}


def assert_landing_matches_world(od: OpenDental, landing_root: Path) -> None:
    for entity in ENTITIES:
        latest = landed_latest(landing_root, entity)
        landed = set(latest.select("connection_id", "key").iter_rows())
        assert landed == world_keys(od, entity), entity


def stamp_of(record_json: str, field: str) -> str:
    return json.loads(record_json)[field]


def test_full_sync_lands_every_record_of_every_office(opendental, landing_root):
    org = organisation_for(opendental)
    results = sync_all(org, landing_root, mode="full")
    assert_landing_matches_world(opendental, landing_root)
    assert all(r.quarantined == 0 for r in results.values())
    # Each batch holds at most batch_rows records, so big entities span several checkpoints.
    appointments = results[("od_riverside", "appointments")]
    assert appointments.batches >= 2
    assert appointments.cursor_after is not None


def test_second_sync_changes_nothing_and_edits_appear_after_the_world_advances(
    opendental, landing_root
):
    org = organisation_for(opendental)
    sync_all(org, landing_root)
    before = {e: landed_latest(landing_root, e) for e in ENTITIES}

    sync_all(org, landing_root)
    for entity in ENTITIES:
        assert (
            landed_latest(landing_root, entity)
            .sort("connection_id", "key")
            .equals(before[entity].sort("connection_id", "key"))
        ), entity

    counts = opendental.world.advance(timedelta(days=2), seed=5)
    assert sum(counts.values()) > 0
    results = sync_all(org, landing_root)
    assert_landing_matches_world(opendental, landing_root)
    # Incremental: the second pass reads only a window, far less than everything.
    total = opendental.world.table("appointments").height
    assert results[("od_riverside", "appointments")].rows < total
    # Every appointment's latest landed status and stamp equal the world's.
    world = opendental.world.table("appointments").select(
        "office", pl.col("AptNum").cast(pl.Utf8), "AptStatus",
        pl.col("DateTStamp").dt.strftime("%Y-%m-%d %H:%M:%S"),
    )  # fmt: skip
    latest = landed_latest(landing_root, "appointments")
    landed = {
        (c, k): (json.loads(r)["AptStatus"], json.loads(r)["DateTStamp"])
        for c, k, r in latest.iter_rows()
    }
    for office, key, status, stamp in world.iter_rows():
        assert landed[(office, key)] == (status, stamp)


def test_failure_mid_sync_keeps_the_cursor_and_the_rerun_resumes(opendental, landing_root):
    org = organisation_for(opendental, max_attempts=2)
    connection = org.connection("od_riverside")
    sync_entity(connection, "appointments", landing_root=landing_root)
    state = SyncState(landing_root)
    cursor = state.cursor("od_riverside", "opendental", "appointments")
    opendental.world.advance(timedelta(days=1), seed=3)

    # Full sync that dies after three pages with a persistent 500.
    opendental.faults.add(FaultRule(path="^/appointments", kind="status", code=500, skip=3,
                                    times=None))  # fmt: skip
    with pytest.raises(ApiError) as error:
        sync_entity(connection, "appointments", landing_root=landing_root, mode="full")
    message = str(error.value)
    assert "opendental[od_riverside] GET /appointments" in message
    assert "HTTP 500" in message
    assert state.cursor("od_riverside", "opendental", "appointments") == cursor
    failed = [r for r in state.runs("od_riverside") if r["status"] == "failed"]
    assert len(failed) == 1 and json.loads(failed[0]["resume_token"])["offset"] > 0

    opendental.faults.clear()
    result = sync_entity(connection, "appointments", landing_root=landing_root, mode="full")
    assert result.resumed and result.load_id == failed[0]["load_id"]
    assert state.cursor("od_riverside", "opendental", "appointments") > cursor
    latest = landed_latest(landing_root, "appointments")
    landed = set(latest.filter(pl.col("connection_id") == "od_riverside")
                 .select("connection_id", "key").iter_rows())  # fmt: skip
    assert landed == {k for k in world_keys(opendental, "appointments") if k[0] == "od_riverside"}


def test_killed_extraction_loses_and_duplicates_nothing(opendental, landing_root, tmp_path):
    """kill -9 a real extraction process mid-way, re-run, compare with the world."""
    org = organisation_for(opendental, batch_rows=100)
    # Slow every page down so the process is surely mid-way when it is killed.
    opendental.faults.add(FaultRule(path="^/appointments", kind="slow", delay=0.2, times=None))
    config = tmp_path / "org.json"
    config.write_text(org.model_dump_json())
    script = (
        "import sys, json; from chairside.config import Organisation; "
        "from extract.opendental.connector import sync_entity; "
        "org = Organisation.model_validate_json(open(sys.argv[1]).read()); "
        "sync_entity(org.connection('od_riverside'), 'appointments', "
        "landing_root=sys.argv[2], mode='full')"
    )
    process = subprocess.Popen([sys.executable, "-c", script, str(config), str(landing_root)],
                               env=os.environ.copy())  # fmt: skip
    batches = landing_root / "opendental" / "appointments" / "od_riverside"
    deadline = time.monotonic() + 60
    while len(list(batches.glob("*/part-*.parquet"))) < 2:
        assert process.poll() is None, "extraction finished before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    opendental.faults.clear()

    state = SyncState(landing_root)
    assert state.cursor("od_riverside", "opendental", "appointments") is None
    result = sync_entity(org.connection("od_riverside"), "appointments",
                         landing_root=landing_root, mode="full")  # fmt: skip
    assert result.resumed
    latest = landed_latest(landing_root, "appointments")
    assert latest.height == len({k for k in world_keys(opendental, "appointments")
                                 if k[0] == "od_riverside"})  # fmt: skip
    assert not list(landing_root.rglob("*.tmp")), "a half-written batch was left behind"


@pytest.mark.parametrize(
    "rule",
    [
        FaultRule(path="^/patients", kind="status", code=429, retry_after=1, times=2),
        FaultRule(path="^/patients", kind="status", code=429, retry_after=1,
                  retry_after_date=True),
        FaultRule(path="^/patients", kind="status", code=429, times=2),
        FaultRule(path="^/patients", kind="status", code=503, times=2),
        FaultRule(path="^/patients", kind="status", code=502, skip=1),
        FaultRule(path="^/patients", kind="slow", delay=3.0, skip=1),
        FaultRule(path="^/patients", kind="truncate", skip=1),
        FaultRule(path="^/patients", kind="non_json", times=2),
        FaultRule(path="^/patients", kind="shift", rows=7, skip=1),
    ],
    ids=["429-retry-after", "429-http-date", "429-bare", "503", "502", "slow", "truncated",
         "html", "shifted-pages"],
)  # fmt: skip
def test_transient_faults_are_survived_with_identical_results(opendental, landing_root, rule):
    org = organisation_for(opendental, read_timeout_s=1.0)
    opendental.faults.add(rule)
    result = sync_entity(org.connection("od_riverside"), "patients", landing_root=landing_root)
    assert result.quarantined == 0
    latest = landed_latest(landing_root, "patients")
    assert set(latest.select("connection_id", "key").iter_rows()) == {
        k for k in world_keys(opendental, "patients") if k[0] == "od_riverside"
    }
    assert rule.spent or rule.times is None, "the fault never fired"


def test_persistent_429_fails_with_source_and_endpoint_and_moves_no_cursor(
    opendental, landing_root
):
    org = organisation_for(opendental, max_attempts=3)
    opendental.faults.add(FaultRule(path="^/providers", kind="status", code=429, times=None))
    with pytest.raises(ApiError, match=r"opendental\[od_lakeside\] GET /providers: gave up"):
        sync_entity(org.connection("od_lakeside"), "providers", landing_root=landing_root)
    assert SyncState(landing_root).cursor("od_lakeside", "opendental", "providers") is None
    assert {"path": "/providers", "status": 429, "count": 3} in opendental.stats.snapshot()


def test_client_rate_limit_keeps_under_the_servers_throttle(world, landing_root, monkeypatch):
    """The simulator enforces 25 req/s; a client limited to 20 req/s never gets a 429.

    Without the limiter the client would send hundreds of requests a second. The bucket holds
    two tokens so loopback scheduling jitter between two requests is not mistaken for a burst.
    """
    throttle = {"requests_per_second": 25.0, "throttle_burst": 2.0}
    with serve_opendental(world, monkeypatch, **throttle) as od:
        org = organisation_for(od, requests_per_second=20.0)
        result = sync_entity(org.connection("od_riverside"), "appointments",
                             landing_root=landing_root, mode="full")  # fmt: skip
        statuses = {row["status"] for row in od.stats.snapshot()}
    assert result.requests >= 3
    assert statuses == {200}


def test_bad_records_are_quarantined_with_field_and_reason(opendental, landing_root):
    opendental.faults.add(
        FaultRule(path="^/payments", kind="corrupt", record_field="PayAmt", value="twelve", times=1)
    )
    org = organisation_for(opendental)
    result = sync_entity(org.connection("od_riverside"), "payments", landing_root=landing_root)
    assert result.quarantined == 1
    assert result.rows == opendental.world.table("payments", "od_riverside").height - 1
    glob = str(landing_root / "_quarantine" / "**" / "*.parquet")
    with duckdb.connect() as con:
        rows = con.execute(
            f"select _entity, _record_key, _reason, _record from read_parquet('{glob}', "
            "union_by_name=true)"
        ).fetchall()
    assert len(rows) == 1
    entity, key, reason, record = rows[0]
    assert entity == "payments" and key == str(json.loads(record)["PayNum"])
    assert reason.startswith("PayAmt: expected an amount")
    assert "twelve" not in reason  # reasons name fields, never values


def test_logs_and_errors_carry_no_patient_data(opendental, landing_root, caplog):
    caplog.set_level(logging.DEBUG)
    opendental.faults.add(FaultRule(path="^/patients", kind="status", code=503, times=1))
    opendental.faults.add(
        FaultRule(path="^/patients", kind="corrupt", record_field="Birthdate", value="31/12/1980")
    )
    org = organisation_for(opendental)
    sync_all(org, landing_root)
    patients = opendental.world.table("patients")
    sentinels = {
        value
        for column in ("LName", "FName", "Email", "WirelessPhone", "HmPhone")
        for value in patients[column].to_list()
        if value and len(value) > 3
    }
    text = caplog.text
    assert "quarantined" in text  # the log does speak, just without PHI
    leaked = [s for s in sentinels if s in text]
    assert not leaked


def test_two_syncs_of_one_stream_cannot_overlap(opendental, landing_root):
    state = SyncState(landing_root)
    org = organisation_for(opendental)
    with state.exclusive("od_riverside", "opendental", "patients"), pytest.raises(SyncBusyError):
        sync_entity(org.connection("od_riverside"), "patients", landing_root=landing_root)


def test_offices_extract_concurrently_into_one_landing_zone(opendental, landing_root):
    """Each office in its own thread, as Dagster runs one process per office partition."""
    from concurrent.futures import ThreadPoolExecutor

    org = organisation_for(opendental)

    def sync_office(connection):
        return [sync_entity(connection, e, landing_root=landing_root) for e in ENTITIES]

    with ThreadPoolExecutor(max_workers=len(org.connections)) as pool:
        results = [r for rs in pool.map(sync_office, org.connections) for r in rs]
    assert all(r.quarantined == 0 for r in results)
    assert_landing_matches_world(opendental, landing_root)
    runs = SyncState(landing_root).runs()
    assert len(runs) == 2 * len(ENTITIES)
    assert {r["status"] for r in runs} == {"succeeded"}


def test_per_patient_crawl_resumes_after_the_last_checkpointed_patient(landing_root, monkeypatch):
    """Adjustments need one request per patient; a crash must not repeat the patients done."""
    world = generate_world(WorldSpec(seed=11, n_persons=300, offices=OPENDENTAL_OFFICES))
    with serve_opendental(world, monkeypatch) as od:
        crawl_and_resume(od, landing_root)


def crawl_and_resume(opendental: OpenDental, landing_root: Path) -> None:
    org = organisation_for(opendental, max_attempts=1)
    connection = org.connection("od_riverside")
    sync_entity(connection, "patients", landing_root=landing_root, mode="full")
    patients = opendental.world.table("patients", "od_riverside").height
    assert patients > 120

    # 110 patients answered, then the API fails; a checkpoint is taken every 100 pages.
    opendental.faults.add(
        FaultRule(path="^/adjustments", kind="status", code=500, skip=110, times=None)
    )
    with pytest.raises(ApiError):
        sync_entity(connection, "adjustments", landing_root=landing_root, mode="full")
    opendental.faults.clear()

    def answered() -> int:
        counts = opendental.stats.snapshot()
        return sum(c["count"] for c in counts if c["path"] == "/adjustments" and c["status"] == 200)

    before = answered()
    result = sync_entity(connection, "adjustments", landing_root=landing_root, mode="full")
    assert result.resumed
    assert answered() - before == patients - 100
    latest = landed_latest(landing_root, "adjustments")
    assert set(latest.filter(pl.col("connection_id") == "od_riverside")
               .select("connection_id", "key").iter_rows()) == {
        k for k in world_keys(opendental, "adjustments") if k[0] == "od_riverside"
    }  # fmt: skip


@pytest.mark.parametrize("rows", [1, 4, 9])
def test_rows_sliding_behind_the_reader_mid_list_are_not_skipped(opendental, landing_root, rows):
    """A page served shifted back (as after deletes ahead of the reader) in the middle of a
    ten-page list: the anchor row shows the list moved, and the span behind is read again."""
    org = organisation_for(opendental, page_size=10)
    rule = FaultRule(path="^/patients", kind="shift", rows=rows, skip=3)
    opendental.faults.add(rule)
    result = sync_entity(org.connection("od_riverside"), "patients", landing_root=landing_root)
    assert rule.spent
    assert result.quarantined == 0
    latest = landed_latest(landing_root, "patients")
    assert set(latest.select("connection_id", "key").iter_rows()) == {
        k for k in world_keys(opendental, "patients") if k[0] == "od_riverside"
    }
