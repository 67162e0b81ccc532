"""Pydantic contracts for QuickBooks Online entities.

A contract checks what a record must have to be usable: ``Id`` and ``SyncToken`` as strings,
``MetaData`` times with a UTC offset, amounts as JSON numbers, dates as yyyy-MM-dd, and on
transactions a ``Line`` list whose lines carry an ``Amount``. Enum texts (AccountType,
PostingType) are business values: an unknown one lands and dbt's accepted_values tests flag
it. Extra fields are allowed (and kept, because landing stores the raw record).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    StrictBool,
    StrictStr,
)


def _instant(value: str) -> str:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("expected an ISO 8601 date-time") from None
    if moment.tzinfo is None:
        raise ValueError("expected a date-time with a UTC offset")
    return value


def _date(value: str) -> str:
    try:
        date.fromisoformat(value)
    except ValueError:
        raise ValueError("expected a date as yyyy-MM-dd") from None
    return value


def _number(value: Any) -> int | float:
    # QBO sends amounts as JSON numbers; a string or boolean means the wire format changed.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("expected a JSON number")
    return value


def _id(value: str) -> str:
    if not value:
        raise ValueError("expected a non-empty id")
    return value


Instant = Annotated[StrictStr, AfterValidator(_instant)]
Day = Annotated[StrictStr, AfterValidator(_date)]
QboId = Annotated[StrictStr, AfterValidator(_id)]
Money = Annotated[Any, AfterValidator(_number)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow")


class Ref(_Model):
    value: QboId
    name: StrictStr | None = None


class Meta(_Model):
    CreateTime: Instant
    LastUpdatedTime: Instant


class _Entity(_Model):
    Id: QboId
    SyncToken: StrictStr
    MetaData: Meta


class Account(_Entity):
    Name: StrictStr
    AccountType: StrictStr
    Active: StrictBool
    CurrentBalance: Money | None = None


class Class(_Entity):
    Name: StrictStr
    Active: StrictBool


class Department(_Entity):
    Name: StrictStr
    Active: StrictBool


class DepositDetail(_Model):
    AccountRef: Ref | None = None  # absent on lines linked to a Payment
    ClassRef: Ref | None = None


class DepositLine(_Model):
    Amount: Money
    Id: StrictStr | None = None
    DepositLineDetail: DepositDetail | None = None


class Deposit(_Entity):
    TxnDate: Day
    TotalAmt: Money
    DepositToAccountRef: Ref
    Line: list[DepositLine]


class JournalDetail(_Model):
    PostingType: StrictStr
    AccountRef: Ref


class JournalEntryLine(_Model):
    Amount: Money | None = None  # DescriptionOnly lines carry no amount
    Id: StrictStr | None = None
    JournalEntryLineDetail: JournalDetail | None = None


class JournalEntry(_Entity):
    TxnDate: Day
    Line: list[JournalEntryLine]
