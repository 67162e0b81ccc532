"""One office's appointment history: first visits, recalls, treatment, notes and follow-ups.

``appointment_history`` lays out each patient's visits over the history window and beyond
(new-patient visits, recall cleanings, treatment, PtNotes), resolves them against the office's
clock (completed, broken, scheduled), adds the follow-ups a front desk creates (rescheduled
visits, Unscheduled List copies, Planned appointments and the visits booked from them) and
prices the completed visits inside the window.
"""

from __future__ import annotations

import numpy as np

from simulators.generate.appointments import (
    BROKEN,
    CANCELLED,
    COMPLETE,
    HYGIENE,
    MISSED,
    NEW_PATIENT,
    NO_TIME,
    NOTE,
    PLANNED,
    PTNOTE,
    PTNOTE_DONE,
    TREATMENT,
    UNSCHED,
    UNSCHED_STATUS,
    Appts,
    book,
    break_appointments,
    complete,
    descript_index,
    new_appointments,
    schedule_stamps,
    visit_charges,
)
from simulators.generate.arrays import DAY, HOUR, MINUTE, choose, uniform_int
from simulators.generate.patients import PAT_STATUS, PATIENT, PROSPECTIVE, Records
from simulators.generate.reference import OfficeCtx

FUTURE_DAYS = 200  # how far ahead of now recalls are already booked


