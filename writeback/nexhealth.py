"""NexHealth writeback: ledger payments and appointment confirmations and cancellations.

``NexHealthDestination`` is the ``writeback.deliver.Destination`` of one NexHealth institution
(vendor-apis.md 3): ``pms_payment`` -> ``POST /payments?subdomain=&location_id=``,
``appointment_confirm`` / ``appointment_cancel`` -> ``PATCH /appointments/{id}?subdomain=`` with
``{appt: {confirmed: true}}`` / ``{appt: {cancelled: true}}``. NexHealth has no commlog endpoint:
a ``commlog`` row fails at once, without a request, for the office to enter by hand.

Exactly once: a payment carries the charge id as ``transaction_id`` (NexHealth's tracking id)
and ``writes.marker(key, charge_id)`` in its notes; ``lookup`` lists the patient's payments with
that ``transaction_id`` and matches either. A confirmation or cancellation is its own evidence:
the appointment's flag is already set. A cancellation refused because the appointment is already
cancelled counts as done.

The amount is posted negative, as NexHealth lists payments (a positive amount is a refund). The
payment type is NexHealth's id of the PMS's type named by the payload (``GET /payment_types``).

Answers: 200/201 -> sent (``data.id``); 400/404/422 and other refusals -> failed with NexHealth's
error strings (they name parameters, never values; capped); 401 (after the auth flow's one token
refresh)/403 -> failed (the key or its access must be fixed); 408/429 (after the client's own
retries)/5xx -> unknown; timeouts and lost connections raise (unknown). Logs carry ids only.

Not settled here: NexHealth inserts writes into the PMS asynchronously, so a payment whose
response was lost may not be listed yet when it is looked up.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from chairside.config import NexHealthConnection
from extract.http import ApiClient, ApiError
from extract.nexhealth.connector import open_client
from writeback.deliver import Failed, Outcome, Sent, Unknown
from writeback.one_by_one import OneByOneDestination, capped
from writeback.outbox import Row
from writeback.writes import (
    AppointmentCancel,
    AppointmentConfirm,
    PmsPayment,
    marker,
    parse_row,
    vendor_number,
)

log = logging.getLogger("chairside.writeback.nexhealth")

PER_PAGE = 1000  # the documented maximum
MAX_PAGES = 1000
NO_COMMLOGS = "NexHealth has no commlog endpoint; enter by hand"


@dataclass(frozen=True)
class NexHealthWriteSettings:
    # Payment type name (GET /payment_types) of a payment whose payload names none; NexHealth
    # requires one. Config: writeback.payments.<type>.pms_pay_type.
    default_pay_type: str | None = None
    currency: str = "USD"


class NexHealthDestination(OneByOneDestination):
    vendor = "NexHealth"
    log = log

    def __init__(
        self,
        target: str,
        client: ApiClient,
        settings: NexHealthWriteSettings | None = None,
        *,
        subdomain: str,
        location_ids: tuple[int, ...] | list[int] = (),
    ):
        super().__init__(target, client)
        self.settings = settings or NexHealthWriteSettings()
        self.subdomain = subdomain
        self.location_ids = tuple(location_ids)
        self._payment_types: dict[int, dict[str, int]] = {}
        self.senders = {
            "pms_payment": self._payment,
            "appointment_confirm": lambda row, p: self._patch(p, "confirmed"),
            "appointment_cancel": lambda row, p: self._patch(p, "cancelled"),
            "commlog": lambda row, p: Failed(NO_COMMLOGS),  # no request: nothing to send to
        }

    # -- sending -----------------------------------------------------------------------------

    def _payment(self, row: Row, p: PmsPayment) -> Outcome:
        location = self._location(p)
        if isinstance(location, Failed):
            return location
        patient_id = vendor_number(p.patient_id)
        if patient_id is None:
            return Failed("patient_id is not a NexHealth patient id")
        name = p.pms_pay_type or self.settings.default_pay_type
        if not name:
            return Failed(
                "NexHealth needs a payment type: set "
                f"writeback.payments.{p.payment_type}.pms_pay_type"
            )
        pay_type = self._payment_type(location, name)
        if pay_type is None:
            known = ", ".join(sorted(self._payment_types.get(location, {}))) or "none"
            return Failed(
                f"NexHealth location {location} has no payment type named {name!r} (it has: "
                f"{known}); set writeback.payments.{p.payment_type}.pms_pay_type to one of them"
            )
        body = {
            "payment": {
                "patient_id": patient_id,
                "amount": f"{-p.amount:f}",  # payments are negative; a positive one is a refund
                "currency": self.settings.currency,
                "payment_type_id": pay_type,
                "transaction_id": p.charge_id,
                "paid_at": p.paid_on.isoformat(),
                "notes": f"{p.note} {marker(row.key, p.charge_id)}".strip(),
            }
        }
        params = {"subdomain": self.subdomain, "location_id": location}
        response = self.client.write_json("POST", "/payments", json=body, params=params)
        refused = self._refusal(response, "POST /payments")
        if refused is not None:
            return refused
        remote_id = _data(response).get("id")
        if remote_id is None:  # it exists, but where: the lookup will tell
            return Unknown("NexHealth created the payment but sent no id")
        return Sent(str(remote_id))

    def _patch(self, p: AppointmentConfirm | AppointmentCancel, flag: str) -> Outcome:
        appointment_id = vendor_number(p.appointment_id)
        if appointment_id is None:
            return Failed("appointment_id is not a NexHealth appointment id")
        endpoint = f"/appointments/{appointment_id}"
        response = self.client.write_json(
            "PATCH", endpoint, json={"appt": {flag: True}}, params={"subdomain": self.subdomain}
        )
        if response.status_code == 400 and self._flag(appointment_id, flag):
            return Sent(str(appointment_id))  # set already (by us before, or by the office)
        return self._refusal(response, f"PATCH {endpoint}") or Sent(str(appointment_id))

    # -- lookups -----------------------------------------------------------------------------

    def _find(self, row: Row) -> str | None:
        payload = parse_row(row)
        if isinstance(payload, Failed) or row.kind == "commlog":
            return None
        if row.kind == "pms_payment":
            return self._find_payment(row, payload)
        appointment_id = vendor_number(payload.appointment_id)
        flag = "confirmed" if row.kind == "appointment_confirm" else "cancelled"
        if appointment_id is not None and self._flag(appointment_id, flag):
            return str(appointment_id)
        return None

    def _find_payment(self, row: Row, p: PmsPayment) -> str | None:
        location = self._location(p)
        patient_id = vendor_number(p.patient_id)
        if isinstance(location, Failed) or patient_id is None:
            return None
        needle = f"[chairside {row.key} "
        params = {
            "subdomain": self.subdomain,
            "location_id": location,
            "patient_id": patient_id,
            "transaction_id": p.charge_id,
        }
        for payment in self._pages("/payments", params):
            if payment.get("transaction_id") == p.charge_id or needle in str(
                payment.get("description") or ""
            ):
                return str(payment["id"])
        return None

    def _pages(self, path: str, params: dict[str, Any]) -> Iterator[dict]:
        cursor = None
        for _ in range(MAX_PAGES):
            query = {**params, "per_page": PER_PAGE}
            if cursor:
                query["end_cursor"] = cursor
            body = self.client.get_json(path, query)
            rows = body.get("data") if isinstance(body, dict) else None
            if not isinstance(rows, list):
                raise ApiError(self.client.source, path, "expected an envelope with a list")
            yield from (r for r in rows if isinstance(r, dict))
            info = body.get("page_info") or {}
            if not info.get("has_next_page") or not info.get("end_cursor"):
                return
            cursor = info["end_cursor"]
        raise ApiError(self.client.source, path, f"more than {MAX_PAGES} pages")

    def _flag(self, appointment_id: int, flag: str) -> bool:
        try:
            body = self.client.get_json(
                f"/appointments/{appointment_id}", {"subdomain": self.subdomain}
            )
        except ApiError as error:
            if error.status == 404:
                return False
            raise
        data = body.get("data") if isinstance(body, dict) else None
        return isinstance(data, dict) and data.get(flag) is True

    def _payment_type(self, location: int, name: str) -> int | None:
        if location not in self._payment_types:
            body = self.client.get_json(
                "/payment_types", {"subdomain": self.subdomain, "location_id": location}
            )
            rows = body.get("data") if isinstance(body, dict) else None
            self._payment_types[location] = {
                str(r["name"]): int(r["id"])
                for r in rows or []
                if isinstance(r, dict) and r.get("active", True) is not False
            }
        return self._payment_types[location].get(name)

    def _location(self, p: PmsPayment) -> int | Failed:
        if p.location_ref:
            location = vendor_number(p.location_ref)
            return location if location is not None else Failed("location_ref is not a location id")
        if len(self.location_ids) == 1:
            return self.location_ids[0]
        return Failed(
            "the payment names no NexHealth location (location_ref) and the connection has "
            f"{len(self.location_ids)} location_ids, not one"
        )

    def _access_refused(self, status: int, endpoint: str) -> str:
        return (
            f"NexHealth {status}: the API key was refused or may not use {endpoint} for this "
            "institution; fix the key or its access, then retry the write"
        )

    def _explanation(self, response: httpx.Response) -> str:
        """NexHealth's error strings (``{code: false, error: [...]}``), one line, capped."""
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            body = None
        errors = body.get("error") if isinstance(body, dict) else None
        if isinstance(errors, list) and errors:
            return capped("; ".join(str(e) for e in errors))
        if isinstance(body, dict) and body.get("description"):
            return capped(str(body["description"]))
        return capped(response.reason_phrase or f"HTTP {response.status_code}")


def open_destination(
    connection: NexHealthConnection,
    settings: NexHealthWriteSettings | None = None,
    transport: httpx.BaseTransport | None = None,
) -> NexHealthDestination:
    """The destination of one NexHealth connection, with the read side's client and token auth."""
    return NexHealthDestination(
        connection.id,
        open_client(connection, transport),
        settings,
        subdomain=connection.subdomain,
        location_ids=connection.location_ids,
    )


# --- helpers -------------------------------------------------------------------------------


def _data(response: httpx.Response) -> dict:
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return {}
    data = body.get("data") if isinstance(body, dict) else None
    return data if isinstance(data, dict) else {}
