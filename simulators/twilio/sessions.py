"""One office's phone sessions: where calls come from, how each unfolds, and its follow-ups.

See ``simulators.twilio.data`` for the model. Every draw comes from a ``random.Random`` seeded
by the session's stable key, so a session is the same whenever it is derived.
"""

from __future__ import annotations

import math
import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo

import polars as pl

from simulators.generate.commlogs import BALANCE_CALL, CANCEL_CALL, COMMLOG_KINDS, MISSED_CALL
from simulators.twilio.records import (
    Caller,
    Leg,
    Line,
    Message,
    PhoneLog,
    PhoneSettings,
    ReminderRef,
    Session,
    sid,
)
from simulators.world import OfficeSpec

DAY, HOUR, MINUTE = 86_400, 3_600, 60
_EPOCH = datetime(1970, 1, 1)
# Unknown callers ring from area codes no household phone uses: no prospect has a patient's number.
UNKNOWN_AREA_CODES = ("332", "646", "929", "347", "628", "737")

INBOUND_OUTCOMES = (
    "answered",
    "missed",
    "voicemail",
    "abandoned_queue",
    "short_abandon",
    "abandoned_ivr",
)
OPEN_WEIGHTS = (0.68, 0.06, 0.08, 0.08, 0.05, 0.05)
CLOSED_WEIGHTS = (0.0, 0.2, 0.5, 0.1, 0.08, 0.12)
MISSED_DIAL = (("no-answer", 0.8), ("busy", 0.15), ("failed", 0.05))
FOLLOW_UPS = (("redial", 0.15), ("callback_1h", 0.35), ("callback_24h", 0.3), ("none", 0.2))
# Relative call volume per local hour on weekdays (closed hours still get a few calls).
WEEKDAY_PROFILE = {7: 0.3, 8: 1.0, 9: 1.0, 10: 1.0, 11: 1.0, 12: 0.6, 13: 1.0, 14: 1.0,
                   15: 1.0, 16: 0.8, 17: 0.3, 18: 0.2, 19: 0.15, 20: 0.1}  # fmt: skip
SATURDAY_FACTOR, SUNDAY_FACTOR = 0.15, 0.06

AUTO_TEXT = "Sorry we missed your call at {office}! Reply here and our team will text you back."
PATIENT_REPLIES = (
    "Hi, I need to reschedule my appointment",
    "Can I book a cleaning?",
    "What time do you open tomorrow?",
    "Do you take Delta Dental?",
    "Please call me back when you can",
    "I have a toothache, is there anything open today?",
)
STAFF_REPLIES = (
    "Thanks for texting! We have openings this week, what days work for you?",
    "Happy to help! Give us a call back or reply with a good time to reach you.",
    "We're open 8-5 weekdays. Would you like us to book you in?",
    "Yes, we're in network. Want us to find you a time?",
)
REMINDER_TEXT = (
    "Reminder: your appointment at {line} is on {when}. Reply C to confirm or X to cancel."
)
# What patients answer a reminder with, by intent.
REMINDER_REPLIES = {
    "confirm": ("C", "Yes", "confirm", "Confirmed!", "yes see you then"),
    "cancel": ("X", "Cancel", "cancel pls", "I need to cancel"),
    "other": ("what time?", "Is that at the Main St office?", "Can I bring my son too?"),
}
# Statuses an appointment can have now if it was on the schedule when its reminder went out
# (a Broken one only if it broke after that).
_REMINDED_STATUSES = ("Scheduled", "Complete", "Broken")
# A reminder never goes out this soon after an unanswered call from the same number: a text
# then would read as the call's automatic text-back.
_CLEAR_OF_CALLS_S = 10 * 60
_COMMLOG_NOTES = {kind: COMMLOG_KINDS[kind][4] for kind in (CANCEL_CALL, MISSED_CALL, BALANCE_CALL)}


