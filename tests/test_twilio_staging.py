"""End to end: Twilio simulator -> extraction -> landing -> `dbt build` -> staging in DuckDB.

One busy small world is synced, built, advanced 45 minutes (calls in progress end, new ones
start), synced and built again. Staging must equal what the simulator serves row for row each
time, and the legs must spell out the simulator's true outcome of every ended caller session.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from extract.twilio.connector import sync_entity
from extract.twilio.streams import ENTITIES
from simulators.twilio import wire
from tests.test_twilio_simulator import BUSY, make_world, organisation_for, serve_twilio

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
PROJECT_DIR = REPO / "dbt_project"
CALL_COLUMNS = ("parent_call_sid", "direction", "status", "from", "to", "start_time",
                "end_time", "duration", "price", "date_updated")  # fmt: skip
MESSAGE_COLUMNS = ("direction", "status", "from", "to", "body", "date_sent", "error_code",
                   "num_segments", "price", "date_updated")  # fmt: skip
TIMES = {"start_time", "end_time", "date_updated", "date_sent"}
NUMBERS = {"duration", "num_segments"}


def run_dbt(root: Path) -> None:
    dbt = Path(sys.executable).with_name("dbt")
    if not dbt.exists():
        dbt = shutil.which("dbt") or pytest.skip("dbt CLI not installed")
    env = {
        **os.environ,
        "CHAIRSIDE_LANDING": str(root / "landing"),
        "CHAIRSIDE_WAREHOUSE": str(root / "warehouse" / "chairside.duckdb"),
        "DO_NOT_TRACK": "1",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    command = [
        str(dbt), "build", "--select", "path:models/staging/twilio",
        "--project-dir", str(PROJECT_DIR), "--profiles-dir", str(PROJECT_DIR),
        "--target-path", str(root / "target"), "--log-path", str(root / "logs"),
    ]  # fmt: skip
    result = subprocess.run(
        command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]


def query(root: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(root / "warehouse" / "chairside.duckdb"), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def staged(root: Path, entity: str, columns: tuple[str, ...]) -> dict[str, tuple]:
    select = ", ".join(f'"{c}"' for c in columns)
    rows = query(root, f"select sid, {select} from staging.stg_twilio__{entity}")
    return {row[0]: row[1:] for row in rows}


def expected(records: dict[str, dict], columns: tuple[str, ...]) -> dict[str, tuple]:
    """What staging must hold for each served record: the same values, typed."""

    def typed(column: str, value):
        if value is None:
            return None
        if column in TIMES:
            return datetime.strptime(value, "%a, %d %b %Y %H:%M:%S %z")
        if column in NUMBERS:
            return int(value)
        return Decimal(value) if column == "price" else value

    return {sid: tuple(typed(c, record[c]) for c in columns) for sid, record in records.items()}


def collapsed_sessions(root: Path) -> dict[str, tuple]:
    """Per inbound parent leg: (answered, children, ring seconds of the answered child)."""
    rows = query(
        root,
        """
        select p.sid,
            coalesce(bool_or(c.status = 'completed'), false),
            count(c.sid),
            max(case when c.status = 'completed'
                then epoch(c.end_time) - epoch(c.start_time) - c.duration end)
        from staging.stg_twilio__calls p
        left join staging.stg_twilio__calls c
            on c.connection_id = p.connection_id and c.parent_call_sid = p.sid
        where p.direction = 'inbound' and p.status = 'completed'
        group by p.sid
        """,
    )
    return {row[0]: row[1:] for row in rows}


@pytest.fixture(scope="module")
def built(tmp_path_factory, request):
    """Two rounds of sync + `dbt build`; yields what was served and staged after each."""
    root = tmp_path_factory.mktemp("twilio_staging")
    (root / "warehouse").mkdir()
    monkeypatch = pytest.MonkeyPatch()
    request.addfinalizer(monkeypatch.undo)
    rounds = []
    with serve_twilio(make_world(), monkeypatch, phone=BUSY) as twilio:
        org = organisation_for(twilio)
        for step in (None, timedelta(minutes=45)):
            if step:
                twilio.world.advance(step, seed=9)
            for entity in ENTITIES:
                sync_entity(org.connection("tw_group"), entity, landing_root=root / "landing")
            run_dbt(root)
            log, now = twilio.data.current()
            rounds.append(
                {
                    "served": {e: twilio.served(e) for e in ENTITIES},
                    "calls": staged(root, "calls", CALL_COLUMNS),
                    "messages": staged(root, "messages", MESSAGE_COLUMNS),
                    "sessions": collapsed_sessions(root),
                    "truth": wire.truth_calls(log, now),
                }
            )
    return rounds


@pytest.mark.parametrize("round_", [0, 1], ids=["first-sync", "after-advance"])
def test_staging_equals_what_twilio_serves_row_for_row(built, round_):
    state = built[round_]
    assert state["calls"] == expected(state["served"]["calls"], CALL_COLUMNS)
    assert state["messages"] == expected(state["served"]["messages"], MESSAGE_COLUMNS)


def test_calls_in_progress_are_replaced_by_their_final_version(built):
    first, second = built
    live = [
        sid for sid, row in first["calls"].items() if row[CALL_COLUMNS.index("end_time")] is None
    ]
    assert live, "the busy office had calls going at the first sync"
    status = CALL_COLUMNS.index("status")
    assert all(second["calls"][sid][status] not in ("ringing", "in-progress") for sid in live)
    assert len(second["calls"]) > len(first["calls"])  # new calls, each once


def test_the_legs_spell_out_the_true_outcome_of_every_ended_session(built):
    state = built[1]
    truth = state["truth"].filter(
        (state["truth"]["direction"] == "inbound") & state["truth"]["ended"]
    )
    assert truth.height > 50
    for row in truth.iter_rows(named=True):
        answered, children, ring = state["sessions"][row["session_sid"]]
        # The parent leg is `completed` either way: only the children tell.
        assert answered == (row["outcome"] == "answered"), row["outcome"]
        assert (children == 0) == (row["outcome"] == "abandoned_ivr")
        if answered:
            assert ring == row["ring_seconds"]


def test_callbacks_and_text_backs_in_the_truth_are_staged(built):
    state = built[1]
    truth = state["truth"]
    callbacks = [s for s in truth["callback_sid"].to_list() if s]
    texts = [s for s in truth["text_back_sid"].to_list() if s]
    assert callbacks and texts
    assert set(callbacks) <= set(state["calls"]) and set(texts) <= set(state["messages"])
