"""The Twilio simulator: derived phone log, truth, and the REST contract over loopback HTTP.

Also home of the helpers the Twilio extract and staging tests share (a small world whose clock
stands on a Tuesday morning, the simulator on a free port, an organisation pointing at it).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import polars as pl
import pytest

from chairside.config import Organisation
from simulators.faults import FaultRule
from simulators.generate import generate_world
from simulators.server import serve_in_thread
from simulators.twilio import wire
from simulators.twilio.app import TwilioSimSettings, create_app
from simulators.twilio.data import PhoneSettings, derive, lines
from simulators.world import World, WorldSpec

ACCOUNT = "AC" + "0123456789abcdef" * 2
TOKEN = "test-auth-token"
# Tuesday 3 Nov 2026, 10:00 in New York: both offices are open.
NOW = datetime(2026, 11, 3, 15, 0, tzinfo=UTC)
OFFICES = tuple(o for o in WorldSpec().offices if o.key in ("od_riverside", "cs_bayview"))
# A small log that still pages: a week of history, a few dozen calls a day per office.
PHONE = PhoneSettings(history_days=7, min_calls_per_day=40)
# Busy enough that some calls are always in progress (about five at any moment of the day).
BUSY = PhoneSettings(history_days=2, min_calls_per_day=400)
RFC2822 = re.compile(r"^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} \+0000$")


def make_world(seed: int = 11, n_persons: int = 60) -> World:
    return generate_world(WorldSpec(seed=seed, n_persons=n_persons, offices=OFFICES, now_utc=NOW))


@dataclass
class Twilio:
    world: World
    app: object
    url: str

    @property
    def faults(self):
        return self.app.state.faults

    @property
    def stats(self):
        return self.app.state.stats

    @property
    def data(self):
        return self.app.state.sim.data

    def served(self, entity: str) -> dict[str, dict]:
        """Every record the API serves right now, by SID."""
        return {r["sid"]: r for r in self.data.listing(entity).records}


@contextmanager
def serve_twilio(world: World, monkeypatch=None, **settings) -> Iterator[Twilio]:
    settings = {"phone": PHONE, **settings}
    app = create_app(world, TwilioSimSettings(account_sid=ACCOUNT, auth_token=TOKEN, **settings))
    if monkeypatch is not None:
        monkeypatch.setenv("TWILIO_ACCOUNT_SID", ACCOUNT)
        monkeypatch.setenv("TWILIO_AUTH_TOKEN", TOKEN)
    with serve_in_thread(app) as server:
        yield Twilio(world, app, server.url)


def organisation_for(twilio: Twilio, **connection_settings) -> Organisation:
    settings = {
        "requests_per_second": 500.0,
        "page_size": 50,
        "batch_rows": 120,  # small batches, so a sync spans several checkpoints
        "read_timeout_s": 5.0,
        **connection_settings,
    }
    return Organisation.model_validate(
        {
            "id": "test_group",
            "name": "Test Group",
            "connections": [
                {
                    "id": "tw_group",
                    "vendor": "twilio",
                    "base_url": twilio.url,
                    "timezone": "America/New_York",
                    "account_sid_env": "TWILIO_ACCOUNT_SID",
                    "auth_token_env": "TWILIO_AUTH_TOKEN",
                    "numbers": {line.number: line.office for line in lines(twilio.world)},
                    **settings,
                }
            ],
            # One location per office, so every number rings at a known location.
            "locations": [
                {"id": office, "name": office, "connection": "tw_group"}
                for office in sorted({line.office for line in lines(twilio.world)})
            ],
        }
    )


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sim() -> Iterator[Twilio]:
    with serve_twilio(make_world()) as twilio:
        yield twilio


@pytest.fixture(autouse=True)
def _no_faults_left(request):
    yield
    if "sim" in request.fixturenames:
        request.getfixturevalue("sim").faults.clear()


@pytest.fixture
def api(sim) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=f"{sim.url}/2010-04-01/Accounts/{ACCOUNT}", auth=(ACCOUNT, TOKEN), timeout=10
    ) as client:
        yield client


def all_pages(client: httpx.Client, path: str, key: str, **params) -> list[dict]:
    # params={} would replace the query of a next_page_uri: pass none at all then.
    records, page = [], client.get(path, params=params or None).json()
    while True:
        records.extend(page[key])
        if not page["next_page_uri"]:
            return records
        page = client.get(page["next_page_uri"].split(ACCOUNT, 1)[1]).json()


# --- derived data --------------------------------------------------------------------------


def test_derivation_is_deterministic_and_keeps_its_past_as_the_world_advances():
    world = make_world()
    before = derive(world, PHONE)
    assert derive(world, PHONE) == before
    old_now = int(world.now_utc.timestamp())
    world.advance(timedelta(days=1), seed=3)
    after = {leg.sid: leg for leg in derive(world, PHONE).legs}
    # Every leg that had started is still there, unchanged.
    for leg in before.legs:
        if leg.start <= old_now:
            assert after[leg.sid] == leg
    # New legs belong to the new interval (anchored calls start minutes before their
    # appointment or commlog was written, well inside the connector's overlap window).
    earlier = {leg.sid for leg in before.legs}
    late = [leg.start for sid, leg in after.items() if sid not in earlier]
    assert late and min(late) > old_now - 15 * 60


def test_sids_are_twilio_shaped_and_unique():
    log = derive(make_world(), PHONE)
    sids = [leg.sid for leg in log.legs] + [m.sid for m in log.messages]
    assert len(sids) == len(set(sids))
    assert all(re.fullmatch(r"(CA|SM)[0-9a-f]{32}", s) for s in sids)


def test_each_office_and_clinic_has_a_main_number_no_patient_shares():
    world = make_world()
    numbers = {(line.office, line.clinic_num): line.number for line in lines(world)}
    assert set(numbers) == {("od_riverside", 1), ("od_riverside", 2), ("cs_bayview", 0)}
    assert all(re.fullmatch(r"\+1\d{10}", n) for n in numbers.values())
    assert len(set(numbers.values())) == 3
    phones = {f"+1{p}" for p in world.table("truth_persons")["phone"].to_list()}
    assert not phones & set(numbers.values())


def test_outcomes_are_spelled_out_by_the_legs():
    """The truth's outcome of every ended inbound session, read off its legs."""
    log = derive(make_world(), PHONE)
    legs: dict[str, list] = {}
    for leg in log.legs:
        legs.setdefault(leg.session_sid, []).append(leg)
    inbound = [s for s in log.sessions if s.direction == "inbound"]
    assert {s.outcome for s in inbound} == {
        "answered", "missed", "voicemail", "abandoned_queue", "short_abandon", "abandoned_ivr"
    }  # fmt: skip
    for s in inbound:
        parent = next(g for g in legs[s.sid] if g.parent_call_sid is None)
        children = [g for g in legs[s.sid] if g.parent_call_sid == s.sid]
        # The modelling trap: the parent is completed whatever happened.
        assert parent.status == "completed" and parent.direction == "inbound"
        assert parent.end - parent.start == s.end - s.start
        statuses = Counter(g.status for g in children)
        if s.outcome == "abandoned_ivr":
            assert not children and parent.end - parent.start == s.ivr_seconds
            continue
        assert len(children) == PHONE.ring_group_size
        assert all(g.direction == "outbound-dial" for g in children)
        assert all(g.start - parent.start == s.ivr_seconds for g in children)
        if s.outcome == "answered":
            assert statuses == {"completed": 1, "canceled": PHONE.ring_group_size - 1}
            picked = next(g for g in children if g.status == "completed")
            assert picked.sid == s.answered_leg_sid
            assert picked.answer - picked.start == s.ring_seconds
            assert picked.end - picked.answer == s.talk_seconds
        elif s.outcome in ("abandoned_queue", "short_abandon"):
            assert set(statuses) == {"canceled"}
            assert all(g.end - g.start == s.ring_seconds for g in children)
            short = s.ring_seconds < PHONE.short_abandon_s
            assert short == (s.outcome == "short_abandon")
        else:
            assert set(statuses) == {s.dial_status} <= {"no-answer", "busy", "failed"}
            assert (s.voicemail_seconds > 0) == (s.outcome == "voicemail")


