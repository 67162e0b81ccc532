"""The records of the derived phone log: lines, callers, call legs, messages, sessions.

All times are UTC epoch seconds. A ``Leg`` or ``Message`` holds its final state; ``wire`` renders
the state it is in at a given moment.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field


@dataclass(frozen=True)
class PhoneSettings:
    """How the derived phone system behaves: volumes, the ring group, opening hours."""

    # The log starts this many days before the world's initial clock.
    history_days: int = 60
    # Random calls per office and weekday: max(min_calls_per_day, per_patient * patients).
    calls_per_patient_day: float = 0.02
    min_calls_per_day: float = 3.0
    prospect_share: float = 0.3  # of random calls: unknown numbers
    booking_call_share: float = 0.4  # of appointments entered in opening hours
    new_patient_call_share: float = 0.9  # of new patients' first appointments: they call
    ring_group_size: int = 2  # desk phones rung at once: one child leg each
    ring_timeout_s: int = 25
    short_abandon_s: int = 6
    landline_share: float = 0.1  # callers whose number cannot receive texts
    call_to_text: bool = True
    open_hour: int = 8
    close_hour: int = 17
    # Appointment reminders texted from the office's line to the patient's phone: the share of
    # scheduled visits reminded (0, the default, sends none), how many days ahead and at which
    # local hour, and how patients answer (a share reply; of those, some cancel, some write
    # something that is neither, the rest confirm).
    reminder_rate: float = 0.0
    reminder_days_before: int = 2
    reminder_hour: int = 11
    reminder_reply_rate: float = 0.5
    reminder_cancel_share: float = 0.12
    reminder_other_share: float = 0.08


# The demo's scale (``reminder_rate``): most scheduled visits get a text reminder.
DEMO_REMINDER_RATE = 0.8


@dataclass(frozen=True)
class Line:
    """One main number: an office, or one clinic of an office with clinics."""

    office: str
    clinic_num: int
    name: str
    number: str
    phone_number_sid: str
    timezone: str


@dataclass(frozen=True)
class Caller:
    phone: str
    kind: str  # patient | new_patient | prospect
    person_id: int | None = None
    household_id: int | None = None
    pat_num: int | None = None


@dataclass
class Leg:
    """One Call resource. ``answer`` is when it connected (None if it never did)."""

    sid: str
    parent_call_sid: str | None
    session_sid: str
    line: Line
    direction: str
    from_: str
    to: str
    start: int
    answer: int | None
    end: int
    status: str  # the final status, reached at ``end``


@dataclass(frozen=True)
class ReminderRef:
    """The appointment a reminder (or a reply to one) is about, in world and PMS ids."""

    apt_num: int  # the world's AptNum
    appointment_id: int  # the id the office's PMS serves for it
    pat_num: int
    patient_id: int
    intent: str | None = None  # replies: confirm | cancel | other


@dataclass
class Message:
    sid: str
    session_sid: str | None  # None: not part of a call session (reminders and their replies)
    line: Line
    kind: str  # auto_text | patient_reply | staff_reply | reminder | reminder_reply
    direction: str
    from_: str
    to: str
    body: str
    created: int
    status: str  # the final status
    error_code: int | None
    caller: Caller
    reminder: ReminderRef | None = None


@dataclass
class Session:
    """One caller session (inbound) or one outbound call, with its true outcome."""

    sid: str  # the root leg's CallSid
    key: str  # stable id every draw of this session is seeded from
    line: Line
    kind: str  # background | booking | cancel | outreach | callback | redial
    direction: str  # inbound | outbound
    caller: Caller
    start: int
    end: int = 0
    outcome: str = ""
    dial_status: str | None = None
    ivr_seconds: int = 0
    ring_seconds: int = 0
    talk_seconds: int = 0
    voicemail_seconds: int = 0
    answered_leg_sid: str | None = None
    business_hours: bool = True
    apt_num: int | None = None
    commlog_num: int | None = None
    follow_up_of: str | None = None
    # Planned follow-ups of an unanswered call (``wire`` hides those the clock has not reached).
    text_sid: str | None = None
    text_at: int | None = None
    reply_at: int | None = None
    staff_reply_at: int | None = None
    redial_sid: str | None = None
    redial_at: int | None = None
    callback_sid: str | None = None
    callback_at: int | None = None


@dataclass
class PhoneLog:
    lines: list[Line]
    sessions: list[Session] = field(default_factory=list)
    legs: list[Leg] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)


def sid(prefix: str, seed: int, *parts: object) -> str:
    """A Twilio-shaped SID (prefix + 32 hex digits), a stable hash of ``parts``."""
    text = ":".join(str(p) for p in (seed, *parts))
    return prefix + hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