class _Clock:
    """Local wall-clock seconds (as the world stores times) <-> UTC epoch seconds."""

    def __init__(self, timezone: str, settings: PhoneSettings):
        self.zone = ZoneInfo(timezone)
        self.settings = settings

    def utc(self, local: int) -> int:
        return int((_EPOCH + timedelta(seconds=local)).replace(tzinfo=self.zone).timestamp())

    def local(self, utc: int) -> int:
        aware = datetime.fromtimestamp(utc, UTC).astimezone(self.zone).replace(tzinfo=None)
        return int((aware - _EPOCH).total_seconds())

    def is_open(self, utc: int) -> bool:
        local = self.local(utc)
        hour = local % DAY // HOUR
        weekday = (local // DAY + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
        return weekday < 5 and self.settings.open_hour <= hour < self.settings.close_hour

    def next_open(self, utc: int, rng: random.Random) -> int:
        """``utc`` if the office is open then, else a moment early in its next opening."""
        if self.is_open(utc):
            return utc
        day = self.local(utc) // DAY
        if self.local(utc) % DAY >= self.settings.open_hour * HOUR:
            day += 1
        while (day + 3) % 7 >= 5:
            day += 1
        opening = day * DAY + self.settings.open_hour * HOUR + rng.randint(0, 45 * MINUTE)
        return self.utc(opening)


def _pick(rng: random.Random, weighted) -> str:
    names, weights = zip(*weighted, strict=True)
    return rng.choices(names, weights)[0]


def _poisson(rng: random.Random, mean: float) -> int:
    # Knuth's method: exact, and fast for the tens of calls per hour drawn here.
    limit, k, p = math.exp(-mean), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def _e164(phone: str) -> str:
    return f"+1{phone}"


def _seconds(local: datetime) -> int:
    """A world (office-local, naive) datetime as local epoch seconds."""
    return int((local - _EPOCH).total_seconds())


def _clear_of(at: int, call_ends) -> int:
    """``at``, or later, so that no unanswered call ended shortly before it."""
    while any(0 <= at - end <= _CLEAR_OF_CALLS_S for end in call_ends):
        at += 15 * MINUTE
    return at


class _ReminderDraws(NamedTuple):
    """Every draw of one reminder, made up front in one order whatever is used."""

    reminded: float
    jitter: int
    replies: float
    delay: int
    intent: float
    body: float

    @classmethod
    def of(cls, rng: random.Random) -> _ReminderDraws:
        reminded, jitter, replies = rng.random(), rng.randrange(30 * MINUTE), rng.random()
        delay = MINUTE + int(rng.expovariate(1 / (40 * MINUTE)))
        return cls(reminded, jitter, replies, delay, rng.random(), rng.random())


class OfficeLog:
    """Appends one office's sessions, legs and messages (since ``since``) to a ``PhoneLog``."""

    def __init__(
        self, seed, settings, office: OfficeSpec, office_lines, tables, log: PhoneLog, id_offset=0
    ):
        self.seed, self.settings, self.office, self.log = seed, settings, office, log
        self.id_offset = id_offset  # the office's PMS serves a world key k as id_offset + k
        self.lines = {line.clinic_num: line for line in office_lines}
        self.clock = _Clock(office.timezone, settings)
        self.tables = tables
        self.patients = self._patients()

    def _office(self, table: str) -> pl.DataFrame:
        return self.tables[table].filter(pl.col("office") == self.office.key)

    def _patients(self) -> dict[int, tuple[Caller, int, int]]:
        """PatNum -> (caller, entry day, clinic), the person and phone from the truth tables."""
        persons = self.tables["truth_persons"].select("person_id", "phone")
        rows = (
            self._office("patients")
            .select("PatNum", "ClinicNum", "SecDateEntry")
            .join(self._office("truth_patient_links"), on="PatNum", how="left")
            .join(persons, on="person_id", how="left")
            .sort("PatNum")
        )
        result = {}
        for pat, clinic, entry, person, household, phone in rows.select(
            "PatNum", "ClinicNum", "SecDateEntry", "person_id", "household_id", "phone"
        ).iter_rows():
            if phone:
                day = (entry - _EPOCH.date()).days if entry else 0
                caller = Caller(_e164(phone), "patient", person, household, pat)
                result[pat] = (caller, day, clinic)
        return result

    def _line(self, clinic_num: int | None) -> Line:
        return self.lines.get(clinic_num or 0) or next(iter(self.lines.values()))

    def _rng(self, key: str) -> random.Random:
        return random.Random(f"{self.seed}:{key}")

    # -- sources of sessions ---------------------------------------------------------------

    def build(self, since: int, now: int) -> None:
        first = self.clock.local(since) // DAY
        for day in range(first, self.clock.local(now) // DAY + 1):
            self._random_calls(day, since)
        self._bookings(since, now)
        self._commlog_calls(since, now)
        if self.settings.reminder_rate > 0:
            self._reminders(since, now)

    def _random_calls(self, day: int, since: int) -> None:
        key = f"{self.office.key}:day:{day}"
        rng = self._rng(key)
        pool = [pat for pat, (_, entry, _) in self.patients.items() if entry < day]
        weekday = (day + 3) % 7
        factor = 1.0 if weekday < 5 else SATURDAY_FACTOR if weekday == 5 else SUNDAY_FACTOR
        per_day = max(
            self.settings.min_calls_per_day, self.settings.calls_per_patient_day * len(pool)
        )
        scale = per_day * factor / sum(WEEKDAY_PROFILE.values())
        for hour, weight in WEEKDAY_PROFILE.items():
            for slot in range(_poisson(rng, scale * weight)):
                local = day * DAY + hour * HOUR + rng.randrange(HOUR)
                start = self.clock.utc(local)
                if start < since:
                    continue
                session_key = f"{key}:{hour}:{slot}"
                caller = self._random_caller(self._rng(session_key + ":who"), pool)
                clinic = self.patients[caller.pat_num][2] if caller.pat_num else None
                self._inbound(session_key, "background", caller, start, self._line(clinic))

    def _random_caller(self, rng: random.Random, pool: list[int]) -> Caller:
        if not pool or rng.random() < self.settings.prospect_share:
            area = rng.choice(UNKNOWN_AREA_CODES)
            return Caller(f"+1{area}{rng.randint(2_000_000, 9_999_999)}", "prospect")
        return self.patients[rng.choice(pool)][0]

    def _bookings(self, since: int, now: int) -> None:
        """Appointments entered while the office was open: some were booked on a call."""
        rows = self._office("appointments").select(
            "AptNum", "PatNum", "ClinicNum", "IsNewPatient", "SecDateTEntry"
        )
        for apt, pat, clinic, is_new, entered in rows.iter_rows():
            if entered is None or pat not in self.patients:
                continue
            at = self.clock.utc(int((entered - _EPOCH).total_seconds()))
            key = f"{self.office.key}:apt:{apt}"
            rng = self._rng(key)
            if not (since <= at <= now and self.clock.is_open(at)):
                continue
            share = (
                self.settings.new_patient_call_share if is_new else self.settings.booking_call_share
            )
            if rng.random() >= share:
                continue
            caller = self.patients[pat][0]
            if is_new:
                caller = replace(caller, kind="new_patient")
            ivr, ring, talk = rng.randint(5, 20), rng.randint(3, 15), rng.randint(120, 480)
            # The appointment is entered while the caller is still on the line.
            start = at - ivr - ring - int(talk * 0.6)
            session = self._inbound(
                key, "booking", caller, start, self._line(clinic), ("answered", ivr, ring, talk)
            )
            session.apt_num = apt

    def _commlog_calls(self, since: int, now: int) -> None:
        """Commlogs of phone calls: the commlog is written as the call ends."""
        rows = self._office("commlogs").filter(pl.col("Mode_") == "Phone")
        for num, pat, when, note in rows.select(
            "CommlogNum", "PatNum", "CommDateTime", "Note"
        ).iter_rows():
            kind = next((k for k, text in _COMMLOG_NOTES.items() if note.startswith(text)), None)
            if kind is None or pat not in self.patients or when is None:
                continue
            end = self.clock.utc(int((when - _EPOCH).total_seconds()))
            if not since <= end <= now:
                continue
            key = f"{self.office.key}:commlog:{num}"
            rng = self._rng(key)
            caller, _, clinic = self.patients[pat]
            line = self._line(clinic)
            if kind == CANCEL_CALL:
                ivr, ring, talk = rng.randint(5, 20), rng.randint(3, 15), rng.randint(60, 240)
                start = end - ivr - ring - talk
                outcome = ("answered", ivr, ring, talk)
                session = self._inbound(key, "cancel", caller, start, line, outcome)
            else:
                # A message left on the patient's voicemail, or a balance call that may ring out.
                answered = kind == MISSED_CALL or rng.random() < 0.6
                plan = self._outbound_plan(rng, "completed" if answered else "no-answer")
                if kind == MISSED_CALL:
                    plan = ("completed", plan[1], rng.randint(20, 45))
                start = end - plan[1] - plan[2]
                session = self._outbound(key, "outreach", caller, start, line, plan)
            session.commlog_num = num

    # -- sessions and their legs -----------------------------------------------------------

    def _inbound(self, key, kind, caller, start, line, plan=None) -> Session:
        rng = self._rng(key)
        s = Session(
            sid=sid("CA", self.seed, key),
            key=key,
            line=line,
            kind=kind,
            direction="inbound",
            caller=caller,
            start=start,
            business_hours=self.clock.is_open(start),
        )
        if plan is None:
            weights = OPEN_WEIGHTS if s.business_hours else CLOSED_WEIGHTS
            s.outcome = rng.choices(INBOUND_OUTCOMES, weights)[0]
            s.ivr_seconds = (
                rng.randint(3, 40) if s.outcome == "abandoned_ivr" else rng.randint(5, 20)
            )
            self._draw_ring(s, rng)
        else:
            s.outcome, s.ivr_seconds, s.ring_seconds, s.talk_seconds = plan
        self._inbound_legs(s, rng)
        self.log.sessions.append(s)
        if s.outcome != "answered":
            self._follow_ups(s)
        return s

    def _draw_ring(self, s: Session, rng: random.Random) -> None:
        timeout, short = self.settings.ring_timeout_s, self.settings.short_abandon_s
        if s.outcome == "answered":
            s.ring_seconds, s.talk_seconds = rng.randint(3, timeout - 2), rng.randint(30, 600)
        elif s.outcome in ("missed", "voicemail"):
            s.dial_status = "no-answer" if s.outcome == "voicemail" else _pick(rng, MISSED_DIAL)
            s.ring_seconds = {"no-answer": timeout, "busy": rng.randint(1, 3), "failed": 1}[
                s.dial_status
            ]
            if s.outcome == "voicemail":
                s.voicemail_seconds = rng.randint(10, 90)
        elif s.outcome == "abandoned_queue":
            s.ring_seconds = rng.randint(short, timeout - 1)
        elif s.outcome == "short_abandon":
            s.ring_seconds = rng.randint(1, short - 1)

    def _inbound_legs(self, s: Session, rng: random.Random) -> None:
        dial = s.start + s.ivr_seconds
        ringing_ends = dial + s.ring_seconds
        if s.outcome == "answered":
            s.dial_status = "completed"
            s.end = ringing_ends + s.talk_seconds
        elif s.outcome == "abandoned_ivr":
            s.end = dial
        elif s.outcome in ("abandoned_queue", "short_abandon"):
            s.dial_status = "canceled"
            s.end = ringing_ends
        else:
            # The voicemail greeting plays; the caller records a message or hangs up.
            greeting = rng.randint(6, 10) if s.voicemail_seconds else rng.randint(2, 8)
            s.end = ringing_ends + greeting + s.voicemail_seconds
        self._leg(s, s.sid, "inbound", s.caller.phone, s.line.number, s.start, s.start, "completed")
        if s.outcome == "abandoned_ivr":
            return
        picker = rng.randrange(self.settings.ring_group_size)
        for k in range(self.settings.ring_group_size):
            child = sid("CA", self.seed, s.key, "dial", k)
            answered = s.outcome == "answered" and k == picker
            # Phones that did not pick up stop ringing (canceled) when another one answers.
            status = "completed" if answered else "canceled" if s.outcome == "answered" else None
            self._leg(
                s,
                child,
                "outbound-dial",
                s.caller.phone,
                f"client:frontdesk{k + 1}",
                dial,
                ringing_ends if answered else None,
                status or s.dial_status,
                parent=s.sid,
                end=s.end if answered else ringing_ends,
            )
            if answered:
                s.answered_leg_sid = child

    def _outbound_plan(self, rng: random.Random, status: str) -> tuple[str, int, int]:
        """(final status, ring seconds, talk seconds) of an outbound call."""
        if status == "completed":
            return status, rng.randint(5, 20), rng.randint(30, 300)
        if status == "busy":
            return status, rng.randint(1, 3), 0
        return status, self.settings.ring_timeout_s + 5, 0

    def _outbound(self, key, kind, caller, start, line, plan) -> Session:
        status, ring, talk = plan
        s = Session(
            sid=sid("CA", self.seed, key),
            key=key,
            line=line,
            kind=kind,
            direction="outbound",
            caller=caller,
            start=start,
            end=start + ring + talk,
            outcome={"completed": "answered", "no-answer": "no_answer"}.get(status, status),
            dial_status=status,
            ring_seconds=ring,
            talk_seconds=talk,
            business_hours=self.clock.is_open(start),
        )
        answer = start + ring if status == "completed" else None
        self._leg(s, s.sid, "outbound-api", line.number, caller.phone, start, answer, status)
        if answer is not None:
            s.answered_leg_sid = s.sid
        self.log.sessions.append(s)
        return s

    def _leg(self, s, leg_sid, direction, from_, to, start, answer, status, **extra) -> None:
        self.log.legs.append(
            Leg(
                sid=leg_sid,
                parent_call_sid=extra.get("parent"),
                session_sid=s.sid,
                line=s.line,
                direction=direction,
                from_=from_,
                to=to,
                start=start,
                answer=answer,
                end=extra.get("end", s.end),
                status=status,
            )
        )

    # -- follow-ups of unanswered calls ----------------------------------------------------

    def _follow_ups(self, s: Session) -> None:
        rng = self._rng(s.key + ":follow-up")
        if self.settings.call_to_text:
            self._text_back(s, rng)
        choice = _pick(rng, FOLLOW_UPS)
        if choice == "redial":
            at = s.end + rng.randint(2 * MINUTE, 30 * MINUTE)
            if self.clock.is_open(at):
                redial = self._inbound(
                    s.key + ":redial",
                    "redial",
                    s.caller,
                    at,
                    s.line,
                    ("answered", rng.randint(5, 20), rng.randint(3, 15), rng.randint(60, 400)),
                )
                redial.follow_up_of = s.sid
                s.redial_sid, s.redial_at = redial.sid, redial.start
        elif choice != "none":
            delay = (
                rng.randint(5 * MINUTE, 55 * MINUTE)
                if choice == "callback_1h"
                else rng.randint(HOUR, 23 * HOUR)
            )
            at = self.clock.next_open(s.end + delay, rng)
            status = _pick(rng, (("completed", 0.6), ("no-answer", 0.35), ("busy", 0.05)))
            plan = self._outbound_plan(rng, status)
            callback = self._outbound(s.key + ":callback", "callback", s.caller, at, s.line, plan)
            callback.follow_up_of = s.sid
            s.callback_sid, s.callback_at = callback.sid, callback.start

    def _text_back(self, s: Session, rng: random.Random) -> None:
        landline = self._rng(s.caller.phone + ":landline").random() < self.settings.landline_share
        at = s.end + rng.randint(5, 20)
        body = AUTO_TEXT.format(office=self.office.name)
        text = self._message(s, "auto_text", "outbound-api", body, at, landline)
        s.text_sid, s.text_at = text.sid, at
        if landline or rng.random() >= 0.35:
            return
        s.reply_at = at + rng.randint(MINUTE, 30 * MINUTE)
        self._message(s, "patient_reply", "inbound", rng.choice(PATIENT_REPLIES), s.reply_at)
        if rng.random() < 0.8:
            s.staff_reply_at = self.clock.next_open(s.reply_at + rng.randint(2 * MINUTE, HOUR), rng)
            body = rng.choice(STAFF_REPLIES)
            self._message(s, "staff_reply", "outbound-api", body, s.staff_reply_at)

    def _message(self, s, kind, direction, body, at, undeliverable=False) -> Message:
        return self._sms(s.key, s.sid, s.line, s.caller, kind, direction, body, at, undeliverable)

    def _sms(
        self, key, session_sid, line, caller, kind, direction, body, at, undeliverable=False
    ) -> Message:
        inbound = direction == "inbound"
        message = Message(
            sid=sid("SM", self.seed, key, kind),
            session_sid=session_sid,
            line=line,
            kind=kind,
            direction=direction,
            from_=caller.phone if inbound else line.number,
            to=line.number if inbound else caller.phone,
            body=body,
            created=at,
            status="received" if inbound else "undelivered" if undeliverable else "delivered",
            # 30006: landline or unreachable carrier.
            error_code=30006 if undeliverable else None,
            caller=caller,
        )
        self.log.messages.append(message)
        return message

    # -- appointment reminders -------------------------------------------------------------

    def _reminders(self, since: int, now: int) -> None:
        """Texts reminding patients of a visit some days ahead, and what they answer.

        A visit is reminded if it was on the schedule when the reminder went out: booked before
        then and still Scheduled, since completed, or broken only afterwards. Nothing here
        changes as the world advances: a reminder sent is kept whatever became of the visit.
        """
        textable = self._textable()
        unanswered = self._unanswered_call_ends()
        rows = (
            self._office("appointments")
            .filter(pl.col("AptStatus").is_in(_REMINDED_STATUSES))
            .select("AptNum", "PatNum", "AptStatus", "AptDateTime", "SecDateTEntry", "DateTStamp")
            .sort("AptNum")
        )
        for apt, pat, status, start, entered, stamp in rows.iter_rows():
            if pat not in textable or start is None or entered is None:
                continue
            key = f"{self.office.key}:reminder:{apt}"
            draws = _ReminderDraws.of(self._rng(key))
            visit = self.clock.utc(_seconds(start))
            day = _seconds(start) // DAY - self.settings.reminder_days_before
            at = self.clock.utc(day * DAY + self.settings.reminder_hour * HOUR + draws.jitter)
            caller = self.patients[pat][0]
            at = _clear_of(at, unanswered.get(caller.phone, ()))
            reminded = draws.reminded < self.settings.reminder_rate
            if not (reminded and since <= at <= now and at < visit):
                continue
            if self.clock.utc(_seconds(entered)) > at:
                continue  # booked after the reminders went out
            if status == "Broken" and (stamp is None or self.clock.utc(_seconds(stamp)) <= at):
                continue  # cancelled before the reminder
            self._reminder(key, apt, pat, start, at, visit, draws)

    def _reminder(self, key, apt, pat, start, at, visit, draws: _ReminderDraws) -> None:
        caller, _, clinic = self.patients[pat]
        line = self._line(clinic)
        ref = ReminderRef(apt, self.id_offset + apt, pat, self.id_offset + pat)
        when = start.strftime("%a %b %d at %I:%M %p")
        text = REMINDER_TEXT.format(line=line.name, when=when)
        landline = self._rng(caller.phone + ":landline").random() < self.settings.landline_share
        reminder = self._sms(
            key, None, line, caller, "reminder", "outbound-api", text, at, landline
        )
        reminder.reminder = ref
        reply_at = at + draws.delay
        replies = draws.replies < self.settings.reminder_reply_rate
        if landline or not replies or reply_at >= visit - HOUR:
            return
        cancel, other = self.settings.reminder_cancel_share, self.settings.reminder_other_share
        kind = (
            "cancel"
            if draws.intent < cancel
            else "other"
            if draws.intent < cancel + other
            else "confirm"
        )
        pool = REMINDER_REPLIES[kind]
        body_text = pool[int(draws.body * len(pool))]
        reply = self._sms(key, None, line, caller, "reminder_reply", "inbound", body_text, reply_at)
        reply.reminder = replace(ref, intent=kind)

    def _textable(self) -> set[int]:
        """Patients the practice can text: a number on the record, texting not refused, and a
        phone the person answers."""
        rows = self._office("patients").filter(
            (pl.col("TxtMsgOk") != "No")
            & ((pl.col("WirelessPhone") != "") | (pl.col("HmPhone") != ""))
        )
        return {pat for pat in rows["PatNum"] if pat in self.patients}

    def _unanswered_call_ends(self) -> dict[str, list[int]]:
        ends: dict[str, list[int]] = {}
        for s in self.log.sessions:
            if (
                s.line.office == self.office.key
                and s.direction == "inbound"
                and s.outcome != "answered"
            ):
                ends.setdefault(s.caller.phone, []).append(s.end)
        return ends
