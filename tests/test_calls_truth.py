"""The call marts against the phone simulator's truth, on the demo group.

The demo pipeline (``demo_platform``: every simulator, every sync, the whole dbt build) runs once
per session. The Twilio simulator's truth (``truth_twilio_calls``, ``truth_twilio_messages``)
says what really happened in every caller session: its outcome, how long it rang, the
call-to-text, the caller's reply and the staff's answer, redials and callbacks. Bayview also
logs calls in CareStack's CS Conversation (its served records are in the CareStack export).

Every expectation below is computed here, in Python, from those true events and the documented
definitions (docs/calls.md): nothing is read back from the marts to build it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
import pytest

from simulators.twilio.records import PhoneSettings
from simulators.world import WorldSpec
from tests.warehouse import query, rows

pytestmark = pytest.mark.slow

HOUR, DAY = timedelta(hours=1), timedelta(days=1)
TEXT_BACK_WINDOW = timedelta(minutes=5)  # var('calls_text_back_minutes') default
# The simulator's inbound outcomes that are missed calls in the marts (menu and short abandons
# are not: never offered to staff / no chance to answer).
MISSED_TRUTH = {"missed", "voicemail", "abandoned_queue"}
CARESTACK_OUTBOUND = {"Call Made", "Call Attempted"}
CARESTACK_MISSED = {"Missed Call", "Voicemail"}
# Texts from patients: replies to a call-to-text and to an appointment reminder.
INBOUND_KINDS = ("patient_reply", "reminder_reply")
# Open Dental statuses no funnel stage knows: planned treatment and schedule notes are no booking.
NOT_A_BOOKING = {"Planned", "PtNote", "PtNoteCompleted"}


@dataclass(frozen=True)
class Anchor:
    """A missed call that starts a recovery row (the caller's first missed call of the day)."""

    source_system: str
    source_call_id: str
    location: str | None
    phone: str
    start: datetime
    end: datetime


@pytest.fixture(scope="module")
def platform(demo_platform):
    assert demo_platform.returncode == 0, demo_platform.output[-3000:]
    return demo_platform


@dataclass
class Truth:
    calls: list[dict]  # truth_twilio_calls, ended sessions
    messages: list[dict]  # truth_twilio_messages + the served date_sent and status
    carestack: list[dict]  # CS Conversation calls as served (E.164 numbers, UTC times)
    location_of_number: dict[str, str | None]
    timezone_of_location: dict[str | None, str]
    carestack_location: dict[int, str | None]
    settings: dict


@pytest.fixture(scope="module")
def truth(platform) -> Truth:
    twilio, landing = platform.truth / "twilio", platform.root / "landing"
    calls = pl.read_parquet(twilio / "truth_twilio_calls.parquet").filter(pl.col("ended"))
    served = pl.read_parquet(twilio / "twilio_messages.parquet").select(
        "sid",
        "status",
        sent=pl.col("date_sent").str.strptime(pl.Datetime("us", "UTC"), "%a, %d %b %Y %H:%M:%S %z"),
    )
    messages = pl.read_parquet(twilio / "truth_twilio_messages.parquet").join(served, on="sid")
    numbers = pl.read_parquet(landing / "_organisation" / "phone_numbers.parquet")
    location_of_number = dict(zip(numbers["phone_number"], numbers["location_id"], strict=True))
    office_zone = {office.key: office.timezone for office in WorldSpec().offices}
    lines = pl.read_parquet(twilio / "twilio_numbers.parquet")
    timezone_of_location: dict[str | None, str] = {None: "UTC"}
    for office, number in zip(lines["office"], lines["phone_number"], strict=True):
        timezone_of_location[location_of_number.get(number)] = office_zone[office]
    cs = pl.read_parquet(platform.truth / "carestack" / "carestack_conversation_calls.parquet")
    cs = cs.with_columns(
        start=pl.col("startTime").str.strptime(pl.Datetime("us", "UTC"), "%Y-%m-%dT%H:%M:%SZ")
    )
    # Which CareStack location is which organisation location: the sync's confirmed or exact
    # name matches (configuration, not call logic).
    matches = query(
        platform.warehouse,
        "select carestack_location_id, location_id from staging.stg_carestack__location_matches "
        "where status in ('confirmed', 'exact')",
    )
    [settings] = pl.read_parquet(landing / "_organisation" / "settings.parquet").to_dicts()
    return Truth(
        calls.to_dicts(),
        messages.to_dicts(),
        cs.to_dicts(),
        location_of_number,
        timezone_of_location,
        {cs_id: location for cs_id, location in matches},
        settings,
    )


def local(moment: datetime, zone: str) -> datetime:
    return moment.astimezone(ZoneInfo(zone)).replace(tzinfo=None)


def true_outcome(call: dict, short_abandon_seconds: int) -> str:
    if call["direction"] == "outbound":
        return "outbound_answered" if call["outcome"] == "answered" else "outbound_attempt"
    outcome = call["outcome"]
    if outcome in ("abandoned_queue", "short_abandon"):
        return "short_abandon" if call["ring_seconds"] < short_abandon_seconds else "abandoned"
    if outcome == "missed":
        return "missed" if call["dial_status"] == "no-answer" else "busy_or_failed"
    return {"abandoned_ivr": "abandoned_in_menu"}.get(outcome, outcome)


# --------------------------------------------------------------------------- one row per call


def test_every_call_has_its_true_outcome_wait_and_local_hour(platform, truth):
    marts = {
        row["source_call_id"]: row
        for row in rows(
            platform.warehouse,
            "select source_call_id, org_location_id, call_outcome, wait_seconds, local_date, "
            "local_hour, local_weekday, is_offered, is_answered_within_sl "
            "from marts.fct_calls where source_system = 'twilio'",
        )
    }
    assert len(truth.calls) > 1000
    assert set(marts) == {call["session_sid"] for call in truth.calls}
    short, sl = truth.settings["short_abandon_seconds"], truth.settings["service_level_seconds"]
    # The simulator draws its short abandons under its own threshold: with the same setting the
    # marts must call exactly those short.
    assert short == PhoneSettings().short_abandon_s
    wrong = Counter()
    for call in truth.calls:
        row = marts[call["session_sid"]]
        location = truth.location_of_number[call["office_number"]]
        started = local(call["start_time"], truth.timezone_of_location[location])
        outcome = true_outcome(call, short)
        offered = call["direction"] == "inbound" and outcome != "abandoned_in_menu"
        expected = {
            "org_location_id": location,
            "call_outcome": outcome,
            "local_date": started.date(),
            "local_hour": started.hour,
            "local_weekday": started.isoweekday(),
            "is_offered": offered,
            "is_answered_within_sl": (
                None
                if not offered or outcome == "short_abandon"
                else outcome == "answered" and call["ring_seconds"] <= sl
            ),
        }
        if call["direction"] == "inbound" and outcome != "abandoned_in_menu":
            expected["wait_seconds"] = call["ring_seconds"]
        for column, value in expected.items():
            if row[column] != value:
                wrong[(column, outcome)] += 1
    assert not wrong, wrong
    kinds = Counter(true_outcome(call, short) for call in truth.calls)
    assert all(kinds[k] > 0 for k in ("answered", "abandoned", "short_abandon", "voicemail",
                                       "missed", "busy_or_failed", "abandoned_in_menu",
                                       "outbound_answered", "outbound_attempt")), kinds  # fmt: skip


def test_hourly_abandonment_figures_equal_the_truth_where_only_twilio_rings(platform, truth):
    """Bayview also answers with CS Conversation: every other location's hours are Twilio's."""
    short, sl = truth.settings["short_abandon_seconds"], truth.settings["service_level_seconds"]
    expected: dict[tuple, Counter] = defaultdict(Counter)
    for call in truth.calls:
        location = truth.location_of_number[call["office_number"]]
        if location == "bayview":
            continue
        started = local(call["start_time"], truth.timezone_of_location[location])
        counts = expected[(location, started.date(), started.hour)]
        outcome = true_outcome(call, short)
        counts[outcome] += 1
        if call["direction"] == "inbound" and outcome != "abandoned_in_menu":
            counts["offered"] += 1
            if outcome != "short_abandon":
                counts["sl_calls"] += 1
                counts["within_sl"] += outcome == "answered" and call["ring_seconds"] <= sl
            if outcome == "answered":
                counts["wait"] += call["ring_seconds"]
    got = rows(
        platform.warehouse,
        "select * from marts.agg_calls_by_location_hour where org_location_id <> 'bayview'",
    )
    assert {(r["org_location_id"], r["local_date"], r["local_hour"]) for r in got} == set(expected)
    formula = truth.settings["abandon_rate_formula"]
    for row in got:
        c = expected[(row["org_location_id"], row["local_date"], row["local_hour"])]
        assert (
            row["offered_calls"], row["answered_calls"], row["abandoned_calls"],
            row["short_abandons"], row["voicemails"], row["abandoned_in_menu"],
            row["service_level_calls"], row["answered_within_sl"], row["answered_wait_seconds"],
        ) == (
            c["offered"], c["answered"], c["abandoned"], c["short_abandon"], c["voicemail"],
            c["abandoned_in_menu"], c["sl_calls"], c["within_sl"], c["wait"],
        ), row  # fmt: skip
        long_offered = c["offered"] - c["short_abandon"]
        if formula == "exclude_short" and long_offered:
            assert row["abandon_rate"] == pytest.approx(c["abandoned"] / long_offered)
        if c["answered"]:
            assert row["avg_speed_of_answer_seconds"] == pytest.approx(c["wait"] / c["answered"])


# --------------------------------------------------------------------------- recovery


def true_anchors(truth: Truth) -> list[Anchor]:
    """Every missed call (Twilio truth and CS Conversation), first per caller, location, day."""
    missed = [
        Anchor(
            "twilio",
            call["session_sid"],
            truth.location_of_number[call["office_number"]],
            call["phone"],
            call["start_time"],
            call["end_time"],
        )
        for call in truth.calls
        if call["direction"] == "inbound"
        and call["outcome"] in MISSED_TRUTH
        and not (
            call["outcome"] == "abandoned_queue"
            and call["ring_seconds"] < truth.settings["short_abandon_seconds"]
        )
    ]
    missed += [
        Anchor(
            "carestack",
            str(call["id"]),
            truth.carestack_location.get(call["locationId"]),
            call["phoneNumber"],
            call["start"],
            call["start"] + timedelta(seconds=call["duration"]),
        )
        for call in truth.carestack
        if call["callType"] in CARESTACK_MISSED
    ]
    first: dict[tuple, Anchor] = {}
    for anchor in sorted(missed, key=lambda a: (a.start, a.source_call_id)):
        day = local(anchor.start, truth.timezone_of_location[anchor.location]).date()
        first.setdefault((anchor.location, anchor.phone, day), anchor)
    return list(first.values())


def events_by_phone(truth: Truth) -> dict[str, dict[str, list]]:
    """Per caller number, the true times of each kind of event recovery looks at."""
    events: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for call in truth.calls:
        kind = (
            "touch"
            if call["direction"] == "outbound"
            else "call_in"
            if call["outcome"] == "answered"
            else None
        )
        if kind:
            events[call["phone"]][kind].append(call["start_time"])
    for call in truth.carestack:
        if call["callType"] in CARESTACK_OUTBOUND:
            events[call["phoneNumber"]]["touch"].append(call["start"])
        elif call["callType"] == "Call Received":
            events[call["phoneNumber"]]["call_in"].append(call["start"])
    for message in truth.messages:
        phone = message["phone"]
        # Appointment reminders are texts from the practice like a staff reply (Twilio cannot
        # tell them apart), and answers to them are replies like any other.
        if message["kind"] in ("staff_reply", "reminder"):
            events[phone]["touch"].append(message["sent"])
            events[phone]["staff_text"].append(message["sent"])
        elif message["kind"] in INBOUND_KINDS:
            events[phone]["reply"].append(message["sent"])
        else:
            location = truth.location_of_number[message["office_number"]]
            events[phone]["auto_text"].append((message["sent"], location, message["status"]))
    return events


def first_in(times: list[datetime], start: datetime, end: datetime) -> datetime | None:
    inside = [t for t in times if start <= t <= end]
    return min(inside) if inside else None


def expected_recovery(anchor: Anchor, events: dict[str, list]) -> dict:
    end = anchor.end
    callback = first_in(events["touch"], end, end + 7 * DAY)
    call_in = first_in(events["call_in"], end, end + DAY)
    texts = [
        (sent, status)
        for sent, location, status in events["auto_text"]
        if location == anchor.location and end <= sent <= end + TEXT_BACK_WINDOW
    ]
    reply = first_in(events["reply"], end, end + DAY)
    answer = (
        first_in([t for t in events["staff_text"] if t > reply], reply, reply + DAY)
        if reply
        else None
    )
    return {
        "first_callback_at": callback,
        "is_callback_within_1h": callback is not None and callback <= end + HOUR,
        "is_callback_within_24h": callback is not None and callback <= end + DAY,
        "is_self_recovered": call_in is not None and (callback is None or call_in < callback),
        "is_text_back_sent": bool(texts),
        "is_text_back_delivered": any(status == "delivered" for _, status in texts),
        "is_text_conversation_started": reply is not None,
        "is_text_conversation_answered": answer is not None,
    }


def test_missed_call_recovery_flags_equal_the_truth(platform, truth):
    anchors = true_anchors(truth)
    events = events_by_phone(truth)
    got = {
        (row["source_system"], row["source_call_id"]): row
        for row in rows(
            platform.warehouse,
            "select calls.source_system, calls.source_call_id, recovery.* "
            "from marts.fct_missed_call_recovery as recovery "
            "inner join marts.fct_calls as calls on calls.call_key = recovery.missed_call_key",
        )
    }
    assert set(got) == {(a.source_system, a.source_call_id) for a in anchors}
    wrong: Counter = Counter()
    seen: Counter = Counter()
    for anchor in anchors:
        row = got[(anchor.source_system, anchor.source_call_id)]
        for column, value in expected_recovery(anchor, events[anchor.phone]).items():
            seen[(column, value if isinstance(value, bool) else value is not None)] += 1
            if row[column] != value:
                wrong[column] += 1
    assert not wrong, wrong
    # The world exercised every flag both ways.
    flags = [c for c in expected_recovery(anchors[0], events[anchors[0].phone]) if c[:3] == "is_"]
    assert all(seen[(flag, True)] and seen[(flag, False)] for flag in flags), seen


def test_every_twilio_recovery_the_simulator_planned_is_found(platform, truth):
    """The simulator's own links (this session's text-back, reply, redial, callback) are found
    on the session's row, whatever else the window also holds."""
    got = {
        row["source_call_id"]: row
        for row in rows(
            platform.warehouse,
            "select calls.source_call_id, recovery.* from marts.fct_missed_call_recovery recovery "
            "inner join marts.fct_calls calls on calls.call_key = recovery.missed_call_key "
            "where calls.source_system = 'twilio'",
        )
    }
    checked = Counter()
    for call in truth.calls:
        row = got.get(call["session_sid"])
        if row is None:
            continue
        checked["sessions"] += 1
        if call["text_back_at"] is not None:
            assert row["is_text_back_sent"], call["session_sid"]
            checked["text_back"] += 1
        if call["patient_reply_at"] is not None:
            assert row["is_text_conversation_started"]
            checked["reply"] += 1
        if call["callback_at"] is not None and call["callback_at"] <= call["end_time"] + HOUR:
            assert row["is_callback_within_1h"]
            checked["callback_1h"] += 1
        if call["callback_at"] is not None:
            assert row["first_callback_at"] <= call["callback_at"]
            checked["callback"] += 1
        if call["redial_at"] is not None:
            # Self-recovered, unless the group reached out first (e.g. answered the text).
            first = row["first_callback_at"]
            assert row["is_self_recovered"] or (first is not None and first < call["redial_at"])
            checked["redial"] += 1
    assert min(checked.values()) > 3, checked


def knowable_bookings(world: Path) -> dict[str, list[datetime]]:
    """Per caller number (E.164), when appointments were entered that a booking after a call
    from it can be known by: those of patient records carrying the number (a family phone: the
    household), and, when one person alone carries it, every record of that person (their
    records at other practices). A record without the number, of someone sharing it, cannot be
    tied to the caller by any data, so it is not expected either."""
    links = pl.read_parquet(world / "truth_patient_links.parquet").select(
        "office", "PatNum", "person_id"
    )
    patients = pl.read_parquet(world / "patients.parquet")
    numbers = (
        patients.unpivot(["HmPhone", "WkPhone", "WirelessPhone"], index=["office", "PatNum"])
        .with_columns(digits=pl.col("value").str.replace_all(r"\D", "").str.slice(-10))
        .filter(pl.col("digits").str.len_chars() == 10)
        .select("office", "PatNum", phone=pl.lit("+1") + pl.col("digits"))
        .unique()
        .join(links, on=["office", "PatNum"])
    )
    by_record = numbers.select("phone", "office", "PatNum")
    sole = (
        numbers.group_by("phone")
        .agg(pl.col("person_id").n_unique().alias("n"), pl.col("person_id").first())
        .filter(pl.col("n") == 1)
        .join(links, on="person_id")
        .select("phone", "office", "PatNum")
    )
    zones = {office.key: office.timezone for office in WorldSpec().offices}
    appointments = (
        pl.read_parquet(world / "appointments.parquet")
        .filter(~pl.col("AptStatus").is_in(NOT_A_BOOKING) & pl.col("SecDateTEntry").is_not_null())
        .join(pl.concat([by_record, sole]).unique(), on=["office", "PatNum"])
        .select("phone", "office", "AptNum", "SecDateTEntry")
        .unique()
    )
    booked: dict[str, list[datetime]] = defaultdict(list)
    for phone, office, _, entered in appointments.iter_rows():
        booked[phone].append(entered.replace(tzinfo=ZoneInfo(zones[office])).astimezone(UTC))
    return booked


def test_bookings_within_7_days_equal_the_worlds_appointments(platform, truth):
    """An appointment entered within 7 days after the missed call, of the caller's household or
    person (as the practices' records tie them to the number), is a booking."""
    booked = knowable_bookings(platform.truth / "twilio")
    got = {
        (row[0], row[1]): row[2]
        for row in query(
            platform.warehouse,
            "select calls.source_system, calls.source_call_id, recovery.is_booked_within_7d "
            "from marts.fct_missed_call_recovery recovery "
            "inner join marts.fct_calls calls on calls.call_key = recovery.missed_call_key",
        )
    }
    outcomes = Counter()
    for anchor in true_anchors(truth):
        expected = any(anchor.end < t <= anchor.end + 7 * DAY for t in booked[anchor.phone])
        outcomes[(expected, got[(anchor.source_system, anchor.source_call_id)])] += 1
    assert outcomes[(True, True)] > 10 and outcomes[(False, False)] > 10, outcomes
    assert outcomes[(True, False)] == outcomes[(False, True)] == 0, outcomes


def test_unknown_callers_who_never_book_are_lost_new_patients(platform, truth):
    """Prospects ring from numbers no patient carries and never book: once their 7 days are
    over, each is a lost new-patient caller. A caller who booked is never lost."""
    kind = {call["session_sid"]: call["caller_kind"] for call in truth.calls}
    booked = knowable_bookings(platform.truth / "twilio")
    anchors = {a.source_call_id: a for a in true_anchors(truth)}
    got = rows(
        platform.warehouse,
        "select calls.source_call_id, recovery.is_new_contact, recovery.is_new_caller_lost, "
        "recovery.is_7d_window_elapsed from marts.fct_missed_call_recovery recovery "
        "inner join marts.fct_calls calls on calls.call_key = recovery.missed_call_key "
        "where calls.source_system = 'twilio'",
    )
    prospects = [r for r in got if kind[r["source_call_id"]] == "prospect"]
    assert len(prospects) > 10
    assert all(r["is_new_contact"] for r in prospects)
    assert all(r["is_new_caller_lost"] == r["is_7d_window_elapsed"] for r in prospects)
    assert any(r["is_new_caller_lost"] for r in prospects)
    for row in got:
        anchor = anchors[row["source_call_id"]]
        if any(anchor.end < t <= anchor.end + 7 * DAY for t in booked[anchor.phone]):
            assert not row["is_new_caller_lost"], row


# --------------------------------------------------------------------------- messaging


def test_messaging_counts_equal_the_truth_and_count_each_person_once(platform, truth):
    expected: dict[tuple, Counter] = defaultdict(Counter)
    reached: dict[tuple, set] = defaultdict(set)
    for message in truth.messages:
        location = truth.location_of_number[message["office_number"]]
        sent = local(message["sent"], truth.timezone_of_location[location])
        month = sent.date().replace(day=1)
        counts = expected[(location, month)]
        inbound = message["kind"] in INBOUND_KINDS
        counts["inbound" if inbound else "outbound"] += 1
        counts["automated"] += message["kind"] == "auto_text"
        if not inbound and message["status"] == "delivered":
            # One household phone per family in the world: the number is the contact.
            for key in ((location, month), (None, month)):
                reached[key].add(message["phone"])
    got = rows(platform.warehouse, "select * from marts.agg_messaging_by_location_month")
    per_location = {
        (r["org_location_id"], r["month_start"]): r for r in got if not r["is_group_total"]
    }
    group = {r["month_start"]: r for r in got if r["is_group_total"]}
    assert set(per_location) == set(expected)
    for key, counts in expected.items():
        row = per_location[key]
        assert (row["inbound_messages"], row["outbound_messages"], row["automated_messages"]) == (
            counts["inbound"], counts["outbound"], counts["automated"],
        ), key  # fmt: skip
        assert row["people_reached"] == len(reached[key]), key
    for month, row in group.items():
        assert row["people_reached"] == len(reached[(None, month)]), month
    # Someone texted by two locations in a month is one person in the group's total.
    twice = sum(len(reached[(loc, month)]) for (loc, month) in reached if loc is not None) - sum(
        len(reached[(None, month)]) for month in group
    )
    assert twice > 0
    assert (
        sum(r["people_reached"] for r in per_location.values())
        - sum(r["people_reached"] for r in group.values())
        == twice
    )
