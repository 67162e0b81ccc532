"""End to end: landed Open Dental batches -> `dbt build` -> staging tables in DuckDB.

Writes landing fixtures with the real ``Landing.write_batch``, runs the real dbt CLI in a
subprocess against a throwaway landing root and warehouse, then reads the warehouse read-only.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from extract.connectors import prepare_landing
from extract.landing import BatchMeta, LandedRecord, Landing, QuarantinedRecord
from extract.opendental.streams import STREAMS

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
PROJECT_DIR = REPO / "dbt_project"

ENTITIES = (
    "patients",
    "appointments",
    "payments",
    "paysplits",
    "adjustments",
    "commlogs",
    "providers",
    "clinics",
    "operatories",
    "definitions",
)

# The Open Dental API fields each staging model must carry, in order (vendor-apis.md 1.3).
API_FIELDS = {
    "definitions": "DefNum Category category ItemName ItemValue ItemOrder IsHidden",
    "clinics": "ClinicNum Description Abbr Address Address2 City State Zip Phone IsHidden",
    "providers": "ProvNum Abbr LName FName Suffix Specialty IsSecondary IsHidden NationalProvID "
    "DateTStamp IsNotPerson ProvStatus",
    "operatories": "OperatoryNum OpName Abbrev IsHidden ProvDentist ProvHygienist IsHygiene "
    "ClinicNum",
    "patients": "PatNum LName FName MiddleI Preferred PatStatus Gender Position Birthdate Address "
    "Address2 City State Zip HmPhone WkPhone WirelessPhone Guarantor Email EstBalance BalTotal "
    "PriProv SecProv BillingType ChartNumber DateFirstVisit ClinicNum PreferConfirmMethod "
    "PreferContactMethod PreferRecallMethod Language TxtMsgOk DateTStamp SuperFamily SecDateEntry",
    "appointments": "AptNum PatNum AptStatus Pattern Confirmed confirmed Op Note ProvNum provAbbr "
    "ProvHyg AptDateTime NextAptNum UnschedStatus IsNewPatient ProcDescript ClinicNum IsHygiene "
    "DateTStamp DateTimeArrived DateTimeSeated DateTimeDismissed AppointmentTypeNum SecDateTEntry "
    "Priority",
    "payments": "PayNum PayType payType PayDate PayAmt CheckNum BankBranch PayNote PatNum "
    "ClinicNum DateEntry DepositNum IsRecurringCC SecDateTEdit PaymentSource ProcessStatus",
    "paysplits": "SplitNum SplitAmt PatNum PayNum ProvNum PayPlanNum DatePay ProcNum DateEntry "
    "UnearnedType ClinicNum SecDateTEdit AdjNum",
    "adjustments": "AdjNum AdjDate AdjAmt PatNum AdjType adjType ProvNum AdjNote ProcDate ProcNum "
    "DateEntry ClinicNum SecUserNumEntry SecDateTEdit",
    "commlogs": "CommlogNum PatNum CommDateTime CommType commType Note Mode_ SentOrReceived "
    "UserNum DateTStamp CommSource DateTEntry",
}
DERIVED_NAMES = {
    "confirmed": "confirmed_name",
    "payType": "pay_type_name",
    "adjType": "adj_type_name",
    "commType": "comm_type_name",
    "category": "category_name",
    "provAbbr": "prov_abbr",
}


def snake(field: str) -> str:
    """The mechanical API-field -> column rule the staging layer follows."""
    if field in DERIVED_NAMES:
        return DERIVED_NAMES[field]
    return (
        re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", field).lower().rstrip("_")
    )


SNAKE_EXAMPLES = {
    "PatNum": "pat_num",
    "DateTStamp": "date_t_stamp",
    "NationalProvID": "national_prov_id",
    "AptDateTime": "apt_date_time",
    "SecDateTEntry": "sec_date_t_entry",
    "IsRecurringCC": "is_recurring_cc",
    "HmPhone": "hm_phone",
    "MiddleI": "middle_i",
    "Mode_": "mode",
    "Address2": "address2",
    "LName": "l_name",
    "payType": "pay_type_name",
}


def test_snake_rule_examples():
    assert {field: snake(field) for field in SNAKE_EXAMPLES} == SNAKE_EXAMPLES


# --------------------------------------------------------------------------- fixtures

RIVER, LAKE = "od_riverside", "od_lakeside"
TZ = {RIVER: "America/New_York", LAKE: "America/Chicago"}
T1 = datetime(2026, 11, 1, 14, 0, tzinfo=UTC)
T2 = datetime(2026, 11, 1, 15, 0, tzinfo=UTC)
LOAD1 = "20261101T140000000000Z-aaaa0001"
LOAD2 = "20261101T150000000000Z-bbbb0002"

KEYS = {entity: stream.key for entity, stream in STREAMS.items()}


def land(landing, conn, entity, load_id, extracted_at, records, *, batch_seq=0, quarantined=()):
    meta = BatchMeta(
        connection_id=conn,
        vendor="opendental",
        entity=entity,
        load_id=load_id,
        batch_seq=batch_seq,
        cursor_field=None,
        cursor_value=None,
        source_timezone=TZ[conn],
        extracted_at=extracted_at,
    )
    landed = [
        LandedRecord(key=str(r[KEYS[entity]]), record=r, server_time="2026-11-01 10:00:00")
        for r in records
    ]
    landing.write_batch(meta, landed, quarantined)


def patient(pat_num, lname, stamp, **extra):
    record = {
        "PatNum": pat_num,
        "LName": lname,
        "FName": "Pat",
        "MiddleI": "",
        "Preferred": "",
        "PatStatus": "Patient",
        "Gender": "Female",
        "Position": "Single",
        "Birthdate": "1980-02-29",
        "Address": "1 Main St",
        "Address2": "",
        "City": "Springfield",
        "State": "OR",
        "Zip": "97301",
        "HmPhone": "",
        "WkPhone": "",
        "WirelessPhone": "(555)123-4567",
        "Guarantor": pat_num,
        "Email": "",
        "EstBalance": 0.0,
        "BalTotal": 111.9,
        "PriProv": 1,
        "SecProv": 0,
        "BillingType": "Standard Account",
        "ChartNumber": "",
        "DateFirstVisit": "2021-12-16",
        "ClinicNum": 0,
        "PreferConfirmMethod": "None",
        "PreferContactMethod": "WirelessPh",
        "PreferRecallMethod": "TextMessage",
        "Language": "eng",
        "TxtMsgOk": "Yes",
        "DateTStamp": stamp,
        "SuperFamily": 0,
        "SecDateEntry": "2021-12-04",
        "serverDateTime": "2026-11-01 10:00:00",
    }
    record.update(extra)
    return record


def appointment(apt_num, pat_num, status="Scheduled", **extra):
    record = {
        "AptNum": apt_num,
        "PatNum": pat_num,
        "AptStatus": status,
        "Pattern": "//XXXX//",
        "Confirmed": 19,
        "confirmed": "Unconfirmed",
        "Op": 1,
        "Note": "",
        "ProvNum": 1,
        "provAbbr": "DOC1",
        "ProvHyg": 0,
        "AptDateTime": "2026-11-03 08:30:00",
        "NextAptNum": 0,
        "UnschedStatus": 0,
        "IsNewPatient": "false",
        "ProcDescript": "PerEx, Pro",
        "ClinicNum": 0,
        "IsHygiene": "true",
        "DateTStamp": "2026-10-30 12:00:00",
        "DateTimeArrived": "0001-01-01 00:00:00",
        "DateTimeSeated": "0001-01-01 00:00:00",
        "DateTimeDismissed": "0001-01-01 00:00:00",
        "AppointmentTypeNum": 0,
        "SecDateTEntry": "2026-10-20 09:00:00",
        "Priority": "Normal",
        "serverDateTime": "2026-11-01 10:00:00",
    }
    record.update(extra)
    return record


def write_office_fixtures(landing: Landing) -> None:
    for entity in ENTITIES:
        landing.ensure_entity("opendental", entity)
    for conn in (RIVER, LAKE):
        land(landing, conn, "definitions", LOAD1, T1, [
            {"DefNum": 19, "Category": 2, "category": "ApptConfirmed", "ItemName": "Unconfirmed",
             "ItemValue": "", "ItemOrder": 0, "IsHidden": "false"},
            {"DefNum": 70, "Category": 10, "category": "PaymentTypes", "ItemName": "Cash",
             "ItemValue": "", "ItemOrder": 1, "IsHidden": "false"},
            {"DefNum": 5, "Category": 1, "category": "AdjTypes", "ItemName": "Discount",
             "ItemValue": "-", "ItemOrder": 0, "IsHidden": "true"},
        ])  # fmt: skip
        land(landing, conn, "providers", LOAD1, T1, [
            {"ProvNum": 1, "Abbr": "DOC1", "LName": "Albert", "FName": "Brian", "Suffix": "DDS",
             "Specialty": 263, "IsSecondary": "false", "IsHidden": "false",
             "NationalProvID": "1679608723", "DateTStamp": "2021-08-04 08:33:01",
             "IsNotPerson": "false", "ProvStatus": "Active"},
        ])  # fmt: skip
        land(landing, conn, "operatories", LOAD1, T1, [
            {"OperatoryNum": 1, "OpName": "Op 1", "Abbrev": "OP-1", "IsHidden": "false",
             "ProvDentist": 1, "ProvHygienist": 0, "IsHygiene": "false",
             "ClinicNum": 1 if conn == RIVER else 0},
        ])  # fmt: skip
    # Riverside uses clinics, Lakeside does not (GET /clinics returns []).
    land(landing, RIVER, "clinics", LOAD1, T1, [
        {"ClinicNum": 1, "Description": "Riverside Family", "Abbr": "RF", "Address": "1 River Rd",
         "Address2": "", "City": "Albany", "State": "NY", "Zip": "12207", "Phone": "5185550100",
         "IsHidden": "false"},
    ])  # fmt: skip

    # Patients, Riverside: load 1, then load 2 with an edit of PatNum 1 and an overlapping
    # re-send of PatNum 2 (unchanged). PatNum 2 has empty (0001-01-01) dates. A record that
    # failed validation went to quarantine.
    land(landing, RIVER, "patients", LOAD1, T1, [
        patient(1, "Smith", "2026-10-30 09:00:00", EstBalance=12.5),
        patient(2, "Doe", "2026-10-30 09:30:00", Birthdate="0001-01-01",
                DateFirstVisit="0001-01-01", Guarantor=1),
    ], quarantined=[
        QuarantinedRecord(key=None, record={"LName": "NoKey"}, reason="missing PatNum"),
    ])  # fmt: skip
    land(landing, RIVER, "patients", LOAD2, T2, [
        patient(1, "Smith-Jones", "2026-11-01 09:45:00", EstBalance="-20.25"),
        patient(2, "Doe", "2026-10-30 09:30:00", Birthdate="0001-01-01",
                DateFirstVisit="0001-01-01", Guarantor=1),
    ])  # fmt: skip
    # Lakeside: a different patient with the same PatNum 1.
    land(landing, LAKE, "patients", LOAD1, T1, [patient(1, "Lake", "2026-10-15 08:00:00")])

    land(landing, RIVER, "appointments", LOAD1, T1, [
        appointment(1, 1, DateTimeArrived="2026-11-03 08:25:00"),
        appointment(2, 2, "Complete", ClinicNum=1),
    ])  # fmt: skip
    land(landing, LAKE, "appointments", LOAD1, T1, [appointment(1, 1, "Broken")])

    land(landing, RIVER, "payments", LOAD1, T1, [
        {"PayNum": 1, "PayType": 70, "payType": "Cash", "PayDate": "2026-10-30", "PayAmt": "339",
         "CheckNum": "", "BankBranch": "", "PayNote": "", "PatNum": 1, "ClinicNum": "1",
         "DateEntry": "2026-10-30", "DepositNum": 0, "IsRecurringCC": "false",
         "SecDateTEdit": "2026-10-30 09:15:00", "PaymentSource": "None",
         "ProcessStatus": "OfficeProcessed", "serverDateTime": "2026-11-01 10:00:00"},
    ])  # fmt: skip
    land(landing, LAKE, "payments", LOAD1, T1, [
        {"PayNum": 1, "PayType": 70, "payType": "Cash", "PayDate": "0001-01-01", "PayAmt": "12.5",
         "CheckNum": "", "BankBranch": "", "PayNote": "", "PatNum": 1, "ClinicNum": "0",
         "DateEntry": "2026-10-31", "DepositNum": 0, "IsRecurringCC": "true",
         "SecDateTEdit": "2026-10-31 10:00:00", "PaymentSource": "None",
         "ProcessStatus": "OnlinePending"},
    ])  # fmt: skip
    land(landing, RIVER, "paysplits", LOAD1, T1, [
        {"SplitNum": 1, "SplitAmt": 339.0, "PatNum": 1, "PayNum": 1, "ProvNum": 1, "PayPlanNum": 0,
         "DatePay": "2026-10-30", "ProcNum": 0, "DateEntry": "2026-10-30", "UnearnedType": 0,
         "ClinicNum": 1, "SecDateTEdit": "2026-10-30 09:15:00", "AdjNum": 0},
    ])  # fmt: skip
    land(landing, RIVER, "adjustments", LOAD1, T1, [
        {"AdjNum": 1, "AdjDate": "2026-10-30", "AdjAmt": -25.5, "PatNum": 1, "AdjType": 5,
         "adjType": "Discount", "ProvNum": 1, "AdjNote": "", "ProcDate": "0001-01-01",
         "ProcNum": 0, "DateEntry": "2026-10-30", "ClinicNum": 1, "SecUserNumEntry": 3,
         "SecDateTEdit": "2026-10-30 09:20:00"},
    ])  # fmt: skip
    land(landing, RIVER, "commlogs", LOAD1, T1, [
        {"CommlogNum": 1, "PatNum": 1, "CommDateTime": "2026-10-29 16:00:00", "CommType": 224,
         "commType": "ApptRelated", "Note": "Confirmed by phone", "Mode_": "In Person",
         "SentOrReceived": "Received", "UserNum": 3, "DateTStamp": "2026-10-29 16:00:05",
         "CommSource": "User", "DateTEntry": "2026-10-29 16:00:05"},
    ])  # fmt: skip


# --------------------------------------------------------------------------- running dbt


def dbt_executable() -> str:
    candidate = Path(sys.executable).with_name("dbt")
    if candidate.exists():
        return str(candidate)
    found = shutil.which("dbt")
    if not found:
        pytest.skip("dbt CLI not installed")
    return found


def run_dbt(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    prepare_landing(tmp_path / "landing")  # other vendors' sources read as empty
    env = {
        **os.environ,
        "CHAIRSIDE_LANDING": str(tmp_path / "landing"),
        "CHAIRSIDE_WAREHOUSE": str(tmp_path / "warehouse" / "chairside.duckdb"),
        "DO_NOT_TRACK": "1",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    command = [
        dbt_executable(),
        *args,
        "--project-dir", str(PROJECT_DIR),
        "--profiles-dir", str(PROJECT_DIR),
        "--target-path", str(tmp_path / "target"),
        "--log-path", str(tmp_path / "logs"),
    ]  # fmt: skip
    return subprocess.run(
        command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Land the fixtures and run one real `dbt build`; yields the tmp root."""
    root = tmp_path_factory.mktemp("dbt_staging")
    (root / "warehouse").mkdir()
    write_office_fixtures(Landing(root / "landing"))
    result = run_dbt(root, "build")
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    return root


