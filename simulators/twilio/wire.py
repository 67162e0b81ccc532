"""The phone log as Twilio serves it at one moment, and its truth as of that moment.

A leg is visible once it started and a message once it was created. Until the clock reaches a
leg's end it is ``ringing`` (not connected yet) or ``in-progress``, with no end time, duration or
price; an outbound message is ``queued`` (no ``date_sent``), then ``sent``, then final. Times are
RFC 2822 in UTC (``Tue, 03 Nov 2026 16:00:00 +0000``) and numbers that Twilio quotes are strings.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace

import polars as pl

from simulators.twilio.data import Leg, Message, PhoneLog, Session

API_VERSION = "2010-04-01"
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# USD per started minute, by leg direction, and per SMS segment.
CALL_RATES = {"inbound": 0.0085, "outbound-api": 0.014, "outbound-dial": 0.004}
SMS_RATE = 0.0079
SENT_AFTER_S, FINAL_AFTER_S = 1, 3  # outbound message: queued -> sent -> delivered


def rfc2822(epoch: int | None) -> str | None:
    if epoch is None:
        return None
    t = time.gmtime(epoch)
    return (
        f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year} "
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} +0000"
    )


def formatted(number: str) -> str:
    """Twilio's ``*_formatted`` text: (215) 555-0101 for US numbers, others as they are."""
    if number.startswith("+1") and len(number) == 12:
        return f"({number[2:5]}) {number[5:8]}-{number[8:]}"
    return number


def _price(amount: float) -> str:
    return f"{-amount:.5f}"


@dataclass(frozen=True)
class CallState:
    status: str
    end: int | None
    duration: int | None
    updated: int


def call_state(leg: Leg, now: int) -> CallState:
    if leg.end <= now:
        duration = None if leg.answer is None else leg.end - leg.answer
        return CallState(leg.status, leg.end, duration, leg.end)
    if leg.answer is not None and leg.answer <= now:
        return CallState("in-progress", None, None, leg.answer)
    return CallState("ringing", None, None, leg.start)


def render_call(leg: Leg, now: int, account_sid: str) -> dict:
    state = call_state(leg, now)
    uri = f"/{API_VERSION}/Accounts/{account_sid}/Calls/{leg.sid}"
    minutes = math.ceil(state.duration / 60) if state.duration else 0
    # Only a leg that connected and ended is billed.
    priced = state.duration is not None
    return {
        "account_sid": account_sid,
        "annotation": None,
        "answered_by": None,
        "api_version": API_VERSION,
        "caller_name": None,
        "date_created": rfc2822(leg.start),
        "date_updated": rfc2822(state.updated),
        "direction": leg.direction,
        "duration": None if state.duration is None else str(state.duration),
        "end_time": rfc2822(state.end),
        "forwarded_from": None,
        "from": leg.from_,
        "from_formatted": formatted(leg.from_),
        "group_sid": None,
        "parent_call_sid": leg.parent_call_sid,
        "phone_number_sid": None if leg.parent_call_sid else leg.line.phone_number_sid,
        "price": _price(minutes * CALL_RATES[leg.direction]) if priced else None,
        "price_unit": "USD",
        "queue_time": "0",
        "sid": leg.sid,
        "start_time": rfc2822(leg.start),
        "status": state.status,
        "subresource_uris": {
            name: f"{uri}/{name.title().replace('_', '')}.json"
            for name in ("notifications", "recordings", "events", "payments")
        },
        "to": leg.to,
        "to_formatted": formatted(leg.to),
        "trunk_sid": None,
        "uri": f"{uri}.json",
    }


@dataclass(frozen=True)
class MessageState:
    status: str
    date_sent: int | None
    updated: int


def message_state(message: Message, now: int) -> MessageState:
    if message.direction == "inbound":
        return MessageState(message.status, message.created, message.created)
    if now < message.created + SENT_AFTER_S:
        return MessageState("queued", None, message.created)
    sent = message.created + SENT_AFTER_S
    if now < message.created + FINAL_AFTER_S:
        return MessageState("sent", sent, sent)
    return MessageState(message.status, sent, message.created + FINAL_AFTER_S)


def segments(body: str) -> int:
    """GSM-7 segments: 160 characters alone, 153 each once the text is split."""
    return 1 if len(body) <= 160 else math.ceil(len(body) / 153)


