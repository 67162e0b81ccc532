"""The NexHealth simulator speaks the documented Synchronizer API contract over loopback HTTP."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import polars as pl
import pytest

from simulators.generate import generate_world
from simulators.nexhealth import data
from simulators.nexhealth.app import NexHealthSimSettings, create_app
from simulators.server import serve_in_thread
from simulators.world import OfficeSpec, World, WorldSpec

API_KEY = "test-nexhealth-key"
SUBDOMAIN = "demo-dental-group"
VERSION = {"Nex-Api-Version": "v20240412"}
# The NexHealth offices of the default group (one institution, two Dentrix locations).
NEXHEALTH_OFFICES = tuple(o for o in WorldSpec().offices if o.pms == "nexhealth")
ELSEWHERE = OfficeSpec(
    key="nx_elsewhere",
    name="Elsewhere Dental",
    timezone="America/Denver",
    customer_key="other-group",
    pms="nexhealth",
)
WINDOW = {"start": "2000-01-01T00:00:00Z", "end": "2100-01-01T00:00:00Z"}


def nexhealth_world(n_persons: int = 120, offices=NEXHEALTH_OFFICES) -> World:
    return generate_world(WorldSpec(seed=11, n_persons=n_persons, offices=offices))


@dataclass
class NexHealth:
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
    def simulator(self):
        return self.app.state.simulator

    def requests(self, path: str, status: int) -> int:
        return sum(
            row["count"]
            for row in self.stats.snapshot()
            if row["path"] == path and row["status"] == status
        )


@contextmanager
def serve_nexhealth(world: World, **settings) -> Iterator[NexHealth]:
    """The simulator for ``world`` on a free loopback port (unthrottled unless told)."""
    settings = {
        "requests_per_second": None,
        "appointments_requests_per_second": None,
        "api_keys": {API_KEY: None},
        **settings,
    }
    app = create_app(world, NexHealthSimSettings(**settings))
    with serve_in_thread(app) as server:
        yield NexHealth(world, app, server.url)


def to_utc(local: datetime, timezone: str) -> datetime:
    """Office wall time -> UTC (Python's fold=0: first pass of a repeated hour)."""
    return local.replace(tzinfo=ZoneInfo(timezone)).astimezone(UTC)


def iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def location_of(world: World, office: str) -> int:
    keys = [o.key for o in world.spec.offices]
    return data.LOCATION_ID_BASE + keys.index(office)


@pytest.fixture(scope="module")
def nx() -> Iterator[NexHealth]:
    world = nexhealth_world(offices=(*NEXHEALTH_OFFICES, ELSEWHERE))
    keys = {API_KEY: (SUBDOMAIN,), "key-for-everything": None}
    with serve_nexhealth(world, api_keys=keys) as served:
        yield served


@pytest.fixture(scope="module")
def api(nx: NexHealth) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=nx.url, headers=VERSION, timeout=10) as client:
        token = client.post("/authenticates", headers={"Authorization": API_KEY}).json()
        client.headers["Authorization"] = f"Bearer {token['data']['token']}"
        yield client


def get(api: httpx.Client, path: str, **params) -> httpx.Response:
    return api.get(path, params={"subdomain": SUBDOMAIN, **params})


def page_through(api: httpx.Client, path: str, per_page: int = 7, **params) -> list[dict]:
    rows, cursor = [], None
    while True:
        extra = {"end_cursor": cursor} if cursor else {}
        body = get(api, path, per_page=per_page, **params, **extra).json()
        rows.extend(body["data"])
        if not body["page_info"]["has_next_page"]:
            return rows
        cursor = body["page_info"]["end_cursor"]


# --------------------------------------------------------------------------- auth and scoping


