"""``generate_world``: the whole seeded world, built office by office.

Persons are drawn once for the group (a few belong to a second office); each office then gets its
reference tables, patient records, appointment history, ledger, commlogs and final patient rows
(balances, first visits, last-change stamps), each part from its own generator seeded by
``spec.seed`` so the same spec always gives identical tables.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from simulators.generate.appointments import (
    Appts,
    appointment_rows,
    first_complete_days,
    number_appointments,
    truth_appointment_rows,
)
from simulators.generate.arrays import (
    DAY,
    EPOCH,
    HOUR,
    business_time,
    choose,
    local_seconds,
    money,
    uniform_int,
)
from simulators.generate.commlogs import office_commlogs
from simulators.generate.history import appointment_history
from simulators.generate.ledger import Ledger, office_ledger
from simulators.generate.patients import (
    PROSPECTIVE,
    STATUS_WEIGHTS,
    Records,
    assign_care,
    family_totals,
    guarantors,
    patient_rows,
)
from simulators.generate.people import make_persons, phone_salt
from simulators.generate.reference import (
    OfficeCtx,
    clinics_frame,
    definitions_frame,
    office_cities,
    office_context,
    operatories_frame,
    providers_frame,
)
from simulators.generate.schemas import SCHEMAS, table_frame
from simulators.world import World, WorldSpec


def _seed(spec: WorldSpec, *parts: int) -> np.random.Generator:
    return np.random.default_rng([spec.seed, *parts])


def generate_world(spec: WorldSpec) -> World:
    """Build every table for ``spec`` (deterministic in ``spec.seed``)."""
    offices = spec.offices
    today_utc = int((spec.now_utc.replace(tzinfo=None) - EPOCH).total_seconds()) // DAY
    weights = np.array([1.0 + 0.5 * len(o.clinics) for o in offices])
    persons, home = make_persons(
        _seed(spec, 0),
        spec.n_persons,
        first_person_id=1,
        first_household_id=1,
        today=today_utc,
        n_offices=len(offices),
        office_weights=weights,
        salt=phone_salt(spec),
        cities=[office_cities(o) for o in offices],
    )
    second = _second_offices(_seed(spec, 1), home, len(offices))
    tables: dict[str, list[pl.DataFrame]] = {
        name: [] for name in SCHEMAS if name != "truth_persons"
    }
    for index in range(len(offices)):
        members = np.flatnonzero((home == index) | (second == index))
        joined_second = second[members] == index
        for name, frame in _generate_office(spec, index, persons, members, joined_second).items():
            tables[name].append(frame)
    result = {name: pl.concat(frames) for name, frames in tables.items()}
    result["truth_persons"] = persons
    return World(spec=spec, now_utc=spec.now_utc, tables=result)


def _second_offices(rng: np.random.Generator, home: np.ndarray, n_offices: int) -> np.ndarray:
    """About 4% of persons are also patients of another office (-1 = none)."""
    n = len(home)
    if n_offices < 2:
        return np.full(n, -1)
    other = (home + rng.integers(1, n_offices, n)) % n_offices
    return np.where(rng.random(n) < 0.04, other, -1)


def _generate_office(
    spec: WorldSpec,
    index: int,
    persons: pl.DataFrame,
    members: np.ndarray,
    joined_second: np.ndarray,
) -> dict[str, pl.DataFrame]:
    office = spec.offices[index]
    now = local_seconds(spec.now_utc, office.timezone)
    rng = _seed(spec, 10 + index)
    static = {
        "definitions": definitions_frame(office.key),
        "clinics": clinics_frame(office, rng),
        "providers": providers_frame(office, rng, now),
        "operatories": operatories_frame(office),
    }
    ctx = office_context(office, index, now, static["operatories"], static["definitions"])
    window_start = ctx.today - spec.history_days
    rec = _records(rng, ctx, persons, members, joined_second, window_start)
    appts, charge = appointment_history(_seed(spec, 20 + index), ctx, rec, window_start)
    ledger = office_ledger(_seed(spec, 30 + index), ctx, rec, appts, charge, window_start)
    commlogs = office_commlogs(_seed(spec, 40 + index), ctx, rec, appts, window_start)
    listed, next_apt, is_new = number_appointments(appts)
    apt_num = np.arange(1, len(listed) + 1, dtype=np.int64)
    return {
        **static,
        "patients": _final_patients(_seed(spec, 50 + index), ctx, rec, appts, charge, ledger),
        "appointments": appointment_rows(rng, ctx, listed, apt_num, is_new, next_apt),
        "payments": ledger.payments,
        "paysplits": ledger.paysplits,
        "adjustments": ledger.adjustments,
        "commlogs": commlogs,
        "truth_patient_links": table_frame(
            "truth_patient_links",
            len(rec.patnum),
            office=office.key,
            PatNum=rec.patnum,
            person_id=rec.persons["person_id"],
            household_id=rec.persons["household_id"],
        ),
        "truth_appointments": truth_appointment_rows(ctx, listed, apt_num),
    }


def _records(rng, ctx, persons, members, joined_second, window_start) -> Records:
    """Who is a patient here, since when, with which status, clinic and providers."""
    n = len(members)
    household = persons["household_id"].to_numpy()[members]
    # Families register together; a few members join later, second-office patients any time.
    n_hh = int(persons["household_id"].max()) + 1
    start_hh = np.where(
        rng.random(n_hh) < 0.8,
        uniform_int(rng, ctx.today - 15 * 365, window_start, n_hh),
        uniform_int(rng, window_start, ctx.today - 1, n_hh),
    )
    day = start_hh[household]
    late = rng.random(n) < 0.2
    day = np.where(late, day + rng.integers(0, 3 * 365, n), day)
    day = np.where(joined_second, uniform_int(rng, ctx.today - 10 * 365, ctx.today - 1, n), day)
    created = business_time(rng, np.minimum(day, ctx.today - 1))
    created = np.minimum(created, ctx.now - HOUR)
    order = np.argsort(created, kind="stable")
    members, household, created = members[order], household[order], created[order]
    patnum = np.arange(1, n + 1, dtype=np.int64)
    recent = created // DAY >= ctx.today - 30
    status = choose(rng, n, STATUS_WEIGHTS)
    status = np.where(recent & (rng.random(n) < 0.3), PROSPECTIVE, status)
    clinic_of_hh = ctx.clinic_nums[rng.integers(0, len(ctx.clinic_nums), n_hh)]
    clinic = clinic_of_hh[household]
    pri, sec = assign_care(rng, ctx, clinic)
    person_ids = persons["person_id"].to_numpy()[members]
    return Records(
        persons=persons[members],
        patnum=patnum,
        guarantor=guarantors(household, person_ids, patnum),
        clinic=clinic,
        priprov=pri,
        secprov=sec,
        status=status,
        created=created,
    )


def _final_patients(rng, ctx: OfficeCtx, rec: Records, a: Appts, charge, ledger: Ledger):
    n = len(rec.patnum)
    window_complete = charge > 0
    est = (
        np.bincount(a.pat[window_complete] - 1, weights=charge[window_complete], minlength=n)
        + np.bincount(ledger.adj_pat - 1, weights=ledger.adj_cents, minlength=n)
        - np.bincount(ledger.split_pat - 1, weights=ledger.split_cents, minlength=n)
    )
    est = est.astype(np.int64)
    last_ledger = np.full(n, 0, dtype=np.int64)
    np.maximum.at(last_ledger, ledger.split_pat - 1, ledger.split_stamp)
    np.maximum.at(last_ledger, ledger.adj_pat - 1, ledger.adj_stamp)
    edit = rec.created + (rng.random(n) * (ctx.now - rec.created)).astype(np.int64)
    aging = (ctx.today - 1) * DAY + 22 * HOUR  # nightly aging rewrites balances in one second
    stamp = np.maximum.reduce(
        [
            rec.created,
            last_ledger,
            np.where(rng.random(n) < 0.3, edit, 0),
            np.where((est != 0) & (rng.random(n) < 0.5) & (aging <= ctx.now), aging, 0),
        ]
    )
    return patient_rows(
        rng,
        ctx,
        rec,
        est_balance=money(est),
        bal_total=money(family_totals(rec.guarantor, est)),
        first_visit=first_complete_days(a, n),
        stamp=np.minimum(stamp, ctx.now),
    )