def appointment_history(rng, ctx: OfficeCtx, rec: Records, window_start: int):
    """First visits, recall and treatment series, notes, then outcomes and follow-ups."""
    base = _base_events(rng, ctx, rec, window_start)
    _resolve(rng, ctx, base, window_start)
    followups = _followups(rng, ctx, rec, base)
    appts = Appts.concat([base, *followups])
    appts.confirmed = np.where(
        appts.status == PLANNED, ctx.defnum(2, "Unconfirmed"), appts.confirmed
    )
    # Visits before the window are long settled: they carry no charge.
    billable = (appts.status == COMPLETE) & (appts.start // DAY >= window_start)
    charge = visit_charges(rng, appts.kind) * billable
    return appts, charge


def _base_events(rng, ctx: OfficeCtx, rec: Records, window_start: int) -> Appts:
    status = rec.status
    patient = status == PATIENT
    prospective = status == PROSPECTIVE
    seen = np.isin(
        status, [PAT_STATUS.index(s) for s in ("Patient", "Inactive", "Archived", "Deceased")]
    )
    created_day = rec.created // DAY
    first_day = created_day + rng.integers(1, 22, len(status))
    first_day = np.where(prospective, np.maximum(first_day, ctx.today + 1), first_day)
    has_first = seen | (prospective & (rng.random(len(status)) < 0.6))
    pats, kinds, days = (
        [rec.patnum[has_first]],
        [np.full(has_first.sum(), NEW_PATIENT)],
        [first_day[has_first]],
    )
    for pat, kind, day in (
        _recalls(rng, ctx, rec.patnum[patient], first_day[patient], window_start),
        _treatments(rng, ctx, rec.patnum[patient], first_day[patient], window_start),
        _notes(rng, ctx, rec.patnum[patient], first_day[patient], window_start),
    ):
        pats.append(pat)
        kinds.append(kind)
        days.append(day)
    pat, kind, day = np.concatenate(pats), np.concatenate(kinds), np.concatenate(days)
    a = new_appointments(rng, ctx, rec, pat, kind, day)
    book(rng, a, rec.created[pat - 1], ctx.now)
    return a


def _recalls(rng, ctx, pat, first_day, window_start):
    """Cleanings every 3/6/12 months from the first visit; the next one is usually booked."""
    n = len(pat)
    interval = np.array([182, 91, 365])[choose(rng, n, (0.8, 0.08, 0.12))]
    j_min = np.maximum(1, -((first_day - window_start) // interval))
    j_max = (ctx.today - first_day) // interval + 1
    count = np.clip(j_max - j_min + 1, 0, None) * (rng.random(n) < 0.88)
    idx = np.repeat(np.arange(n), count)
    j = j_min[idx] + np.arange(len(idx)) - np.repeat(np.cumsum(count) - count, count)
    day = first_day[idx] + j * interval[idx] + rng.integers(-10, 11, len(idx))
    future = day > ctx.today
    keep = np.where(future, rng.random(len(idx)) < 0.75, rng.random(len(idx)) < 0.85)
    keep &= (day > first_day[idx]) & (day >= window_start) & (day <= ctx.today + FUTURE_DAYS)
    return pat[idx][keep], np.full(keep.sum(), HYGIENE), day[keep]


def _treatments(rng, ctx, pat, first_day, window_start):
    """Restorative visits: about one a year, some already booked for the coming weeks."""
    lo = np.maximum(window_start, first_day + 1)
    hi = ctx.today + 45
    count = rng.poisson(np.clip(hi - lo, 0, None) / 365.0)
    idx = np.repeat(np.arange(len(pat)), count)
    day = uniform_int(rng, lo[idx], hi)
    return pat[idx], np.full(len(idx), TREATMENT), day


def _notes(rng, ctx, pat, first_day, window_start):
    has = rng.random(len(pat)) < 0.015
    day = uniform_int(rng, np.maximum(window_start, first_day[has] + 1), ctx.today + 30)
    return pat[has], np.full(has.sum(), NOTE), day


def _resolve(rng, ctx: OfficeCtx, a: Appts, window_start: int) -> None:
    """Past visits are mostly completed, some broken; future ones are scheduled (or cancelled)."""
    n = len(a.pat)
    note = a.kind == NOTE
    past = a.done <= ctx.now
    r = rng.random(n)
    history = a.start // DAY >= window_start
    broken = ~note & np.where(past, history & (r < 0.1), r < 0.03)
    done = ~note & past & ~broken
    complete(rng, ctx, a, np.flatnonzero(done))
    reason = np.where(past[broken] & (rng.random(broken.sum()) < 0.6), MISSED, CANCELLED)
    break_appointments(rng, a, np.flatnonzero(broken), reason, ctx.now)
    scheduled = np.flatnonzero(~note & ~past & ~broken)
    schedule_stamps(rng, ctx, a, scheduled)
    note_idx = np.flatnonzero(note)
    a.status[note_idx] = np.where(
        past[note_idx] & (rng.random(len(note_idx)) < 0.5), PTNOTE_DONE, PTNOTE
    )
    a.stamp[note_idx] = a.sec[note_idx]


def _followups(rng, ctx: OfficeCtx, rec: Records, base: Appts) -> list[Appts]:
    """Broken -> rescheduled or UnschedList; completed treatment -> Planned (-> scheduled)."""
    broken = np.flatnonzero(base.status == BROKEN)
    r = rng.random(len(broken))
    resched = rescheduled(rng, ctx, rec, base, broken[r < 0.5])
    unsched = unscheduled_copies(rng, ctx, base, broken[(r >= 0.5) & (r < 0.8)])
    done = Appts.concat([base, resched])
    offset = len(base) + len(resched) + len(unsched)
    planned, derived = _planned(rng, ctx, rec, done, offset)
    return [resched, unsched, planned, derived]


def rescheduled(rng, ctx: OfficeCtx, rec: Records, a: Appts, idx: np.ndarray) -> Appts:
    """New appointments booked after a break, 3-28 days after the broken one."""
    day = a.start[idx] // DAY + rng.integers(3, 29, len(idx))
    new = new_appointments(rng, ctx, rec, a.pat[idx], a.kind[idx], day)
    new.sec = np.minimum(a.stamp[idx] + rng.integers(MINUTE, 2 * DAY, len(idx)), ctx.now)
    new.sec = np.minimum(new.sec, new.start - 10 * MINUTE)
    _settle(rng, ctx, new)
    return new


def _settle(rng, ctx: OfficeCtx, a: Appts) -> None:
    """Complete what is over, leave the rest Scheduled (no second breaks in a chain)."""
    past = a.done <= ctx.now
    complete(rng, ctx, a, np.flatnonzero(past))
    schedule_stamps(rng, ctx, a, np.flatnonzero(~past))


def unscheduled_copies(rng, ctx: OfficeCtx, a: Appts, idx: np.ndarray) -> Appts:
    """The broken visit goes on the Unscheduled List as a new row (keeps date, chair, procs)."""
    copy = a.take(idx)
    n = len(idx)
    copy.status = np.full(n, UNSCHED)
    copy.reason = np.zeros(n, dtype=np.int64)
    copy.arrived = copy.seated = copy.dismissed = np.full(n, NO_TIME)
    copy.sec = np.minimum(a.stamp[idx] + rng.integers(1, 120, n), ctx.now)
    followed = rng.random(n) < 0.5
    copy.stamp = np.where(
        followed, np.minimum(copy.sec + rng.integers(HOUR, 5 * DAY, n), ctx.now), copy.sec
    )
    copy.unsched = ctx.defnums(13, UNSCHED_STATUS, followed.astype(np.int64))
    copy.confirmed = np.full(n, ctx.defnum(2, "Unconfirmed"))
    copy.parent = np.full(n, -1)
    return copy


def _planned(rng, ctx: OfficeCtx, rec: Records, a: Appts, offset: int) -> tuple[Appts, Appts]:
    """A third of treatment visits leave a Planned appointment; most get scheduled later."""
    idx = np.flatnonzero(
        (a.status == COMPLETE) & (a.kind == TREATMENT) & (rng.random(len(a.pat)) < 0.3)
    )
    planned = a.take(idx)
    n = len(idx)
    planned.status = np.full(n, PLANNED)
    planned.sec = np.minimum(a.stamp[idx] + rng.integers(1, 300, n), ctx.now)
    planned.stamp = planned.sec.copy()
    planned.start = planned.sec.copy()
    planned.op = np.zeros(n, dtype=np.int64)
    planned.arrived = planned.seated = planned.dismissed = np.full(n, NO_TIME)
    planned.descript = descript_index(rng, planned.kind)
    planned.parent = np.full(n, -1)
    go = np.flatnonzero(rng.random(n) < 0.6)
    day = a.start[idx[go]] // DAY + rng.integers(7, 46, len(go))
    derived = new_appointments(rng, ctx, rec, planned.pat[go], planned.kind[go], day)
    derived.descript = planned.descript[go]
    derived.sec = np.minimum(
        planned.sec[go] + rng.integers(MINUTE, 3 * DAY, len(go)),
        np.minimum(ctx.now, derived.start - 10 * MINUTE),
    )
    derived.parent = offset + go
    _settle(rng, ctx, derived)
    return planned, derived