def test_authenticate_issues_a_bearer_token_and_everything_else_needs_it(nx):
    with httpx.Client(base_url=nx.url, headers=VERSION) as client:
        answer = client.post("/authenticates", headers={"Authorization": API_KEY})
        assert answer.status_code == 201
        body = answer.json()
        assert (
            body["code"] is True and body["error"] == [] and isinstance(body["data"]["token"], str)
        )
        token = body["data"]["token"]
        ok = client.get("/locations", params={"subdomain": SUBDOMAIN},
                        headers={"Authorization": f"Bearer {token}"})  # fmt: skip
        assert ok.status_code == 200

        for headers in ({}, {"Authorization": API_KEY}, {"Authorization": "Bearer not-a-token"}):
            refused = client.get("/locations", params={"subdomain": SUBDOMAIN}, headers=headers)
            assert refused.status_code == 401
            assert refused.json()["code"] is False and refused.json()["error"]
        wrong = client.post("/authenticates", headers={"Authorization": "wrong-key"})
        assert wrong.status_code == 401 and "wrong-key" not in wrong.text


def test_expired_tokens_answer_401_until_the_client_authenticates_again(nx):
    with httpx.Client(base_url=nx.url, headers=VERSION) as client:
        token = client.post("/authenticates", headers={"Authorization": API_KEY}).json()
        headers = {"Authorization": f"Bearer {token['data']['token']}"}
        params = {"subdomain": SUBDOMAIN}
        assert client.get("/locations", params=params, headers=headers).status_code == 200
        assert client.post(f"{nx.url}/_sim/tokens/expire").json()["expired"] >= 1
        assert client.get("/locations", params=params, headers=headers).status_code == 401
        fresh = client.post("/authenticates", headers={"Authorization": API_KEY}).json()
        headers = {"Authorization": f"Bearer {fresh['data']['token']}"}
        assert client.get("/locations", params=params, headers=headers).status_code == 200


def test_token_lifetime_is_a_setting():
    with (
        serve_nexhealth(nexhealth_world(40), token_ttl_s=0.2) as short,
        httpx.Client(base_url=short.url, headers=VERSION) as client,
    ):
        token = client.post("/authenticates", headers={"Authorization": API_KEY}).json()
        headers = {"Authorization": f"Bearer {token['data']['token']}"}
        time.sleep(0.3)
        expired = client.get("/locations", params={"subdomain": SUBDOMAIN}, headers=headers)
    assert expired.status_code == 401


def test_version_subdomain_and_location_rules(nx, api):
    assert api.get("/locations", params={"subdomain": SUBDOMAIN},
                   headers={"Nex-Api-Version": "v9"}).status_code == 400  # fmt: skip
    unversioned = httpx.Client(
        base_url=nx.url, headers={"Authorization": api.headers["Authorization"]}
    )
    with unversioned:
        assert unversioned.get("/locations", params={"subdomain": SUBDOMAIN}).status_code == 400
    assert api.get("/patients", params={"location_id": 100}).status_code == 400  # no subdomain
    # The key may not see the other institution, nor one that does not exist: 403.
    assert get(api, "/locations", subdomain="other-group").status_code == 403
    assert get(api, "/locations", subdomain="no-such-group").status_code == 403
    missing = get(api, "/patients")
    assert missing.status_code == 400 and missing.json()["error"] == [
        "Missing parameter location_id"
    ]
    elsewhere = location_of(nx.world, "nx_elsewhere")
    assert get(api, "/patients", location_id=elsewhere).status_code == 404
    window = get(api, "/appointments", location_id=100)
    assert window.status_code == 400
    assert window.json()["error"] == ["Missing parameter start", "Missing parameter end"]
    assert get(api, "/patients", location_id=100, end_cursor="%%%").status_code == 400


def test_locations_are_nested_under_their_institution_with_stable_ids_and_their_pms(nx, api):
    body = get(api, "/locations").json()
    assert body["code"] is True and body["count"] == 1
    [institution] = body["data"]
    assert institution["subdomain"] == SUBDOMAIN
    assert institution["id"] == data.institution_id(SUBDOMAIN)
    locations = {loc["id"]: loc for loc in institution["locations"]}
    assert set(locations) == {location_of(nx.world, o.key) for o in NEXHEALTH_OFFICES}
    for office in NEXHEALTH_OFFICES:
        location = locations[location_of(nx.world, office.key)]
        assert location["name"] == office.name and location["tz"] == office.timezone
        assert location["foreign_id_type"] == f"msg-dentrix-DataSource-{location['id']}"
    # Without a subdomain: every institution the key may see (this key: one).
    assert [i["subdomain"] for i in api.get("/locations").json()["data"]] == [SUBDOMAIN]