def query(root: Path, sql: str, params=None):
    con = duckdb.connect(str(root / "warehouse" / "chairside.duckdb"), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


# --------------------------------------------------------------------------- assertions


def test_every_model_has_the_api_fields_in_snake_case(built):
    for entity, fields in API_FIELDS.items():
        columns = [
            row[0]
            for row in query(
                built,
                "select column_name from information_schema.columns "
                "where table_schema = 'staging' and table_name = ? order by ordinal_position",
                [f"stg_opendental__{entity}"],
            )
        ]
        expected = [
            "connection_id",
            *(snake(f) for f in fields.split()),
            "source_timezone",
            "_load_id",
            "_extracted_at",
        ]
        assert columns == expected, entity


def test_column_types(built):
    types = dict(
        query(
            built,
            "select column_name, data_type from information_schema.columns "
            "where table_schema = 'staging' and table_name = 'stg_opendental__payments'",
        )
    )
    assert types["pay_num"] == "BIGINT"
    assert types["clinic_num"] == "BIGINT"
    assert types["pay_amt"] == "DECIMAL(14,2)"
    assert types["is_recurring_cc"] == "BOOLEAN"
    assert types["pay_date"] == "DATE"
    assert types["sec_date_t_edit"] == "TIMESTAMP"
    assert types["pay_type_name"] == "VARCHAR"
    assert types["_extracted_at"] == "TIMESTAMP WITH TIME ZONE"


def test_latest_version_wins_and_no_duplicates(built):
    rows = query(
        built,
        "select connection_id, pat_num, l_name, est_balance, date_t_stamp, _load_id "
        "from staging.stg_opendental__patients order by connection_id, pat_num",
    )
    assert rows == [
        (LAKE, 1, "Lake", Decimal("0.00"), datetime(2026, 10, 15, 8, 0), LOAD1),
        (RIVER, 1, "Smith-Jones", Decimal("-20.25"), datetime(2026, 11, 1, 9, 45), LOAD2),
        (RIVER, 2, "Doe", Decimal("0.00"), datetime(2026, 10, 30, 9, 30), LOAD2),
    ]
    for entity in ENTITIES:
        key = snake(KEYS[entity])
        [(n, distinct)] = query(
            built,
            f"select count(*), count(distinct (connection_id, {key})) "
            f"from staging.stg_opendental__{entity}",
        )
        assert n == distinct, entity


def test_per_connection_separation(built):
    rows = query(
        built,
        "select connection_id, source_timezone, apt_status "
        "from staging.stg_opendental__appointments where apt_num = 1 order by connection_id",
    )
    assert rows == [(LAKE, "America/Chicago", "Broken"), (RIVER, "America/New_York", "Scheduled")]


def test_parsed_values(built):
    [(birthdate, first_visit, guarantor)] = query(
        built,
        "select birthdate, date_first_visit, guarantor from staging.stg_opendental__patients "
        "where connection_id = ? and pat_num = 2",
        [RIVER],
    )
    assert (birthdate, first_visit, guarantor) == (None, None, 1)

    payments = query(
        built,
        "select connection_id, pay_amt, clinic_num, pay_date, is_recurring_cc, pay_type_name, "
        "sec_date_t_edit from staging.stg_opendental__payments order by connection_id",
    )
    assert payments == [
        (LAKE, Decimal("12.50"), 0, None, True, "Cash", datetime(2026, 10, 31, 10, 0)),
        (RIVER, Decimal("339.00"), 1, date(2026, 10, 30), False, "Cash",
         datetime(2026, 10, 30, 9, 15)),
    ]  # fmt: skip

    appointments = query(
        built,
        "select apt_num, apt_date_time, date_time_arrived, date_time_seated, is_hygiene, "
        "is_new_patient, confirmed, confirmed_name, prov_abbr from "
        "staging.stg_opendental__appointments where connection_id = ? order by apt_num",
        [RIVER],
    )
    assert appointments[0] == (
        1, datetime(2026, 11, 3, 8, 30), datetime(2026, 11, 3, 8, 25), None, True, False, 19,
        "Unconfirmed", "DOC1",
    )  # fmt: skip
    assert appointments[1][2] is None

    assert query(
        built,
        "select split_amt, pay_num from staging.stg_opendental__paysplits",
    ) == [(Decimal("339.00"), 1)]
    assert query(
        built,
        "select adj_amt, adj_type_name, proc_date from staging.stg_opendental__adjustments",
    ) == [(Decimal("-25.50"), "Discount", None)]
    assert query(
        built,
        "select mode, sent_or_received, comm_type_name from staging.stg_opendental__commlogs",
    ) == [("In Person", "Received", "ApptRelated")]
    assert query(
        built,
        "select def_num, category_name, is_hidden from staging.stg_opendental__definitions "
        "where connection_id = ? order by def_num",
        [RIVER],
    ) == [(5, "AdjTypes", True), (19, "ApptConfirmed", False), (70, "PaymentTypes", False)]
    assert query(
        built,
        "select national_prov_id, is_secondary, specialty from staging.stg_opendental__providers "
        "where connection_id = ?",
        [LAKE],
    ) == [("1679608723", False, 263)]
    # Lakeside has no clinics: the table holds only Riverside's.
    assert query(
        built, "select connection_id, clinic_num from staging.stg_opendental__clinics"
    ) == [(RIVER, 1)]


def test_quarantine_is_visible(built):
    rows = query(
        built,
        "select connection_id, vendor, entity, record_key, reason, load_id, record "
        "from staging.stg_landing__quarantine",
    )
    assert rows == [(RIVER, "opendental", "patients", None, "missing PatNum", LOAD1,
                     '{"LName":"NoKey"}')]  # fmt: skip


def test_build_fails_on_unknown_enum_value(built, tmp_path):
    """A data-test violation fails `dbt build`, and the output names the model and column."""
    shutil.copytree(built / "landing", tmp_path / "landing")
    (tmp_path / "warehouse").mkdir()
    land(
        Landing(tmp_path / "landing"), LAKE, "appointments", LOAD2, T2, [appointment(7, 1, "Bogus")]
    )
    result = run_dbt(tmp_path, "build")
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-4000:]
    failures = [
        line for line in output.splitlines() if "FAIL" in line and "accepted_values" in line
    ]
    assert any(
        "stg_opendental__appointments" in line and "apt_status" in line for line in failures
    ), output[-4000:]


def test_builds_on_an_empty_landing(tmp_path):
    """Only the zero-row _empty.parquet files: every model builds and every test passes."""
    landing = Landing(tmp_path / "landing")
    for entity in ENTITIES:
        landing.ensure_entity("opendental", entity)
    (tmp_path / "warehouse").mkdir()
    result = run_dbt(tmp_path, "build")
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert query(tmp_path, "select count(*) from staging.stg_opendental__patients") == [(0,)]