def test_missed_calls_get_text_back_and_callbacks_within_an_hour_a_day_or_never():
    log = derive(make_world(), PHONE)
    by_sid = {s.sid: s for s in log.sessions}
    missed = [s for s in log.sessions if s.direction == "inbound" and s.outcome != "answered"]
    assert missed and all(s.text_sid and 5 <= s.text_at - s.end <= 20 for s in missed)
    delays = [s.callback_at - s.end for s in missed if s.callback_at]
    assert any(d <= 3600 for d in delays) and any(d > 3600 for d in delays)
    assert any(s.callback_at is None and s.redial_at is None for s in missed)
    for s in missed:
        if s.callback_sid:
            callback = by_sid[s.callback_sid]
            assert callback.direction == "outbound" and callback.follow_up_of == s.sid
            assert callback.caller.phone == s.caller.phone
        if s.redial_sid:
            assert by_sid[s.redial_sid].outcome == "answered"
    kinds = Counter((m.kind, m.direction, m.status) for m in log.messages)
    assert kinds[("auto_text", "outbound-api", "delivered")] > 0
    assert kinds[("patient_reply", "inbound", "received")] > 0
    assert kinds[("staff_reply", "outbound-api", "delivered")] > 0
    landline = [m for m in log.messages if m.status == "undelivered"]
    assert landline and all(m.error_code == 30006 for m in landline)


