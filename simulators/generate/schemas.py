"""Column schemas of every generated table, their primary keys and ``table_frame``.

Each API table is ``office`` (the Open Dental database a row lives in) followed by the Open Dental
columns in their native order and polars types; ``truth_*`` tables hold ground truth no API
exposes. ``table_frame`` builds rows in schema order and fills omitted columns with OD's empty
values, so every builder in this package emits frames of exactly these shapes.
"""

from __future__ import annotations

import numpy as np
import polars as pl

I64, F64, BOOL, STR, DATE = pl.Int64, pl.Float64, pl.Boolean, pl.String, pl.Date
DTIME = pl.Datetime("us")

SCHEMAS: dict[str, dict[str, pl.DataType]] = {
    "definitions": {
        "office": STR,
        "DefNum": I64,
        "Category": I64,
        "ItemName": STR,
        "ItemValue": STR,
        "ItemOrder": I64,
        "IsHidden": BOOL,
    },
    "clinics": {
        "office": STR,
        "ClinicNum": I64,
        "Description": STR,
        "Abbr": STR,
        "Address": STR,
        "Address2": STR,
        "City": STR,
        "State": STR,
        "Zip": STR,
        "Phone": STR,
        "IsHidden": BOOL,
    },
    "providers": {
        "office": STR,
        "ProvNum": I64,
        "Abbr": STR,
        "LName": STR,
        "FName": STR,
        "Suffix": STR,
        "Specialty": I64,
        "IsSecondary": BOOL,
        "IsHidden": BOOL,
        "NationalProvID": STR,
        "DateTStamp": DTIME,
        "IsNotPerson": BOOL,
        "ProvStatus": STR,
    },
    "operatories": {
        "office": STR,
        "OperatoryNum": I64,
        "OpName": STR,
        "Abbrev": STR,
        "IsHidden": BOOL,
        "ProvDentist": I64,
        "ProvHygienist": I64,
        "IsHygiene": BOOL,
        "ClinicNum": I64,
    },
    "patients": {
        "office": STR,
        "PatNum": I64,
        "LName": STR,
        "FName": STR,
        "MiddleI": STR,
        "Preferred": STR,
        "PatStatus": STR,
        "Gender": STR,
        "Position": STR,
        "Birthdate": DATE,
        "Address": STR,
        "Address2": STR,
        "City": STR,
        "State": STR,
        "Zip": STR,
        "HmPhone": STR,
        "WkPhone": STR,
        "WirelessPhone": STR,
        "Guarantor": I64,
        "Email": STR,
        "EstBalance": F64,
        "BalTotal": F64,
        "PriProv": I64,
        "SecProv": I64,
        "BillingType": STR,
        "ChartNumber": STR,
        "DateFirstVisit": DATE,
        "ClinicNum": I64,
        "PreferConfirmMethod": STR,
        "PreferContactMethod": STR,
        "PreferRecallMethod": STR,
        "Language": STR,
        "TxtMsgOk": STR,
        "DateTStamp": DTIME,
        "SuperFamily": I64,
        "SecDateEntry": DATE,
    },
    "appointments": {
        "office": STR,
        "AptNum": I64,
        "PatNum": I64,
        "AptStatus": STR,
        "Pattern": STR,
        "Confirmed": I64,
        "Op": I64,
        "Note": STR,
        "ProvNum": I64,
        "ProvHyg": I64,
        "AptDateTime": DTIME,
        "NextAptNum": I64,
        "UnschedStatus": I64,
        "IsNewPatient": BOOL,
        "ProcDescript": STR,
        "ClinicNum": I64,
        "IsHygiene": BOOL,
        "DateTStamp": DTIME,
        "DateTimeArrived": DTIME,
        "DateTimeSeated": DTIME,
        "DateTimeDismissed": DTIME,
        "AppointmentTypeNum": I64,
        "SecDateTEntry": DTIME,
        "Priority": STR,
    },
    "payments": {
        "office": STR,
        "PayNum": I64,
        "PayType": I64,
        "PayDate": DATE,
        "PayAmt": F64,
        "CheckNum": STR,
        "BankBranch": STR,
        "PayNote": STR,
        "PatNum": I64,
        "ClinicNum": I64,
        "DateEntry": DATE,
        "DepositNum": I64,
        "IsRecurringCC": BOOL,
        "SecDateTEdit": DTIME,
        "PaymentSource": STR,
        "ProcessStatus": STR,
    },
    "paysplits": {
        "office": STR,
        "SplitNum": I64,
        "SplitAmt": F64,
        "PatNum": I64,
        "PayNum": I64,
        "ProvNum": I64,
        "PayPlanNum": I64,
        "DatePay": DATE,
        "ProcNum": I64,
        "DateEntry": DATE,
        "UnearnedType": I64,
        "ClinicNum": I64,
        "SecDateTEdit": DTIME,
        "AdjNum": I64,
    },
    "adjustments": {
        "office": STR,
        "AdjNum": I64,
        "AdjDate": DATE,
        "AdjAmt": F64,
        "PatNum": I64,
        "AdjType": I64,
        "ProvNum": I64,
        "AdjNote": STR,
        "ProcDate": DATE,
        "ProcNum": I64,
        "DateEntry": DATE,
        "ClinicNum": I64,
        "SecUserNumEntry": I64,
        "SecDateTEdit": DTIME,
    },
    "commlogs": {
        "office": STR,
        "CommlogNum": I64,
        "PatNum": I64,
        "CommDateTime": DTIME,
        "CommType": I64,
        "Note": STR,
        "Mode_": STR,
        "SentOrReceived": STR,
        "UserNum": I64,
        "DateTStamp": DTIME,
        "CommSource": STR,
        "DateTEntry": DTIME,
    },
    "truth_persons": {
        "person_id": I64,
        "household_id": I64,
        "first_name": STR,
        "last_name": STR,
        "nickname": STR,
        "gender": STR,
        "birthdate": DATE,
        "phone": STR,
        "email": STR,
        "address": STR,
        "city": STR,
        "state": STR,
        "zip": STR,
    },
    "truth_patient_links": {"office": STR, "PatNum": I64, "person_id": I64, "household_id": I64},
    "truth_appointments": {"office": STR, "AptNum": I64, "broken_reason": STR},
}

PRIMARY_KEYS = {
    "definitions": "DefNum",
    "clinics": "ClinicNum",
    "providers": "ProvNum",
    "operatories": "OperatoryNum",
    "patients": "PatNum",
    "appointments": "AptNum",
    "payments": "PayNum",
    "paysplits": "SplitNum",
    "adjustments": "AdjNum",
    "commlogs": "CommlogNum",
}

_DEFAULTS = {I64: 0, F64: 0.0, BOOL: False, STR: ""}


def table_frame(table: str, n: int, **cols: object) -> pl.DataFrame:
    """Build ``table`` rows in schema order; omitted columns get OD's empty value (0, "", null)."""
    data = []
    for name, dtype in SCHEMAS[table].items():
        value = cols.pop(name, _DEFAULTS.get(dtype))
        if isinstance(value, pl.Series):
            series = value.alias(name)
        elif isinstance(value, np.ndarray):
            series = pl.Series(name, value)
        else:
            series = pl.repeat(value, n, dtype=dtype, eager=True).alias(name)
        data.append(series.cast(dtype))
    if cols:
        raise ValueError(f"{table}: unknown columns {sorted(cols)}")
    return pl.DataFrame(data)
