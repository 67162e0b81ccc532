"""The Open Dental simulator speaks the documented remote-API contract, over real loopback HTTP."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from email.utils import parsedate_to_datetime

import httpx
import polars as pl
import pytest

from simulators.faults import FaultRule
from simulators.opendental.app import OpenDentalSimSettings, create_app
from simulators.server import serve_in_thread
from simulators.world import World, WorldSpec

DEV_KEY = "test-developer-key"
RIVERSIDE, LAKESIDE = "cust-riverside", "cust-lakeside"
BASE = datetime(2026, 10, 1, 8, 0)
N_RIVERSIDE_PATIENTS = 250

S, N, F, B, D, DT = pl.String, pl.Int64, pl.Float64, pl.Boolean, pl.Date, pl.Datetime("us")

SCHEMAS: dict[str, dict[str, pl.DataType]] = {
    "definitions": {
        "office": S, "DefNum": N, "Category": N, "ItemName": S, "ItemValue": S,
        "ItemOrder": N, "IsHidden": B,
    },
    "clinics": {
        "office": S, "ClinicNum": N, "Description": S, "Abbr": S, "Address": S, "Address2": S,
        "City": S, "State": S, "Zip": S, "Phone": S, "IsHidden": B,
    },
    "providers": {
        "office": S, "ProvNum": N, "Abbr": S, "LName": S, "FName": S, "Suffix": S,
        "Specialty": S, "IsSecondary": B, "IsHidden": B, "NationalProvID": S, "DateTStamp": DT,
        "IsNotPerson": B, "ProvStatus": S,
    },
    "operatories": {
        "office": S, "OperatoryNum": N, "OpName": S, "Abbrev": S, "IsHidden": B,
        "ProvDentist": N, "ProvHygienist": N, "IsHygiene": B, "ClinicNum": N,
    },
    "patients": {
        "office": S, "PatNum": N, "LName": S, "FName": S, "MiddleI": S, "Preferred": S,
        "PatStatus": S, "Gender": S, "Position": S, "Birthdate": D, "Address": S,
        "Address2": S, "City": S, "State": S, "Zip": S, "HmPhone": S, "WkPhone": S,
        "WirelessPhone": S, "Guarantor": N, "Email": S, "EstBalance": F, "BalTotal": F,
        "PriProv": N, "SecProv": N, "BillingType": S, "ChartNumber": S, "DateFirstVisit": D,
        "ClinicNum": N, "PreferConfirmMethod": S, "PreferContactMethod": S,
        "PreferRecallMethod": S, "Language": S, "TxtMsgOk": S, "DateTStamp": DT,
        "SuperFamily": N, "SecDateEntry": D,
    },
    "appointments": {
        "office": S, "AptNum": N, "PatNum": N, "AptStatus": S, "Pattern": S, "Confirmed": N,
        "Op": N, "Note": S, "ProvNum": N, "ProvHyg": N, "AptDateTime": DT, "NextAptNum": N,
        "UnschedStatus": N, "IsNewPatient": B, "ProcDescript": S, "ClinicNum": N,
        "IsHygiene": B, "DateTStamp": DT, "DateTimeArrived": DT, "DateTimeSeated": DT,
        "DateTimeDismissed": DT, "AppointmentTypeNum": N, "SecDateTEntry": DT, "Priority": S,
    },
    "payments": {
        "office": S, "PayNum": N, "PayType": N, "PayDate": D, "PayAmt": F, "CheckNum": S,
        "BankBranch": S, "PayNote": S, "PatNum": N, "ClinicNum": N, "DateEntry": D,
        "DepositNum": N, "IsRecurringCC": B, "SecDateTEdit": DT, "PaymentSource": S,
        "ProcessStatus": S,
    },
    "paysplits": {
        "office": S, "SplitNum": N, "SplitAmt": F, "PatNum": N, "PayNum": N, "ProvNum": N,
        "PayPlanNum": N, "DatePay": D, "ProcNum": N, "DateEntry": D, "UnearnedType": N,
        "ClinicNum": N, "SecDateTEdit": DT, "AdjNum": N,
    },
    "adjustments": {
        "office": S, "AdjNum": N, "AdjDate": D, "AdjAmt": F, "PatNum": N, "AdjType": N,
        "ProvNum": N, "AdjNote": S, "ProcDate": D, "ProcNum": N, "DateEntry": D,
        "ClinicNum": N, "SecUserNumEntry": N, "SecDateTEdit": DT,
    },
    "commlogs": {
        "office": S, "CommlogNum": N, "PatNum": N, "CommDateTime": DT, "CommType": N,
        "Note": S, "Mode_": S, "SentOrReceived": S, "UserNum": N, "DateTStamp": DT,
        "CommSource": S, "DateTEntry": DT,
    },
    "truth_persons": {"person_id": N, "office": S, "PatNum": N},
}  # fmt: skip


def _frame(table: str, rows: list[tuple]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=SCHEMAS[table], orient="row")


def _patient(office: str, n: int, lname: str, stamp: datetime) -> tuple:
    birthdate = None if n % 10 == 0 else date(1980, 1, 1) + timedelta(days=n)
    return (
        office, n, lname, f"First{n}", "", "", "Patient" if n % 7 else "Inactive", "Female",
        "Single", birthdate, "1 Main St", None, "Town", "NY", "10001", "", "", "555-0100",
        n, "", 10.5, 20.0, 1, 0, "Standard", "", None, 1, "None", "HmPhone", "None", "eng",
        "Unknown", stamp, 0, date(2020, 1, 1),
    )  # fmt: skip


def make_tables() -> dict[str, pl.DataFrame]:
    r, lk = "od_riverside", "od_lakeside"
    t0 = BASE
    return {
        "definitions": _frame("definitions", [
            (r, 1, 2, "Unconfirmed", "", 0, False),
            (r, 2, 2, "Appointment Confirmed", "", 1, False),
            (r, 5, 1, "Misc Pos Adjustment", "+", 0, False), (r, 6, 1, "Write Off", "-", 1, False),
            (r, 7, 27, "ApptRelated", "", 0, False), (r, 8, 27, "Financial", "", 1, True),
            (r, 69, 10, "Check", "", 0, False), (r, 70, 10, "Cash", "", 1, False),
            (lk, 1, 2, "Unconfirmed", "", 0, False), (lk, 69, 10, "Cheque", "", 0, False),
        ]),
        "clinics": _frame("clinics", [
            (r, 1, "Riverside Family", "RF", "1 River Rd", "", "Albany", "NY", "12201", "", False),
            (r, 2, "Riverside Kids", "RK", "2 River Rd", "", "Albany", "NY", "12201", "", False),
            (r, 3, "Old Clinic", "OC", "", "", "", "", "", "", True),
        ]),
        "providers": _frame("providers", [
            (r, 1, "DOC1", "Smith", "Ann", "DDS", "General", False, False, "1", t0, False,
             "Active"),
            (r, 2, "HYG1", "Jones", "Bo", "", "Hygienist", True, False, "", t0 + timedelta(days=9),
             False, "Active"),
            (lk, 1, "LDOC", "Lake", "Cy", "DMD", "General", False, False, "", t0, False, "Active"),
        ]),
        "operatories": _frame("operatories", [
            (r, 1, "Op 1", "O1", False, 1, 0, False, 1),
            (r, 2, "Hyg 1", "H1", False, 0, 2, True, 2),
            (lk, 1, "Lake Op", "L1", False, 1, 0, False, 0),
        ]),
        "patients": _frame("patients", [
            _patient(r, n, "Riverson" if n % 2 else "Brook", t0 + timedelta(hours=n // 2))
            for n in range(1, N_RIVERSIDE_PATIENTS + 1)
        ] + [_patient(lk, n, "Laker", t0) for n in (1, 2, 3)]),
        "appointments": _frame("appointments", [
            (r, 10, 1, "Complete", "//XX//", 2, 1, "cleaning", 1, 2, datetime(2026, 10, 5, 9, 0),
             0, 0, True, "PA, BWX", 1, True, t0, datetime(2026, 10, 5, 8, 55),
             datetime(2026, 10, 5, 9, 2), datetime(2026, 10, 5, 9, 50), 0, t0, "Normal"),
            (r, 11, 2, "Scheduled", "/XX/", 1, 2, "", 2, 0, datetime(2026, 10, 6, 23, 30), 0, 0,
             False, "", 2, False, t0, None, None, None, 0, t0, "Normal"),
            (r, 12, 3, "Broken", "/X/", 1, 1, "", 1, 0, datetime(2026, 10, 7, 10, 0), 0, 0,
             False, "", 1, False, t0, None, None, None, 0, t0, "ASAP"),
        ]),
        "payments": _frame("payments", [
            (r, 1, 69, date(2026, 10, 1), 339.0, "101", "", "", 1, 1, date(2026, 10, 1), 0,
             False, t0, "None", "OfficeProcessed"),
            (r, 2, 70, date(2026, 10, 5), 12.5, "", "", "", 2, 0, date(2026, 10, 5), 0, False,
             t0, "None", "OfficeProcessed"),
            (r, 3, 70, date(2026, 10, 10), 12.25, "", "", "", 1, 2, date(2026, 10, 10), 0,
             True, t0, "XWeb", "OnlineProcessed"),
        ]),
        "paysplits": _frame("paysplits", [
            (r, 1, 339.0, 1, 1, 1, 0, date(2026, 10, 1), 0, date(2026, 10, 1), 0, 1, t0, 0),
            (r, 2, 12.5, 2, 2, 1, 0, date(2026, 10, 5), 7, date(2026, 10, 5), 0, 0, t0, 0),
        ]),
        "adjustments": _frame("adjustments", [
            (r, 1, date(2026, 10, 2), -25.0, 1, 6, 1, "", None, 0, date(2026, 10, 2), 1, 3, t0),
            (r, 2, date(2026, 10, 3), 15.0, 2, 5, 1, "fee", None, 0, date(2026, 10, 3), 1, 3, t0),
        ]),
        "commlogs": _frame("commlogs", [
            (r, 1, 1, t0, 7, "Left message", "Phone", "Sent", 1, t0, "User", t0),
            (r, 2, 2, t0, 8, "Statement", "Mail", "Sent", 1, t0 + timedelta(days=3), "User", t0),
        ]),
        "truth_persons": _frame("truth_persons", [(1, r, 1), (1, lk, 1)]),
    }  # fmt: skip


def make_world(cls: type[World] = World) -> World:
    spec = WorldSpec()
    return cls(spec=spec, now_utc=spec.now_utc, tables=make_tables())


@pytest.fixture(scope="module")
def sim():
    world = make_world()
    app = create_app(world, OpenDentalSimSettings(developer_key=DEV_KEY, requests_per_second=None))
    with serve_in_thread(app) as server:
        yield server, app, world


@pytest.fixture(autouse=True)
def _no_faults_left(request):
    yield
    if "sim" in request.fixturenames:
        request.getfixturevalue("sim")[1].state.faults.clear()


def _client(server, customer: str = RIVERSIDE) -> httpx.Client:
    return httpx.Client(
        base_url=f"{server.url}/api/v1",
        headers={"Authorization": f"ODFHIR {DEV_KEY}/{customer}"},
        timeout=10,
    )


@pytest.fixture
def api(sim):
    with _client(sim[0]) as client:
        yield client


def _office_now(world: World, office: str = "od_riverside") -> str:
    return world.office_now(office).strftime("%Y-%m-%d %H:%M:%S")


def _all_pages(client: httpx.Client, path: str, **params) -> list[list[dict]]:
    pages, offset = [], 0
    while True:
        page = client.get(path, params={**params, "Offset": offset}).json()
        pages.append(page)
        if len(page) < 100:
            return pages
        offset += len(page)


# --- auth ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Bearer abc",
        f"ODFHIR {DEV_KEY}",
        f"ODFHIR wrong-dev-key/{RIVERSIDE}",
        f"ODFHIR {DEV_KEY}/cust-unknown-secret",
    ],
)
def test_bad_or_missing_keys_are_401_and_never_echoed(sim, header):
    headers = {} if header is None else {"Authorization": header}
    response = httpx.get(f"{sim[0].url}/api/v1/patients/Simple", headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("text/plain")
    assert "key" in response.text.lower()  # explains which key or header shape is wrong
    for secret in ("wrong-dev-key", "cust-unknown-secret", DEV_KEY, RIVERSIDE):
        assert secret not in response.text


# --- wire format ---------------------------------------------------------------------------


def test_patient_wire_format(sim, api):
    _, _, world = sim
    patient = api.get("/patients/10").json()
    expected_keys = [c for c in SCHEMAS["patients"] if c != "office"] + ["serverDateTime"]
    assert list(patient) == expected_keys
    assert patient["PatNum"] == 10 and patient["Guarantor"] == 10
    assert patient["Birthdate"] == "0001-01-01"
    assert patient["DateFirstVisit"] == "0001-01-01"
    assert patient["SecDateEntry"] == "2020-01-01"
    assert patient["DateTStamp"] == "2026-10-01 13:00:00"
    assert patient["Address2"] == ""
    assert patient["EstBalance"] == 10.5 and patient["BalTotal"] == 20.0
    assert patient["PatStatus"] == "Patient" and patient["TxtMsgOk"] == "Unknown"
    assert patient["serverDateTime"] == _office_now(world) == "2026-11-01 10:00:00"
    assert api.get("/patients/11").json()["Birthdate"] == "1980-01-12"


def test_appointment_wire_format_and_derived_fields(api):
    rows = api.get("/appointments").json()
    assert [r["AptNum"] for r in rows] == [10, 11, 12]
    done, scheduled = rows[0], rows[1]
    keys = list(done)
    assert keys[keys.index("Confirmed") + 1] == "confirmed"
    assert keys[keys.index("ProvNum") + 1] == "provAbbr"
    assert done["confirmed"] == "Appointment Confirmed" and done["provAbbr"] == "DOC1"
    assert scheduled["confirmed"] == "Unconfirmed" and scheduled["provAbbr"] == "HYG1"
    assert done["IsNewPatient"] == "true" and scheduled["IsNewPatient"] == "false"
    assert done["IsHygiene"] == "true"
    assert done["AptDateTime"] == "2026-10-05 09:00:00"
    assert done["DateTimeArrived"] == "2026-10-05 08:55:00"
    assert scheduled["DateTimeArrived"] == "0001-01-01 00:00:00"
    assert done["AptStatus"] == "Complete" and rows[2]["Priority"] == "ASAP"
    assert done["ClinicNum"] == 1 and done["Op"] == 1


def test_payment_amounts_and_clinic_are_strings(api):
    rows = api.get("/payments").json()
    assert [r["PayAmt"] for r in rows] == ["339", "12.5", "12.25"]
    assert [r["ClinicNum"] for r in rows] == ["1", "0", "2"]
    assert [r["payType"] for r in rows] == ["Check", "Cash", "Cash"]
    assert rows[0]["PayNum"] == 1 and rows[0]["PayType"] == 69 and rows[0]["PatNum"] == 1
    assert [r["IsRecurringCC"] for r in rows] == ["false", "false", "true"]
    assert rows[0]["PayDate"] == "2026-10-01" and rows[0]["SecDateTEdit"] == "2026-10-01 08:00:00"


def test_other_entities_wire_format(api):
    splits = api.get("/paysplits").json()
    assert splits[0]["SplitAmt"] == 339.0 and splits[0]["ClinicNum"] == 1
    adjustments = api.get("/adjustments", params={"PatNum": 1}).json()
    assert [(a["AdjAmt"], a["adjType"], a["ProcDate"]) for a in adjustments] == [
        (-25.0, "Write Off", "0001-01-01")
    ]
    commlogs = api.get("/commlogs").json()
    assert [c["commType"] for c in commlogs] == ["ApptRelated", "Financial"]
    assert commlogs[0]["Mode_"] == "Phone" and commlogs[0]["SentOrReceived"] == "Sent"
    assert api.get("/commlogs/2").json()["Note"] == "Statement"
    providers = api.get("/providers").json()
    assert providers[1]["IsSecondary"] == "true" and providers[0]["DateTStamp"].endswith("08:00:00")
    assert api.get("/operatories/2").json()["IsHygiene"] == "true"
    clinic_two = api.get("/operatories", params={"ClinicNum": 2}).json()
    assert [o["OperatoryNum"] for o in clinic_two] == [2]


def test_definitions_category_and_hidden(api):
    visible = api.get("/definitions").json()
    assert 8 not in [d["DefNum"] for d in visible]
    check = next(d for d in visible if d["DefNum"] == 69)
    assert check["Category"] == 10 and check["category"] == "PaymentTypes"
    assert check["IsHidden"] == "false" and check["ItemOrder"] == 0
    everything = api.get("/definitions", params={"includeHidden": "true", "Category": 27}).json()
    assert [(d["DefNum"], d["category"]) for d in everything] == [
        (7, "CommLogTypes"),
        (8, "CommLogTypes"),
    ]


def test_every_row_carries_server_datetime(sim, api):
    now = _office_now(sim[2])
    for path in ("/patients/Simple", "/appointments", "/payments", "/clinics", "/definitions"):
        rows = api.get(path).json()
        assert rows and all(r["serverDateTime"] == now for r in rows), path


def test_clinics_hide_hidden_and_are_empty_without_clinics(sim, api):
    assert [c["ClinicNum"] for c in api.get("/clinics").json()] == [1, 2]
    with _client(sim[0], LAKESIDE) as lakeside:
        response = lakeside.get("/clinics")
    assert response.status_code == 200 and response.json() == []


# --- paging and filters --------------------------------------------------------------------


def test_paging_caps_limit_at_100_without_total(api):
    first = api.get("/patients/Simple", params={"Limit": 500})
    assert first.headers["content-type"] == "application/json"
    assert isinstance(first.json(), list) and len(first.json()) == 100
    pages = _all_pages(api, "/patients/Simple")
    assert [len(p) for p in pages] == [100, 100, 50]
    ids = [row["PatNum"] for page in pages for row in page]
    assert ids == list(range(1, N_RIVERSIDE_PATIENTS + 1))
    small = api.get("/patients/Simple", params={"Offset": 5, "Limit": 3}).json()
    assert [r["PatNum"] for r in small] == [6, 7, 8]
    assert api.get("/patients/Simple", params={"Offset": 1000}).json() == []


def test_datetstamp_filter_is_greater_or_equal(api):
    since = "2026-10-05 12:00:00"  # the stamp shared by PatNum 200 and 201
    rows = api.get("/patients/Simple", params={"DateTStamp": since}).json()
    assert [r["PatNum"] for r in rows] == list(range(200, N_RIVERSIDE_PATIENTS + 1))
    assert all(r["DateTStamp"] >= since for r in rows)
    providers = api.get("/providers", params={"DateTStamp": "2026-10-10 08:00:00"}).json()
    assert [p["ProvNum"] for p in providers] == [2]
    commlogs = api.get("/commlogs", params={"DateTStamp": "2026-10-02 00:00:00"}).json()
    assert [c["CommlogNum"] for c in commlogs] == [2]


def test_patient_filters(api):
    def pat_nums(**params) -> list[int]:
        return [r["PatNum"] for r in api.get("/patients/Simple", params=params).json()]

    assert pat_nums(LName="brook", Limit=3) == [2, 4, 6]
    assert pat_nums(PatStatus="Inactive", Limit=2) == [7, 14]
    assert pat_nums(Birthdate="1980-01-12") == [11]
    assert pat_nums(Guarantor=42) == [42]
    assert pat_nums(ClinicNum=2) == []


def test_payments_date_entry_on_or_after_and_no_stamp_filter(api):
    rows = api.get("/payments", params={"DateEntry": "2026-10-05"}).json()
    assert [r["PayNum"] for r in rows] == [2, 3]
    # Open Dental ignores parameters it doesn't know, DateTStamp included.
    ignored = api.get("/payments", params={"DateTStamp": "2030-01-01 00:00:00", "Bogus": "x"})
    assert [r["PayNum"] for r in ignored.json()] == [1, 2, 3]
    assert [r["PayNum"] for r in api.get("/payments", params={"PayType": 70}).json()] == [2, 3]


def test_appointment_date_range_is_inclusive_on_the_date(api):
    rows = api.get("/appointments", params={"dateStart": "2026-10-06", "dateEnd": "2026-10-06"})
    assert [r["AptNum"] for r in rows.json()] == [11]
    scheduled = api.get("/appointments", params={"AptStatus": "Scheduled"}).json()
    assert [r["AptNum"] for r in scheduled] == [11]


def test_adjustments_require_patnum(api):
    response = api.get("/adjustments")
    assert response.status_code == 400
    assert "PatNum" in response.text and response.headers["content-type"].startswith("text/plain")


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/patients/Simple", {"DateTStamp": "yesterday"}),
        ("/patients/Simple", {"PatStatus": "Alive"}),
        ("/appointments", {"dateStart": "10/01/2026"}),
        ("/payments", {"PatNum": "abc"}),
        ("/definitions", {"includeHidden": "maybe"}),
        ("/patients/Simple", {"Offset": -1}),
        ("/patients/Simple", {"Limit": "many"}),
        ("/patients/abc", {}),
    ],
)
def test_bad_values_are_400_with_explanation(api, path, params):
    response = api.get(path, params=params)
    assert response.status_code == 400
    assert response.text.startswith("Invalid ")


def test_unknown_id_is_404(api):
    for path in ("/patients/99999", "/appointments/99", "/operatories/99", "/commlogs/99"):
        response = api.get(path)
        assert response.status_code == 404 and "not found" in response.text


def test_customer_key_isolates_offices(sim):
    with _client(sim[0], LAKESIDE) as lakeside:
        patients = lakeside.get("/patients/Simple").json()
        assert [p["PatNum"] for p in patients] == [1, 2, 3]
        assert {p["LName"] for p in patients} == {"Laker"}
        assert patients[0]["serverDateTime"] == _office_now(sim[2], "od_lakeside")
        assert lakeside.get("/payments").json() == []
        definitions = lakeside.get("/definitions").json()
        assert [d["ItemName"] for d in definitions] == ["Unconfirmed", "Cheque"]
        assert lakeside.get("/patients/4").status_code == 404


# --- throttling ----------------------------------------------------------------------------


def _throttled_server(**settings):
    app = create_app(make_world(), OpenDentalSimSettings(developer_key=DEV_KEY, **settings))
    return serve_in_thread(app)


def test_throttle_per_customer_key_without_retry_after():
    with _throttled_server(requests_per_second=5.0) as server, _client(server) as client:
        assert client.get("/clinics").status_code == 200
        throttled = client.get("/clinics")
        assert throttled.status_code == 429 and "Retry-After" not in throttled.headers
        assert throttled.headers["content-type"].startswith("text/plain")
        with _client(server, LAKESIDE) as other_office:
            assert other_office.get("/clinics").status_code == 200
        time.sleep(0.25)
        assert client.get("/clinics").status_code == 200


def test_throttle_status_and_retry_after_from_settings():
    settings = {"requests_per_second": 1.0, "throttle_status": 503, "throttle_retry_after": 3}
    with _throttled_server(**settings) as server, _client(server) as client:
        statuses = [client.get("/clinics") for _ in range(3)]
        assert [r.status_code for r in statuses] == [200, 503, 503]
        assert statuses[1].headers["Retry-After"] == "3"


# --- faults --------------------------------------------------------------------------------


def test_status_fault_with_retry_after_skip_and_times(sim, api):
    sim[1].state.faults.add(
        FaultRule(path="^/patients", kind="status", code=503, retry_after=2, skip=1, times=2)
    )
    responses = [api.get("/patients/Simple") for _ in range(4)]
    assert [r.status_code for r in responses] == [200, 503, 503, 200]
    assert responses[1].headers["Retry-After"] == "2"
    assert api.get("/clinics").status_code == 200


def test_status_fault_with_http_date_and_without_header(sim, api):
    faults = sim[1].state.faults
    faults.add({"path": "^/clinics", "kind": "status", "code": 429, "retry_after_date": True})
    faults.add({"path": "^/clinics", "kind": "status", "code": 502})
    dated, bare = api.get("/clinics"), api.get("/clinics")
    assert dated.status_code == 429
    assert parsedate_to_datetime(dated.headers["Retry-After"]) > datetime.now(UTC)
    assert bare.status_code == 502 and "Retry-After" not in bare.headers


def test_slow_fault_does_not_block_other_requests(sim):
    sim[1].state.faults.add(FaultRule(path="^/appointments", kind="slow", delay=1.0))

    def timed(path: str) -> tuple[int, float]:
        with _client(sim[0]) as client:
            start = time.monotonic()
            status = client.get(path).status_code
            return status, time.monotonic() - start

    with ThreadPoolExecutor(2) as pool:
        slow = pool.submit(timed, "/appointments")
        time.sleep(0.1)
        fast = pool.submit(timed, "/clinics")
        assert fast.result()[0] == 200 and fast.result()[1] < 0.5
        assert slow.result()[0] == 200 and slow.result()[1] >= 1.0


def test_truncate_fault_cuts_the_json_body_in_half(sim, api):
    full = api.get("/payments").content
    sim[1].state.faults.add(FaultRule(path="^/payments", kind="truncate"))
    cut = api.get("/payments")
    assert cut.status_code == 200 and cut.headers["content-type"] == "application/json"
    assert cut.content == full[: len(full) // 2]
    with pytest.raises(json.JSONDecodeError):
        json.loads(cut.content)


def test_non_json_fault_serves_an_html_page(sim, api):
    sim[1].state.faults.add(FaultRule(path="^/providers", kind="non_json"))
    response = api.get("/providers")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "<html>" in response.text


def test_shift_fault_repeats_rows_across_pages(sim, api):
    first = api.get("/patients/Simple").json()
    sim[1].state.faults.add(FaultRule(path="^/patients/Simple", kind="shift", rows=5))
    second = api.get("/patients/Simple", params={"Offset": 100}).json()
    assert [r["PatNum"] for r in second[:5]] == [96, 97, 98, 99, 100]
    assert {r["PatNum"] for r in first} & {r["PatNum"] for r in second} == {96, 97, 98, 99, 100}


def test_invalid_fault_rules_are_rejected():
    with pytest.raises(ValueError, match="kind"):
        FaultRule(path="^/", kind="explode")
    with pytest.raises(ValueError, match="code"):
        FaultRule(path="^/", kind="status", code=418)


# --- admin endpoints -----------------------------------------------------------------------


def test_admin_faults_stats_and_health(sim, api):
    admin = f"{sim[0].url}/_sim"
    rule = {"path": "^/operatories$", "kind": "status", "code": 500, "times": None}
    assert httpx.post(f"{admin}/faults", json=[rule]).json() == {"added": 1}
    assert [api.get("/operatories").status_code for _ in range(2)] == [500, 500]
    assert httpx.delete(f"{admin}/faults").status_code == 200
    assert api.get("/operatories").status_code == 200
    bad = httpx.post(f"{admin}/faults", json=[{"path": "^/", "kind": "status", "code": 200}])
    assert bad.status_code == 400 and "code" in bad.text

    stats = httpx.get(f"{admin}/stats").json()["requests"]
    counts = {(s["path"], s["status"]): s["count"] for s in stats}
    assert counts[("/operatories", 500)] == 2 and counts[("/operatories", 200)] >= 1
    assert httpx.get(f"{admin}/health").json()["status"] == "ok"


def test_admin_export_writes_truth_parquet(sim, tmp_path):
    response = httpx.post(f"{sim[0].url}/_sim/export", json={"dir": str(tmp_path)})
    assert response.status_code == 200
    assert pl.read_parquet(tmp_path / "truth_persons.parquet").height == 2
    assert pl.read_parquet(tmp_path / "patients.parquet").height == N_RIVERSIDE_PATIENTS + 3


class _ClockWorld(World):
    """Stands in for simulators.evolve: moves the clock and adds one lakeside patient."""

    def advance(self, delta: timedelta, *, seed: int | None = None) -> dict[str, int]:
        with self.lock:
            self.now_utc += delta
            patients = self.tables["patients"]
            new = patients.filter(pl.col("office") == "od_lakeside").head(1)
            new = new.with_columns(PatNum=pl.lit(4, pl.Int64), DateTStamp=pl.lit(BASE))
            self.tables["patients"] = pl.concat([patients, new])
        return {"patients": 1}


def test_admin_advance_changes_what_is_served():
    world = make_world(_ClockWorld)
    app = create_app(world, OpenDentalSimSettings(developer_key=DEV_KEY, requests_per_second=None))
    with serve_in_thread(app) as server, _client(server, LAKESIDE) as lakeside:
        before = lakeside.get("/patients/Simple").json()
        assert len(before) == 3 and lakeside.get("/patients/4").status_code == 404
        advanced = httpx.post(f"{server.url}/_sim/advance", json={"minutes": 90, "seed": 1})
        assert advanced.json() == {"patients": 1}
        after = lakeside.get("/patients/Simple").json()
        assert [p["PatNum"] for p in after] == [1, 2, 3, 4]
        assert after[0]["serverDateTime"] == "2026-11-01 10:30:00"


# --- scale and the real generator ----------------------------------------------------------


def test_pages_of_a_million_rows_stay_fast():
    world = make_world()
    patients = world.tables["patients"].filter(pl.col("office") == "od_riverside")
    n = 1_000_000
    big = patients.sample(n, with_replacement=True, seed=0).with_columns(
        PatNum=pl.int_range(n, 0, -1, dtype=pl.Int64),  # reversed: the server must sort
        DateTStamp=pl.lit(BASE) + pl.duration(seconds=pl.int_range(0, n)),
    )
    world.tables["patients"] = big
    app = create_app(world, OpenDentalSimSettings(developer_key=DEV_KEY, requests_per_second=None))
    with serve_in_thread(app) as server, _client(server) as client:
        assert client.get("/patients/Simple").json()[0]["PatNum"] == 1  # builds the cache
        start = time.monotonic()
        for page in range(10):
            params = {"Offset": page * 100, "DateTStamp": "2026-10-05 00:00:00"}
            assert len(client.get("/patients/Simple", params=params).json()) == 100
        assert (time.monotonic() - start) / 10 < 0.1


def _generate_world():
    generate = pytest.importorskip("simulators.generate")
    return generate.generate_world(WorldSpec(seed=3, n_persons=40))


def test_serves_a_generated_world():
    world = _generate_world()
    app = create_app(world, OpenDentalSimSettings(developer_key=DEV_KEY, requests_per_second=None))
    with serve_in_thread(app) as server:
        for office in world.offices_on("opendental"):
            with _client(server, office.customer_key) as client:
                patients = _all_pages(client, "/patients/Simple")
                served = [p["PatNum"] for page in patients for p in page]
                assert len(served) == world.table("patients", office.key).height
                for path in ("/appointments", "/payments", "/paysplits", "/definitions",
                             "/providers", "/clinics", "/operatories", "/commlogs"):  # fmt: skip
                    assert client.get(path).status_code == 200, path
                if served:
                    adjustments = client.get("/adjustments", params={"PatNum": served[0]})
                    assert adjustments.status_code == 200