def test_callers_are_patients_new_patients_and_unknown_prospects():
    world = make_world()
    log = derive(world, PHONE)
    kinds = Counter(s.caller.kind for s in log.sessions)
    assert kinds["patient"] and kinds["new_patient"] and kinds["prospect"]
    links = world.table("truth_patient_links")
    persons = dict(world.table("truth_persons").select("person_id", "phone").iter_rows())
    for s in log.sessions:
        if s.caller.kind == "prospect":
            assert s.caller.person_id is None and s.caller.phone[2:] not in persons.values()
            continue
        link = links.filter(
            (pl.col("office") == s.line.office) & (pl.col("PatNum") == s.caller.pat_num)
        ).row(0, named=True)
        assert (link["person_id"], link["household_id"]) == (
            s.caller.person_id,
            s.caller.household_id,
        )
        assert s.caller.phone == f"+1{persons[s.caller.person_id]}"
    bookings = [s for s in log.sessions if s.kind == "booking"]
    appointments = world.table("appointments")
    for s in bookings:
        apt = appointments.filter(
            (pl.col("office") == s.line.office) & (pl.col("AptNum") == s.apt_num)
        ).row(0, named=True)
        assert apt["PatNum"] == s.caller.pat_num
        assert apt["IsNewPatient"] == (s.caller.kind == "new_patient")


def test_legs_are_ringing_then_in_progress_then_final():
    leg = next(g for g in derive(make_world(), PHONE).legs if g.answer and g.end > g.answer + 5)
    ringing = wire.render_call(leg, leg.start, ACCOUNT) if leg.answer > leg.start else None
    if ringing:
        assert ringing["status"] == "ringing" and ringing["end_time"] is None
    live = wire.render_call(leg, leg.answer + 1, ACCOUNT)
    assert live["status"] == "in-progress"
    assert live["duration"] is None and live["price"] is None and live["end_time"] is None
    done = wire.render_call(leg, leg.end, ACCOUNT)
    assert done["status"] == leg.status
    assert done["duration"] == str(leg.end - leg.answer)
    assert done["end_time"] == wire.rfc2822(leg.end) and done["price"].startswith("-")


def test_messages_are_queued_then_sent_then_delivered():
    message = next(m for m in derive(make_world(), PHONE).messages if m.kind == "auto_text")
    states = [wire.render_message(message, message.created + s, ACCOUNT) for s in (0, 1, 3)]
    assert [s["status"] for s in states] == ["queued", "sent", message.status]
    assert states[0]["date_sent"] is None and states[1]["date_sent"] == states[2]["date_sent"]
    assert states[2]["price"] == "-0.00790" and states[0]["price"] is None


