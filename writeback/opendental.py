"""Open Dental writeback: ledger payments, appointment confirmations and breaks, commlogs.

``OpenDentalDestination`` is the ``writeback.deliver.Destination`` of one Open Dental office
(vendor-apis.md 1.2): ``pms_payment`` -> ``POST /payments``, ``appointment_confirm`` ->
``PUT /appointments/{AptNum}/Confirm``, ``appointment_cancel`` -> ``PUT .../Break``, ``commlog`` ->
``POST /commlogs``. One write per request (``batch_size`` 1): the API has no batch endpoint.

Exactly once without an idempotency key (reliability-and-performance.md A2): a payment's
``PayNote`` and a commlog's ``Note`` end with ``writes.marker(key, source)``, and ``lookup`` lists
the patient's payments or commlogs and searches for it. A confirmation or a break is its own
evidence: the appointment already carries the confirmed definition, or is already Broken (a Break
sent twice is a 400, so a retried break must be found, never re-sent). A break refused because
the appointment is already Broken counts as done too.

Answers: 200/201 -> sent (the id from the body, else the ``Location`` header); 400/404 and other
refusals -> failed with Open Dental's explanation ("PatNum not found.": it names a field, never a
value; capped); 401/403 -> failed (the key or its API permission must be fixed, then the row
retried); 408/429 (after the client's own retries)/5xx -> outcome unknown; timeouts and lost
connections raise (unknown). Unknown rows are looked up before they are sent again.

Definitions (payment types, confirmation statuses, commlog types) are resolved by name once per
destination. Logs carry ids and counts only.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import orjson

from chairside.config import OpenDentalConnection
from extract.http import ApiClient, ApiError
from extract.opendental.connector import OD_DATETIME, open_client
from writeback.deliver import Failed, Outcome, Sent, Unknown
from writeback.one_by_one import OneByOneDestination, capped
from writeback.outbox import Row
from writeback.writes import (
    AppointmentCancel,
    AppointmentConfirm,
    Commlog,
    PmsPayment,
    marker,
    parse_row,
    vendor_number,
)

log = logging.getLogger("chairside.writeback.opendental")

PAYMENT_TYPES, CONFIRMATIONS, COMMLOG_TYPES = 10, 2, 27  # definition categories (DefCat)
PAGE = 100  # the remote API's page size maximum
MAX_PAGES = 1000  # a lookup that pages further than this is not converging


@dataclass(frozen=True)
class OpenDentalWriteSettings:
    """What the office calls things (config: ``writeback.statuses.confirmed_definition``,
    ``writeback.commlogs.commlog_type``, ``writeback.payments.<type>.pms_pay_type``)."""

    # ApptConfirmed definition (category 2) a confirmation sets.
    confirmed_definition: str = "Appointment Confirmed"
    # CommLogTypes definition (category 27) the commlogs are filed under.
    commlog_type: str = "Misc"
    # PaymentTypes definition (category 10) of a payment whose payload names none; None lets
    # Open Dental use the office's ApiPaymentType preference.
    default_pay_type: str | None = None


class OpenDentalDestination(OneByOneDestination):
    vendor = "Open Dental"
    log = log

    def __init__(
        self,
        target: str,
        client: ApiClient,
        settings: OpenDentalWriteSettings | None = None,
        *,
        timezone: str,
    ):
        super().__init__(target, client)
        self.settings = settings or OpenDentalWriteSettings()
        self.zone = ZoneInfo(timezone)  # the office's: Open Dental times are its wall clock
        self._definitions: dict[int, dict[str, int]] = {}
        self.senders = {
            "pms_payment": self._payment,
            "appointment_confirm": self._confirm,
            "appointment_cancel": self._break,
            "commlog": self._commlog,
        }

    # -- sending -----------------------------------------------------------------------------

    def _payment(self, row: Row, p: PmsPayment) -> Outcome:
        pat_num = vendor_number(p.patient_id)
        if pat_num is None:
            return Failed("patient_id is not an Open Dental PatNum")
        body: dict[str, Any] = {
            "PatNum": pat_num,
            "PayAmt": float(p.amount),  # two decimals: a float prints them back exactly
            "PayDate": p.paid_on.isoformat(),
            "PayNote": _with_marker(p.note, row.key, p.charge_id),
        }
        name = p.pms_pay_type or self.settings.default_pay_type
        if name:
            pay_type = self._definition(PAYMENT_TYPES, name)
            if pay_type is None:
                setting = (
                    f"writeback.payments.{p.payment_type}.pms_pay_type"
                    if p.pms_pay_type
                    else "default_pay_type"
                )
                return self._unknown_definition(PAYMENT_TYPES, "payment type", name, setting)
            body["PayType"] = pay_type
        if p.location_ref:
            clinic = vendor_number(p.location_ref)
            if clinic is None:
                return Failed("location_ref is not an Open Dental ClinicNum")
            body["ClinicNum"] = clinic
        response = self.client.write_json("POST", "/payments", json=body)
        return self._created(response, "POST /payments", "PayNum")

    def _confirm(self, row: Row, p: AppointmentConfirm) -> Outcome:
        apt_num = vendor_number(p.appointment_id)
        if apt_num is None:
            return Failed("appointment_id is not an Open Dental AptNum")
        name = self.settings.confirmed_definition
        def_num = self._definition(CONFIRMATIONS, name)
        if def_num is None:
            setting = "writeback.statuses.confirmed_definition"
            return self._unknown_definition(CONFIRMATIONS, "confirmation status", name, setting)
        endpoint = f"/appointments/{apt_num}/Confirm"
        response = self.client.write_json("PUT", endpoint, json={"defNum": def_num})
        return self._updated(response, f"PUT {endpoint}", str(apt_num))

    def _break(self, row: Row, p: AppointmentCancel) -> Outcome:
        apt_num = vendor_number(p.appointment_id)
        if apt_num is None:
            return Failed("appointment_id is not an Open Dental AptNum")
        endpoint = f"/appointments/{apt_num}/Break"
        body = {"sendToUnscheduledList": "true", "breakType": p.break_type}
        response = self.client.write_json("PUT", endpoint, json=body)
        if response.status_code == 400 and self._is_broken(apt_num):
            return Sent(str(apt_num))  # broken already (by us before, or by the office)
        return self._updated(response, f"PUT {endpoint}", str(apt_num))

    def _commlog(self, row: Row, p: Commlog) -> Outcome:
        pat_num = vendor_number(p.patient_id)
        if pat_num is None:
            return Failed("patient_id is not an Open Dental PatNum")
        name = self.settings.commlog_type
        comm_type = self._definition(COMMLOG_TYPES, name)
        if comm_type is None:
            return self._unknown_definition(
                COMMLOG_TYPES, "commlog type", name, "writeback.commlogs.commlog_type"
            )
        body = {
            "PatNum": pat_num,
            "Note": _with_marker(p.note, row.key, p.call_ref),
            "CommDateTime": self._office_time(p.at),
            "CommType": comm_type,
            "Mode_": p.mode,
            "SentOrReceived": p.sent_or_received,
        }
        response = self.client.write_json("POST", "/commlogs", json=body)
        return self._created(response, "POST /commlogs", "CommlogNum")

    # -- answers -----------------------------------------------------------------------------

    def _created(self, response: httpx.Response, endpoint: str, key: str) -> Outcome:
        refused = self._refusal(response, endpoint)
        if refused is not None:
            return refused
        remote_id = _created_id(response, key)
        if remote_id is None:  # it exists, but where: the lookup will tell
            return Unknown(f"Open Dental created it but sent no {key} ({endpoint})")
        return Sent(remote_id)

    def _updated(self, response: httpx.Response, endpoint: str, remote_id: str) -> Outcome:
        return self._refusal(response, endpoint) or Sent(remote_id)

    def _unknown_definition(self, category: int, what: str, name: str, setting: str) -> Failed:
        known = ", ".join(sorted(self._definitions.get(category, {}))) or "none"
        return Failed(
            f"Open Dental office {self.target} has no {what} named {name!r} (definitions "
            f"category {category}; it has: {known}); set {setting} to one of them"[:500]
        )

    # -- lookups -----------------------------------------------------------------------------

    def _find(self, row: Row) -> str | None:
        payload = parse_row(row)
        if isinstance(payload, Failed):
            return None  # send() fails it with the reason
        if row.kind == "pms_payment":
            return self._find_marked(row, "/payments", payload.patient_id, "PayNote", "PayNum")
        if row.kind == "commlog":
            return self._find_marked(row, "/commlogs", payload.patient_id, "Note", "CommlogNum")
        apt_num = vendor_number(payload.appointment_id)
        if apt_num is None:
            return None
        if row.kind == "appointment_confirm":
            wanted = self._definition(CONFIRMATIONS, self.settings.confirmed_definition)
            done = wanted is not None and self._appointment_field(apt_num, "Confirmed") == wanted
        else:
            done = self._is_broken(apt_num)
        return str(apt_num) if done else None

    def _find_marked(
        self, row: Row, path: str, patient_id: str, text_field: str, key_field: str
    ) -> str | None:
        """The record of the patient whose text carries the row's marker. Every record of the
        patient is read, with no date filter: our clock and the office's may disagree, and a
        missed record would be written twice."""
        pat_num = vendor_number(patient_id)
        if pat_num is None:
            return None
        needle = f"[chairside {row.key} "
        for record in self._pages(path, {"PatNum": pat_num}):
            if needle in str(record.get(text_field) or ""):
                return str(record[key_field])
        return None

    def _pages(self, path: str, params: dict[str, Any]) -> Iterator[dict]:
        for page in range(MAX_PAGES):
            rows = self.client.get_json(path, {**params, "Offset": page * PAGE, "Limit": PAGE})
            if not isinstance(rows, list):
                raise ApiError(self.client.source, path, "expected a JSON list of rows")
            yield from (r for r in rows if isinstance(r, dict))
            if len(rows) < PAGE:
                return
        raise ApiError(self.client.source, path, f"more than {MAX_PAGES} pages")

    def _is_broken(self, apt_num: int) -> bool:
        return self._appointment_field(apt_num, "AptStatus") == "Broken"

    def _appointment_field(self, apt_num: int, field: str) -> Any:
        try:
            appointment = self.client.get_json(f"/appointments/{apt_num}")
        except ApiError as error:
            if error.status == 404:
                return None
            raise
        return appointment.get(field) if isinstance(appointment, dict) else None

    def _definition(self, category: int, name: str) -> int | None:
        if category not in self._definitions:
            rows = self.client.get_json("/definitions", {"Category": category})
            self._definitions[category] = {
                str(r["ItemName"]): int(r["DefNum"])
                for r in rows
                if isinstance(r, dict) and r.get("isHidden") != "true"
            }
        return self._definitions[category].get(name)

    def _office_time(self, moment: datetime) -> str:
        if moment.tzinfo is None:  # the pipeline's times are UTC
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(self.zone).strftime(OD_DATETIME)

    def _access_refused(self, status: int, endpoint: str) -> str:
        return (
            f"Open Dental {status}: the API key was refused or lacks the permission for "
            f"{endpoint}; fix the key or its permission, then retry the write"
        )

    def _explanation(self, response: httpx.Response) -> str:
        """Open Dental's error text (plain, or a JSON string), one line, capped."""
        text = response.text.strip()
        if text.startswith('"'):
            try:
                decoded = orjson.loads(text)
                text = decoded if isinstance(decoded, str) else text
            except orjson.JSONDecodeError:
                pass
        if text.startswith("<"):  # an HTML error page from a proxy
            text = ""
        return capped(text or response.reason_phrase or f"HTTP {response.status_code}")


def open_destination(
    connection: OpenDentalConnection,
    settings: OpenDentalWriteSettings | None = None,
    transport: httpx.BaseTransport | None = None,
) -> OpenDentalDestination:
    """The destination of one Open Dental connection, with the read side's client and auth."""
    return OpenDentalDestination(
        connection.id,
        open_client(connection, transport),
        settings,
        timezone=connection.timezone,
    )


# --- helpers -------------------------------------------------------------------------------


def _with_marker(note: str, key: str, source_ref: str) -> str:
    return f"{note} {marker(key, source_ref)}".strip()


def _created_id(response: httpx.Response, key: str) -> str | None:
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        body = None
    if isinstance(body, dict) and str(body.get(key) or "").isdigit():
        return str(body[key])
    tail = response.headers.get("Location", "").rstrip("/").rpartition("/")[2]
    return tail if tail.isdigit() else None
