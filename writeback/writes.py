"""What each kind of write carries: vendor-neutral payloads, validated before they are planned.

The planner (writeback/plan.py) builds these from the marts; each destination
(writeback/<vendor>.py) turns one into its vendor's request. Ids are the vendor's own ids as text
(an Open Dental PatNum, a NexHealth patient id); money is decimal text, never a float.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from writeback.deliver import Failed


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def marker(key: str, source_ref: str) -> str:
    """The text a write carries where the API has no idempotency key (Open Dental's PayNote, a
    commlog note, NexHealth's notes): the lookup searches for it, and reconciliation reads the
    source (e.g. the processor charge id) from it."""
    return f"[chairside {key} {source_ref}]"


class PmsPayment(_Payload):
    """A processor charge posted to the patient's ledger (kind ``pms_payment``)."""

    patient_id: str
    location_ref: str | None = None  # Open Dental ClinicNum; NexHealth location id
    amount: Decimal = Field(gt=0)  # what the ledger records: net or gross, per payment type
    gross: Decimal
    fee: Decimal
    amount_basis: Literal["net", "gross"]
    paid_on: date
    payment_type: str  # card_terminal | patient_portal | payment_plan | membership | ...
    pms_pay_type: str | None = None  # the PMS's name for it (Open Dental PayType definition)
    charge_id: str
    note: str  # human text; the destination appends marker(key, charge_id)


class AppointmentConfirm(_Payload):
    """A patient confirmed by text (kind ``appointment_confirm``)."""

    appointment_id: str
    patient_id: str
    message_ref: str  # the text message that confirmed (its vendor id)
    received_at: datetime


class AppointmentCancel(_Payload):
    """A patient cancelled by text (kind ``appointment_cancel``): Open Dental Break, NexHealth
    cancelled=true."""

    appointment_id: str
    patient_id: str
    message_ref: str
    received_at: datetime
    break_type: Literal["Cancelled", "Missed"] = "Cancelled"


class Commlog(_Payload):
    """A call summary on the patient's record (kind ``commlog``)."""

    patient_id: str
    at: datetime
    note: str  # never more than the call's facts: direction, outcome, duration, line
    mode: Literal["Phone", "Text"] = "Phone"
    sent_or_received: Literal["Sent", "Received"] = "Received"
    call_ref: str


class DepositLine(_Payload):
    amount: Decimal  # negative for the processing fee, refunds and disputes
    account: str  # account name in the company's chart of accounts
    description: str
    class_name: str | None = None
    department: str | None = None


class QboDeposit(_Payload):
    """One processor payout booked as one QuickBooks Deposit (kind ``qbo_deposit``): gross
    lines to income/clearing accounts, the fee as its own negative line, the total = net = the
    bank line."""

    payout_id: str
    txn_date: date
    bank_account: str  # account name (Bank or Other Current Asset)
    department: str | None = None
    doc_number: str = Field(max_length=21)
    private_note: str  # names the payout id and carries the idempotency key
    net: Decimal
    lines: list[DepositLine] = Field(min_length=1)


PAYLOADS: dict[str, type[_Payload]] = {
    "pms_payment": PmsPayment,
    "appointment_confirm": AppointmentConfirm,
    "appointment_cancel": AppointmentCancel,
    "commlog": Commlog,
    "qbo_deposit": QboDeposit,
}


def parse(kind: str, payload: dict) -> _Payload:
    return PAYLOADS[kind].model_validate(payload)


def parse_row(row) -> _Payload | Failed:
    """An outbox row's payload, or the failure naming the fields that break it (never their
    values: pydantic's message would quote them)."""
    try:
        return parse(row.kind, row.payload)
    except ValidationError as error:
        fields = sorted({".".join(str(p) for p in e["loc"]) for e in error.errors()})
        return Failed(f"invalid {row.kind} payload: {', '.join(fields)}")


def vendor_number(text: str | None) -> int | None:
    """A vendor's numeric id from its text form (None when it is not a number)."""
    return int(text) if text is not None and text.strip().isdigit() else None