# --- the REST contract ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "auth",
    [None, (ACCOUNT, "wrong-token-secret"), ("ACwrong-user", TOKEN), "Bearer abc"],
    ids=["missing", "bad-token", "bad-account", "not-basic"],
)
def test_bad_or_missing_credentials_are_401_json_and_never_echoed(sim, auth):
    headers = {"Authorization": auth} if isinstance(auth, str) else {}
    response = httpx.get(
        f"{sim.url}/2010-04-01/Accounts/{ACCOUNT}/Calls.json",
        auth=auth if isinstance(auth, tuple) else None,
        headers=headers,
    )
    assert response.status_code == 401
    assert response.json() == {
        "code": 20003,
        "message": "Authenticate",
        "more_info": "https://www.twilio.com/docs/errors/20003",
        "status": 401,
    }
    assert "wrong-token-secret" not in response.text and TOKEN not in response.text


def test_another_accounts_path_is_404(sim):
    other = "AC" + "f" * 32
    response = httpx.get(f"{sim.url}/2010-04-01/Accounts/{other}/Calls.json", auth=(ACCOUNT, TOKEN))
    assert response.status_code == 404 and response.json()["code"] == 20404


def test_call_wire_format(api):
    body = api.get("/Calls.json").json()
    assert body["page"] == 0 and body["page_size"] == 50 and len(body["calls"]) == 50
    assert body["uri"].startswith(f"/2010-04-01/Accounts/{ACCOUNT}/Calls.json")
    assert "PageToken=PA" in body["next_page_uri"]
    for call in body["calls"]:
        assert re.fullmatch(r"CA[0-9a-f]{32}", call["sid"])
        assert call["direction"] in ("inbound", "outbound-api", "outbound-dial")
        assert RFC2822.match(call["start_time"]) and RFC2822.match(call["date_updated"])
        assert call["duration"] is None or call["duration"].isdigit()
        assert call["end_time"] is None or RFC2822.match(call["end_time"])
        assert (call["parent_call_sid"] is not None) == (call["direction"] == "outbound-dial")
    starts = [wire_epoch(c["start_time"]) for c in body["calls"]]
    assert starts == sorted(starts, reverse=True)  # newest first


def wire_epoch(text: str) -> int:
    return int(datetime.strptime(text, "%a, %d %b %Y %H:%M:%S %z").timestamp())


def test_message_wire_format(api):
    messages = api.get("/Messages.json", params={"PageSize": 1000}).json()["messages"]
    assert {m["direction"] for m in messages} == {"inbound", "outbound-api"}
    for message in messages:
        assert re.fullmatch(r"SM[0-9a-f]{32}", message["sid"])
        assert message["num_segments"].isdigit() and message["num_media"] == "0"
        assert RFC2822.match(message["date_created"])
    undelivered = [m for m in messages if m["status"] == "undelivered"]
    assert undelivered and all(m["error_code"] == 30006 for m in undelivered)


def test_next_page_uri_walks_every_record_once(sim, api):
    served = sim.data.listing("calls").records
    walked = all_pages(api, "/Calls.json", "calls", PageSize=37)
    assert [c["sid"] for c in walked] == [c["sid"] for c in served]
    assert api.get("/Calls.json", params={"PageSize": 5000}).json()["page_size"] == 1000


def test_page_token_is_stable_while_new_calls_arrive():
    world = make_world()
    with (
        serve_twilio(world) as twilio,
        httpx.Client(
            base_url=f"{twilio.url}/2010-04-01/Accounts/{ACCOUNT}", auth=(ACCOUNT, TOKEN)
        ) as client,
    ):
        first = client.get("/Calls.json", params={"PageSize": 40}).json()
        before = [c["sid"] for c in twilio.data.listing("calls").records]
        world.advance(timedelta(hours=2), seed=1)
        rest = all_pages(client, first["next_page_uri"].split(ACCOUNT, 1)[1], "calls")
        assert len(twilio.data.listing("calls").records) > len(before)
    assert [c["sid"] for c in rest] == before[40:]


