"""Pydantic contracts for NexHealth API records (v20240412).

A contract checks what a record must have to be usable: its id, its change stamp where the
entity is read incrementally, and that every field it sends parses under NexHealth's wire rules:
ids are JSON integers, flags JSON booleans, times ISO-8601 with a UTC offset ("...Z"), dates
"YYYY-MM-DD", money ``{"amount": "12.50", "currency": "USD"}`` with the amount a decimal string.
It does not judge business values (an unexpected gender text still lands; dbt tests flag it).
Unknown extra fields are allowed and kept, because landing stores the raw record.

A record that breaks its contract is quarantined; the reason names the field and the rule, never
the value (values can be PHI).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict


def _int(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise ValueError("expected a JSON integer")


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise ValueError("expected a JSON boolean")


def _time(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            if moment.tzinfo is not None:
                return moment
    raise ValueError("expected an ISO-8601 date-time with a UTC offset")


def _date(value: Any) -> date | None:
    if value is None:
        return None
    if isinstance(value, str) and len(value) == 10:
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise ValueError("expected a date as YYYY-MM-DD")


def _amount(value: Any) -> Decimal:
    if isinstance(value, str):
        try:
            amount = Decimal(value)
        except InvalidOperation:
            pass
        else:
            if amount.is_finite():
                return amount
    raise ValueError("expected a decimal amount as a string")


NxInt = Annotated[int, BeforeValidator(_int)]
NxBool = Annotated[bool, BeforeValidator(_bool)]
NxTime = Annotated[datetime | None, BeforeValidator(_time)]
NxDate = Annotated[date | None, BeforeValidator(_date)]
NxAmount = Annotated[Decimal, BeforeValidator(_amount)]


class _Object(BaseModel):
    model_config = ConfigDict(extra="allow")


class _Record(_Object):
    id: NxInt


class Money(_Object):
    amount: NxAmount
    currency: str


class Bio(_Object):
    date_of_birth: NxDate = None
    new_patient: NxBool | None = None
    non_patient: NxBool | None = None


class Location(_Record):
    institution_id: NxInt | None = None
    tz: str | None = None
    created_at: NxTime = None
    updated_at: NxTime = None
    last_sync_time: NxTime = None
    inactive: NxBool | None = None


class AppointmentType(_Record):
    parent_id: NxInt | None = None
    minutes: NxInt | None = None
    bookable_online: NxBool | None = None


class Provider(_Record):
    updated_at: NxTime
    created_at: NxTime = None
    institution_id: NxInt | None = None
    inactive: NxBool | None = None


class Operatory(_Record):
    updated_at: NxTime
    location_id: NxInt | None = None
    active: NxBool | None = None
    bookable_online: NxBool | None = None


class Patient(_Record):
    updated_at: NxTime
    created_at: NxTime = None
    institution_id: NxInt | None = None
    guarantor_id: NxInt | None = None
    provider_id: NxInt | None = None
    inactive: NxBool | None = None
    bio: Bio | None = None
    location_ids: list[NxInt] | None = None


class Appointment(_Record):
    updated_at: NxTime
    start_time: NxTime
    end_time: NxTime = None
    patient_id: NxInt | None = None
    provider_id: NxInt | None = None
    operatory_id: NxInt | None = None
    appointment_type_id: NxInt | None = None
    location_id: NxInt | None = None
    confirmed: NxBool | None = None
    confirmed_at: NxTime = None
    cancelled: NxBool | None = None
    cancelled_at: NxTime = None
    patient_missed: NxBool | None = None
    checkin_at: NxTime = None
    checked_out: NxBool | None = None
    checked_out_at: NxTime = None
    unavailable: NxBool | None = None
    created_at: NxTime = None


class Payment(_Record):
    updated_at: NxTime
    payment_amount: Money
    paid_at: NxDate = None
    location_id: NxInt | None = None
    patient_id: NxInt | None = None
    guarantor_id: NxInt | None = None
    provider_id: NxInt | None = None
    payment_type_id: NxInt | None = None
    deleted_at: NxTime = None
