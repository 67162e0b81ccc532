"""NexHealth write endpoints: POST /payments and PATCH /appointments/{id} (vendor-apis.md 3).

NexHealth's Synchronizer writes into the practice's database, so these write into the world
through the same code as the Open Dental simulator's write endpoints
(``simulators.opendental.writes``): the records then appear in the listings the sync reads,
stamped with the office's clock. What only NexHealth keeps (a payment's ``transaction_id``, "for
tracking purposes only and not visible in the health record system") lives here, in
``transactions``, which the payments listing joins.

Unconfirmed details, chosen here: the sign of a posted ``amount`` follows the listing (a payment
is negative; a positive amount would be a refund, which is not simulated); writes are applied at
once (real NexHealth inserts asynchronously and reports through the ``*_insertion`` webhooks);
a cancelled appointment cannot be cancelled again (400).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

import polars as pl

from simulators.nexhealth import data
from simulators.nexhealth.wire import CONFIRMED_DEF
from simulators.opendental.writes import OpenDentalWrites, WriteError, WriteLog, WriteSettings
from simulators.world import World

TRANSACTIONS_SCHEMA = {"office": pl.String, "PayNum": pl.Int64, "transaction_id": pl.String}
PATCHABLE = ("confirmed", "cancelled")


class NexHealthWrites:
    def __init__(self, world: World, locations: list[data.Location], log: WriteLog) -> None:
        self.world = world
        self.by_id = {location.id: location for location in locations}
        self.log = log
        self.records = OpenDentalWrites(world, WriteSettings(), None)
        # Replaced (never mutated) on every write, so frame caches keyed on it rebuild.
        self.transactions = pl.DataFrame(schema=TRANSACTIONS_SCHEMA)

    def post_payment(self, location: data.Location, body: Mapping[str, Any]) -> int:
        """POST /payments?location_id=: returns the new payment's NexHealth id."""
        payment = body.get("payment")
        if not isinstance(payment, dict):
            raise WriteError(400, "Missing parameter payment")
        pat_num = self._native(location, payment.get("patient_id"), "patient_id", "Patient")
        amount = _amount(payment.get("amount"))
        if payment.get("currency", "USD") != "USD":
            raise WriteError(400, "Invalid parameter currency: expected USD")
        if payment.get("payment_type_id") is None:
            raise WriteError(400, "Missing parameter payment_type_id")
        pay_type = self._native(
            location, payment["payment_type_id"], "payment_type_id", "Payment type"
        )
        paid_at = _date(payment.get("paid_at"))
        transaction = payment.get("transaction_id")
        notes = str(payment.get("notes") or "")
        with self.world.lock:
            if self._patient_missing(location, pat_num):
                raise WriteError(404, "Patient not found")
            if not self._is_payment_type(location, pay_type):
                raise WriteError(400, "Invalid parameter payment_type_id: no such payment type")
            pay_num = self.records.post_payment(
                location.office,
                {
                    "PatNum": pat_num,
                    "PayAmt": str(-amount),  # the listing shows payments negative
                    "PayType": pay_type,
                    "PayDate": (paid_at or self.world.office_now(location.office).date()),
                    "PayNote": notes,
                },
            )
            if transaction is not None:
                row = pl.DataFrame(
                    {
                        "office": [location.office],
                        "PayNum": [pay_num],
                        "transaction_id": [str(transaction)],
                    },
                    schema=TRANSACTIONS_SCHEMA,
                )
                self.transactions = pl.concat([self.transactions, row])
        payment_id = data.nex_id(location.id, pay_num)
        patient_id = data.nex_id(location.id, pat_num)
        self.log.record(
            "payment",
            location.office,
            notes,
            id=payment_id,
            patient_id=patient_id,
            transaction_id=transaction,
        )
        return payment_id

    def patch_appointment(self, appointment_id: int, body: Mapping[str, Any]) -> None:
        """PATCH /appointments/{id}: ``{appt: {confirmed: true}}`` or ``{appt: {cancelled:
        true}}``. Confirming a confirmed appointment changes nothing; confirmed only goes from
        false to true (vendor-apis.md 3)."""
        location, apt_num = self.locate_appointment(appointment_id)
        appt = body.get("appt")
        if not isinstance(appt, dict) or not appt:
            raise WriteError(400, "Missing parameter appt")
        unsupported = sorted(set(appt) - set(PATCHABLE))
        if unsupported:
            raise WriteError(400, f"Parameter appt.{unsupported[0]} is not supported here")
        for flag in PATCHABLE:
            if flag in appt and appt[flag] is not True:
                raise WriteError(400, f"Invalid parameter appt.{flag}: it can only be set to true")
        office = location.office
        with self.world.lock:
            if appt.get("confirmed"):
                confirmed = self._confirmed_defnum(office)
                if self._appointment(office, apt_num)["Confirmed"] != confirmed:
                    self.records.confirm(office, apt_num, {"defNum": confirmed})
                    self.log.record("appointment_confirm", office, id=appointment_id)
            if appt.get("cancelled"):
                try:
                    self.records.break_appointment(
                        office,
                        apt_num,
                        {"sendToUnscheduledList": "true", "breakType": "Cancelled"},
                    )
                except WriteError:
                    raise WriteError(400, "Only a scheduled appointment can be cancelled") from None
                self.log.record("appointment_cancel", office, id=appointment_id)

    def locate_appointment(self, appointment_id: int) -> tuple[data.Location, int]:
        """(location, AptNum) of an appointment id; 404 when no such appointment."""
        location_id, apt_num = data.native_key(appointment_id)
        location = self.by_id.get(location_id)
        if location is None:
            raise WriteError(404, "Appointment not found")
        with self.world.lock:
            self._appointment(location.office, apt_num)
        return location, apt_num

    # -- helpers ---------------------------------------------------------------------------

    @staticmethod
    def _native(location: data.Location, value: Any, name: str, what: str) -> int:
        if value is None:
            raise WriteError(400, f"Missing parameter {name}")
        try:
            location_id, native = data.native_key(int(value))
        except (TypeError, ValueError):
            raise WriteError(400, f"Invalid parameter {name}: expected an integer") from None
        if location_id != location.id:
            raise WriteError(404, f"{what} not found")
        return native

    def _patient_missing(self, location: data.Location, pat_num: int) -> bool:
        patients = self.world.tables["patients"]
        found = patients.filter(
            (pl.col("office") == location.office) & (pl.col("PatNum") == pat_num)
        )
        return found.is_empty()

    def _is_payment_type(self, location: data.Location, def_num: int) -> bool:
        definitions = self.world.tables["definitions"]
        return not definitions.filter(
            (pl.col("office") == location.office)
            & (pl.col("Category") == 10)
            & (pl.col("DefNum") == def_num)
            & ~pl.col("IsHidden")
        ).is_empty()

    def _appointment(self, office: str, apt_num: int) -> dict[str, Any]:
        found = self.world.tables["appointments"].filter(
            (pl.col("office") == office) & (pl.col("AptNum") == apt_num)
        )
        if found.is_empty():
            raise WriteError(404, "Appointment not found")
        return found.row(0, named=True)

    def _confirmed_defnum(self, office: str) -> int:
        found = self.world.tables["definitions"].filter(
            (pl.col("office") == office)
            & (pl.col("Category") == 2)
            & (pl.col("ItemName") == CONFIRMED_DEF)
        )
        if found.is_empty():
            raise WriteError(400, "This location has no confirmed status to set")
        return int(found["DefNum"][0])


def _amount(value: Any) -> Decimal:
    if value is None:
        raise WriteError(400, "Missing parameter amount")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise WriteError(400, "Invalid parameter amount: expected a decimal amount") from None
    if not amount.is_finite() or amount >= 0:
        raise WriteError(
            400, "Invalid parameter amount: a payment is negative (refunds are not simulated)"
        )
    return amount


def _date(value: Any) -> date | None:
    if value is None or value == "":
        return None
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise WriteError(400, "Invalid parameter paid_at: expected YYYY-MM-DD") from None