def test_time_filters_are_inclusive_dates_or_times(sim, api):
    calls = sim.data.listing("calls").records
    day = "2026-11-02"
    on_day = {c["sid"] for c in calls if _day(c["start_time"]) == day}
    since = {c["sid"] for c in calls if _day(c["start_time"]) >= day}
    until = {c["sid"] for c in calls if _day(c["start_time"]) <= day}
    assert {c["sid"] for c in all_pages(api, "/Calls.json", "calls", StartTime=day)} == on_day
    assert {
        c["sid"] for c in all_pages(api, "/Calls.json", "calls", **{"StartTime>": day})
    } == since
    assert {
        c["sid"] for c in all_pages(api, "/Calls.json", "calls", **{"StartTime<": day})
    } == until
    moment = "2026-11-03T14:00:00Z"
    exact = {c["sid"] for c in calls if wire_epoch(c["start_time"]) >= wire_epoch_iso(moment)}
    params = {"StartTime>=": moment, "PageSize": 1000}  # '=' encoded into the key also works
    assert {c["sid"] for c in api.get("/Calls.json", params=params).json()["calls"]} == exact
    messages = sim.data.listing("messages").records
    sent = {m["sid"] for m in messages if m["date_sent"] and _day(m["date_sent"]) >= day}
    found = all_pages(api, "/Messages.json", "messages", **{"DateSent>": day})
    assert {m["sid"] for m in found} == sent


def test_datetime_filters_can_be_cut_to_their_date():
    with (
        serve_twilio(make_world(), datetime_filters=False) as twilio,
        httpx.Client(
            base_url=f"{twilio.url}/2010-04-01/Accounts/{ACCOUNT}", auth=(ACCOUNT, TOKEN)
        ) as client,
    ):

        def sids(since: str) -> set[str]:
            params = {"StartTime>": since, "PageSize": 1000}
            return {c["sid"] for c in client.get("/Calls.json", params=params).json()["calls"]}

        assert sids("2026-11-03T14:00:00Z") == sids("2026-11-03")


def _day(text: str) -> str:
    return datetime.strptime(text, "%a, %d %b %Y %H:%M:%S %z").strftime("%Y-%m-%d")


def wire_epoch_iso(text: str) -> int:
    return int(datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp())


def test_equality_filters(sim, api):
    calls = sim.data.listing("calls").records
    parent = next(c for c in calls if c["direction"] == "inbound")
    children = api.get("/Calls.json", params={"ParentCallSid": parent["sid"]}).json()["calls"]
    assert len(children) == sum(c["parent_call_sid"] == parent["sid"] for c in calls)
    caller = api.get("/Calls.json", params={"From": parent["from"], "PageSize": 1000}).json()
    assert caller["calls"] and all(c["from"] == parent["from"] for c in caller["calls"])
    to_office = api.get("/Messages.json", params={"To": parent["to"]}).json()["messages"]
    assert all(m["to"] == parent["to"] for m in to_office)


@pytest.mark.parametrize(
    ("params", "name"),
    [({"StartTime>": "yesterday"}, "StartTime>"), ({"PageSize": "0"}, "PageSize"),
     ({"PageToken": "PAnot-a-sid"}, "PageToken")],
)  # fmt: skip
def test_bad_parameters_are_400_twilio_json(api, params, name):
    response = api.get("/Calls.json", params=params)
    assert response.status_code == 400
    assert response.json()["code"] == 20001 and name in response.json()["message"]


def test_throttle_answers_429_twilio_json_with_or_without_retry_after():
    world = make_world(n_persons=20)
    for retry_after in (None, 2):
        settings = {"requests_per_second": 0.01, "throttle_retry_after": retry_after}
        with serve_twilio(world, **settings) as twilio:
            url = f"{twilio.url}/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
            assert httpx.get(url, auth=(ACCOUNT, TOKEN)).status_code == 200
            throttled = httpx.get(url, auth=(ACCOUNT, TOKEN))
        assert throttled.status_code == 429
        assert throttled.json()["code"] == 20429 and throttled.json()["status"] == 429
        assert throttled.headers.get("retry-after") == (None if retry_after is None else "2")