def render_message(message: Message, now: int, account_sid: str) -> dict:
    state = message_state(message, now)
    uri = f"/{API_VERSION}/Accounts/{account_sid}/Messages/{message.sid}"
    final = state.status in ("delivered", "undelivered", "received")
    n = segments(message.body)
    return {
        "account_sid": account_sid,
        "api_version": API_VERSION,
        "body": message.body,
        "date_created": rfc2822(message.created),
        "date_sent": rfc2822(state.date_sent),
        "date_updated": rfc2822(state.updated),
        "direction": message.direction,
        "error_code": message.error_code if final else None,
        "error_message": None,
        "from": message.from_,
        "messaging_service_sid": None,
        "num_media": "0",
        "num_segments": str(n),
        "price": _price(n * SMS_RATE) if final else None,
        "price_unit": "USD",
        "sid": message.sid,
        "status": state.status,
        "subresource_uris": {"media": f"{uri}/Media.json", "feedback": f"{uri}/Feedback.json"},
        "to": message.to,
        "uri": f"{uri}.json",
    }


# --- what the API serves: rendered rows in Twilio's order, with the columns filters use -----


@dataclass(frozen=True)
class Listing:
    """Rendered records newest first, and a frame of what filters and paging need."""

    records: list[dict]
    # position, sid, order (the sort time), at (the filtered time, epoch or null), to, from,
    # parent_call_sid, status
    index: pl.DataFrame


def calls_listing(log: PhoneLog, now: int, account_sid: str) -> Listing:
    legs = [leg for leg in log.legs if leg.start <= now]
    legs.sort(key=lambda g: (g.start, g.sid), reverse=True)
    records = [render_call(leg, now, account_sid) for leg in legs]
    starts = [leg.start for leg in legs]
    return Listing(records, _index(records, starts, starts))


def messages_listing(log: PhoneLog, now: int, account_sid: str) -> Listing:
    visible = [m for m in log.messages if m.created <= now]
    sent = {m.sid: message_state(m, now).date_sent for m in visible}
    # Newest first by date sent; a queued message (not sent yet) sorts by its creation.
    order = {m.sid: sent[m.sid] or m.created for m in visible}
    visible.sort(key=lambda m: (order[m.sid], m.sid), reverse=True)
    records = [render_message(m, now, account_sid) for m in visible]
    return Listing(
        records, _index(records, [order[m.sid] for m in visible], [sent[m.sid] for m in visible])
    )


def _index(records: list[dict], order: list[int], at: list[int | None]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "position": list(range(len(records))),
            "sid": [r["sid"] for r in records],
            "order": order,
            "at": at,
            "to": [r["to"] for r in records],
            "from": [r["from"] for r in records],
            "parent_call_sid": [r.get("parent_call_sid") for r in records],
            "status": [r["status"] for r in records],
        },
        schema={
            "position": pl.Int64,
            "sid": pl.String,
            "order": pl.Int64,
            "at": pl.Int64,
            "to": pl.String,
            "from": pl.String,
            "parent_call_sid": pl.String,
            "status": pl.String,
        },
    )


# --- truth as of ``now``: what later marts must reproduce ----------------------------------


def _at(epoch: int | None, now: int) -> int | None:
    return epoch if epoch is not None and epoch <= now else None


def truth_calls(log: PhoneLog, now: int) -> pl.DataFrame:
    """One row per caller session or outbound call that has started, with its true outcome.

    Follow-ups (text-back, replies, redial, callback) are filled once the clock reached them.
    """
    rows = [_truth_row(s, now) for s in log.sessions if s.start <= now]
    return pl.DataFrame(rows, schema=TRUTH_CALLS_SCHEMA, orient="row").with_columns(
        pl.from_epoch(c, time_unit="s").dt.replace_time_zone("UTC") for c in _TRUTH_TIMES
    )


def _truth_row(s: Session, now: int) -> tuple:
    visible = {
        "text": _at(s.text_at, now),
        "reply": _at(s.reply_at, now),
        "staff": _at(s.staff_reply_at, now),
        "redial": _at(s.redial_at, now),
        "callback": _at(s.callback_at, now),
    }
    return (
        s.line.office,
        s.line.clinic_num,
        s.line.number,
        s.sid,
        s.kind,
        s.direction,
        s.caller.phone,
        s.caller.kind,
        s.caller.person_id,
        s.caller.household_id,
        s.caller.pat_num,
        s.apt_num,
        s.commlog_num,
        s.follow_up_of,
        s.start,
        s.end,
        s.end <= now,
        s.business_hours,
        s.outcome,
        s.dial_status,
        s.ivr_seconds,
        s.ring_seconds,
        s.talk_seconds,
        s.voicemail_seconds,
        s.answered_leg_sid,
        s.text_sid if visible["text"] else None,
        visible["text"],
        visible["reply"],
        visible["staff"],
        s.redial_sid if visible["redial"] else None,
        visible["redial"],
        s.callback_sid if visible["callback"] else None,
        visible["callback"],
    )


