"""Pydantic contracts for CareStack API records.

A contract checks what a record must have to be usable: its key, and that the fields we parse
(ids, change stamps, dates) have a shape we can read. It does not judge business values: a status
name or call type we have never seen still lands, for the dbt tests to flag. Unknown extra fields
are allowed (and kept, because landing stores the raw record).

Reference lists (locations, providers, ...) use PascalCase fields and sync feeds camelCase, as the
integrations we know show. Change stamps are ISO-8601 instants; one without an offset is taken as
UTC (the account spans time zones, so a local stamp could not order changes).

A record that breaks its contract is quarantined; the reason names the field and the rule, never
the value (values can be PHI).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict


def _int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("expected an integer, got a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    raise ValueError("expected an integer (number or digit string)")


def parse_instant(value: Any) -> datetime:
    """An ISO-8601 instant as an aware UTC datetime (no offset = UTC)."""
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            pass
        else:
            return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
    raise ValueError("expected an ISO-8601 date-time")


def _local(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ValueError("expected an ISO-8601 date-time")


def _date(value: Any) -> date | None:
    if value in (None, ""):
        return None
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip()[:10])
        except ValueError:
            pass
    raise ValueError("expected a date as yyyy-MM-dd")


def _bool(value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise ValueError("expected true or false")


CsInt = Annotated[int, BeforeValidator(_int)]
Instant = Annotated[datetime, BeforeValidator(parse_instant)]
LocalDateTime = Annotated[datetime | None, BeforeValidator(_local)]
CsDate = Annotated[date | None, BeforeValidator(_date)]
CsBool = Annotated[bool | None, BeforeValidator(_bool)]


class _Record(BaseModel):
    model_config = ConfigDict(extra="allow")


class Location(_Record):
    Id: CsInt
    Name: str
    IsActive: CsBool = None


class AppointmentStatus(_Record):
    Id: CsInt
    Name: str
    IsActive: CsBool = None


class Provider(_Record):
    Id: CsInt
    LocationId: CsInt | None = None
    IsActive: CsBool = None


class Operatory(_Record):
    Id: CsInt
    LocationId: CsInt | None = None
    IsActive: CsBool = None


class _Synced(_Record):
    id: CsInt
    lastModifiedOn: Instant


class Patient(_Synced):
    dob: CsDate = None
    defaultLocationId: CsInt | None = None
    guarantorId: CsInt | None = None
    primaryProviderId: CsInt | None = None
    firstVisitDate: CsDate = None


class Appointment(_Synced):
    patientId: CsInt
    locationId: CsInt
    statusId: CsInt
    dateTime: LocalDateTime = None
    duration: CsInt | None = None
    operatoryId: CsInt | None = None
    providerIds: list[CsInt] | None = None
    createdOn: Instant | None = None


class AppointmentRequest(_Synced):
    locationId: CsInt
    status: str
    patientId: CsInt | None = None
    appointmentId: CsInt | None = None
    dateOfBirth: CsDate = None
    isNewPatient: CsBool = None
    preferredDate: CsDate = None
    createdOn: Instant | None = None


class ConversationCall(_Synced):
    callType: str
    duration: CsInt
    startTime: Instant
    locationId: CsInt | None = None
    patientId: CsInt | None = None
