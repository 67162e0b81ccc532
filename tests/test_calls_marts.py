"""The call marts against a hand computation on a small world written here.

Eighteen Twilio calls and three texts are written by hand, leg by leg in Twilio's wire format,
into a real landing zone next to the organisation snapshot (two locations in two time zones; call
settings: short abandons under 6 s, service level 20 s, abandon rate excluding short abandons).
The real dbt CLI builds `+path:models/marts/calls` into a throwaway DuckDB file; every figure
asserted below was worked out by hand from the calls as written (the working is in the comments).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from chairside.config import Organisation
from extract.connectors import prepare_landing
from extract.landing import BatchMeta, LandedRecord, Landing
from tests.warehouse import rows

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
PROJECT_DIR = REPO / "dbt_project"
TWILIO = "tw_test"
EAST_LINE, CENTRAL_LINE = "+12025550142", "+13125550177"  # east: New York, central: Chicago
# Callers (valid US numbers; no patient carries them).
A, B, C, D, E, F, G, H = (
    "+16462013344", "+19293304793", "+13475550123", "+16465550100",
    "+17372104455", "+16282019876", "+13322017788", "+16462019900",
)  # fmt: skip
# Tuesday 6 October 2026: New York is UTC-4, Chicago UTC-5.
DAY1 = datetime(2026, 10, 6, tzinfo=UTC)


def at(day: datetime, hhmmss: str) -> datetime:
    hours, minutes, seconds = (int(part) for part in hhmmss.split(":"))
    return day + timedelta(hours=hours, minutes=minutes, seconds=seconds)


def wire(moment: datetime | None) -> str | None:
    return None if moment is None else format_datetime(moment)  # "Tue, 06 Oct 2026 ... +0000"


def leg(sid, parent, direction, status, from_, to, start, end, answered=None) -> dict:
    duration = None if answered is None else int((end - answered).total_seconds())
    return {
        "sid": sid,
        "parent_call_sid": parent,
        "account_sid": "AC" + "0" * 32,
        "direction": direction,
        "status": status,
        "from": from_,
        "to": to,
        "start_time": wire(start),
        "end_time": wire(end),
        "duration": None if duration is None else str(duration),
        "date_created": wire(start),
        "date_updated": wire(end),
    }


def inbound(sid, caller, line, start, flow, ring=0, talk=0, stays=0, ivr=10) -> list[dict]:
    """One caller session: the menu (ivr s), then two desk phones ring (ring s).

    flow: answered (one phone picks up, talk s), abandoned (caller hangs up while it rings),
    no-answer / busy (the ring group gives up; the caller stays on `stays` s: the voicemail
    greeting and a message), menu (hangs up in the menu: no ring group).
    """
    dial = start + timedelta(seconds=ivr)
    rang = dial + timedelta(seconds=ring)
    if flow == "menu":
        return [leg(sid, None, "inbound", "completed", caller, line, start, dial, start)]
    if flow == "answered":
        end = rang + timedelta(seconds=talk)
        children = [
            leg(f"{sid}d1", sid, "outbound-dial", "completed", caller, "client:desk1", dial, end,
                rang),
            leg(f"{sid}d2", sid, "outbound-dial", "canceled", caller, "client:desk2", dial, rang),
        ]  # fmt: skip
    else:
        status = "canceled" if flow == "abandoned" else flow
        end = rang + timedelta(seconds=stays)
        children = [
            leg(f"{sid}d{k}", sid, "outbound-dial", status, caller, f"client:desk{k}", dial, rang)
            for k in (1, 2)
        ]
    return [leg(sid, None, "inbound", "completed", caller, line, start, end, start), *children]


def outbound(sid, line, callee, start, status, ring, talk=0) -> list[dict]:
    answered = start + timedelta(seconds=ring)
    end = answered + timedelta(seconds=talk)
    return [
        leg(sid, None, "outbound-api", status, line, callee, start, end,
            answered if status == "completed" else None)
    ]  # fmt: skip


def text(sid, direction, from_, to, sent: datetime, status: str) -> dict:
    return {
        "sid": sid,
        "account_sid": "AC" + "0" * 32,
        "direction": direction,
        "status": status,
        "from": from_,
        "to": to,
        "body": "(text)",
        "num_segments": "1",
        "date_created": wire(sent),
        "date_sent": wire(sent),
        "date_updated": wire(sent),
    }


# The calls, in UTC. East 09:xx local = 13:xx UTC; central 19:xx local = 00:xx UTC next day.
CALLS = [
    # East, Tuesday 6 Oct, 09:00-09:59 local.
    *inbound("CA01", F, EAST_LINE, at(DAY1, "13:00:00"), "answered", ring=8, talk=120),
    *inbound("CA02", G, EAST_LINE, at(DAY1, "13:05:00"), "answered", ring=20, talk=60),
    *inbound("CA03", H, EAST_LINE, at(DAY1, "13:10:00"), "answered", ring=25, talk=90),
    *inbound("CA04", A, EAST_LINE, at(DAY1, "13:15:00"), "abandoned", ring=12),
    *inbound("CA05", C, EAST_LINE, at(DAY1, "13:20:00"), "abandoned", ring=4),
    *inbound("CA06", A, EAST_LINE, at(DAY1, "13:25:00"), "abandoned", ring=6),
    *inbound("CA07", B, EAST_LINE, at(DAY1, "13:30:00"), "no-answer", ring=25, stays=40),
    *inbound("CA08", D, EAST_LINE, at(DAY1, "13:35:00"), "menu", ivr=14),
    *inbound("CA09", C, EAST_LINE, at(DAY1, "13:40:00"), "busy", ring=2, stays=3),
    # East, 10:00-10:59 local.
    *inbound("CA10", F, EAST_LINE, at(DAY1, "14:00:00"), "answered", ring=5, talk=200),
    *inbound("CA11", D, EAST_LINE, at(DAY1, "14:10:00"), "no-answer", ring=25, stays=4),
    *outbound("CA12", EAST_LINE, D, at(DAY1, "14:40:35"), "completed", ring=7, talk=95),
    # Central, Tuesday 6 Oct, 19:00-19:59 local (Wednesday in UTC).
    *inbound("CA13", G, CENTRAL_LINE, at(DAY1, "24:10:00"), "answered", ring=3, talk=45),
    *inbound("CA14", H, CENTRAL_LINE, at(DAY1, "24:15:00"), "abandoned", ring=1),
    *inbound("CA15", E, CENTRAL_LINE, at(DAY1, "24:20:00"), "abandoned", ring=30),
    *inbound("CA16", E, CENTRAL_LINE, at(DAY1, "24:25:40"), "answered", ring=21, talk=100),
    *outbound("CA17", CENTRAL_LINE, E, at(DAY1, "24:40:40"), "no-answer", ring=30),
    # East, the next Tuesday, 09:xx local: one more answered call for the weekday view.
    *inbound("CA18", F, EAST_LINE, at(DAY1 + timedelta(days=7), "13:00:00"), "answered",
             ring=10, talk=60),
]  # fmt: skip

# Caller B's voicemail (CA07) ended 13:31:15: the call-to-text 10 s later, B's reply, and a staff
# answer two hours on.
TEXTS = [
    text("SM01", "outbound-api", EAST_LINE, B, at(DAY1, "13:31:25"), "delivered"),
    text("SM02", "inbound", B, EAST_LINE, at(DAY1, "13:36:00"), "received"),
    text("SM03", "outbound-api", EAST_LINE, B, at(DAY1, "15:36:00"), "delivered"),
]


def organisation() -> Organisation:
    def pms(connection_id: str, zone: str) -> dict:
        return {"id": connection_id, "vendor": "opendental", "base_url": "http://127.0.0.1:9",
                "developer_key_env": "OD_DEVELOPER_KEY", "customer_key_env": "OD_CUSTOMER_KEY",
                "timezone": zone}  # fmt: skip

    return Organisation.model_validate(
        {
            "id": "hand_world",
            "name": "Hand World",
            "connections": [
                pms("od_east", "America/New_York"),
                pms("od_central", "America/Chicago"),
                {
                    "id": TWILIO,
                    "vendor": "twilio",
                    "base_url": "http://127.0.0.1:9",
                    "timezone": "America/New_York",
                    "account_sid_env": "TWILIO_ACCOUNT_SID",
                    "auth_token_env": "TWILIO_AUTH_TOKEN",
                    "numbers": {EAST_LINE: "east", CENTRAL_LINE: "central"},
                },
            ],
            "locations": [
                {"id": "east", "name": "East", "connection": "od_east"},
                {"id": "central", "name": "Central", "connection": "od_central"},
            ],
            "calls": {
                "short_abandon_seconds": 6,
                "service_level_seconds": 20,
                "abandon_rate_formula": "exclude_short",
            },
        }
    )


def land(landing: Path, vendor: str, connection: str, entity: str, records, zone: str) -> None:
    meta = BatchMeta(
        connection_id=connection, vendor=vendor, entity=entity,
        load_id="20261020T000000000000Z-hand0001", batch_seq=0, cursor_field=None,
        cursor_value=None, source_timezone=zone, extracted_at=datetime(2026, 10, 20, tzinfo=UTC),
    )  # fmt: skip
    Landing(landing).write_batch(meta, [LandedRecord(str(r[next(iter(r))]), r) for r in records])


def provider(prov_num: int) -> dict:
    """One Open Dental provider: how the office (and its time zone) becomes a location."""
    return {
        "ProvNum": prov_num, "Abbr": "DOC", "LName": "Doe", "FName": "Jo", "Suffix": "DDS",
        "Specialty": 22, "IsSecondary": "false", "IsHidden": "false", "NationalProvID": "",
        "DateTStamp": "2026-09-01 08:00:00", "IsNotPerson": "false", "ProvStatus": "Active",
    }  # fmt: skip


def run_dbt(root: Path, *args: str) -> subprocess.CompletedProcess:
    dbt = Path(sys.executable).with_name("dbt")
    env = {
        **os.environ,
        "CHAIRSIDE_LANDING": str(root / "landing"),
        "CHAIRSIDE_WAREHOUSE": str(root / "warehouse" / "chairside.duckdb"),
        "CHAIRSIDE_DECISIONS": str(root / "decisions.jsonl"),
        "DO_NOT_TRACK": "1",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    command = [
        str(dbt) if dbt.exists() else "dbt", *args,
        "--project-dir", str(PROJECT_DIR), "--profiles-dir", str(PROJECT_DIR),
        "--target-path", str(root / "target"), "--log-path", str(root / "logs"),
    ]  # fmt: skip
    return subprocess.run(
        command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("calls_marts")
    landing = root / "landing"
    (root / "warehouse").mkdir()
    prepare_landing(landing, organisation())
    land(landing, "twilio", TWILIO, "calls", CALLS, "America/New_York")
    land(landing, "twilio", TWILIO, "messages", TEXTS, "America/New_York")
    land(landing, "opendental", "od_east", "providers", [provider(1)], "America/New_York")
    land(landing, "opendental", "od_central", "providers", [provider(1)], "America/Chicago")
    # Cautious: a test runs only when all its parents are built (not a relationship test
    # reaching a model the marts do not read).
    result = run_dbt(
        root, "build", "--select", "+path:models/marts/calls", "--indirect-selection", "cautious"
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    return root


def query(root: Path, sql: str) -> list[dict]:
    return rows(root / "warehouse" / "chairside.duckdb", sql)


def test_every_call_gets_its_hand_classified_outcome(built):
    got = {
        r["source_call_id"]: (r["call_outcome"], r["wait_seconds"], r["is_answered_within_sl"])
        for r in query(built, "select * from marts.fct_calls")
    }
    assert got == {
        "CA01": ("answered", 8, True),
        "CA02": ("answered", 20, True),  # exactly the 20 s service level: within
        "CA03": ("answered", 25, False),
        "CA04": ("abandoned", 12, False),
        "CA05": ("short_abandon", 4, None),  # under 6 s: out of the service-level count
        "CA06": ("abandoned", 6, False),  # 6 s is not under 6 s: a real abandon
        "CA07": ("voicemail", 25, False),  # rang out, then 40 s on the line
        "CA08": ("abandoned_in_menu", None, None),  # never offered
        "CA09": ("busy_or_failed", 2, False),
        "CA10": ("answered", 5, True),
        "CA11": ("missed", 25, False),  # rang out, hung up 4 s into the greeting
        "CA12": ("outbound_answered", 7, None),
        "CA13": ("answered", 3, True),
        "CA14": ("short_abandon", 1, None),
        "CA15": ("abandoned", 30, False),
        "CA16": ("answered", 21, False),
        "CA17": ("outbound_attempt", 30, None),
        "CA18": ("answered", 10, True),
    }


def test_local_date_and_hour_follow_each_locations_time_zone(built):
    got = {
        r["source_call_id"]: (r["org_location_id"], r["local_date"], r["local_hour"],
                              r["local_weekday"])
        for r in query(built, "select * from marts.fct_calls")
    }  # fmt: skip
    assert got["CA01"] == ("east", date(2026, 10, 6), 9, 2)  # 13:00Z = 09:00 EDT
    assert got["CA15"] == ("central", date(2026, 10, 6), 19, 2)  # 00:20Z Wed = 19:20 CDT Tue
    assert got["CA18"] == ("east", date(2026, 10, 13), 9, 2)


# Per location and local hour, by hand (offered = inbound minus menu hang-ups; short = abandoned
# under 6 s; abandon rate = long abandons / (offered - short); raw = all abandons / offered;
# service level = answered within 20 s / (offered - short); ASA = mean wait of answered calls;
# voicemail rate = voicemails / offered):
#   east 6 Oct 09h: 9 inbound, 8 offered (CA08 in the menu), answered CA01-03 (8+20+25 s),
#     abandoned CA04, CA06, short CA05, voicemail CA07, busy CA09:
#     abandon 2/7, raw 3/8, answer 3/7, SL 2/7 (CA01, CA02), ASA 53/3, voicemail 1/8.
#   east 6 Oct 10h: offered 2, answered CA10 (5 s), missed CA11, one outbound (CA12):
#     abandon 0/2, raw 0, answer 1/2, SL 1/2, ASA 5, voicemail 0.
#   central 6 Oct 19h: offered 4: answered CA13 (3 s), CA16 (21 s), short CA14, abandoned CA15:
#     abandon 1/3, raw 2/4, answer 2/3, SL 1/3 (CA13), ASA 12, voicemail 0.
#   east 13 Oct 09h: offered 1, answered CA18 (10 s): abandon 0, SL 1, ASA 10.
HOURLY = {
    ("east", date(2026, 10, 6), 9): dict(
        inbound_calls=9, offered_calls=8, answered_calls=3, abandoned_calls=2, short_abandons=1,
        abandoned_in_menu=1, voicemails=1, no_answer_calls=0, busy_or_failed_calls=1,
        outbound_calls=0, abandon_rate=2 / 7, raw_abandon_rate=3 / 8, answer_rate=3 / 7,
        service_level=2 / 7, avg_speed_of_answer_seconds=53 / 3, voicemail_rate=1 / 8,
    ),
    ("east", date(2026, 10, 6), 10): dict(
        inbound_calls=2, offered_calls=2, answered_calls=1, abandoned_calls=0, short_abandons=0,
        abandoned_in_menu=0, voicemails=0, no_answer_calls=1, busy_or_failed_calls=0,
        outbound_calls=1, abandon_rate=0.0, raw_abandon_rate=0.0, answer_rate=1 / 2,
        service_level=1 / 2, avg_speed_of_answer_seconds=5.0, voicemail_rate=0.0,
    ),
    ("central", date(2026, 10, 6), 19): dict(
        inbound_calls=4, offered_calls=4, answered_calls=2, abandoned_calls=1, short_abandons=1,
        abandoned_in_menu=0, voicemails=0, no_answer_calls=0, busy_or_failed_calls=0,
        outbound_calls=1, abandon_rate=1 / 3, raw_abandon_rate=2 / 4, answer_rate=2 / 3,
        service_level=1 / 3, avg_speed_of_answer_seconds=12.0, voicemail_rate=0.0,
    ),
    ("east", date(2026, 10, 13), 9): dict(
        inbound_calls=1, offered_calls=1, answered_calls=1, abandoned_calls=0, short_abandons=0,
        abandoned_in_menu=0, voicemails=0, no_answer_calls=0, busy_or_failed_calls=0,
        outbound_calls=0, abandon_rate=0.0, raw_abandon_rate=0.0, answer_rate=1.0,
        service_level=1.0, avg_speed_of_answer_seconds=10.0, voicemail_rate=0.0,
    ),
}  # fmt: skip


def approx_row(expected: dict) -> dict:
    return {k: pytest.approx(v) if isinstance(v, float) else v for k, v in expected.items()}


def test_hourly_abandonment_figures_equal_the_hand_computation(built):
    rows = query(built, "select * from marts.agg_calls_by_location_hour")
    got = {(r["org_location_id"], r["local_date"], r["local_hour"]): r for r in rows}
    assert set(got) == set(HOURLY)
    for key, expected in HOURLY.items():
        assert {k: got[key][k] for k in expected} == approx_row(expected), key
        assert got[key]["abandon_rate_formula"] == "exclude_short"
        assert (got[key]["short_abandon_seconds"], got[key]["service_level_seconds"]) == (6, 20)


def test_weekday_hour_view_adds_up_both_tuesdays(built):
    """East, Tuesdays 09h: the 6th (9 inbound) and the 13th (one answered call, 10 s):
    offered 9, answered 4, abandon 2/(9-1), SL 3/8, ASA (53+10)/4."""
    [row] = query(
        built,
        "select * from marts.agg_calls_by_location_weekday_hour "
        "where org_location_id = 'east' and local_weekday = 2 and local_hour = 9",
    )
    assert row["days_with_calls"] == 2 and row["local_weekday_name"] == "Tuesday"
    assert {k: row[k] for k in ("offered_calls", "answered_calls", "abandon_rate",
                                "service_level", "avg_speed_of_answer_seconds")} == approx_row(
        dict(offered_calls=9, answered_calls=4, abandon_rate=2 / 8, service_level=3 / 8,
             avg_speed_of_answer_seconds=63 / 4)
    )  # fmt: skip


def test_missed_call_recovery_equals_the_hand_computation(built):
    """Missed callers (one row per caller, location and local day):
    A: CA04 and CA06 (abandoned twice), nothing after;  B: voicemail CA07, text-back 10 s later,
    reply 4 min 45 s after, staff text 2 h after the reply (a callback within 24 h, not 1 h);
    C: busy CA09 (its short abandon CA05 is no missed call);  D: missed CA11 (ended 14:10:39),
    called back by CA12 at 14:40:35 (29 min 56 s);  E: abandoned CA15, rang again 5 min later and
    was answered (CA16) before the outbound attempt CA17: self-recovered."""
    rows = query(
        built,
        "select calls.source_call_id, recovery.* from marts.fct_missed_call_recovery recovery "
        "inner join marts.fct_calls calls on calls.call_key = recovery.missed_call_key",
    )
    got = {r["source_call_id"]: r for r in rows}
    assert set(got) == {"CA04", "CA07", "CA09", "CA11", "CA15"}
    flags = ("n_missed_calls", "is_callback_within_1h", "is_callback_within_24h",
             "is_self_recovered", "is_text_back_sent", "is_text_conversation_started",
             "is_text_conversation_answered", "is_booked_within_7d")  # fmt: skip
    expected = {
        "CA04": (2, False, False, False, False, False, False, False),
        "CA07": (1, False, True, False, True, True, True, False),
        "CA09": (1, False, False, False, False, False, False, False),
        "CA11": (1, True, True, False, False, False, False, False),
        "CA15": (1, True, True, True, False, False, False, False),
    }
    assert {sid: tuple(got[sid][f] for f in flags) for sid in got} == expected
    assert got["CA11"]["minutes_to_callback"] == pytest.approx(29 + 56 / 60)
    assert got["CA07"]["first_callback_type"] == "text"

    [east] = query(
        built,
        "select * from marts.agg_missed_call_recovery_by_location_week "
        "where org_location_id = 'east'",
    )
    assert (east["week_start"], east["missed_callers"], east["missed_calls"]) == (
        date(2026, 10, 5), 4, 5,
    )  # fmt: skip
    assert (east["callback_rate_1h"], east["callback_rate_24h"]) == (1 / 4, 2 / 4)
    [central] = query(
        built,
        "select * from marts.agg_missed_call_recovery_by_location_week "
        "where org_location_id = 'central'",
    )
    # E recovered on their own: no caller left for the callback rate.
    assert (central["self_recovered"], central["callback_eligible"]) == (1, 0)
    assert central["callback_rate_1h"] is None


def test_messaging_counts_people(built):
    rows = query(built, "select * from marts.agg_messaging_by_location_month")
    got = {(r["org_location_id"], r["is_group_total"]): r for r in rows}
    assert set(got) == {("east", False), (None, True)}
    for row in got.values():
        assert row["month_start"] == date(2026, 10, 1)
        assert (
            row["inbound_messages"], row["outbound_messages"], row["automated_messages"],
            row["people_reached"], row["people_replied"],
        ) == (1, 2, 1, 1, 1)  # fmt: skip


def test_the_configured_formula_decides_the_abandon_rate(built, tmp_path):
    """include_short: every abandon over every offered call. Only the organisation snapshot
    changes; the marts are rebuilt from the same warehouse."""
    shutil.copytree(built / "landing", tmp_path / "landing")
    shutil.copytree(built / "warehouse", tmp_path / "warehouse")
    settings = tmp_path / "landing" / "_organisation" / "settings.parquet"
    table = pq.read_table(settings)
    column = table.schema.get_field_index("abandon_rate_formula")
    table = table.set_column(column, "abandon_rate_formula", pa.array(["include_short"]))
    pq.write_table(table, settings)
    result = run_dbt(tmp_path, "run", "--select", "path:models/marts/calls")
    assert result.returncode == 0, result.stdout[-4000:]
    rows = query(tmp_path, "select * from marts.agg_calls_by_location_hour")
    got = {
        (r["org_location_id"], r["local_date"], r["local_hour"]): r["abandon_rate"] for r in rows
    }
    # east 09h: (2 + 1) / 8; central 19h: (1 + 1) / 4.
    assert got[("east", date(2026, 10, 6), 9)] == pytest.approx(3 / 8)
    assert got[("central", date(2026, 10, 6), 19)] == pytest.approx(2 / 4)
