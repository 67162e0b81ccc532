"""Move a generated world forward: new and edited records stamped inside the elapsed interval.

Each office is advanced on its own local wall clock. Everything created or changed gets a
DateTStamp / SecDateTEdit in ``(old_now, new_now]`` (office-local), primary keys continue after
the office's current maximum, and existing keys never change. Row construction reuses the
generator's building blocks so evolved rows look like generated ones.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import polars as pl

from simulators import generate as g
from simulators import names
from simulators.world import World

COUNT_KEYS = (
    "persons_created",
    "patients_created",
    "patients_edited",
    "appointments_created",
    "appointments_edited",
    "payments_created",
    "payments_edited",
    "paysplits_created",
    "adjustments_created",
    "commlogs_created",
)

# Expected events per day: max(floor, per_patient * patients) so tiny worlds still move.
RATES = {
    "new_patients": (0.8, 0.002),
    "bookings": (2.0, 0.008),
    "cancellations": (0.4, 0.0008),
    "patient_edits": (1.5, 0.004),
    "portal_payments": (0.5, 0.001),
    "prepayments": (0.1, 0.0002),
    "adjustments": (0.3, 0.0005),
    "commlogs": (1.5, 0.004),
}
SECOND_OFFICE_SHARE = 0.25  # of new patients: a known person joining another office
# Columns the step reads (the rest stays untouched in the world's tables).
PATIENT_COLUMNS = (
    "office",
    "PatNum",
    "Guarantor",
    "ClinicNum",
    "PriProv",
    "SecProv",
    "PatStatus",
    "SecDateEntry",
    "EstBalance",
    "DateFirstVisit",
)
APPT_COLUMNS = (
    "office",
    "AptNum",
    "PatNum",
    "AptStatus",
    "AptDateTime",
    "Pattern",
    "Confirmed",
    "SecDateTEntry",
    "IsHygiene",
    "IsNewPatient",
    "ProvNum",
    "ProvHyg",
    "ClinicNum",
)


def advance_world(world: World, delta: timedelta, *, seed: int | None = None) -> dict[str, int]:
    """Advance ``world`` by ``delta``; returns created/edited row counts per table.

    Deterministic for a given world state and ``seed`` (default: the world's spec seed).
    """
    if delta < timedelta(0):
        raise ValueError("the world's clock only moves forward")
    counts = dict.fromkeys(COUNT_KEYS, 0)
    with world.lock:
        old_utc = world.now_utc
        world.now_utc = old_utc + delta
        base = world.spec.seed if seed is None else seed
        for index, office in enumerate(world.spec.offices):
            old = g.local_seconds(old_utc, office.timezone)
            new = g.local_seconds(world.now_utc, office.timezone)
            if new <= old:  # e.g. a short step across the autumn DST change
                continue
            rng = np.random.default_rng([base, int(old_utc.timestamp()), index])
            for name, n in _OfficeStep(world, index, old, new, rng).run().items():
                counts[name] += n
    return counts


def _max_key(frame: pl.DataFrame, column: str) -> int:
    value = frame[column].max() if len(frame) else None
    return int(value or 0)


class _OfficeStep:
    """One office's changes for one interval: collected first, then written in ``_commit``."""

    def __init__(self, world: World, index: int, old: int, new: int, rng: np.random.Generator):
        office = world.spec.offices[index]
        self.world, self.key, self.old, self.new, self.rng = world, office.key, old, new, rng
        self.days = (new - old) / g.DAY
        self.ctx = g.office_context(
            office,
            index,
            new,
            world.table("operatories", office.key),
            world.table("definitions", office.key),
        )
        self.patients = self._office("patients").select(PATIENT_COLUMNS).sort("PatNum").collect()
        self.old_max_patnum = _max_key(self.patients, "PatNum")
        self.cancelled: list[int] = []
        self.appts = self._office("appointments").select(APPT_COLUMNS).collect()
        self.added: dict[str, list[pl.DataFrame]] = {}
        self.edits: dict[str, list[pl.DataFrame]] = {}
        self.counts = dict.fromkeys(COUNT_KEYS, 0)
        self.new_appts: list[pl.DataFrame] = []
        self.visits: pl.DataFrame | None = None
        self.calls: list[tuple[np.ndarray, ...]] = []

    # -- helpers ---------------------------------------------------------------------------

    def _office(self, table: str) -> pl.LazyFrame:
        """This office's rows, lazily (so only the needed columns are materialised)."""
        return self.world.tables[table].lazy().filter(pl.col("office") == self.key)

    def _max(self, table: str, column: str) -> int:
        value = self._office(table).select(pl.col(column).max()).collect().item()
        return int(value or 0)

    def _events(self, rate: str, population: int) -> int:
        floor, per_patient = RATES[rate]
        return int(self.rng.poisson(self.days * max(floor, per_patient * population)))

    def _stamps(self, n: int, after: np.ndarray | None = None) -> np.ndarray:
        """Seconds in (max(old, after), new]."""
        lo = np.full(n, self.old, dtype=np.int64) if after is None else np.maximum(after, self.old)
        lo = np.minimum(lo, self.new - 1)
        return lo + 1 + (self.rng.random(n) * (self.new - lo)).astype(np.int64)

    def _add(self, table: str, frame: pl.DataFrame) -> None:
        if len(frame):
            self.added.setdefault(table, []).append(frame)

    def _edit(self, table: str, frame: pl.DataFrame) -> None:
        if len(frame):
            self.edits.setdefault(table, []).append(frame)

    def _roster(self) -> g.Records:
        """The office's patients as arrays indexed by PatNum - 1 (gaps get harmless defaults)."""
        p = self.patients
        size = _max_key(p, "PatNum")
        row = p["PatNum"].to_numpy() - 1

        def scatter(column: str, default: int, values: np.ndarray | None = None) -> np.ndarray:
            out = np.full(size, default, dtype=np.int64)
            out[row] = p[column].to_numpy() if values is None else values
            return out

        patnum = np.arange(1, size + 1, dtype=np.int64)
        guarantor = scatter("Guarantor", 0)
        guarantor = np.where((guarantor < 1) | (guarantor > size), patnum, guarantor)
        status = (
            p["PatStatus"]
            .replace_strict(
                list(g.PAT_STATUS), list(range(len(g.PAT_STATUS))), default=1, return_dtype=pl.Int64
            )
            .to_numpy()
        )
        entry = p["SecDateEntry"].cast(pl.Int64).fill_null(0).to_numpy() * g.DAY
        return g.Records(
            persons=pl.DataFrame(),
            patnum=patnum,
            guarantor=guarantor,
            clinic=scatter("ClinicNum", int(self.ctx.clinic_nums[0])),
            priprov=scatter("PriProv", int(self.ctx.dentists[0][self.ctx.clinic_nums[0], 0])),
            secprov=scatter("SecProv", 0),
            status=scatter("PatStatus", 1, status),
            created=scatter("SecDateEntry", 0, entry),
        )

    # -- the step ----------------------------------------------------------------------------

    def run(self) -> dict[str, int]:
        self._new_patients()
        rec = self._roster()
        self._due_appointments()
        self._cancellations(rec)
        self._confirmations()
        self._bookings(rec)
        self._ledger(rec)
        self._patient_edits()
        self._commlogs(rec)
        self._commit()
        return self.counts

    def _new_patients(self) -> None:
        n = self._events("new_patients", len(self.patients))
        joiners = self._joiners(int(self.rng.binomial(n, SECOND_OFFICE_SHARE)))
        persons = self._new_persons(n - len(joiners["person_id"]))
        people = (
            pl.concat([joiners.drop("guarantor_hint"), persons])
            if len(persons)
            else joiners.drop("guarantor_hint")
        )
        if not len(people):
            return
        first = _max_key(self.patients, "PatNum") + 1
        rec = self._new_records(people, joiners["guarantor_hint"].to_numpy(), first)
        frame = g.patient_rows(
            self.rng,
            self.ctx,
            rec,
            est_balance=np.zeros(len(rec.patnum)),
            bal_total=np.zeros(len(rec.patnum)),
            first_visit=np.full(len(rec.patnum), -1),
            stamp=rec.created,
        )
        self._add("patients", frame)
        self._add(
            "truth_patient_links",
            g.table_frame(
                "truth_patient_links",
                len(rec.patnum),
                office=self.key,
                PatNum=rec.patnum,
                person_id=people["person_id"],
                household_id=people["household_id"],
            ),
        )
        self.patients = pl.concat([self.patients, frame.select(PATIENT_COLUMNS)])
        self.counts["patients_created"] += len(frame)
        self._first_visits(rec)

    def _joiners(self, k: int) -> pl.DataFrame:
        """Persons already patients elsewhere who now register here too."""
        persons = self.world.tables["truth_persons"]
        links = self.world.tables["truth_patient_links"]
        elsewhere = links.filter(pl.col("office") != self.key)["person_id"].to_numpy()
        # Sample a few candidates, then drop those already registered here.
        drawn = self.rng.choice(elsewhere, size=min(4 * k, len(elsewhere)), replace=False)
        here = links.filter(pl.col("office") == self.key)
        known = here.filter(pl.col("person_id").is_in(drawn.tolist()))["person_id"].to_numpy()
        fresh = drawn[~np.isin(drawn, known)]
        chosen = fresh[np.sort(np.unique(fresh, return_index=True)[1])][:k]
        people = persons.filter(pl.col("person_id").is_in(chosen.tolist())).sort("person_id")
        # The family's existing guarantor here (if any) becomes theirs too.
        households = people["household_id"].to_list()
        family = (
            here.filter(pl.col("household_id").is_in(households))
            .join(self.patients.select("PatNum", "Guarantor"), on="PatNum")
            .group_by("household_id")
            .agg(pl.col("Guarantor").min().alias("guarantor_hint"))
        )
        return people.join(
            family, on="household_id", how="left", maintain_order="left"
        ).with_columns(pl.col("guarantor_hint").fill_null(0))

    def _new_persons(self, n: int) -> pl.DataFrame:
        if n <= 0:
            return pl.DataFrame(schema=g.SCHEMAS["truth_persons"])
        existing = self.world.tables["truth_persons"]
        persons, _ = g.make_persons(
            self.rng,
            n,
            first_person_id=_max_key(existing, "person_id") + 1,
            first_household_id=_max_key(existing, "household_id") + 1,
            today=self.new // g.DAY,
            n_offices=1,
            office_weights=np.ones(1),
            salt=g.phone_salt(self.world.spec),
            cities=[self.ctx.cities],
        )
        self._add("truth_persons", persons)
        self.world.tables["truth_persons"] = pl.concat([existing, persons])
        self.counts["persons_created"] += len(persons)
        return persons

    def _new_records(self, people: pl.DataFrame, hints: np.ndarray, first: int) -> g.Records:
        n = len(people)
        created = np.sort(self._stamps(n))
        patnum = np.arange(first, first + n, dtype=np.int64)
        household = people["household_id"].to_numpy()
        guarantor = g.guarantors(household, people["person_id"].to_numpy(), patnum)
        hint = np.r_[hints, np.zeros(n - len(hints), dtype=np.int64)]
        guarantor = np.where(hint > 0, hint, guarantor)
        clinics = self.ctx.clinic_nums
        _, family = np.unique(household, return_inverse=True)
        clinic = clinics[self.rng.integers(0, len(clinics), family.max() + 1)][family]
        pri, sec = g.assign_care(self.rng, self.ctx, clinic)
        status = np.where(self.rng.random(n) < 0.1, g.PROSPECTIVE, g.PATIENT)
        return g.Records(
            persons=people,
            patnum=patnum,
            guarantor=guarantor,
            clinic=clinic,
            priprov=pri,
            secprov=sec,
            status=status,
            created=created,
        )

    def _first_visits(self, rec: g.Records) -> None:
        """Most new patients book a new-patient visit within three weeks."""
        books = self.rng.random(len(rec.patnum)) < 0.8
        pat = rec.patnum[books]
        day = self.new // g.DAY + self.rng.integers(1, 22, len(pat))
        full = self._roster_with(rec)
        a = g.new_appointments(self.rng, self.ctx, full, pat, np.full(len(pat), g.NEW_PATIENT), day)
        a.sec = np.minimum(
            rec.created[books] + self.rng.integers(g.MINUTE, 10 * g.MINUTE, len(pat)), self.new
        )
        a.stamp = a.sec.copy()
        self._booked(a, np.ones(len(pat), dtype=bool))

    def _roster_with(self, rec: g.Records) -> g.Records:
        """Care arrays covering brand-new PatNums (for seating their first visits)."""
        size = int(rec.patnum.max())
        clinic = np.zeros(size, dtype=np.int64)
        priprov, secprov = np.zeros(size, dtype=np.int64), np.zeros(size, dtype=np.int64)
        for target, source in (
            (clinic, rec.clinic),
            (priprov, rec.priprov),
            (secprov, rec.secprov),
        ):
            target[rec.patnum - 1] = source
        return g.Records(
            persons=rec.persons,
            patnum=rec.patnum,
            guarantor=rec.guarantor,
            clinic=clinic,
            priprov=priprov,
            secprov=secprov,
            status=rec.status,
            created=rec.created,
        )

    def _booked(self, a: g.Appts, is_new: np.ndarray) -> None:
        if len(a):
            self.new_appts.append(
                g.appointment_rows(
                    self.rng,
                    self.ctx,
                    a,
                    np.zeros(len(a), np.int64),
                    is_new,
                    np.zeros(len(a), np.int64),
                )
            )

    def _due_appointments(self) -> None:
        """Scheduled visits that are now over: mostly completed, some missed."""
        duration = pl.col("Pattern").str.len_chars() * 5 * g.MINUTE
        end = pl.col("AptDateTime").dt.epoch("s") + duration + 45 * g.MINUTE
        due = self.appts.filter((pl.col("AptStatus") == "Scheduled") & (end <= self.new))
        if not len(due):
            return
        missed = self.rng.random(len(due)) < 0.1
        self._complete(due.filter(~pl.lit(missed)))
        self._miss(due.filter(pl.lit(missed)))

    def _complete(self, rows: pl.DataFrame) -> None:
        n = len(rows)
        start = rows["AptDateTime"].dt.epoch("s").to_numpy()
        duration = rows["Pattern"].str.len_chars().cast(pl.Int64).to_numpy() * 5 * g.MINUTE
        arrived, seated, dismissed = g.visit_times(self.rng, start, duration)
        tracked = self.rng.random(n) < 0.92
        end = np.where(tracked, dismissed, start + duration)
        stamp = self._stamps(n, after=end + g.MINUTE)
        untracked = ~tracked
        self._edit(
            "appointments",
            rows.select("office", "AptNum").with_columns(
                AptStatus=pl.lit("Complete"),
                DateTStamp=g.ts(stamp),
                DateTimeArrived=g.ts(arrived, untracked),
                DateTimeSeated=g.ts(seated, untracked),
                DateTimeDismissed=g.ts(dismissed, untracked),
            ),
        )
        kind = np.where(
            rows["IsHygiene"].to_numpy(),
            g.HYGIENE,
            np.where(rows["IsNewPatient"].to_numpy(), g.NEW_PATIENT, g.TREATMENT),
        )
        self.visits = rows.select("PatNum", "ProvNum", "ProvHyg", "ClinicNum").with_columns(
            kind=kind,
            start=start,
            duration=duration,
            dismissed=np.where(tracked, dismissed, -1),
            stamp=stamp,
        )
        self._plan_next(rows.filter(pl.lit(kind == g.TREATMENT)), stamp[kind == g.TREATMENT])

    def _plan_next(self, rows: pl.DataFrame, stamp: np.ndarray) -> None:
        """A third of treatment visits leave a Planned appointment behind."""
        plan = self.rng.random(len(rows)) < 0.3
        when = np.minimum(stamp[plan] + self.rng.integers(1, 300, plan.sum()), self.new)
        self.new_appts.append(
            self._copies(rows.filter(pl.lit(plan)), "Planned", when).with_columns(
                Op=pl.lit(0, pl.Int64), AptDateTime=g.ts(when)
            )
        )

    def _copies(self, rows: pl.DataFrame, status: str, when: np.ndarray) -> pl.DataFrame:
        """New appointment rows derived from existing ones (keeping pattern, procedures, chair)."""
        full = self._office("appointments").filter(pl.col("AptNum").is_in(rows["AptNum"].to_list()))
        originals = rows.select("AptNum").join(
            full.collect(), on="AptNum", how="left", maintain_order="left"
        )
        return originals.select(g.SCHEMAS["appointments"].keys()).with_columns(
            AptNum=pl.lit(0, pl.Int64),
            AptStatus=pl.lit(status),
            Confirmed=pl.lit(self.ctx.defnum(2, "Unconfirmed"), pl.Int64),
            NextAptNum=pl.lit(0, pl.Int64),
            IsNewPatient=pl.lit(False),
            DateTStamp=g.ts(when),
            SecDateTEntry=g.ts(when),
            DateTimeArrived=pl.lit(None, g.DTIME),
            DateTimeSeated=pl.lit(None, g.DTIME),
            DateTimeDismissed=pl.lit(None, g.DTIME),
            Priority=pl.lit("Normal"),
        )

    def _miss(self, rows: pl.DataFrame) -> None:
        """No-shows: Broken (truth: missed), often put on the Unscheduled List, called back."""
        n = len(rows)
        start = rows["AptDateTime"].dt.epoch("s").to_numpy()
        stamp = self._stamps(n, after=start + 15 * g.MINUTE)
        self._break(rows, stamp, "missed")
        listed = self.rng.random(n) < 0.5
        when = np.minimum(stamp[listed] + self.rng.integers(1, 120, listed.sum()), self.new)
        self.new_appts.append(
            self._copies(rows.filter(pl.lit(listed)), "UnschedList", when).with_columns(
                UnschedStatus=pl.lit(self.ctx.defnum(13, "Contact"), pl.Int64)
            )
        )
        call = self.rng.random(n) < 0.7
        self.calls.append(
            (
                rows["PatNum"].to_numpy()[call],
                np.full(call.sum(), g.MISSED_CALL),
                np.minimum(stamp[call] + self.rng.integers(60, 4 * g.HOUR, call.sum()), self.new),
                start[call],
            )
        )

    def _break(self, rows: pl.DataFrame, stamp: np.ndarray, reason: str) -> None:
        self._edit(
            "appointments",
            rows.select("office", "AptNum").with_columns(
                AptStatus=pl.lit("Broken"), DateTStamp=g.ts(stamp)
            ),
        )
        self._edit(
            "truth_appointments",
            rows.select("office", "AptNum").with_columns(broken_reason=pl.lit(reason)),
        )

    def _future(self) -> pl.DataFrame:
        """Scheduled visits still ahead (and not cancelled in this step)."""
        return self.appts.filter(
            (pl.col("AptStatus") == "Scheduled")
            & (pl.col("AptDateTime").dt.epoch("s") > self.new)
            & ~pl.col("AptNum").is_in(self.cancelled)
        )

    def _batch_due(self, rows: pl.DataFrame, batch_time) -> pl.DataFrame:
        """Rows whose daily batch (a function of the visit start) ran inside this step."""
        at = batch_time(rows["AptDateTime"].dt.epoch("s").to_numpy())
        return rows.with_columns(batch=at).filter(
            (pl.col("batch") > self.old) & (pl.col("batch") <= self.new)
        )

    def _cancellations(self, rec: g.Records) -> None:
        """Patients call to cancel upcoming visits; most rebook right away."""
        future = self._future()
        k = min(self._events("cancellations", len(self.patients)), len(future))
        if not k:
            return
        rows = future.sort("AptNum")[np.sort(self.rng.choice(len(future), k, replace=False))]
        self.cancelled = rows["AptNum"].to_list()
        stamp = self._stamps(k)
        self._break(rows, stamp, "cancelled")
        start = rows["AptDateTime"].dt.epoch("s").to_numpy()
        self.calls.append((rows["PatNum"].to_numpy(), np.full(k, g.CANCEL_CALL), stamp, start))
        again = self.rng.random(k) < 0.6
        day = np.maximum(
            start[again] // g.DAY + self.rng.integers(3, 29, again.sum()), self.new // g.DAY + 1
        )
        kind = np.where(rows["IsHygiene"].to_numpy()[again], g.HYGIENE, g.TREATMENT)
        a = g.new_appointments(self.rng, self.ctx, rec, rows["PatNum"].to_numpy()[again], kind, day)
        a.sec = np.minimum(stamp[again] + self.rng.integers(60, 600, again.sum()), self.new)
        a.stamp = a.sec.copy()
        self._booked(a, np.zeros(len(a), dtype=bool))

    def _confirmations(self) -> None:
        """The 9:00 eConfirmation batch two days ahead; some patients reply to confirm."""
        unconfirmed = self.ctx.defnum(2, "Unconfirmed")
        rows = self._batch_due(
            self._future().filter(pl.col("Confirmed") == unconfirmed), g.confirmation_time
        )
        n = len(rows)
        texted = self.rng.random(n) < 0.85
        reply = rows["batch"].to_numpy() + self.rng.integers(5 * g.MINUTE, 6 * g.HOUR, n)
        replied = texted & (self.rng.random(n) < 0.5) & (reply <= self.new)
        which = np.where(replied, 2, np.where(texted, 3, 0))
        stamp = np.where(replied, reply, rows["batch"].to_numpy())
        rows = rows.with_columns(which=which, stamp=stamp).filter(pl.col("which") > 0)
        self._edit(
            "appointments",
            rows.select(
                "office",
                "AptNum",
                Confirmed=pl.col("which").replace_strict(
                    {
                        2: self.ctx.defnum(2, "Appointment Confirmed"),
                        3: self.ctx.defnum(2, "Texted"),
                    },
                    return_dtype=pl.Int64,
                ),
                DateTStamp=pl.from_epoch("stamp", time_unit="s").cast(g.DTIME),
            ),
        )
        back = rows.filter(pl.col("which") == 2)
        self.calls.append(
            (
                back["PatNum"].to_numpy(),
                np.full(len(back), g.CONFIRM_REPLY),
                back["stamp"].to_numpy(),
                back["AptDateTime"].dt.epoch("s").to_numpy(),
            )
        )

    def _bookings(self, rec: g.Records) -> None:
        """Established patients book cleanings and treatment for the coming months."""
        active = self.patients.filter(
            (pl.col("PatStatus") == "Patient") & pl.col("DateFirstVisit").is_not_null()
        )["PatNum"].to_numpy()
        k = self._events("bookings", len(active))
        if not k or not len(active):
            return
        pat = self.rng.choice(active, k)
        kind = np.where(self.rng.random(k) < 0.6, g.HYGIENE, g.TREATMENT)
        day = self.new // g.DAY + self.rng.integers(2, 121, k)
        a = g.new_appointments(self.rng, self.ctx, rec, pat, kind, day)
        a.sec = self._stamps(k)
        a.stamp = a.sec.copy()
        self._booked(a, np.zeros(k, dtype=bool))

    # -- ledger ------------------------------------------------------------------------------

    def _ledger(self, rec: g.Records) -> None:
        family = g.Family.of(rec.guarantor)
        visits, charge = self._visit_appts()
        drafts = [self._portal_payments(rec), self._prepayments(rec)]
        if visits is not None:
            visit_draft = g.visit_payments(
                self.rng, visits, np.arange(len(visits)), charge, self.new
            )
            visit_draft.entry = np.clip(visit_draft.entry, self.old + 1, self.new)
            drafts.insert(0, visit_draft)
        draft = g.PaymentDraft.concat(drafts)
        payments, splits = g.build_payments(
            self.rng,
            self.ctx,
            family,
            draft,
            first_paynum=self._max("payments", "PayNum") + 1,
            first_splitnum=self._max("paysplits", "SplitNum") + 1,
            deposits_until=self.old,
        )
        self._add("payments", payments)
        self._add("paysplits", splits)
        self.counts["payments_created"] += len(payments)
        self.counts["paysplits_created"] += len(splits)
        adj = self._adjustments(rec, visits)
        adjustments = g.build_adjustments(
            self.rng,
            self.ctx,
            adj,
            self._max("adjustments", "AdjNum") + 1,
        )
        self._add("adjustments", adjustments)
        self.counts["adjustments_created"] += len(adjustments)
        self._deposits(payments)
        self._balances(rec, charge, visits, splits, adj, payments)

    def _visit_appts(self) -> tuple[g.Appts | None, np.ndarray]:
        """Visits completed in this step as generator arrays (for payments and write-offs)."""
        v = self.visits
        if v is None or not len(v):
            return None, np.zeros(0, dtype=np.int64)
        n = len(v)
        zeros = np.zeros(n, dtype=np.int64)
        a = g.Appts(
            pat=v["PatNum"].to_numpy(),
            kind=v["kind"].to_numpy(),
            start=v["start"].to_numpy(),
            pattern=zeros,
            duration=v["duration"].to_numpy(),
            descript=zeros,
            op=zeros,
            prov=v["ProvNum"].to_numpy(),
            provhyg=v["ProvHyg"].to_numpy(),
            clinic=v["ClinicNum"].to_numpy(),
            status=np.full(n, g.COMPLETE),
            reason=zeros,
            sec=zeros,
            stamp=v["stamp"].to_numpy(),
            arrived=zeros - 1,
            seated=zeros - 1,
            dismissed=v["dismissed"].to_numpy(),
            confirmed=zeros,
            unsched=zeros,
            parent=zeros - 1,
        )
        return a, g.visit_charges(self.rng, a.kind)

    def _portal_payments(self, rec: g.Records) -> g.PaymentDraft:
        """Statement payments, mostly through the patient portal, from patients who owe."""
        owing = self.patients.filter(pl.col("EstBalance") > 5)
        k = min(self._events("portal_payments", len(self.patients)), len(owing))
        pick = owing[np.sort(self.rng.choice(len(owing), k, replace=False))] if k else owing[:0]
        pat = pick["PatNum"].to_numpy()
        amount = np.minimum(
            g.cents(pick["EstBalance"].to_numpy()), g.cents(self.rng.uniform(20, 300, len(pat)))
        )
        return g.PaymentDraft(
            pat=pat,
            prov=rec.priprov[pat - 1],
            provhyg=np.zeros(len(pat), dtype=np.int64),
            clinic=rec.clinic[pat - 1],
            entry=self._stamps(len(pat)),
            cents=np.maximum(amount, 500),
            channel=np.full(len(pat), g.LATER),
        )

    def _prepayments(self, rec: g.Records) -> g.PaymentDraft:
        active = rec.patnum[rec.status == g.PATIENT]
        k = self._events("prepayments", len(active)) if len(active) else 0
        pat = self.rng.choice(active, k) if k else np.zeros(0, dtype=np.int64)
        return g.prepayments(self.rng, self.ctx, rec, pat, self._stamps(len(pat)))

    def _adjustments(self, rec: g.Records, visits: g.Appts | None) -> g.AdjustmentDraft:
        parts = []
        if visits is not None:
            d = g.visit_adjustments(self.rng, visits, np.arange(len(visits)), self.new)
            d.when = self._stamps(len(d.pat))
            parts.append(d)
        active = rec.patnum[rec.status == g.PATIENT]
        k = self._events("adjustments", len(active)) if len(active) else 0
        pat = self.rng.choice(active, k) if k else np.zeros(0, dtype=np.int64)
        kind = g.choose(self.rng, k, (0.2, 0.4, 0.2, 0.2))
        amount = np.where(
            kind == 3,
            np.where(self.rng.random(k) < 0.5, 2500, 3500),
            g.cents(self.rng.uniform(5, 150, k)),
        )
        parts.append(
            g.AdjustmentDraft(
                pat=pat,
                adjtype=kind,
                when=self._stamps(k),
                cents=amount,
                prov=rec.priprov[pat - 1],
                clinic=rec.clinic[pat - 1],
                proc_day=np.full(k, -1),
            )
        )
        return g.AdjustmentDraft.concat(parts)

    def _deposits(self, new_payments: pl.DataFrame) -> None:
        """Checks and cash paid earlier go to the bank in the 16:30 batch of the next workday."""
        columns = ["office", "PayNum", "PayType", "PayDate", "DepositNum"]
        old_max = self._max("payments", "PayNum")
        payments = pl.concat(
            [self._office("payments").select(columns).collect(), new_payments.select(columns)]
        )
        kinds = [self.ctx.defnum(10, "Check"), self.ctx.defnum(10, "Cash")]
        waiting = payments.filter((pl.col("DepositNum") == 0) & pl.col("PayType").is_in(kinds))
        at = g.deposit_time(waiting["PayDate"].cast(pl.Int64).to_numpy())
        due = (at > self.old) & (at <= self.new)
        if not due.any():
            return
        first = _max_key(payments, "DepositNum") + 1
        number = first + g.dense_rank(at, due)[due]
        self._edit(
            "payments",
            waiting.filter(pl.lit(due))
            .select("office", "PayNum")
            .with_columns(DepositNum=number, SecDateTEdit=g.ts(at[due])),
        )
        existing = waiting.filter(pl.lit(due))["PayNum"] <= old_max
        self.counts["payments_edited"] += int(existing.sum())

    def _balances(self, rec, charge, visits, splits, adj, payments) -> None:
        """Ledger changes rewrite the patient row (and the guarantor's family total)."""
        size = len(rec.patnum)
        delta = np.zeros(size, dtype=np.int64)
        last = np.zeros(size, dtype=np.int64)
        events = [
            (
                splits["PatNum"].to_numpy(),
                -g.cents(splits["SplitAmt"].to_numpy()),
                g.seconds_of(splits["SecDateTEdit"]),
            ),
            (adj.pat, g.signed_adjustment_cents(adj), adj.when),
            (
                payments["PatNum"].to_numpy(),
                np.zeros(len(payments), dtype=np.int64),
                g.seconds_of(payments["SecDateTEdit"]),
            ),
        ]
        if visits is not None:
            events.append((visits.pat, charge, visits.stamp))
        for pat, amount, stamp in events:
            np.add.at(delta, pat - 1, amount)
            np.maximum.at(last, pat - 1, stamp)
        family_last = np.zeros(size, dtype=np.int64)
        np.maximum.at(family_last, rec.guarantor - 1, last)
        touched = np.flatnonzero((last > 0) | (family_last > 0))
        if not len(touched):
            return
        est = np.zeros(size, dtype=np.int64)
        est[self.patients["PatNum"].to_numpy() - 1] = g.cents(
            self.patients["EstBalance"].to_numpy()
        )
        est += delta
        total = g.family_totals(rec.guarantor, est)
        edit = pl.DataFrame(
            {
                "office": self.key,
                "PatNum": touched + 1,
                "EstBalance": g.money(est[touched]),
                "BalTotal": g.money(total[touched]),
                "DateTStamp": g.ts(np.maximum(last, family_last)[touched]),
            }
        )
        self._edit("patients", edit)
        self._first_visit_dates(visits)

    def _first_visit_dates(self, visits: g.Appts | None) -> None:
        if visits is None:
            return
        day = pl.DataFrame(
            {"PatNum": visits.pat, "day": visits.start // g.DAY, "stamp": visits.stamp}
        )
        never = self.patients.filter(pl.col("DateFirstVisit").is_null()).select("office", "PatNum")
        first = never.join(
            day.group_by("PatNum").agg(pl.col("day").min(), pl.col("stamp").max()),
            on="PatNum",
            maintain_order="left",
        )
        self._edit(
            "patients",
            first.select(
                "office",
                "PatNum",
                DateFirstVisit=pl.col("day").cast(pl.Date),
                DateTStamp=pl.from_epoch("stamp", time_unit="s").cast(g.DTIME),
            ),
        )

    # -- profile edits and commlogs ----------------------------------------------------------

    def _patient_edits(self) -> None:
        """Front-desk updates: a new email, a move, a phone retyped, a nickname, inactivation."""
        existing = self.patients.filter(pl.col("PatNum") <= self.old_max_patnum)
        k = min(self._events("patient_edits", len(existing)), len(existing))
        if not k:
            return
        rows = existing[np.sort(self.rng.choice(len(existing), k, replace=False))]
        links = self._office("truth_patient_links").select("PatNum", "person_id").collect()
        persons = self.world.tables["truth_persons"]
        who = rows.join(links, on="PatNum", how="left", maintain_order="left").join(
            persons, on="person_id", how="left", maintain_order="left"
        )
        kind = g.choose(self.rng, k, (0.3, 0.2, 0.3, 0.1, 0.1))
        stamp = self._stamps(k)
        email = g.concat(
            who["first_name"].fill_null("pt").str.to_lowercase(),
            pl.lit("."),
            who["last_name"].fill_null("x").str.to_lowercase().str.replace_all("'", ""),
            pl.lit("."),
            who["person_id"].fill_null(0).cast(pl.String),
            pl.lit("@gmail.com"),
        )
        street = g.concat(
            pl.Series(self.rng.integers(1, 9_900, k)).cast(pl.String),
            pl.lit(" "),
            g.pick(names.STREET_NAMES, self.rng.integers(0, 40, k)),
            pl.lit(" St"),
        )
        phone = pl.select(
            g.format_phone(
                pl.lit(who["phone"].fill_null("")), g.choose(self.rng, k, g.PHONE_STYLE_WEIGHTS)
            )
        ).to_series()

        def when(value: pl.Series | str, kinds: int) -> pl.Expr:
            return pl.when(pl.lit(kind == kinds)).then(pl.lit(value)).otherwise(None)

        edit = rows.select("office", "PatNum").with_columns(
            Email=when(email, 0),
            Address=when(street, 1),
            Address2=when("", 1),
            HmPhone=when(phone, 2),
            Preferred=when(who["nickname"].fill_null(""), 3),
            PatStatus=when("Inactive", 4),
            DateTStamp=g.ts(stamp),
        )
        self._edit("patients", edit)
        self._truth_person_edits(who, kind, email, street)

    def _truth_person_edits(self, who, kind, email, street) -> None:
        """New emails and addresses are the person's truth now (other records go stale)."""
        has_person = who["person_id"].is_not_null().to_numpy()
        for k, column, values in ((0, "email", email), (1, "address", street)):
            mask = (kind == k) & has_person
            self._edit(
                "truth_persons",
                pl.DataFrame(
                    {
                        "person_id": who["person_id"].to_numpy()[mask],
                        column: values.filter(pl.Series(mask)),
                    }
                ),
            )

    def _commlogs(self, rec: g.Records) -> None:
        reminders = self._reminders()
        active = rec.patnum[rec.status == g.PATIENT]
        k = self._events("commlogs", len(active)) if len(active) else 0
        pat = self.rng.choice(active, k) if k else np.zeros(0, dtype=np.int64)
        kinds = np.array([g.RECALL, g.STATEMENT, g.BALANCE_CALL, g.INSURANCE, g.MISC])
        misc = (
            pat,
            kinds[g.choose(self.rng, k, (0.4, 0.15, 0.15, 0.15, 0.15))],
            self._stamps(k),
            np.full(k, -1),
        )
        parts = [reminders, misc, *self.calls]
        pat, kind, when, apt = (np.concatenate(p) for p in zip(*parts, strict=True))
        first = self._max("commlogs", "CommlogNum") + 1
        frame = g.build_commlogs(self.rng, self.ctx, pat, kind, when, apt, first)
        self._add("commlogs", frame)
        self.counts["commlogs_created"] += len(frame)

    def _reminders(self) -> tuple[np.ndarray, ...]:
        """eReminders go out in the 10:00 batch two days before each scheduled visit."""
        rows = self._batch_due(self._future(), g.reminder_time).filter(
            pl.col("SecDateTEntry").dt.epoch("s") <= pl.col("batch")
        )
        sent = rows.filter(pl.lit(self.rng.random(len(rows)) < 0.6))
        both = self.rng.random(len(sent)) < 0.2
        return (
            sent["PatNum"].to_numpy(),
            np.where(both, g.REMINDER_BOTH, g.REMINDER),
            sent["batch"].to_numpy(),
            sent["AptDateTime"].dt.epoch("s").to_numpy(),
        )

    # -- writing -----------------------------------------------------------------------------

    def _commit(self) -> None:
        tables = self.world.tables
        self._number_new_appointments()
        for name, frames in self.added.items():
            if name != "truth_persons":  # already appended (ids must advance per office)
                tables[name] = pl.concat([tables[name], *frames])
        for name, frames in self.edits.items():
            key = (
                ["person_id"]
                if name == "truth_persons"
                else ["office", g.PRIMARY_KEYS.get(name, "AptNum")]
            )
            tables[name] = _apply_edits(tables[name], _merge_edits(frames, key), key)
        self._count_edits()

    def _number_new_appointments(self) -> None:
        frames = [f for f in self.new_appts if len(f)]
        if not frames:
            return
        first = _max_key(self.appts, "AptNum") + 1
        new = (
            pl.concat(frames)
            .sort("SecDateTEntry", maintain_order=True)
            .with_columns(AptNum=pl.int_range(first, first + pl.len(), dtype=pl.Int64))
        )
        self._add("appointments", new)
        self._add(
            "truth_appointments",
            g.table_frame(
                "truth_appointments",
                len(new),
                office=self.key,
                AptNum=new["AptNum"],
                broken_reason=pl.repeat(None, len(new), dtype=pl.String, eager=True),
            ),
        )
        self.counts["appointments_created"] += len(new)

    def _count_edits(self) -> None:
        edited = [f["PatNum"] for f in self.edits.get("patients", [])]
        if edited:
            pats = pl.concat(edited)
            self.counts["patients_edited"] += pats.filter(pats <= self.old_max_patnum).n_unique()
        appts = [f.select("AptNum") for f in self.edits.get("appointments", [])]
        self.counts["appointments_edited"] += pl.concat(appts)["AptNum"].n_unique() if appts else 0


def _merge_edits(frames: list[pl.DataFrame], key: list[str]) -> pl.DataFrame:
    """Several edits to one row become one: latest non-null value per column, newest stamp."""
    merged = pl.concat(frames, how="diagonal_relaxed")
    stamps = [c for c in ("DateTStamp", "SecDateTEdit") if c in merged.columns]
    values = [c for c in merged.columns if c not in key and c not in stamps]
    return merged.group_by(key, maintain_order=True).agg(
        *[pl.col(c).drop_nulls().last() for c in values], *[pl.col(c).max() for c in stamps]
    )


def _apply_edits(frame: pl.DataFrame, edits: pl.DataFrame, key: list[str]) -> pl.DataFrame:
    """Write non-null edit values into the matching rows (cheap scatters, no full join)."""
    rows = (
        frame.lazy()
        .select(key)
        .with_row_index("_row")
        .join(edits.lazy(), on=key, how="inner")
        .collect()
    )
    changed = []
    for column in edits.columns:
        if column in key:
            continue
        values = rows.filter(pl.col(column).is_not_null())
        if len(values):
            dtype = frame.schema[column]
            changed.append(frame[column].scatter(values["_row"], values[column].cast(dtype)))
    return frame.with_columns(changed)