def test_the_pms_behind_a_location_is_a_setting():
    world = nexhealth_world(40)
    with serve_nexhealth(world, ehr_by_office={"nx_pinegrove": "eaglesoft"}) as served:
        sim = served.simulator
    by_office = {loc.office: loc.foreign_id_type for loc in sim.locations}
    assert by_office["nx_oakridge"].startswith("msg-dentrix-")
    assert by_office["nx_pinegrove"].startswith("msg-eaglesoft-")


# --------------------------------------------------------------------------- paging and filters


def test_cursor_paging_returns_every_record_once_in_id_order(nx, api):
    location = location_of(nx.world, "nx_oakridge")
    rows = page_through(api, "/patients", location_id=location)
    ids = [row["id"] for row in rows]
    patnums = nx.world.table("patients", "nx_oakridge")["PatNum"].sort().to_list()
    assert ids == [data.nex_id(location, p) for p in patnums]

    first = get(api, "/patients", location_id=location, per_page=7).json()
    assert first["page_info"]["has_previous_page"] is False
    assert "count" not in first  # cursor-paged lists carry page_info, not count
    second = get(api, "/patients", location_id=location, per_page=7,
                 end_cursor=first["page_info"]["end_cursor"]).json()  # fmt: skip
    assert second["page_info"]["has_previous_page"] is True
    back = get(api, "/patients", location_id=location, per_page=7,
               start_cursor=second["page_info"]["start_cursor"]).json()  # fmt: skip
    assert back["data"] == first["data"]
    # per_page is capped at 1000, and defaults to 5 (OAS).
    assert len(get(api, "/patients", location_id=location, per_page=5000).json()["data"]) == len(
        ids
    )
    assert len(get(api, "/patients", location_id=location).json()["data"]) == 5


def test_updated_since_and_sort_on_updated_at(nx, api):
    location = location_of(nx.world, "nx_pinegrove")
    since = datetime(2026, 10, 1, tzinfo=UTC)
    rows = page_through(
        api, "/patients", location_id=location, updated_since="2026-10-01T00:00:00Z"
    )
    patients = nx.world.table("patients", "nx_pinegrove")
    expected = {
        data.nex_id(location, n)
        for n, stamp in patients.select("PatNum", "DateTStamp").iter_rows()
        if to_utc(stamp, "America/Chicago") >= since
    }
    assert {row["id"] for row in rows} == expected and expected
    newest = get(api, "/patients", location_id=location, sort="-updated_at", per_page=1).json()
    stamps = [to_utc(s, "America/Chicago") for s in patients["DateTStamp"]]
    assert newest["data"][0]["updated_at"] == iso(max(stamps))
    ascending = page_through(api, "/payments", location_id=location, sort="updated_at")
    assert [r["updated_at"] for r in ascending] == sorted(r["updated_at"] for r in ascending)


# --------------------------------------------------------------------------- the world as NexHealth


