"""Twilio extraction over real HTTP on loopback into a real landing zone, with the fault suite."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import httpx
import polars as pl
import pytest

from extract.http import ApiError
from extract.state import SyncBusyError, SyncState
from extract.twilio.connector import CURSOR_FORMAT, sync_entity
from extract.twilio.streams import ENTITIES
from simulators.faults import FaultRule
from tests.test_twilio_simulator import (
    BUSY,
    TOKEN,
    Twilio,
    make_world,
    organisation_for,
    serve_twilio,
)

CONN = "tw_group"


@pytest.fixture
def twilio(monkeypatch) -> Twilio:
    with serve_twilio(make_world(), monkeypatch) as sim:
        yield sim


@pytest.fixture
def landing_root(tmp_path: Path) -> Path:
    return tmp_path / "landing"


def sync_all(org, landing_root: Path, mode: str = "incremental") -> dict:
    connection = org.connection(CONN)
    return {e: sync_entity(connection, e, landing_root=landing_root, mode=mode) for e in ENTITIES}


def landed(landing_root: Path, entity: str) -> pl.DataFrame:
    """Every landed row: (load_id, key, record JSON, extracted_at, batch, row)."""
    glob = str(landing_root / "twilio" / entity / "**" / "*.parquet")
    with duckdb.connect() as con:
        return pl.from_arrow(
            con.sql(
                f"select _load_id as load_id, _record_key as key, _record as record, "
                f"_extracted_at, _batch_seq, _row_seq "
                f"from read_parquet('{glob}', union_by_name=true)"
            ).to_arrow_table()
        )


def landed_latest(landing_root: Path, entity: str) -> dict[str, dict]:
    """The newest landed version of each SID (the latest extraction), as parsed JSON."""
    rows = landed(landing_root, entity).sort(
        "_extracted_at", "load_id", "_batch_seq", "_row_seq", descending=True
    )
    latest: dict[str, dict] = {}
    for key, record in rows.select("key", "record").iter_rows():
        latest.setdefault(key, json.loads(record))
    return latest


def assert_landing_matches_served(twilio: Twilio, landing_root: Path, entities=ENTITIES) -> None:
    for entity in entities:
        assert landed_latest(landing_root, entity) == twilio.served(entity), entity


def test_full_sync_lands_every_record_as_served(twilio, landing_root):
    org = organisation_for(twilio)
    results = sync_all(org, landing_root, mode="full")
    assert_landing_matches_served(twilio, landing_root)
    assert all(r.quarantined == 0 for r in results.values())
    calls = results["calls"]
    assert calls.batches >= 2 and calls.rows == len(twilio.served("calls"))
    newest = max(
        datetime.strptime(r["start_time"], "%a, %d %b %Y %H:%M:%S %z")
        for r in twilio.served("calls").values()
    )
    assert calls.cursor_after == newest.strftime(CURSOR_FORMAT)


def test_second_sync_changes_nothing_and_changes_appear_after_the_world_advances(
    landing_root, monkeypatch
):
    with serve_twilio(make_world(), monkeypatch, phone=BUSY) as twilio:
        org = organisation_for(twilio)
        sync_all(org, landing_root)
        before = {e: landed_latest(landing_root, e) for e in ENTITIES}
        live = {s for s, r in before["calls"].items() if r["end_time"] is None}
        assert live, "some calls are in progress at the first sync"

        second = sync_all(org, landing_root)
        assert {e: landed_latest(landing_root, e) for e in ENTITIES} == before
        # Incremental: the second pass reads only the window behind the cursor.
        assert second["calls"].rows < len(before["calls"])

        twilio.world.advance(timedelta(minutes=45), seed=5)
        sync_all(org, landing_root)
        assert_landing_matches_served(twilio, landing_root)
        after = landed_latest(landing_root, "calls")
    assert len(after) > len(before["calls"])
    # Calls in progress at the first sync were re-read by the overlap once they had ended.
    assert all(after[s]["end_time"] is not None for s in live)


@pytest.mark.parametrize(
    ("granularity", "expected"),
    [("date", "2026-11-03"), ("datetime", None)],
)
def test_the_next_run_reads_from_cursor_minus_overlap(twilio, landing_root, granularity, expected):
    org = organisation_for(twilio, overlap_minutes=90, filter_granularity=granularity)
    first = sync_entity(org.connection(CONN), "calls", landing_root=landing_root)
    again = sync_entity(org.connection(CONN), "calls", landing_root=landing_root)
    run = next(r for r in SyncState(landing_root).runs() if r["load_id"] == again.load_id)
    since = datetime.strptime(first.cursor_after, CURSOR_FORMAT) - timedelta(minutes=90)
    assert run["cursor_value"] == (expected or since.strftime(CURSOR_FORMAT))
    # StartTime>= is inclusive: the calls that started at the cursor itself are re-read.
    assert again.rows >= 1 and again.cursor_after == first.cursor_after


def test_page_boundaries_inside_ties_lose_nothing(twilio, landing_root):
    """Sibling legs share a start time; pages of 1-3 records split them every way."""
    org = organisation_for(twilio, page_size=3, batch_rows=25)
    result = sync_entity(org.connection(CONN), "calls", landing_root=landing_root, mode="full")
    assert_landing_matches_served(twilio, landing_root, ("calls",))
    assert result.rows == len(twilio.served("calls"))


def test_failure_mid_sync_keeps_the_cursor_and_the_rerun_resumes(twilio, landing_root):
    org = organisation_for(twilio, max_attempts=2)
    connection = org.connection(CONN)
    sync_entity(connection, "calls", landing_root=landing_root)
    state = SyncState(landing_root)
    cursor = state.cursor(CONN, "twilio", "calls")
    twilio.world.advance(timedelta(hours=3), seed=3)

    # A full sync that dies after four pages with a persistent 500.
    twilio.faults.add(FaultRule(path="^/Calls", kind="status", code=500, skip=4, times=None))
    with pytest.raises(ApiError) as error:
        sync_entity(connection, "calls", landing_root=landing_root, mode="full")
    message = str(error.value)
    assert "twilio[tw_group] GET /Calls.json" in message and "HTTP 500" in message
    assert "AC" not in message.split("GET", 1)[1]  # the account SID stays out of errors
    assert state.cursor(CONN, "twilio", "calls") == cursor
    failed = [r for r in state.runs(CONN) if r["status"] == "failed"]
    assert len(failed) == 1
    token = json.loads(failed[0]["resume_token"])["next_page_uri"]
    assert token.startswith("/Calls.json?") and "PageToken=PA" in token

    twilio.faults.clear()
    result = sync_entity(connection, "calls", landing_root=landing_root, mode="full")
    assert result.resumed and result.load_id == failed[0]["load_id"]
    assert state.cursor(CONN, "twilio", "calls") > cursor
    assert_landing_matches_served(twilio, landing_root, ("calls",))
    # Nothing read twice within the resumed load: each SID landed once in it.
    rows = landed(landing_root, "calls").filter(pl.col("load_id") == result.load_id)
    assert rows.height == rows["key"].n_unique() == len(twilio.served("calls"))


def test_killed_extraction_loses_and_duplicates_nothing(twilio, landing_root, tmp_path):
    """kill -9 a real extraction process mid-way, re-run, compare with what is served."""
    org = organisation_for(twilio, page_size=20, batch_rows=20)
    twilio.faults.add(FaultRule(path="^/Calls", kind="slow", delay=0.2, times=None))
    config = tmp_path / "org.json"
    config.write_text(org.model_dump_json())
    script = (
        "import sys; from chairside.config import Organisation; "
        "from extract.twilio.connector import sync_entity; "
        "org = Organisation.model_validate_json(open(sys.argv[1]).read()); "
        "sync_entity(org.connection('tw_group'), 'calls', landing_root=sys.argv[2], mode='full')"
    )
    process = subprocess.Popen([sys.executable, "-c", script, str(config), str(landing_root)],
                               env=os.environ.copy())  # fmt: skip
    batches = landing_root / "twilio" / "calls" / CONN
    deadline = time.monotonic() + 60
    while len(list(batches.glob("*/part-*.parquet"))) < 2:
        assert process.poll() is None, "extraction finished before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    twilio.faults.clear()

    state = SyncState(landing_root)
    assert state.cursor(CONN, "twilio", "calls") is None
    result = sync_entity(org.connection(CONN), "calls", landing_root=landing_root, mode="full")
    assert result.resumed
    assert_landing_matches_served(twilio, landing_root, ("calls",))
    rows = landed(landing_root, "calls")
    assert rows.height == rows["key"].n_unique()
    assert not list(landing_root.rglob("*.tmp")), "a half-written batch was left behind"


@pytest.mark.parametrize(
    "rule",
    [
        FaultRule(path="^/Calls", kind="status", code=429, retry_after=1, times=2),
        FaultRule(path="^/Calls", kind="status", code=429, retry_after=1, retry_after_date=True),
        FaultRule(path="^/Calls", kind="status", code=429, times=2),
        FaultRule(path="^/Calls", kind="status", code=503, times=2),
        FaultRule(path="^/Calls", kind="status", code=502, skip=1),
        FaultRule(path="^/Calls", kind="slow", delay=3.0, skip=1),
        FaultRule(path="^/Calls", kind="truncate", skip=1),
        FaultRule(path="^/Calls", kind="non_json", times=2),
        FaultRule(path="^/Calls", kind="shift", rows=7, skip=1),
    ],
    ids=["429-retry-after", "429-http-date", "429-bare", "503", "502", "slow", "truncated",
         "html", "shifted-pages"],
)  # fmt: skip
def test_transient_faults_are_survived_with_identical_results(twilio, landing_root, rule):
    org = organisation_for(twilio, read_timeout_s=1.0)
    twilio.faults.add(rule)
    result = sync_entity(org.connection(CONN), "calls", landing_root=landing_root)
    assert result.quarantined == 0
    assert_landing_matches_served(twilio, landing_root, ("calls",))
    assert rule.spent or rule.times is None, "the fault never fired"


def test_persistent_429_fails_with_source_and_endpoint_and_moves_no_cursor(twilio, landing_root):
    org = organisation_for(twilio, max_attempts=3)
    twilio.faults.add(FaultRule(path="^/Messages", kind="status", code=429, times=None))
    with pytest.raises(ApiError, match=r"twilio\[tw_group\] GET /Messages.json: gave up"):
        sync_entity(org.connection(CONN), "messages", landing_root=landing_root)
    assert SyncState(landing_root).cursor(CONN, "twilio", "messages") is None
    assert {"path": "/Messages.json", "status": 429, "count": 3} in twilio.stats.snapshot()


class _RotatingTransport(httpx.HTTPTransport):
    """Rotates the server's auth token after a few requests, as an admin would mid-sync."""

    def __init__(self, settings, after: int):
        super().__init__()
        self.settings, self.after, self.sent = settings, after, 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent += 1
        if self.sent > self.after:
            self.settings.auth_token = "rotated-token"
        return super().handle_request(request)


