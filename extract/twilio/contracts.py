"""Pydantic contracts for Twilio Call and Message records.

A contract checks what a record must have to be usable: its SID, and that the fields we parse
follow Twilio's wire rules (times in RFC 2822, ``duration`` and counts as digit strings, prices as
decimal strings). Status and direction values are not judged here: an unknown one lands and the
dbt ``accepted_values`` tests flag it. Extra fields are allowed and kept in the raw record.
A reason names the field and the rule, never the value (message bodies and numbers are PHI).
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal, InvalidOperation
from email.utils import parsedate_to_datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict

_RFC2822 = re.compile(r"^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} [+-]\d{4}$")


def rfc2822(value: Any) -> datetime | None:
    """Twilio's ``Tue, 03 Nov 2026 16:00:00 +0000`` as an aware datetime; null/"" is None."""
    if value in (None, ""):
        return None
    if isinstance(value, str) and _RFC2822.match(value):
        try:
            return parsedate_to_datetime(value)
        except (TypeError, ValueError):
            pass
    raise ValueError("expected an RFC 2822 time like 'Tue, 03 Nov 2026 16:00:00 +0000'")


def _count(value: Any) -> int | None:
    if value in (None, ""):
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    raise ValueError("expected a whole number of seconds or items (digit string)")


def _price(value: Any) -> Decimal | None:
    if value in (None, ""):
        return None
    if isinstance(value, int | float | str) and not isinstance(value, bool):
        try:
            amount = Decimal(str(value))
        except InvalidOperation:
            pass
        else:
            if amount.is_finite():
                return amount
    raise ValueError("expected a decimal amount")


def _sid(*prefixes: str):
    pattern = re.compile(rf"^({'|'.join(prefixes)})[0-9a-fA-F]{{32}}$")

    def check(value: Any) -> str:
        if isinstance(value, str) and pattern.match(value):
            return value
        raise ValueError(f"expected a SID: {'/'.join(prefixes)} followed by 32 hex digits")

    return check


Time = Annotated[datetime | None, BeforeValidator(rfc2822)]
Count = Annotated[int | None, BeforeValidator(_count)]
Price = Annotated[Decimal | None, BeforeValidator(_price)]
CallSid = Annotated[str, BeforeValidator(_sid("CA"))]
MessageSid = Annotated[str, BeforeValidator(_sid("SM", "MM"))]


class _Record(BaseModel):
    model_config = ConfigDict(extra="allow")


class Call(_Record):
    sid: CallSid
    parent_call_sid: CallSid | None = None
    status: str
    direction: str
    date_created: Time
    date_updated: Time
    start_time: Time = None
    end_time: Time = None
    duration: Count = None
    queue_time: Count = None
    price: Price = None


class Message(_Record):
    sid: MessageSid
    status: str
    direction: str
    date_created: Time
    date_updated: Time
    date_sent: Time = None
    num_segments: Count = None
    num_media: Count = None
    error_code: Count = None
    price: Price = None