def test_appointments_carry_booleans_derived_from_the_world(nx, api):
    office, tz = "nx_oakridge", "America/New_York"
    location = location_of(nx.world, office)
    served = {r["id"]: r for r in page_through(api, "/appointments", 200, location_id=location,
                                               **WINDOW)}  # fmt: skip
    appointments = nx.world.table("appointments", office).join(
        nx.world.table("truth_appointments", office).drop("office"), on="AptNum"
    )
    confirmed_def = nx.world.table("definitions", office).filter(
        (pl.col("Category") == 2) & (pl.col("ItemName") == "Appointment Confirmed")
    )["DefNum"][0]
    shown = appointments.filter(~pl.col("AptStatus").is_in(["Planned", "UnschedList"]))
    assert set(served) == {data.nex_id(location, n) for n in shown["AptNum"]}
    assert len(shown) < len(appointments)  # planned / unscheduled-list rows are not on it
    for row in shown.iter_rows(named=True):
        record = served[data.nex_id(location, row["AptNum"])]
        status, reason = row["AptStatus"], row["broken_reason"]
        start = to_utc(row["AptDateTime"], tz)
        assert record["start_time"] == iso(start)
        assert record["end_time"] == iso(start + timedelta(minutes=5 * len(row["Pattern"])))
        assert record["updated_at"] == iso(to_utc(row["DateTStamp"], tz))
        assert record["cancelled"] == (status == "Broken" and reason == "cancelled")
        assert record["patient_missed"] == (status == "Broken" and reason == "missed")
        assert (record["cancelled_at"] is not None) == record["cancelled"]
        assert record["checked_out"] == (status == "Complete")
        assert record["unavailable"] == status.startswith("PtNote")
        assert record["confirmed"] == (row["Confirmed"] == confirmed_def)
        arrived = row["DateTimeArrived"]
        assert record["checkin_at"] == (iso(to_utc(arrived, tz)) if arrived else None)
        assert record["patient_id"] == data.nex_id(location, row["PatNum"])
        assert (record["appointment_type_id"] == 0) == record["unavailable"]
    statuses = {(r["cancelled"], r["patient_missed"], r["checked_out"]) for r in served.values()}
    assert {(True, False, False), (False, True, False), (False, False, True)} <= statuses
    # The window filters on start_time.
    future = page_through(api, "/appointments", 200, location_id=location,
                          start="2026-11-01T15:00:00Z", end="2100-01-01T00:00:00Z")  # fmt: skip
    assert future and all(r["start_time"] >= "2026-11-01T15:00:00.000Z" for r in future)
    assert len(future) < len(served)


def test_patients_and_payments_in_nexhealth_shape(nx, api):
    office, tz = "nx_pinegrove", "America/Chicago"
    location = location_of(nx.world, office)
    patients = {r["id"]: r for r in page_through(api, "/patients", 200, location_id=location)}
    for row in nx.world.table("patients", office).iter_rows(named=True):
        record = patients[data.nex_id(location, row["PatNum"])]
        assert record["first_name"] == row["FName"] and record["last_name"] == row["LName"]
        assert record["foreign_id"] == str(row["PatNum"])
        assert record["guarantor_id"] == data.nex_id(location, row["Guarantor"])
        birthdate = row["Birthdate"]
        assert record["bio"]["date_of_birth"] == (birthdate.isoformat() if birthdate else None)
        assert record["bio"]["gender"] == (None if row["Gender"] == "Unknown" else row["Gender"])
        assert record["inactive"] == (row["PatStatus"] in {"Inactive", "Archived", "Deleted",
                                                            "Deceased"})  # fmt: skip
        assert record["location_ids"] == [location]
    payments = {r["id"]: r for r in page_through(api, "/payments", 200, location_id=location)}
    world_payments = nx.world.table("payments", office)
    assert len(payments) == len(world_payments)
    for row in world_payments.iter_rows(named=True):
        record = payments[data.nex_id(location, row["PayNum"])]
        # Payments lower the balance: NexHealth shows them negative, as exact decimal text.
        assert record["payment_amount"] == {"amount": f"{-row['PayAmt']:.2f}", "currency": "USD"}
        assert record["paid_at"] == row["PayDate"].isoformat()
        assert record["updated_at"] == iso(to_utc(row["SecDateTEdit"], tz))


def test_advancing_the_world_shows_new_and_edited_records(nx, api):
    location = location_of(nx.world, "nx_oakridge")

    def stamps() -> dict[int, str]:
        rows = page_through(api, "/appointments", 500, location_id=location, **WINDOW)
        return {r["id"]: r["updated_at"] for r in rows}

    before = stamps()
    nx.world.advance(timedelta(days=2), seed=3)
    after = stamps()
    assert set(after) > set(before)
    assert any(after[i] != stamp for i, stamp in before.items())
    changed = page_through(api, "/appointments", 500, location_id=location,
                           updated_since="2026-11-01T15:00:00Z", **WINDOW)  # fmt: skip
    assert {r["id"] for r in changed} == {
        i for i, stamp in after.items() if stamp >= "2026-11-01T15:00:00.000Z"
    }