_S, _I, _B = pl.String, pl.Int64, pl.Boolean
TRUTH_CALLS_SCHEMA = {
    "office": _S,
    "clinic_num": _I,
    "office_number": _S,
    "session_sid": _S,
    "kind": _S,
    "direction": _S,
    "phone": _S,
    "caller_kind": _S,
    "person_id": _I,
    "household_id": _I,
    "pat_num": _I,
    "apt_num": _I,
    "commlog_num": _I,
    "follow_up_of": _S,
    "start_time": _I,
    "end_time": _I,
    "ended": _B,
    "business_hours": _B,
    "outcome": _S,
    "dial_status": _S,
    "ivr_seconds": _I,
    "ring_seconds": _I,
    "talk_seconds": _I,
    "voicemail_seconds": _I,
    "answered_leg_sid": _S,
    "text_back_sid": _S,
    "text_back_at": _I,
    "patient_reply_at": _I,
    "staff_reply_at": _I,
    "redial_sid": _S,
    "redial_at": _I,
    "callback_sid": _S,
    "callback_at": _I,
}
_TRUTH_TIMES = (
    "start_time",
    "end_time",
    "text_back_at",
    "patient_reply_at",
    "staff_reply_at",
    "redial_at",
    "callback_at",
)


def truth_messages(log: PhoneLog, now: int) -> pl.DataFrame:
    rows = [
        (
            m.sid,
            m.session_sid,
            m.line.office,
            m.line.clinic_num,
            m.kind,
            m.caller.phone,
            m.caller.kind,
            m.caller.person_id,
            m.caller.household_id,
            m.created,
            m.line.number,
        )
        for m in log.messages
        if m.created <= now
    ]
    schema = {
        "sid": _S,
        "session_sid": _S,  # null for reminders and replies to them (no call session)
        "office": _S,
        "clinic_num": _I,
        "kind": _S,
        "phone": _S,
        "caller_kind": _S,
        "person_id": _I,
        "household_id": _I,
        "created": _I,
        "office_number": _S,  # the practice's line the text went from or to
    }
    frame = pl.DataFrame(rows, schema=schema, orient="row")
    return frame.with_columns(pl.from_epoch("created", time_unit="s").dt.replace_time_zone("UTC"))


def truth_reminder_replies(log: PhoneLog, now: int) -> pl.DataFrame:
    """Every reply to an appointment reminder received by ``now``, with what the patient meant.

    ``appointment_id`` / ``patient_id`` are the ids the office's PMS serves (Open Dental's
    AptNum/PatNum; CareStack's and NexHealth's own ids); ``AptNum`` / ``PatNum`` the world's.
    """
    reminder_sid = {m.reminder: m.sid for m in log.messages if m.kind == "reminder"}
    rows = [
        (
            m.sid,
            reminder_sid.get(replace(m.reminder, intent=None)),
            m.line.office,
            m.line.clinic_num,
            m.line.number,
            m.caller.phone,
            m.reminder.appointment_id,
            m.reminder.apt_num,
            m.reminder.patient_id,
            m.reminder.pat_num,
            m.caller.person_id,
            m.reminder.intent,
            m.body,
            m.created,
        )
        for m in log.messages
        if m.kind == "reminder_reply" and m.reminder is not None and m.created <= now
    ]
    return pl.DataFrame(rows, schema=TRUTH_REMINDER_REPLIES_SCHEMA, orient="row")


TRUTH_REMINDER_REPLIES_SCHEMA = {
    "sid": _S,
    "reminder_sid": _S,
    "office": _S,
    "clinic_num": _I,
    "office_number": _S,
    "phone": _S,
    "appointment_id": _I,
    "AptNum": _I,
    "patient_id": _I,
    "PatNum": _I,
    "person_id": _I,
    "intent": _S,  # confirm | cancel | other
    "body": _S,
    "received": _I,  # UTC epoch seconds
}