def test_status_faults_are_twilio_json_with_retry_after(sim, api):
    sim.faults.add(FaultRule(path="^/Calls", kind="status", code=503, retry_after=7, times=1))
    response = api.get("/Calls.json")
    assert response.status_code == 503 and response.headers["retry-after"] == "7"
    assert response.json()["code"] == 20503
    assert api.get("/Calls.json").status_code == 200


def test_truncate_non_json_corrupt_and_shift_faults(sim, api):
    sim.faults.add(FaultRule(path="^/Calls", kind="truncate", times=1))
    with pytest.raises(ValueError):
        api.get("/Calls.json").json()
    sim.faults.add(FaultRule(path="^/Calls", kind="non_json", times=1))
    assert api.get("/Calls.json").headers["content-type"].startswith("text/html")
    sim.faults.add(
        FaultRule(path="^/Messages", kind="corrupt", record_field="date_sent", value="yesterday")
    )
    assert api.get("/Messages.json").json()["messages"][0]["date_sent"] == "yesterday"
    first = api.get("/Calls.json", params={"PageSize": 10}).json()
    sim.faults.add(FaultRule(path="^/Calls", kind="shift", rows=3, times=1))
    second = api.get(first["next_page_uri"].split(ACCOUNT, 1)[1]).json()["calls"]
    assert [c["sid"] for c in second[:3]] == [c["sid"] for c in first["calls"][-3:]]


def test_admin_faults_stats_numbers_and_health(sim, api):
    admin = f"{sim.url}/_sim"
    rule = {"path": "^/Messages", "kind": "status", "code": 500, "times": 2}
    assert httpx.post(f"{admin}/faults", json=[rule]).json() == {"added": 1}
    assert [api.get("/Messages.json").status_code for _ in range(3)] == [500, 500, 200]
    bad = httpx.post(f"{admin}/faults", json=[{"path": "^/", "kind": "status", "code": 200}])
    assert bad.status_code == 400
    stats = httpx.get(f"{admin}/stats").json()["requests"]
    counts = {(s["path"], s["status"]): s["count"] for s in stats}
    assert counts[("/Messages.json", 500)] == 2
    numbers = httpx.get(f"{admin}/numbers").json()
    assert {n["office"] for n in numbers} == {"od_riverside", "cs_bayview"}
    assert httpx.get(f"{admin}/health").json()["status"] == "ok"


def test_admin_export_writes_served_records_and_truth(sim, tmp_path):
    assert httpx.post(f"{sim.url}/_sim/export", json={"dir": str(tmp_path)}).status_code == 200
    calls = pl.read_parquet(tmp_path / "twilio_calls.parquet")
    truth = pl.read_parquet(tmp_path / "truth_twilio_calls.parquet")
    assert calls.height == len(sim.data.listing("calls").records)
    assert set(truth["session_sid"]) <= set(calls["sid"])
    assert truth.schema["start_time"] == pl.Datetime("us", "UTC")
    for name in ("truth_twilio_messages", "twilio_messages", "twilio_numbers", "patients"):
        assert (tmp_path / f"{name}.parquet").exists()


def test_truth_fills_follow_ups_only_once_the_clock_reaches_them():
    log = derive(make_world(), PHONE)
    s = next(x for x in log.sessions if x.callback_at and x.callback_at - x.end > 3600)
    before = wire.truth_calls(log, s.callback_at - 1).filter(pl.col("session_sid") == s.sid)
    after = wire.truth_calls(log, s.callback_at).filter(pl.col("session_sid") == s.sid)
    assert before["callback_sid"].to_list() == [None]
    assert after["callback_sid"].to_list() == [s.callback_sid]
    assert after["ended"].to_list() == [True]


def test_advance_serves_new_calls_and_completes_live_ones():
    world = make_world()
    with serve_twilio(world, phone=BUSY) as twilio:
        live = {s: r for s, r in twilio.served("calls").items() if r["end_time"] is None}
        assert live, "a busy office always has a call going"
        response = httpx.post(f"{twilio.url}/_sim/advance", json={"minutes": 60, "seed": 2})
        assert response.status_code == 200
        after = twilio.served("calls")
    assert len(after) > len(live)
    assert all(after[s]["end_time"] is not None for s in live)