# --------------------------------------------------------------------------- limits and faults


def test_throttling_is_per_key_with_a_lower_rate_for_appointments():
    world = nexhealth_world(40)
    limits = {"appointments_requests_per_second": 0.5, "throttle_retry_after": 2,
              "api_keys": {API_KEY: None, "second-key": None}}  # fmt: skip
    params = {"subdomain": SUBDOMAIN, "location_id": 100, **WINDOW}
    with serve_nexhealth(world, **limits) as served:
        first, second = (httpx.Client(base_url=served.url, headers=VERSION) for _ in range(2))
        with first, second:
            for client, key in ((first, API_KEY), (second, "second-key")):
                token = client.post("/authenticates", headers={"Authorization": key}).json()
                client.headers["Authorization"] = f"Bearer {token['data']['token']}"
            assert first.get("/appointments", params=params).status_code == 200
            throttled = first.get("/appointments", params=params)
            assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "2"
            assert throttled.json()["code"] is False
            assert second.get("/appointments", params=params).status_code == 200  # own bucket
            assert first.get("/patients", params=params).status_code == 200  # other endpoint


def test_fault_rules_reach_the_envelope_and_its_records(nx, api):
    location = location_of(nx.world, "nx_oakridge")
    admin = httpx.post(f"{nx.url}/_sim/faults", json=[
        {"path": "^/operatories", "kind": "status", "code": 503, "retry_after": 1},
        {"path": "^/operatories", "kind": "corrupt", "record_field": "name", "value": 7},
        {"path": "^/operatories", "kind": "corrupt", "record_field": "envelope.data", "value": []},
        {"path": "^/operatories", "kind": "shift", "rows": 2, "skip": 1},
    ])  # fmt: skip
    assert admin.json() == {"added": 4}
    try:
        down = get(api, "/operatories", location_id=location)
        assert down.status_code == 503 and down.headers["Retry-After"] == "1"
        corrupted = get(api, "/operatories", location_id=location).json()
        assert corrupted["data"][0]["name"] == 7
        empty = get(api, "/operatories", location_id=location, per_page=3).json()
        assert empty["data"] == [] and empty["page_info"]["has_next_page"] is True
        first = get(api, "/operatories", location_id=location, per_page=3).json()
        shifted = get(api, "/operatories", location_id=location, per_page=3,
                      end_cursor=first["page_info"]["end_cursor"]).json()  # fmt: skip
        assert [r["id"] for r in shifted["data"]][:2] == [r["id"] for r in first["data"]][1:]
    finally:
        httpx.delete(f"{nx.url}/_sim/faults")


def test_export_writes_the_world_and_the_records_as_served(nx, tmp_path):
    answer = httpx.post(f"{nx.url}/_sim/export", json={"dir": str(tmp_path)}, timeout=30)
    assert answer.status_code == 200
    assert (tmp_path / "truth_appointments.parquet").exists()
    for entity in ("locations", "appointment_types", "providers", "operatories", "patients",
                   "appointments", "payments"):  # fmt: skip
        frame = pl.read_parquet(tmp_path / f"nexhealth_{entity}.parquet")
        assert frame.height > 0 and "id" in frame.columns
        assert not [c for c in frame.columns if c.startswith("_")]
    patients = pl.read_parquet(tmp_path / "nexhealth_patients.parquet")
    assert patients.height == nx.world.table("patients").height
    assert "date_of_birth" in patients.schema["bio"].to_schema()


def test_simulator_files_need_no_other_vendor(tmp_path):
    # The default world serves NexHealth offices only: Open Dental offices are not locations.
    world = generate_world(WorldSpec(seed=3, n_persons=40))
    with serve_nexhealth(world) as served:
        offices = {loc.office for loc in served.simulator.locations}
    assert offices == {o.key for o in world.offices_on("nexhealth")}
    assert Path(data.__file__).parent.name == "nexhealth"
