"""Open Dental write endpoints: POST /payments, PUT /appointments/{AptNum}/Confirm and /Break,
POST /commlogs (vendor-apis.md section 1.2).

Writes go into the world's tables, as the evolution of the world does (``simulators.evolve``):
the world is the practice's database, so a written payment is one the read endpoints list, the
world's own evolution numbers after it, and the exported truth holds it. Every write stamps its
row (and, for a payment, the patient rows whose balance moved) with the office's clock, so the
next incremental sync reads it. Bodies are validated the way Open Dental answers: 400 with a
short plain-text explanation naming the field, never echoing a value.

``WriteLog`` records every committed write (kind, ids and the Chairside markers its text carries)
for ``GET /_sim/written``, so tests can assert that a write landed exactly once.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import orjson
import polars as pl

from simulators.generate.schemas import table_frame
from simulators.opendental.wire import parse_date, parse_datetime
from simulators.world import World

# writeback.writes.marker(key, source_ref) = "[chairside cs-<32 hex> <source_ref>]"
MARKER = re.compile(r"\[chairside (cs-[0-9a-f]{32}) [^\]]*\]")

# CommItemMode as the API spells it (vendor-apis.md 1.4).
COMMLOG_MODES = (
    "None",
    "Email",
    "Mail",
    "Phone",
    "In Person",
    "Text",
    "Email and Text",
    "Phone and Text",
    "Fax",
)
SENT_OR_RECEIVED = ("Neither", "Sent", "Received")
BREAK_TYPES = {"Missed": "missed", "Cancelled": "cancelled"}  # -> truth broken_reason


class WriteError(Exception):
    """A refused write: the app answers it in Open Dental's plain-text style."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class WriteSettings:
    # The office's ApiPaymentType preference: the PaymentTypes definition a POST without PayType
    # gets.
    api_payment_type: str = "Credit Card"
    # confirmVal -> the ApptConfirmed definition it sets. Open Dental maps these through the
    # office's eConfirmation preferences; the world's offices have these four definitions.
    confirm_values: dict[str, str] = field(
        default_factory=lambda: {
            "None": "Unconfirmed",
            "Sent": "Texted",
            "Confirmed": "Appointment Confirmed",
            "Not Accepted": "Unconfirmed",
            "Failed": "Unconfirmed",
        }
    )


class WriteLog:
    """Every committed write, in order: what ``GET /_sim/written`` lists."""

    def __init__(self) -> None:
        self._entries: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def record(self, kind: str, office: str, text: str = "", **ids: Any) -> None:
        entry = {"kind": kind, "office": office, **ids, "markers": MARKER.findall(text)}
        with self._lock:
            self._entries.append(entry)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            entries = [dict(e) for e in self._entries]
        seen = Counter(key for entry in entries for key in entry["markers"])
        return {"writes": entries, "markers": dict(seen)}


# --- reading a body ------------------------------------------------------------------------


