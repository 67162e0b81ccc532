"""The CareStack simulator: both auth schemes, reference lists, sync feeds and the derived data
(online appointment requests, CS Conversation calls), over real loopback HTTP.

Also holds the helpers the CareStack extract and staging tests share (``serve_carestack``,
``organisation_for``), since tests/conftest.py serves Open Dental only.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import polars as pl
import pytest

from chairside.config import Organisation
from simulators.carestack import data, wire
from simulators.carestack.app import FEEDS, CareStackSimSettings, CareStackSimulator, create_app
from simulators.generate import generate_world
from simulators.server import serve_in_thread
from simulators.world import World, WorldSpec

ACCOUNT = "cs-account-1001"
ACCOUNT_KEY = "test-account-key"
VENDOR_KEY = "test-vendor-key"
CLIENT_ID, CLIENT_SECRET = "test-client", "test-client-secret"
CARESTACK_OFFICES = tuple(o for o in WorldSpec().offices if o.pms == "carestack")
API = wire.API_PREFIX
FEED_PATHS = {
    "patients": "/sync/patients",
    "appointments": "/sync/appointments",
    "appointment_requests": "/sync/appointment-requests",
    "conversation_calls": "/sync/conversation-calls",
}


def carestack_world(n_persons: int = 150, seed: int = 11) -> World:
    return generate_world(WorldSpec(seed=seed, n_persons=n_persons, offices=CARESTACK_OFFICES))


@dataclass
class CareStack:
    world: World
    app: object
    url: str  # server root

    @property
    def sim(self) -> CareStackSimulator:
        return self.app.state.sim

    @property
    def faults(self):
        return self.app.state.faults

    @property
    def stats(self):
        return self.app.state.stats

    def client(self) -> httpx.Client:
        """A client with valid key headers (headers auth mode)."""
        headers = {"VendorKey": VENDOR_KEY, "AccountKey": ACCOUNT_KEY, "AccountId": ACCOUNT}
        return httpx.Client(base_url=f"{self.url}{API}", headers=headers, timeout=10)

    def served(self, feed: str) -> pl.DataFrame:
        """Everything the feed serves now, in serving order (the simulator's own truth)."""
        rows, _ = self.sim.feed(next(f for f in FEEDS if f.name == feed), ACCOUNT)
        return rows.drop(wire.STAMP)


@contextmanager
def serve_carestack(
    world: World, monkeypatch: pytest.MonkeyPatch, **settings
) -> Iterator[CareStack]:
    """The simulator for ``world`` on a free loopback port, with credentials in the env."""
    app = create_app(
        world,
        CareStackSimSettings(
            vendor_key=VENDOR_KEY,
            account_keys={ACCOUNT: ACCOUNT_KEY},
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            **settings,
        ),
    )
    for name, value in (
        ("CS_ACCOUNT_ID", ACCOUNT),
        ("CS_ACCOUNT_KEY", ACCOUNT_KEY),
        ("CS_VENDOR_KEY", VENDOR_KEY),
        ("CS_CLIENT_ID", CLIENT_ID),
        ("CS_CLIENT_SECRET", CLIENT_SECRET),
    ):
        monkeypatch.setenv(name, value)
    with serve_in_thread(app) as server:
        yield CareStack(world, app, server.url)


LOCATIONS = (
    # CareStack calls it "Hillcrest Family Dentistry": a close name, proposed only.
    {"id": "hillcrest", "name": "Hilcrest Family Dental", "connection": "cs_main"},
    {"id": "bayview", "name": "Bayview Dental Care", "connection": "cs_main"},
)


def organisation_for(cs: CareStack, locations=LOCATIONS, **connection_settings) -> Organisation:
    """An organisation with one CareStack connection for the simulated account."""
    settings = {
        "requests_per_second": 500.0,
        "batch_rows": 150,  # small batches, so a sync spans several checkpoints
        "read_timeout_s": 5.0,
        **connection_settings,
    }
    return Organisation.model_validate(
        {
            "id": "test_group",
            "name": "Test Group",
            "connections": [
                {
                    "id": "cs_main",
                    "vendor": "carestack",
                    "base_url": f"{cs.url}{API}",
                    "timezone": "America/Denver",
                    "account_id_env": "CS_ACCOUNT_ID",
                    "account_key_env": "CS_ACCOUNT_KEY",
                    "vendor_key_env": "CS_VENDOR_KEY",
                    "identity_url": cs.url,
                    "client_id_env": "CS_CLIENT_ID",
                    "client_secret_env": "CS_CLIENT_SECRET",
                    **settings,
                }
            ],
            "locations": list(locations),
        }
    )


def read_feed(client: httpx.Client, path: str, since: str | None = None) -> list[dict]:
    """Every page of a sync feed, following continueToken."""
    rows, token = [], None
    while True:
        params = {"continueToken": token} if token else ({"modifiedSince": since} if since else {})
        body = client.get(path, params=params).raise_for_status().json()
        rows += body["results"]
        token = body["continueToken"]
        if not token:
            return rows


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def module_world() -> World:
    return carestack_world()


@pytest.fixture
def carestack(module_world: World, monkeypatch: pytest.MonkeyPatch) -> Iterator[CareStack]:
    with serve_carestack(module_world, monkeypatch, page_size=40) as cs:
        yield cs


# --------------------------------------------------------------------------- auth


def test_key_headers_are_required_and_never_echoed(carestack):
    url = f"{carestack.url}{API}/locations"
    good = {"VendorKey": VENDOR_KEY, "AccountKey": ACCOUNT_KEY, "AccountId": ACCOUNT}
    assert httpx.get(url, headers=good).status_code == 200
    for broken in (
        {},
        {**good, "VendorKey": "wrong-vendor-secret"},
        {**good, "AccountKey": "wrong-account-secret"},
        {**good, "AccountId": "cs-account-9999"},
    ):
        response = httpx.get(url, headers=broken)
        assert response.status_code == 401
        assert "wrong" not in response.text and "9999" not in response.text


def test_oauth_password_grant_tokens_expire_after_their_request_budget(monkeypatch):
    world = carestack_world(n_persons=40)
    with serve_carestack(
        world, monkeypatch, auth_mode="oauth_password", token_max_requests=2, token_ttl_s=900
    ) as cs:
        form = {
            "grant_type": "password",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "username": VENDOR_KEY,
            "password": ACCOUNT_KEY,
        }
        token_url = f"{cs.url}/connect/token"
        assert httpx.post(token_url, data={**form, "client_secret": "x"}).status_code == 401
        refused = httpx.post(token_url, data={**form, "password": "not-the-key"})
        assert (refused.status_code, refused.json()) == (400, {"error": "invalid_grant"})
        granted = httpx.post(token_url, data=form).json()
        assert granted["expires_in"] == 900 and granted["token_type"] == "Bearer"

        bearer = {"Authorization": f"Bearer {granted['access_token']}"}
        url = f"{cs.url}{API}/appointment-status"
        assert [httpx.get(url, headers=bearer).status_code for _ in range(2)] == [200, 200]
        expired = httpx.get(url, headers=bearer)
        assert expired.status_code == 401
        assert 'error="invalid_token"' in expired.headers["WWW-Authenticate"]
        # In this mode the key headers alone do not authenticate.
        keys = {"VendorKey": VENDOR_KEY, "AccountKey": ACCOUNT_KEY, "AccountId": ACCOUNT}
        assert httpx.get(url, headers=keys).status_code == 401


# --------------------------------------------------------------------------- reference lists


def test_reference_lists_map_the_account_offices(carestack):
    with carestack.client() as client:
        locations = client.get("/locations").json()
        statuses = client.get("/appointment-status").json()
        providers = client.get("/providers").json()
        operatories = client.get("/operatories").json()
    assert [(loc["Id"], loc["Name"], loc["TimeZone"]) for loc in locations] == [
        (1, "Hillcrest Family Dentistry", "America/Denver"),
        (2, "Bayview Dental Care", "America/Los_Angeles"),
    ]
    names = [s["Name"] for s in statuses]
    assert "Checked Out" in names and len(set(names)) == len(names)
    assert [s["Id"] for s in statuses] == [i for i, _ in wire.APPOINTMENT_STATUSES]
    world = carestack.world
    assert len(providers) == world.table("providers").height
    assert len(operatories) == world.table("operatories").height
    # Ids are account-wide: slot * ID_STRIDE + the office's own key.
    bayview_ops = world.table("operatories", "cs_bayview")["OperatoryNum"].to_list()
    assert {o["Id"] for o in operatories if o["LocationId"] == 2} == {
        2 * wire.ID_STRIDE + n for n in bayview_ops
    }


def test_new_statuses_and_locations_appear_on_the_next_read(carestack):
    with carestack.client() as client:
        before = client.get("/appointment-status").json()
        admin = httpx.post(
            f"{carestack.url}/_sim/appointment-statuses", json={"name": "Pre-Medicated"}
        ).json()
        added = httpx.post(
            f"{carestack.url}/_sim/locations",
            json={"name": "Hillcrest Kids", "timezone": "America/Denver"},
        ).json()
        after = client.get("/appointment-status").json()
        locations = client.get("/locations").json()
    assert after == [*before, {"Id": len(before) + 1, "Name": "Pre-Medicated", "IsActive": True}]
    assert admin == after[-1:]
    assert locations[-1]["Id"] == 3 and locations[-1]["Name"] == "Hillcrest Kids"
    assert added == locations[-1:]


# --------------------------------------------------------------------------- sync feeds


@pytest.mark.parametrize("feed", sorted(FEED_PATHS))
def test_sync_feeds_page_every_row_once_in_change_order(carestack, feed):
    with carestack.client() as client:
        rows = read_feed(client, FEED_PATHS[feed])
    served = carestack.served(feed)
    assert [r["id"] for r in rows] == served["id"].to_list()
    assert len({r["id"] for r in rows}) == len(rows)
    keys = [(r["lastModifiedOn"], r["id"]) for r in rows]
    assert keys == sorted(keys)


def test_modified_since_filters_on_the_utc_change_stamp(carestack):
    since = "2026-10-25T00:00:00Z"
    with carestack.client() as client:
        rows = read_feed(client, "/sync/appointments", since=since)
        assert client.get("/sync/appointments", params={"modifiedSince": "soon"}).status_code == 400
        assert client.get("/sync/appointments", params={"continueToken": "%%"}).status_code == 400
    served = carestack.served("appointments")
    expected = served.filter(pl.col("lastModifiedOn") >= since)["id"].to_list()
    assert [r["id"] for r in rows] == expected and 0 < len(rows) < served.height


def test_appointment_statuses_follow_the_world(carestack):
    served = carestack.served("appointments")
    names = dict((i, n) for i, n in wire.APPOINTMENT_STATUSES)
    world = carestack.world
    truth = world.table("truth_appointments").select("office", "AptNum", "broken_reason")
    appts = world.table("appointments").join(truth, on=["office", "AptNum"], how="left")
    slot = {o.key: i for i, o in enumerate(CARESTACK_OFFICES, start=1)}
    expected = {}
    for office, apt, status, reason in appts.select(
        "office", "AptNum", "AptStatus", "broken_reason"
    ).iter_rows():
        if status in wire.BOOKED_APT_STATUSES:
            expected[slot[office] * wire.ID_STRIDE + apt] = (status, reason)
    got = dict(zip(served["id"], served["statusId"], strict=True))
    assert got.keys() == expected.keys()  # Planned and PtNote rows are not served
    for key, (status, reason) in expected.items():
        name = names[got[key]]
        if status == "Complete":
            assert name == "Checked Out"
        elif status == "Broken":
            assert name == ("No Show" if reason == "missed" else "Cancelled")
        elif status == "UnschedList":
            assert name == "Unscheduled"
        else:
            assert name in {"Scheduled", "Confirmed", "Left Message", "Checked In"}
    assert {"Checked Out", "No Show", "Cancelled", "Confirmed"} <= {names[s] for s in got.values()}


def test_throttle_answers_429_with_retry_after(monkeypatch):
    world = carestack_world(n_persons=40)
    settings = {"requests_per_second": 0.5, "throttle_burst": 1.0, "throttle_retry_after": 3}
    with serve_carestack(world, monkeypatch, **settings) as cs, cs.client() as client:
        first, second = client.get("/locations"), client.get("/locations")
    assert first.status_code == 200
    assert (second.status_code, second.headers["Retry-After"]) == (429, "3")


# --------------------------------------------------------------------------- derived data


def test_appointment_requests_and_their_truth(carestack):
    world = carestack.world
    rows, truth = data.appointment_requests(world, wire.accounts(world)[ACCOUNT])
    table = rows.join(truth, on="id", how="inner", validate="1:1")
    assert table.height == rows.height == truth.height
    assert set(table["outcome"]) == {"booked", "pending", "dismissed"}
    assert set(table["requester"]) == {"existing_patient", "new_person"}

    booked = table.filter(pl.col("outcome") == "booked")
    appointments = carestack.served("appointments").select(
        appointmentId="id", booked_on="createdOn", patient="patientId"
    )
    joined = booked.join(appointments, on="appointmentId", how="left")
    assert joined["booked_on"].null_count() == 0  # every booked request names a served visit
    assert (joined["createdOn"] < joined["booked_on"]).all()  # asked before it was booked
    assert (joined["lastModifiedOn"] == joined["booked_on"]).all()
    assert (joined["patientId"] == joined["patient"]).all()
    # Some requesters were not patients when they asked and became patients by booking.
    became = booked.filter(pl.col("became_patient"))
    assert became.height > 0 and became["isNewPatient"].all()

    open_ = table.filter(pl.col("outcome") != "booked")
    assert open_["appointmentId"].null_count() == open_.height
    strangers = open_.filter(pl.col("requester") == "new_person")
    assert strangers.height > 0 and strangers["patientId"].null_count() == strangers.height
    assert strangers["person_id"].null_count() == strangers.height
    now = world.now_utc.strftime(wire.UTC_FORMAT)
    pending = table.filter(pl.col("status") == "Pending")
    assert (pending["createdOn"] > _hours_before(now, data.PENDING_HOURS)).all()

    # The form's birth date is optional; a known requester gives their own, rarely mistyped.
    known = _with_person(world, table)
    assert 0.6 <= known["dateOfBirth"].is_not_null().mean() <= 0.9
    given = known.filter(pl.col("dateOfBirth").is_not_null())
    assert (given["dateOfBirth"] != given["birthdate"].cast(pl.String)).mean() <= 0.03


def _hours_before(stamp: str, hours: int) -> str:
    moment = datetime.strptime(stamp, wire.UTC_FORMAT) - timedelta(hours=hours)
    return moment.strftime(wire.UTC_FORMAT)


def _with_person(world: World, table: pl.DataFrame) -> pl.DataFrame:
    """Requests of known persons joined with the person's truth (whose email and phone are
    ``email_true`` and ``phone_true``)."""
    persons = world.table("truth_persons").rename({"email": "email_true", "phone": "phone_true"})
    return table.filter(pl.col("person_id").is_not_null()).join(persons, on="person_id")


def _one_slip(typed: str, true: str) -> bool:
    """``typed`` is ``true`` with one letter substituted, dropped, inserted or swapped with its
    neighbour, the first letter kept."""
    if not typed or not true or typed[0] != true[0] or typed == true:
        return False
    if len(typed) == len(true):
        diff = [i for i, (a, b) in enumerate(zip(typed, true, strict=True)) if a != b]
        swapped = len(diff) == 2 and diff[1] == diff[0] + 1 and typed[diff[0]] == true[diff[1]]
        return len(diff) == 1 or (swapped and typed[diff[1]] == true[diff[0]])
    shorter, longer = sorted((typed, true), key=len)
    if len(longer) - len(shorter) != 1:
        return False
    return any(longer[:i] + longer[i + 1 :] == shorter for i in range(1, len(longer)))


def _typed_name(typed: str, spellings: tuple[str, ...]) -> str | None:
    """How ``typed`` came from one of the true ``spellings`` (None when it did not)."""
    for true in spellings:
        if typed == true:
            return "as is"
        if typed == true.lower():
            return "lower-case"
        if _one_slip(typed.lower(), true.lower()):
            return "slip"
    return None


def _first_name_kind(typed: str, true: str, nickname: str) -> str | None:
    """As _typed_name, or "nickname" when it came from the person's nickname."""
    kind = _typed_name(typed, (true,))
    if kind is None and nickname and _typed_name(typed, (nickname,)):
        return "nickname"
    return kind


PHONE_FORMATS = {
    r"^\(\d{3}\) \d{3}-\d{4}$", r"^\d{3}-\d{3}-\d{4}$", r"^\d{10}$", r"^\+1 \d{3} \d{3} \d{4}$",
}  # fmt: skip


def test_requests_are_what_people_type_into_a_booking_form():
    """Known requesters type their own details with bounded noise (nicknames, slips, lower case,
    a cell the office lacks, a made-up email, a missing or mistyped birth date): the truth
    frame still names the person, so matching can be scored against it."""
    world = carestack_world(n_persons=1000)  # enough requesters for the shares to mean something
    rows, truth = data.appointment_requests(world, wire.accounts(world)[ACCOUNT])
    table = rows.join(truth, on="id", validate="1:1")
    known = _with_person(world, table)
    assert known.height >= 250

    first = [
        _first_name_kind(typed, true, nickname)
        for typed, true, nickname in known.select("firstName", "first_name", "nickname").iter_rows()
    ]
    assert None not in first  # every first name is the person's, as typed
    assert 0.05 <= sum(kind != "as is" for kind in first) / len(first) <= 0.30
    assert {"nickname", "lower-case", "slip"} <= set(first)
    last = [
        _typed_name(t, (true,)) for t, true in known.select("lastName", "last_name").iter_rows()
    ]
    assert None not in last
    assert 0.01 <= sum(kind != "as is" for kind in last) / len(last) <= 0.12

    # Phones in the usual formats; mostly the household's, sometimes a cell the office lacks.
    assert all(any(re.match(f, phone) for f in PHONE_FORMATS) for phone in table["phone"])
    assert sum(any(re.match(f, phone) for phone in table["phone"]) for f in PHONE_FORMATS) >= 3
    digits = known["phone"].str.replace_all(r"\D", "").str.replace(r"^1(\d{10})$", "$1")
    assert (digits.str.len_chars() == 10).all()
    assert 0.85 <= (digits == known["phone_true"]).mean() <= 0.97

    # Often the person's own email, else a made-up one.
    with_email = known.filter(pl.col("email_true") != "")
    assert 0.45 <= (with_email["email"] == with_email["email_true"]).mean() <= 0.75
    assert table["email"].str.contains("@").all()

    # Birth dates: on most requests; a known person's is theirs, rarely mistyped (day and
    # month swapped, or the day one off).
    assert 0.6 <= table["dateOfBirth"].is_not_null().mean() <= 0.9
    given = known.filter(pl.col("dateOfBirth").is_not_null())
    typed_dob = given["dateOfBirth"].str.to_date()
    wrong = given.filter(typed_dob != given["birthdate"])
    assert wrong.height <= 0.03 * given.height
    for typed, true in wrong.select(pl.col("dateOfBirth").str.to_date(), "birthdate").iter_rows():
        assert (typed.month, typed.day) == (true.day, true.month) or (
            typed.month == true.month and abs(typed.day - true.day) == 1
        )
    strangers = table.filter(pl.col("person_id").is_null() & pl.col("dateOfBirth").is_not_null())
    age = pl.col("createdOn").str.slice(0, 10).str.to_date() - pl.col("dateOfBirth").str.to_date()
    years = strangers.select(age.dt.total_days() / 365.25).to_series()
    assert strangers.height > 0 and years.min() >= 18 and years.max() <= 86

    # No random state: the same world, built again, renders the same requests.
    twin = carestack_world(n_persons=1000)
    assert data.appointment_requests(twin, wire.accounts(twin)[ACCOUNT])[0].equals(rows)


def test_conversation_calls_summaries_only_for_long_calls_and_voicemails(carestack):
    world = carestack.world
    rows, truth = data.conversation_calls(world, wire.accounts(world)[ACCOUNT])
    assert set(rows["callType"]) == set(data.CALL_TYPES)
    talk = pl.col("callType").is_in(["Call Made", "Call Received", "Voicemail"])
    should = talk & (pl.col("duration") > data.SUMMARY_MIN_SECONDS)
    checked = rows.select(
        should=should,
        summary=pl.col("summary").is_not_null(),
        rec=pl.col("recordingUrl").is_not_null(),
    )
    assert (checked["should"] == checked["summary"]).all()
    assert (checked["should"] == checked["rec"]).all()
    # The rule is not just "long": long missed and unanswered calls still have no summary.
    assert rows.filter(~talk & (pl.col("duration") > 20)).height > 0
    assert rows.filter(talk & (pl.col("duration") <= 20)).height > 0

    table = rows.join(truth, on="id", validate="1:1")
    outcomes = {
        "Call Made": "answered", "Call Received": "answered", "Call Attempted": "no_answer",
        "Missed Call": "missed", "Voicemail": "voicemail",
    }  # fmt: skip
    assert all(outcomes[t] == o for t, o in table.select("callType", "outcome").iter_rows())
    # A patient's call comes from the person's own phone; some callers are nobody's patient.
    persons = world.table("truth_persons").select("person_id", "phone")
    known = table.filter(pl.col("person_id").is_not_null()).join(persons, on="person_id")
    assert (known["phoneNumber"] == "+1" + known["phone"]).all()
    assert table.filter(pl.col("patientId").is_null()).height > 0
    assert set(table["reason"]) >= {"cancel", "no_show", "balance", "callback"}
    returned = table.filter(pl.col("returns_call_id").is_not_null())
    assert returned["returns_call_id"].is_in(table["id"].implode()).all()


def test_changes_after_the_world_advances_are_stamped_after_the_old_clock(monkeypatch):
    """Incremental correctness: a row that differs after advancing carries a newer stamp, and
    derived rows keep their ids and values otherwise."""
    world = carestack_world(n_persons=120, seed=5)
    with serve_carestack(world, monkeypatch) as cs:
        before = {feed: cs.served(feed) for feed in FEED_PATHS}
        old_now = world.now_utc.strftime(wire.UTC_FORMAT)
        world.advance(timedelta(days=3), seed=9)
        for feed in FEED_PATHS:
            after = cs.served(feed)
            old = {r["id"]: r for r in before[feed].to_dicts()}
            new = {r["id"]: r for r in after.to_dicts()}
            assert old.keys() <= new.keys(), feed
            changed = [k for k in old if old[k] != new[k]]
            assert all(new[k]["lastModifiedOn"] > old_now for k in changed), feed
            added = new.keys() - old.keys()
            assert added, feed
            assert all(new[k]["lastModifiedOn"] > old_now for k in added), feed


def test_export_writes_served_feeds_and_derived_truth(carestack, tmp_path: Path):
    response = httpx.post(f"{carestack.url}/_sim/export", json={"dir": str(tmp_path)})
    assert response.status_code == 200
    for name in (*FEED_PATHS, "locations", "appointment_statuses"):
        assert (tmp_path / f"carestack_{name}.parquet").exists(), name
    for name in ("appointment_requests", "conversation_calls"):
        truth = pl.read_parquet(tmp_path / f"truth_carestack_{name}.parquet")
        assert truth.height == pl.read_parquet(tmp_path / f"carestack_{name}.parquet").height
    assert (tmp_path / "truth_persons.parquet").exists()