def test_credentials_rotated_mid_sync_fail_at_once_and_resume_after_the_fix(
    twilio, landing_root, monkeypatch
):
    """Twilio has no expiring tokens: Basic auth. A rotated token is a 401, not retried."""
    org = organisation_for(twilio, max_attempts=4)
    connection = org.connection(CONN)
    transport = _RotatingTransport(twilio.app.state.settings, after=4)
    with pytest.raises(ApiError, match=r"twilio\[tw_group\] GET /Calls.json: HTTP 401") as error:
        sync_entity(connection, "calls", landing_root=landing_root, mode="full",
                    transport=transport)  # fmt: skip
    assert TOKEN not in str(error.value) and "rotated-token" not in str(error.value)
    assert {"path": "/Calls.json", "status": 401, "count": 1} in twilio.stats.snapshot()
    assert SyncState(landing_root).cursor(CONN, "twilio", "calls") is None

    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "rotated-token")
    result = sync_entity(connection, "calls", landing_root=landing_root, mode="full")
    assert result.resumed
    assert_landing_matches_served(twilio, landing_root, ("calls",))


def test_client_rate_limit_keeps_under_the_servers_throttle(landing_root, monkeypatch):
    throttle = {"requests_per_second": 25.0, "throttle_burst": 2.0}
    with serve_twilio(make_world(), monkeypatch, **throttle) as twilio:
        org = organisation_for(twilio, requests_per_second=20.0, page_size=100)
        result = sync_entity(org.connection(CONN), "calls", landing_root=landing_root)
        statuses = {row["status"] for row in twilio.stats.snapshot()}
    assert result.requests >= 3
    assert statuses == {200}


