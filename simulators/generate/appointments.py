"""Appointments: status and procedure pools, the ``Appts`` arrays and their row builders.

``new_appointments`` seats visits in a weekday slot with a chair and providers; ``book``,
``complete``, ``break_appointments`` and ``schedule_stamps`` set booking, outcome and confirmation
times; ``number_appointments`` assigns AptNums in booking order and ``appointment_rows`` /
``truth_appointment_rows`` render the result. ``simulators.generate.history`` strings these into
an office's history and ``simulators.evolve`` reuses them for new bookings.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from simulators.generate.arrays import (
    DAY,
    HOUR,
    MINUTE,
    assign_keys,
    business_time,
    cents,
    choose,
    pick,
    run_starts,
    ts,
    weekday_shift,
)
from simulators.generate.patients import Records
from simulators.generate.reference import OfficeCtx, pick_per_clinic
from simulators.generate.schemas import table_frame

APT_STATUS = (
    "Scheduled",
    "Complete",
    "UnschedList",
    "Broken",
    "Planned",
    "PtNote",
    "PtNoteCompleted",
)
SCHEDULED, COMPLETE, UNSCHED, BROKEN, PLANNED, PTNOTE, PTNOTE_DONE = range(7)
NEW_PATIENT, HYGIENE, TREATMENT, NOTE = range(4)
MISSED, CANCELLED = 1, 2

PATTERNS = (
    ("/XXXXXXXXXX//", "//XXXXXXXXXXXX/", "/XXXXXXXX/"),
    ("/XXXXXXXXXX/", "/XXXXXXXX/", "//XXXXXXXXXX/"),
    ("/XXXX/", "/XXXXXX/", "//XXXXXXXX//", "/XXXXXXXXXXXXXX/"),
    ("//",),
)
DESCRIPTS = (
    ("CompEx, 4BW, Pro", "CompEx, FMX, Pro", "CompEx, Pano, ProChild, Flo"),
    (
        "PerEx, Pro, 4BW",
        "PerEx, Pro",
        "PerEx, ProChild, Flo",
        "PerioMaint, PerEx",
        "PerEx, Pro, 2BW, Flo",
    ),
    (
        "#3-MOD-Comp",
        "#14-O-Comp",
        "#19-PFM",
        "#30-RCT Molar",
        "Ext #32",
        "#8-Veneer",
        "#12-DO-Comp",
        "SRP UR, SRP UL",
        "#18-Crown Prep",
        "#29-BU, #29-Crown",
        "Nightguard",
        "LimEx, PA",
    ),
    ("",),
)
APPT_NOTES = (
    "Pt prefers mornings.",
    "Premed required.",
    "Pt may be 10 min late.",
    "Bring new insurance card.",
    "Anxious pt, offer nitrous.",
    "Needs Spanish interpreter.",
    "Follow-up from last visit.",
)
PTNOTE_NOTES = (
    "Pt called, will call back to schedule.",
    "Hold for Dr. review.",
    "Pt asked about Saturday hours.",
    "Waiting on insurance approval.",
)
CONFIRMED = ("Unconfirmed", "Left Msg", "Appointment Confirmed", "Texted")
UNSCHED_STATUS = ("Contact", "Left Msg")


def _flat(pools: tuple[tuple[str, ...], ...]) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    flat = tuple(s for pool in pools for s in pool)
    sizes = np.array([len(p) for p in pools])
    return flat, np.cumsum(sizes) - sizes, sizes


_PATTERN_FLAT, _PATTERN_OFFSET, _PATTERN_COUNT = _flat(PATTERNS)
_DESCRIPT_FLAT, _DESCRIPT_OFFSET, _DESCRIPT_COUNT = _flat(DESCRIPTS)
PATTERN_SECONDS = np.array([len(p) * 5 * MINUTE for p in _PATTERN_FLAT])
NO_TIME = -1  # stands for an empty DateTime in the int64 arrays


def _pool_index(rng, kind, offset, count) -> np.ndarray:
    return offset[kind] + (rng.random(len(kind)) * count[kind]).astype(np.int64)


def descript_index(rng: np.random.Generator, kind: np.ndarray) -> np.ndarray:
    """Procedure descriptions drawn from each appointment kind's pool."""
    return _pool_index(rng, kind, _DESCRIPT_OFFSET, _DESCRIPT_COUNT)


