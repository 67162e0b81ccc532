"""Pydantic contracts for Open Dental API records.

A contract checks what a record must have to be usable: its key, and that every field it sends
parses under Open Dental's wire rules (numbers that may arrive as strings, "true"/"false" text
booleans, ``0001-01-01`` meaning empty). It does not judge business values: an enum text we have
never seen still lands, so the dbt tests can flag it instead of it disappearing here. Unknown
extra fields are allowed (and kept, because landing stores the raw record).

A record that breaks its contract is quarantined; the reason names the field and the rule, never
the value (values can be PHI).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict

EMPTY_DATE = "0001-01-01"
EMPTY_DATETIME = "0001-01-01 00:00:00"


def _int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("expected an integer, got a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    raise ValueError("expected an integer (number or digit string)")


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return value == "true"
    raise ValueError('expected "true" or "false"')


def _date(value: Any) -> date | None:
    if value in (None, "", EMPTY_DATE):
        return None
    if isinstance(value, str) and len(value) == 10:
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise ValueError("expected a date as yyyy-MM-dd")


def _datetime(value: Any) -> datetime | None:
    if value in (None, "", EMPTY_DATETIME, EMPTY_DATE):
        return None
    if isinstance(value, str):
        try:
            return datetime.strptime(value, "%Y-%m-%d %H:%M:%S")
        except ValueError:
            pass
    raise ValueError("expected a datetime as yyyy-MM-dd HH:mm:ss")


def _money(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise ValueError("expected an amount, got a boolean")
    if isinstance(value, int | float | str):
        try:
            amount = Decimal(str(value))
        except InvalidOperation:
            pass
        else:
            if amount.is_finite():
                return amount
    raise ValueError("expected an amount (number or numeric string)")


OdInt = Annotated[int, BeforeValidator(_int)]
OdBool = Annotated[bool, BeforeValidator(_bool)]
OdDate = Annotated[date | None, BeforeValidator(_date)]
OdDateTime = Annotated[datetime | None, BeforeValidator(_datetime)]
OdMoney = Annotated[Decimal, BeforeValidator(_money)]


class _Record(BaseModel):
    model_config = ConfigDict(extra="allow")

    serverDateTime: OdDateTime = None


class Patient(_Record):
    PatNum: OdInt
    DateTStamp: OdDateTime
    Guarantor: OdInt | None = None
    Birthdate: OdDate = None
    DateFirstVisit: OdDate = None
    SecDateEntry: OdDate = None
    EstBalance: OdMoney | None = None
    BalTotal: OdMoney | None = None
    PriProv: OdInt | None = None
    SecProv: OdInt | None = None
    ClinicNum: OdInt | None = None
    SuperFamily: OdInt | None = None


class Appointment(_Record):
    AptNum: OdInt
    PatNum: OdInt
    AptStatus: str
    DateTStamp: OdDateTime
    AptDateTime: OdDateTime = None
    Confirmed: OdInt | None = None
    Op: OdInt | None = None
    ProvNum: OdInt | None = None
    ProvHyg: OdInt | None = None
    NextAptNum: OdInt | None = None
    UnschedStatus: OdInt | None = None
    IsNewPatient: OdBool | None = None
    IsHygiene: OdBool | None = None
    ClinicNum: OdInt | None = None
    DateTimeArrived: OdDateTime = None
    DateTimeSeated: OdDateTime = None
    DateTimeDismissed: OdDateTime = None
    AppointmentTypeNum: OdInt | None = None
    SecDateTEntry: OdDateTime = None


class Payment(_Record):
    PayNum: OdInt
    PatNum: OdInt
    PayAmt: OdMoney
    PayType: OdInt | None = None
    PayDate: OdDate = None
    ClinicNum: OdInt | None = None
    DateEntry: OdDate = None
    DepositNum: OdInt | None = None
    IsRecurringCC: OdBool | None = None
    SecDateTEdit: OdDateTime = None


class PaySplit(_Record):
    SplitNum: OdInt
    PayNum: OdInt
    SplitAmt: OdMoney
    PatNum: OdInt | None = None
    ProvNum: OdInt | None = None
    PayPlanNum: OdInt | None = None
    DatePay: OdDate = None
    ProcNum: OdInt | None = None
    DateEntry: OdDate = None
    UnearnedType: OdInt | None = None
    ClinicNum: OdInt | None = None
    SecDateTEdit: OdDateTime = None
    AdjNum: OdInt | None = None


class Adjustment(_Record):
    AdjNum: OdInt
    PatNum: OdInt
    AdjAmt: OdMoney
    AdjDate: OdDate = None
    AdjType: OdInt | None = None
    ProvNum: OdInt | None = None
    ProcDate: OdDate = None
    ProcNum: OdInt | None = None
    DateEntry: OdDate = None
    ClinicNum: OdInt | None = None
    SecUserNumEntry: OdInt | None = None
    SecDateTEdit: OdDateTime = None


class Commlog(_Record):
    CommlogNum: OdInt
    PatNum: OdInt
    DateTStamp: OdDateTime
    CommDateTime: OdDateTime = None
    CommType: OdInt | None = None
    UserNum: OdInt | None = None
    DateTEntry: OdDateTime = None


class Provider(_Record):
    ProvNum: OdInt
    DateTStamp: OdDateTime = None
    Specialty: OdInt | None = None
    IsSecondary: OdBool | None = None
    IsHidden: OdBool | None = None
    IsNotPerson: OdBool | None = None


class Clinic(_Record):
    ClinicNum: OdInt
    IsHidden: OdBool | None = None


class Operatory(_Record):
    OperatoryNum: OdInt
    IsHidden: OdBool | None = None
    ProvDentist: OdInt | None = None
    ProvHygienist: OdInt | None = None
    IsHygiene: OdBool | None = None
    ClinicNum: OdInt | None = None


class Definition(_Record):
    DefNum: OdInt
    Category: OdInt
    ItemName: str
    ItemOrder: OdInt | None = None
    IsHidden: OdBool | None = None