def test_bad_records_are_quarantined_with_field_and_reason(twilio, landing_root):
    twilio.faults.add(
        FaultRule(path="^/Messages", kind="corrupt", record_field="date_sent", value="2026-11-03")
    )
    org = organisation_for(twilio)
    result = sync_entity(org.connection(CONN), "messages", landing_root=landing_root)
    assert result.quarantined == 1
    assert result.rows == len(twilio.served("messages")) - 1
    glob = str(landing_root / "_quarantine" / "**" / "*.parquet")
    with duckdb.connect() as con:
        rows = con.execute(
            f"select _entity, _record_key, _reason, _record "
            f"from read_parquet('{glob}', union_by_name=true)"
        ).fetchall()
    assert len(rows) == 1
    entity, key, reason, record = rows[0]
    assert entity == "messages" and key == json.loads(record)["sid"]
    assert reason.startswith("date_sent: expected an RFC 2822 time")
    assert "2026-11-03" not in reason  # reasons name fields, never values


def test_logs_and_errors_carry_no_phone_numbers_or_texts(twilio, landing_root, caplog):
    caplog.set_level(logging.DEBUG)
    twilio.faults.add(FaultRule(path="^/Calls", kind="status", code=503, times=1))
    twilio.faults.add(
        FaultRule(path="^/Messages", kind="corrupt", record_field="from", value="+12155550123")
    )
    twilio.faults.add(
        FaultRule(path="^/Calls", kind="corrupt", record_field="duration", value="+12155550199")
    )
    sync_all(organisation_for(twilio), landing_root)
    sentinels = {"+12155550123", "+12155550199"}
    for entity in ENTITIES:
        for record in twilio.served(entity).values():
            sentinels |= {record["from"], record["to"], record.get("body") or "xxxx"}
    text = caplog.text
    assert "quarantined" in text  # the log does speak, just without PHI
    assert not [s for s in sentinels if s in text]


def test_two_syncs_of_one_stream_cannot_overlap(twilio, landing_root):
    state = SyncState(landing_root)
    org = organisation_for(twilio)
    with state.exclusive(CONN, "twilio", "calls"), pytest.raises(SyncBusyError):
        sync_entity(org.connection(CONN), "calls", landing_root=landing_root)


def test_connector_is_registered():
    from extract.connectors import connectors

    connector = connectors()["twilio"]
    assert list(connector.entities) == ["calls", "messages"]
    assert connector.sync_entity is sync_entity