@dataclass
class Appts:
    """Appointments under construction as parallel numpy arrays (one entry per row)."""

    pat: np.ndarray
    kind: np.ndarray
    start: np.ndarray
    pattern: np.ndarray  # index into the flattened PATTERNS pool
    duration: np.ndarray  # seconds (the pattern's length)
    descript: np.ndarray
    op: np.ndarray
    prov: np.ndarray
    provhyg: np.ndarray
    clinic: np.ndarray
    status: np.ndarray
    reason: np.ndarray
    sec: np.ndarray
    stamp: np.ndarray
    arrived: np.ndarray
    seated: np.ndarray
    dismissed: np.ndarray
    confirmed: np.ndarray
    unsched: np.ndarray
    parent: np.ndarray  # index of the Planned row this one was scheduled from, or -1

    def __len__(self) -> int:
        return len(self.pat)

    @property
    def done(self) -> np.ndarray:
        """When an appointment is surely over (dismissal can run a little late)."""
        return self.start + self.duration + 45 * MINUTE

    def take(self, idx: np.ndarray) -> Appts:
        return Appts(**{k: v[idx] for k, v in vars(self).items()})

    @staticmethod
    def concat(parts: list[Appts]) -> Appts:
        return Appts(**{k: np.concatenate([vars(p)[k] for p in parts]) for k in vars(parts[0])})


def new_appointments(
    rng: np.random.Generator,
    ctx: OfficeCtx,
    rec: Records,
    pat: np.ndarray,
    kind: np.ndarray,
    day: np.ndarray,
) -> Appts:
    """Appointments for ``pat`` (PatNums) on weekday ``day``s: a slot, chair and providers."""
    n = len(pat)
    row = pat - 1
    clinic = rec.clinic[row]
    start = weekday_shift(day) * DAY + 8 * HOUR + rng.integers(0, 48, n) * 10 * MINUTE
    hygiene = kind == HYGIENE
    op = np.where(
        hygiene,
        pick_per_clinic(rng, ctx.hygiene_ops, clinic),
        pick_per_clinic(rng, ctx.dentist_ops, clinic),
    )
    prov = np.where(
        rng.random(n) < 0.85, rec.priprov[row], pick_per_clinic(rng, ctx.dentists, clinic)
    )
    sec_hyg = rec.secprov[row]
    provhyg = np.where(
        hygiene, np.where(sec_hyg > 0, sec_hyg, pick_per_clinic(rng, ctx.hygienists, clinic)), 0
    )
    zeros = np.zeros(n, dtype=np.int64)
    pattern = _pool_index(rng, kind, _PATTERN_OFFSET, _PATTERN_COUNT)
    return Appts(
        pat=pat,
        kind=kind,
        start=start,
        pattern=pattern,
        duration=PATTERN_SECONDS[pattern],
        descript=descript_index(rng, kind),
        op=op,
        prov=prov,
        provhyg=provhyg,
        clinic=clinic,
        status=np.full(n, SCHEDULED),
        reason=zeros.copy(),
        sec=zeros.copy(),
        stamp=zeros.copy(),
        arrived=zeros - 1,
        seated=zeros - 1,
        dismissed=zeros - 1,
        confirmed=np.full(n, ctx.defnum(2, "Unconfirmed")),
        unsched=zeros.copy(),
        parent=zeros - 1,
    )


