"""Open Dental contracts: wire rules accepted, broken records explained without their values."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest

from extract.contracts import contract_violation
from extract.opendental import contracts


def test_wire_rules_parse():
    payment = contracts.Payment.model_validate(
        {"PayNum": 7, "PatNum": "12", "PayAmt": "339", "ClinicNum": "0", "PayDate": "2026-01-02",
         "IsRecurringCC": "false", "SecDateTEdit": "2026-01-02 10:11:12", "payType": "Check"}
    )  # fmt: skip
    assert payment.PatNum == 12 and payment.PayAmt == Decimal("339") and payment.ClinicNum == 0
    assert payment.PayDate == date(2026, 1, 2) and payment.IsRecurringCC is False
    assert payment.SecDateTEdit == datetime(2026, 1, 2, 10, 11, 12)
    patient = contracts.Patient.model_validate(
        {"PatNum": 1, "DateTStamp": "2026-01-01 00:00:00", "Birthdate": "0001-01-01",
         "EstBalance": 12.5, "NewVendorField": {"kept": True}}
    )  # fmt: skip
    assert patient.Birthdate is None and patient.EstBalance == Decimal("12.5")


@pytest.mark.parametrize(
    ("model", "record", "reason"),
    [
        (contracts.Patient, {"DateTStamp": "2026-01-01 00:00:00"}, "PatNum: Field required"),
        (contracts.Payment, {"PayNum": 1, "PatNum": 2, "PayAmt": "1,200.00"},
         "PayAmt: expected an amount"),
        (contracts.Appointment, {"AptNum": 1, "PatNum": 2, "AptStatus": "Scheduled",
                                 "DateTStamp": "2026-13-01 00:00:00"},
         "DateTStamp: expected a datetime as yyyy-MM-dd HH:mm:ss"),
        (contracts.Patient, {"PatNum": 1, "DateTStamp": None, "Birthdate": "12/31/1980"},
         "Birthdate: expected a date as yyyy-MM-dd"),
        (contracts.Clinic, {"ClinicNum": 1, "IsHidden": "yes"}, 'IsHidden: expected "true"'),
        (contracts.Definition, ["not", "an", "object"], "expected a JSON object, got list"),
    ],
)  # fmt: skip
def test_broken_records_name_the_field_never_the_value(model, record, reason):
    message = contract_violation(model, record)
    assert message is not None and message.startswith(reason)
    for value in ("1,200.00", "12/31/1980", "2026-13-01"):
        assert value not in message


def test_unknown_enum_text_is_not_a_contract_violation():
    # Business values are the dbt tests' job: an unseen status still lands.
    record = {"AptNum": 1, "PatNum": 2, "AptStatus": "Teleported", "DateTStamp": None}
    assert contract_violation(contracts.Appointment, record) is None


def test_overlap_window_widens_across_the_autumn_clock_change():
    from datetime import UTC, timedelta

    from extract.opendental.connector import dst_fallback_since

    before_change = datetime(2026, 11, 1, 1, 50)  # 01:50 EDT, ten minutes before clocks go back
    after_change = datetime(2026, 11, 1, 7, 0, tzinfo=UTC)  # 02:00 EST
    assert dst_fallback_since(before_change, "America/New_York", after_change) == timedelta(hours=1)
    same_offset = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
    assert dst_fallback_since(datetime(2026, 11, 1, 2, 30), "America/New_York", same_offset) == (
        timedelta(0)
    )
    # Spring forward loses an hour of wall time: nothing to widen.
    spring = datetime(2026, 3, 8, 12, 0, tzinfo=UTC)
    assert dst_fallback_since(datetime(2026, 3, 8, 1, 0), "America/New_York", spring) == (
        timedelta(0)
    )