def parse_body(raw: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        body = None
    if not isinstance(body, dict):
        raise WriteError(400, "The request body must be a JSON object.")
    return body


def _required(body: Mapping[str, Any], name: str) -> Any:
    value = body.get(name)
    if value is None or value == "":
        raise WriteError(400, f"{name} is required.")
    return value


def _as_int(name: str, value: Any) -> int:
    if isinstance(value, bool):
        raise WriteError(400, f"{name} is invalid.")
    try:
        return int(str(value).strip())
    except ValueError:
        raise WriteError(400, f"{name} is invalid.") from None


def _as_money(name: str, value: Any) -> float:
    # Open Dental sends money as a number or a string ("339"); it accepts either.
    if isinstance(value, bool):
        raise WriteError(400, f"{name} is invalid.")
    try:
        return round(float(str(value).strip()), 2)
    except ValueError:
        raise WriteError(400, f"{name} is invalid.") from None


def _as_date(name: str, value: Any) -> date:
    try:
        return parse_date(str(value))
    except ValueError:
        raise WriteError(400, f"{name} is invalid: expected yyyy-MM-dd.") from None


def _as_datetime(name: str, value: Any) -> datetime:
    try:
        return parse_datetime(str(value))
    except ValueError:
        raise WriteError(400, f"{name} is invalid: expected yyyy-MM-dd HH:mm:ss.") from None


def _as_bool_text(name: str, value: Any) -> bool:
    text = str(value).strip().lower() if not isinstance(value, bool) else str(value).lower()
    if text not in ("true", "false"):
        raise WriteError(400, f'{name} is invalid: expected "true" or "false".')
    return text == "true"


def _one_of(name: str, value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise WriteError(400, f"{name} is invalid.")
    return value


# --- world access (callers hold world.lock) ------------------------------------------------


def _office_rows(world: World, table: str, office: str) -> pl.DataFrame:
    return world.tables[table].filter(pl.col("office") == office)


def _next_key(world: World, table: str, office: str, column: str) -> int:
    value = _office_rows(world, table, office)[column].max()
    return int(value or 0) + 1


def _append(world: World, table: str, row: pl.DataFrame) -> None:
    world.tables[table] = pl.concat([world.tables[table], row])


def _update(world: World, table: str, office: str, key: str, value: int, **columns: Any) -> None:
    """Set ``columns`` on one row; a new frame, so every cache keyed on the old one rebuilds."""
    frame = world.tables[table]
    rows = frame.select((pl.col("office") == office) & (pl.col(key) == value)).to_series()
    index = rows.arg_true()
    changed = [
        frame[name].scatter(index, pl.Series([new] * len(index), dtype=frame.schema[name]))
        for name, new in columns.items()
    ]
    world.tables[table] = frame.with_columns(changed)


def _patient(world: World, office: str, pat_num: int) -> dict[str, Any]:
    found = _office_rows(world, "patients", office).filter(pl.col("PatNum") == pat_num)
    if found.is_empty():
        raise WriteError(400, "PatNum not found.")
    return found.row(0, named=True)


def _appointment(world: World, office: str, apt_num: int) -> dict[str, Any]:
    found = _office_rows(world, "appointments", office).filter(pl.col("AptNum") == apt_num)
    if found.is_empty():
        raise WriteError(404, f"AptNum {apt_num} not found.")
    return found.row(0, named=True)


def _definitions(world: World, office: str, category: int) -> pl.DataFrame:
    return _office_rows(world, "definitions", office).filter(pl.col("Category") == category)


def _def_by_num(world: World, office: str, category: int, def_num: int) -> int | None:
    found = _definitions(world, office, category).filter(
        (pl.col("DefNum") == def_num) & ~pl.col("IsHidden")
    )
    return None if found.is_empty() else def_num


def _def_by_name(world: World, office: str, category: int, name: str) -> int | None:
    found = _definitions(world, office, category).filter(
        (pl.col("ItemName") == name) & ~pl.col("IsHidden")
    )
    return None if found.is_empty() else int(found["DefNum"][0])


# --- the endpoints -------------------------------------------------------------------------


class OpenDentalWrites:
    """The write endpoints' effects on the world. ``log`` None records nothing (the NexHealth
    simulator writes its offices' records through this class and keeps its own log)."""

    def __init__(self, world: World, settings: WriteSettings, log: WriteLog | None) -> None:
        self.world = world
        self.settings = settings
        self.log = log or WriteLog()

    def post_payment(self, office: str, body: Mapping[str, Any]) -> int:
        """POST /payments: the payment and one paysplit to the patient; returns the PayNum."""
        pat_num = _as_int("PatNum", _required(body, "PatNum"))
        amount = _as_money("PayAmt", _required(body, "PayAmt"))
        with self.world.lock:
            patient = _patient(self.world, office, pat_num)
            now = self.world.office_now(office)
            pay_type = self._pay_type(office, body.get("PayType"))
            pay_date = _as_date("PayDate", body["PayDate"]) if body.get("PayDate") else now.date()
            clinic = self._clinic(office, body.get("ClinicNum"), patient["ClinicNum"])
            note = str(body.get("PayNote") or "")
            pay_num = _next_key(self.world, "payments", office, "PayNum")
            _append(
                self.world,
                "payments",
                table_frame(
                    "payments",
                    1,
                    office=office,
                    PayNum=pay_num,
                    PayType=pay_type,
                    PayDate=pay_date,
                    PayAmt=amount,
                    CheckNum=str(body.get("CheckNum") or ""),
                    PayNote=note,
                    PatNum=pat_num,
                    ClinicNum=clinic,
                    DateEntry=now.date(),
                    SecDateTEdit=now,
                    PaymentSource="API",
                    ProcessStatus="OfficeProcessed",
                ),
            )
            _append(
                self.world,
                "paysplits",
                table_frame(
                    "paysplits",
                    1,
                    office=office,
                    SplitNum=_next_key(self.world, "paysplits", office, "SplitNum"),
                    SplitAmt=amount,
                    PatNum=pat_num,
                    PayNum=pay_num,
                    ProvNum=patient["PriProv"],
                    DatePay=pay_date,
                    DateEntry=now.date(),
                    ClinicNum=clinic,
                    SecDateTEdit=now,
                ),
            )
            self._lower_balance(office, patient, amount, now)
        self.log.record("payment", office, note, PayNum=pay_num, PatNum=pat_num)
        return pay_num

    def confirm(self, office: str, apt_num: int, body: Mapping[str, Any]) -> None:
        """PUT /appointments/{AptNum}/Confirm with confirmVal (a name) or defNum."""
        with self.world.lock:
            _appointment(self.world, office, apt_num)
            if body.get("defNum") is not None:
                def_num = _def_by_num(self.world, office, 2, _as_int("defNum", body["defNum"]))
                if def_num is None:
                    raise WriteError(400, "defNum is invalid.")
            elif body.get("confirmVal") is not None:
                name = self.settings.confirm_values.get(str(body["confirmVal"]))
                def_num = None if name is None else _def_by_name(self.world, office, 2, name)
                if def_num is None:
                    raise WriteError(400, "confirmVal is invalid.")
            else:
                raise WriteError(400, "confirmVal or defNum is required.")
            now = self.world.office_now(office)
            _update(
                self.world,
                "appointments",
                office,
                "AptNum",
                apt_num,
                Confirmed=def_num,
                DateTStamp=now,
            )
        self.log.record("appointment_confirm", office, AptNum=apt_num, Confirmed=def_num)

    def break_appointment(self, office: str, apt_num: int, body: Mapping[str, Any]) -> None:
        """PUT /appointments/{AptNum}/Break: Scheduled -> Broken (anything else is a 400)."""
        _as_bool_text("sendToUnscheduledList", _required(body, "sendToUnscheduledList"))
        break_type = body.get("breakType")
        if break_type is not None:
            _one_of("breakType", break_type, tuple(BREAK_TYPES))
        with self.world.lock:
            appointment = _appointment(self.world, office, apt_num)
            if appointment["AptStatus"] != "Scheduled":
                raise WriteError(400, "Only a Scheduled appointment can be broken.")
            now = self.world.office_now(office)
            _update(
                self.world,
                "appointments",
                office,
                "AptNum",
                apt_num,
                AptStatus="Broken",
                DateTStamp=now,
            )
            reason = BREAK_TYPES.get(break_type)
            _update(
                self.world, "truth_appointments", office, "AptNum", apt_num, broken_reason=reason
            )
        self.log.record("appointment_break", office, AptNum=apt_num, breakType=break_type)

    def post_commlog(self, office: str, body: Mapping[str, Any]) -> int:
        """POST /commlogs; returns the CommlogNum."""
        pat_num = _as_int("PatNum", _required(body, "PatNum"))
        note = str(_required(body, "Note"))
        mode = _one_of("Mode_", body.get("Mode_", "None"), COMMLOG_MODES)
        direction = _one_of(
            "SentOrReceived", body.get("SentOrReceived", "Neither"), SENT_OR_RECEIVED
        )
        with self.world.lock:
            _patient(self.world, office, pat_num)
            now = self.world.office_now(office)
            stated = body.get("CommDateTime")
            when = _as_datetime("CommDateTime", stated) if stated else now
            comm_type = self._comm_type(office, body)
            number = _next_key(self.world, "commlogs", office, "CommlogNum")
            _append(
                self.world,
                "commlogs",
                table_frame(
                    "commlogs",
                    1,
                    office=office,
                    CommlogNum=number,
                    PatNum=pat_num,
                    CommDateTime=when,
                    CommType=comm_type,
                    Note=note,
                    Mode_=mode,
                    SentOrReceived=direction,
                    DateTStamp=now,
                    CommSource="ProgramLink",
                    DateTEntry=now,
                ),
            )
        self.log.record("commlog", office, note, CommlogNum=number, PatNum=pat_num)
        return number

    # -- helpers (world.lock held) ---------------------------------------------------------

    def _pay_type(self, office: str, value: Any) -> int:
        if value is None or value == "":
            def_num = _def_by_name(self.world, office, 10, self.settings.api_payment_type)
        else:
            def_num = _def_by_num(self.world, office, 10, _as_int("PayType", value))
        if def_num is None:
            raise WriteError(400, "PayType is invalid.")
        return def_num

    def _clinic(self, office: str, value: Any, default: int) -> int:
        if value is None or value == "":
            return default
        clinic = _as_int("ClinicNum", value)
        clinics = _office_rows(self.world, "clinics", office)["ClinicNum"].to_list()
        if clinic != 0 and clinic not in clinics:
            raise WriteError(400, "ClinicNum is invalid.")
        return clinic

    def _comm_type(self, office: str, body: Mapping[str, Any]) -> int:
        if body.get("CommType") is not None:
            def_num = _def_by_num(self.world, office, 27, _as_int("CommType", body["CommType"]))
            if def_num is None:
                raise WriteError(400, "CommType is invalid.")
            return def_num
        if body.get("commType") is not None:
            def_num = _def_by_name(self.world, office, 27, str(body["commType"]))
            if def_num is None:
                raise WriteError(400, "commType is invalid.")
            return def_num
        # Open Dental's automatic type for entries made by programs: the one marked MISC.
        auto = _definitions(self.world, office, 27).filter(pl.col("ItemValue") == "MISC")
        return int(auto["DefNum"][0]) if len(auto) else 0

    def _lower_balance(
        self, office: str, patient: Mapping[str, Any], amount: float, now: datetime
    ) -> None:
        """A payment lowers the patient's balance and the family total on the guarantor; Open
        Dental stamps both rows (the read side re-reads a stamped patient's adjustments)."""
        world = self.world
        pat_num, guarantor = patient["PatNum"], patient["Guarantor"] or patient["PatNum"]
        balance = round(patient["EstBalance"] - amount, 2)
        _update(world, "patients", office, "PatNum", pat_num, EstBalance=balance, DateTStamp=now)
        head = _office_rows(world, "patients", office).filter(pl.col("PatNum") == guarantor)
        if len(head):
            total = round(head["BalTotal"][0] - amount, 2)
            _update(world, "patients", office, "PatNum", guarantor, BalTotal=total, DateTStamp=now)