def book(rng: np.random.Generator, a: Appts, floor: np.ndarray, now: int) -> None:
    """Set SecDateTEntry: booked some lead time before the visit, never before ``floor``."""
    lead_days = np.select(
        [a.kind == HYGIENE, a.kind == TREATMENT, a.kind == NOTE],
        [
            rng.integers(14, 190, len(a.pat)),
            rng.integers(1, 40, len(a.pat)),
            np.zeros(len(a.pat), int),
        ],
        rng.integers(1, 21, len(a.pat)),
    )
    booked = business_time(rng, a.start // DAY - lead_days)
    booked = np.minimum(booked, a.start - 10 * MINUTE)
    # Visits far ahead cannot have been booked in the future: they were booked lately.
    lately = np.minimum(
        business_time(rng, now // DAY - rng.integers(0, 30, len(a.pat))), now - MINUTE
    )
    a.sec = np.maximum(np.minimum(booked, lately), floor)


def visit_times(rng: np.random.Generator, start: np.ndarray, duration: np.ndarray):
    """Arrival, seating and dismissal on the appointment day, in that order."""
    n = len(start)
    arrived = start + np.clip(rng.normal(-8, 7, n), -30, 20).astype(np.int64) * MINUTE
    arrived += rng.integers(0, 60, n)
    seated = arrived + rng.integers(0, 20 * MINUTE, n)
    dismissed = seated + (duration * rng.uniform(0.8, 1.15, n)).astype(np.int64)
    dismissed = np.maximum(seated, np.minimum(dismissed, start + duration + 30 * MINUTE))
    return arrived, seated, dismissed


def complete(rng: np.random.Generator, ctx: OfficeCtx, a: Appts, idx: np.ndarray) -> None:
    """Mark ``idx`` Complete with clinic-floor times and the stamp of the checkout."""
    n = len(idx)
    arrived, seated, dismissed = visit_times(rng, a.start[idx], a.duration[idx])
    tracked = rng.random(n) < 0.92
    a.status[idx] = COMPLETE
    a.arrived[idx] = np.where(tracked, arrived, NO_TIME)
    a.seated[idx] = np.where(tracked, seated, NO_TIME)
    a.dismissed[idx] = np.where(tracked, dismissed, NO_TIME)
    checkout = np.where(tracked, dismissed, a.start[idx] + a.duration[idx]) + rng.integers(
        30, 900, n
    )
    day_close = a.start[idx] // DAY * DAY + 19 * HOUR  # end-of-day batch: many equal stamps
    stamp = np.where(rng.random(n) < 0.4, np.maximum(day_close, checkout), checkout)
    a.stamp[idx] = np.clip(stamp, a.sec[idx], ctx.now)
    a.confirmed[idx] = ctx.defnums(2, CONFIRMED, choose(rng, n, (0.1, 0.1, 0.6, 0.2)))


def break_appointments(
    rng: np.random.Generator, a: Appts, idx: np.ndarray, reason: np.ndarray, now: int
) -> None:
    """Broken: missed ones are noticed after the start, cancelled ones between booking and start."""
    n = len(idx)
    a.status[idx] = BROKEN
    a.reason[idx] = reason
    missed = a.start[idx] + rng.integers(15 * MINUTE, 3 * HOUR, n)
    until = np.minimum(a.start[idx], now)
    cancelled = a.sec[idx] + (rng.random(n) * (until - a.sec[idx])).astype(np.int64)
    a.stamp[idx] = np.clip(np.where(reason == MISSED, missed, cancelled), a.sec[idx], now)


def schedule_stamps(rng: np.random.Generator, ctx: OfficeCtx, a: Appts, idx: np.ndarray) -> None:
    """Future appointments: confirmation texts go out in a 9:00 batch two days ahead."""
    n = len(idx)
    batch = confirmation_time(a.start[idx])
    ran = batch <= ctx.now
    which = np.where(
        ran, choose(rng, n, (0.15, 0.15, 0.5, 0.2)), choose(rng, n, (0.9, 0, 0.02, 0.08))
    )
    reply = batch + rng.integers(5 * MINUTE, 6 * HOUR, n)
    which = np.where(ran & (which == 2) & (reply > ctx.now), 3, which)  # no answer yet
    when = np.select([~ran, which == 2], [a.sec[idx] + rng.integers(0, 2 * DAY, n), reply], batch)
    a.confirmed[idx] = ctx.defnums(2, CONFIRMED, which)
    touched = which > 0
    a.stamp[idx] = np.where(touched, np.clip(when, a.sec[idx], ctx.now), a.sec[idx])


def confirmation_time(start: np.ndarray) -> np.ndarray:
    """The eConfirmation batch runs at 9:00:00 two days ahead (many rows share that second)."""
    return (start // DAY - 2) * DAY + 9 * HOUR


def visit_charges(rng: np.random.Generator, kind: np.ndarray) -> np.ndarray:
    """Patient portion of a visit's fees, in cents (insurance often covers cleanings)."""
    n = len(kind)
    hygiene = np.where(rng.random(n) < 0.4, 0, rng.uniform(20, 150, n))
    amount = np.select(
        [kind == NEW_PATIENT, kind == HYGIENE, kind == TREATMENT],
        [rng.uniform(40, 250, n), hygiene, rng.uniform(60, 1200, n)],
        0,
    )
    return cents(amount)


def appointment_rows(
    rng, ctx: OfficeCtx, a: Appts, apt_num: np.ndarray, is_new: np.ndarray, next_apt: np.ndarray
) -> pl.DataFrame:
    n = len(a.pat)
    is_note = np.isin(a.status, [PTNOTE, PTNOTE_DONE])
    has_note = rng.random(n) < 0.12
    note = np.where(
        is_note,
        len(APPT_NOTES) + rng.integers(0, len(PTNOTE_NOTES), n),
        rng.integers(0, len(APPT_NOTES), n),
    )
    notes = pl.select(
        pl.when(pl.lit(has_note | is_note))
        .then(pl.lit(pick(APPT_NOTES + PTNOTE_NOTES, note)))
        .otherwise(pl.lit(""))
    ).to_series()
    return table_frame(
        "appointments",
        n,
        office=ctx.key,
        AptNum=apt_num,
        PatNum=a.pat,
        AptStatus=pick(APT_STATUS, a.status),
        Pattern=pick(_PATTERN_FLAT, a.pattern),
        Confirmed=a.confirmed,
        Op=a.op,
        Note=notes,
        ProvNum=a.prov,
        ProvHyg=a.provhyg,
        AptDateTime=ts(a.start),
        NextAptNum=next_apt,
        UnschedStatus=a.unsched,
        IsNewPatient=is_new,
        ProcDescript=pick(_DESCRIPT_FLAT, a.descript),
        ClinicNum=a.clinic,
        IsHygiene=a.kind == HYGIENE,
        DateTStamp=ts(a.stamp),
        DateTimeArrived=ts(a.arrived, a.arrived == NO_TIME),
        DateTimeSeated=ts(a.seated, a.seated == NO_TIME),
        DateTimeDismissed=ts(a.dismissed, a.dismissed == NO_TIME),
        SecDateTEntry=ts(a.sec),
        Priority=pick(("Normal", "ASAP"), (a.status == SCHEDULED) & (rng.random(n) < 0.03)),
    )


def first_appointments(a: Appts) -> np.ndarray:
    """IsNewPatient: each patient's earliest real (not Planned / note) appointment."""
    real = ~np.isin(a.status, [PLANNED, PTNOTE, PTNOTE_DONE])
    idx = np.flatnonzero(real)
    order = idx[np.lexsort((a.start[idx], a.pat[idx]))]
    first = run_starts(a.pat[order])
    flag = np.zeros(len(a.pat), dtype=bool)
    flag[order[first]] = True
    return flag


def truth_appointment_rows(ctx: OfficeCtx, a: Appts, apt_num: np.ndarray) -> pl.DataFrame:
    reason = pl.select(
        pl.when(pl.lit(a.reason == MISSED))
        .then(pl.lit("missed"))
        .when(pl.lit(a.reason == CANCELLED))
        .then(pl.lit("cancelled"))
        .otherwise(None)
    ).to_series()
    return table_frame(
        "truth_appointments", len(apt_num), office=ctx.key, AptNum=apt_num, broken_reason=reason
    )


def number_appointments(a: Appts) -> tuple[Appts, np.ndarray, np.ndarray]:
    """AptNums in booking order: rows re-ordered by AptNum, with NextAptNum and IsNewPatient."""
    apt_num = assign_keys(a.sec, 1)
    next_apt = np.where(a.parent >= 0, apt_num[np.maximum(a.parent, 0)], 0)
    is_new = first_appointments(a)
    order = np.argsort(apt_num)
    return a.take(order), next_apt[order], is_new[order]


def first_complete_days(a: Appts, n: int) -> np.ndarray:
    """DateFirstVisit as day numbers (-1 = never completed a visit)."""
    done = a.status == COMPLETE
    first = np.full(n, np.iinfo(np.int64).max)
    np.minimum.at(first, a.pat[done] - 1, a.start[done] // DAY)
    return np.where(first == np.iinfo(np.int64).max, -1, first)
