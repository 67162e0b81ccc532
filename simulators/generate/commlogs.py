"""Commlogs: reminders, confirmation replies, calls about broken visits and desk notes.

``COMMLOG_KINDS`` fixes each kind's CommType, mode, direction, source and note; the reminder and
confirmation batches run at fixed times so many rows share a second, as in Open Dental.
``build_commlogs`` numbers and renders rows in entry order and ``office_commlogs`` generates one
office's commlogs over the history window.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from simulators.generate.appointments import (
    BROKEN,
    CANCELLED,
    COMPLETE,
    MISSED,
    SCHEDULED,
    Appts,
)
from simulators.generate.arrays import (
    DAY,
    HOUR,
    MINUTE,
    business_time,
    choose,
    pick,
    ts,
    uniform_int,
    weekday_shift,
)
from simulators.generate.patients import PATIENT, Records
from simulators.generate.reference import OfficeCtx
from simulators.generate.schemas import table_frame

# kind -> (CommType ItemName, Mode_, SentOrReceived, CommSource, note)
COMMLOG_KINDS = (
    ("ApptRelated", "Text", "Sent", "ProgramLink", "Appointment reminder sent for "),
    ("ApptRelated", "Text", "Received", "ProgramLink", "Patient replied C to confirm "),
    ("ApptRelated", "Phone", "Received", "User", "Pt called to cancel appointment on "),
    ("ApptRelated", "Phone", "Sent", "User", "Left message about missed appointment on "),
    ("Recall", "Email", "Sent", "ProgramLink", "Recall reminder emailed: due for cleaning."),
    ("Financial", "Mail", "Sent", "User", "Statement mailed."),
    ("Financial", "Phone", "Sent", "User", "Called about outstanding balance."),
    ("Insurance", "Phone", "Received", "User", "Verified insurance benefits."),
    ("Misc", "In Person", "Neither", "User", "Pt dropped off updated medical history."),
    ("ApptRelated", "Email and Text", "Sent", "ProgramLink", "Appointment reminder sent for "),
)
(
    REMINDER,
    CONFIRM_REPLY,
    CANCEL_CALL,
    MISSED_CALL,
    RECALL,
    STATEMENT,
    BALANCE_CALL,
    INSURANCE,
    MISC,
    REMINDER_BOTH,
) = range(len(COMMLOG_KINDS))


def reminder_time(start: np.ndarray) -> np.ndarray:
    """The eReminder batch runs at 10:00:00 two days ahead (so many rows share that second)."""
    return (start // DAY - 2) * DAY + 10 * HOUR


def build_commlogs(
    rng,
    ctx: OfficeCtx,
    pat: np.ndarray,
    kind: np.ndarray,
    when: np.ndarray,
    apt_start: np.ndarray,
    first_num: int,
) -> pl.DataFrame:
    """Commlog rows numbered in entry order.

    ``apt_start`` (or -1) is appended to appointment-related notes as OD's reminders do.
    """
    user = np.array([k[3] == "User" for k in COMMLOG_KINDS])[kind]
    entry = np.minimum(when + np.where(user, rng.integers(0, 5 * MINUTE, len(pat)), 0), ctx.now)
    order = np.argsort(entry, kind="stable")
    pat, kind, when, apt_start, entry, user = (
        v[order] for v in (pat, kind, when, apt_start, entry, user)
    )
    n = len(pat)
    edited = user & (rng.random(n) < 0.05)
    stamp = np.where(edited, np.minimum(entry + rng.integers(MINUTE, 3 * DAY, n), ctx.now), entry)
    apt = ts(np.maximum(apt_start, 0)).dt.strftime("%m/%d/%Y %I:%M %p")
    base = pick([k[4] for k in COMMLOG_KINDS], kind)
    note = pl.select(
        pl.when(pl.lit(apt_start >= 0))
        .then(pl.concat_str(pl.lit(base), pl.lit(apt), pl.lit(".")))
        .otherwise(pl.lit(base))
    ).to_series()
    return table_frame(
        "commlogs",
        n,
        office=ctx.key,
        CommlogNum=np.arange(first_num, first_num + n, dtype=np.int64),
        PatNum=pat,
        CommDateTime=ts(when),
        CommType=ctx.defnums(27, tuple(k[0] for k in COMMLOG_KINDS), kind),
        Note=note,
        Mode_=pick([k[1] for k in COMMLOG_KINDS], kind),
        SentOrReceived=pick([k[2] for k in COMMLOG_KINDS], kind),
        UserNum=np.where(user, rng.integers(1, 7, n), 0),
        DateTStamp=ts(stamp),
        CommSource=pick([k[3] for k in COMMLOG_KINDS], kind),
        DateTEntry=ts(entry),
    )


def appointment_commlogs(rng, ctx: OfficeCtx, a: Appts, idx: np.ndarray):
    """Reminders (and confirmation replies) for ``idx`` whose reminder batch already ran."""
    remind_at = reminder_time(a.start[idx])
    sent = idx[(rng.random(len(idx)) < 0.6) & (remind_at >= a.sec[idx]) & (remind_at <= ctx.now)]
    at = reminder_time(a.start[sent])
    both = rng.random(len(sent)) < 0.2
    replied = sent[a.confirmed[sent] == ctx.defnum(2, "Appointment Confirmed")]
    reply_at = reminder_time(a.start[replied]) + rng.integers(5 * MINUTE, 6 * HOUR, len(replied))
    ok = reply_at <= ctx.now
    return (
        np.r_[a.pat[sent], a.pat[replied][ok]],
        np.r_[np.where(both, REMINDER_BOTH, REMINDER), np.full(ok.sum(), CONFIRM_REPLY)],
        np.r_[at, reply_at[ok]],
        np.r_[a.start[sent], a.start[replied][ok]],
    )


def broken_commlogs(rng, ctx: OfficeCtx, a: Appts, idx: np.ndarray):
    """Cancellations come in by phone; missed appointments get a call back."""
    cancel = idx[a.reason[idx] == CANCELLED]
    missed = idx[(a.reason[idx] == MISSED) & (rng.random(len(idx)) < 0.7)]
    call_back = np.minimum(a.stamp[missed] + rng.integers(MINUTE, DAY, len(missed)), ctx.now)
    return (
        np.r_[a.pat[cancel], a.pat[missed]],
        np.r_[np.full(len(cancel), CANCEL_CALL), np.full(len(missed), MISSED_CALL)],
        np.r_[a.stamp[cancel], call_back],
        np.r_[a.start[cancel], a.start[missed]],
    )


def misc_commlogs(rng, ctx: OfficeCtx, pat: np.ndarray, lo: np.ndarray, hi: int):
    """Recall emails (8:00 batch), statements, balance calls, insurance and desk notes."""
    n = len(pat)
    kind = np.array([RECALL, STATEMENT, BALANCE_CALL, INSURANCE, MISC])[
        choose(rng, n, (0.4, 0.15, 0.15, 0.15, 0.15))
    ]
    day = weekday_shift(uniform_int(rng, lo, hi))
    when = np.where(kind == RECALL, day * DAY + 8 * HOUR, business_time(rng, day))
    when = np.clip(when, lo * DAY, ctx.now)
    return pat, kind, when, np.full(n, -1)


def office_commlogs(rng, ctx: OfficeCtx, rec: Records, a: Appts, window_start):
    real = np.flatnonzero(
        np.isin(a.status, [SCHEDULED, COMPLETE, BROKEN]) & (a.start // DAY >= window_start)
    )
    broken = np.flatnonzero(a.status == BROKEN)
    who = rec.patnum[(rec.status == PATIENT) & (rng.random(len(rec.patnum)) < 0.5)]
    lo = np.maximum(window_start, rec.created[who - 1] // DAY + 1)
    parts = [
        appointment_commlogs(rng, ctx, a, real),
        broken_commlogs(rng, ctx, a, broken),
        misc_commlogs(rng, ctx, who, lo, ctx.today),
    ]
    pat, kind, when, apt_start = (np.concatenate(p) for p in zip(*parts, strict=True))
    return build_commlogs(rng, ctx, pat, kind, when, apt_start, 1)
