"""Records CareStack holds that the Open Dental shaped world does not: online appointment
requests and CS Conversation calls, derived from the world by pure, deterministic functions.

Every choice is a hash of stable world keys (office, AptNum, CommlogNum, day and slot), never a
random draw, so a row keeps its id and values as the world advances and new rows appear only for
new world events or as the clock passes their time. Rows exist once their ``lastModifiedOn`` has
passed. Each function also returns the truth no API shows (``truth_*`` frames).

Appointment requests (``appointment_requests``):
- *booked*: about 35% of new-patient visits and 6% of other visits booked in the history window
  were asked for online first. Most new-patient requesters were not patients yet when they asked
  (the office created the patient when booking). The request is "Booked" at the appointment's
  entry time, linked to the appointment and the patient.
- *not booked*: a request every two or three days per location that led to nothing: 40% from
  existing patients, the rest from people who never became patients. "Pending" for 48 hours,
  then "Dismissed".
A request shows what the requester typed into the booking form: a known person's name, now and
then as a nickname, with a slip or in lower case; the household phone or a cell the office does
not have, in a few formats; often their own email; a birth date on most requests, rarely
mistyped. Strangers type made-up names, phones and birth dates.

CS Conversation calls (``conversation_calls``):
- from phone commlogs: cancellation calls (Call Received), calls after a no-show (Call Attempted
  or Call Made) and balance calls (Call Made or Call Attempted);
- about 2.5 inbound calls per weekday per location: Call Received, Missed Call or Voicemail, 15%
  from numbers that are no patient's; missed calls and voicemails of patients are often returned.
A summary and a recording exist only for calls (Made, Received) and voicemails longer than 20 s.
"""

from __future__ import annotations

import hashlib
import string
import threading
import weakref
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np
import polars as pl

from simulators import names
from simulators.carestack.wire import STAMP, Account, account_id_of, to_utc, utc_text
from simulators.generate.arrays import DAY, EPOCH, HOUR, MINUTE
from simulators.world import OfficeSpec, World

CALL_TYPES = ("Call Made", "Call Attempted", "Call Received", "Missed Call", "Voicemail")
MADE, ATTEMPTED, RECEIVED, MISSED, VOICEMAIL = range(len(CALL_TYPES))
SUMMARY_MIN_SECONDS = 20  # summaries and recordings exist only for longer calls and voicemails
PENDING_HOURS = 48
RECORDING_URL = "https://recordings.carestack.sim/calls/{}.mp3"

REQUEST_REASONS = ("New Patient Exam", "Cleaning", "Tooth Pain", "Consultation")
SUMMARIES = {
    "cancel": "Patient called to cancel an upcoming appointment and asked to rebook later.",
    "no_show": "Called the patient about a missed appointment and offered new times.",
    "balance": "Discussed the outstanding balance; the patient will pay through the portal.",
    "scheduling": "Patient asked about available times for a cleaning.",
    "question": "Patient asked a question about post-treatment care.",
    "billing": "Patient asked about a charge on the latest statement.",
    "insurance": "Patient asked whether their insurance covers the planned treatment.",
    "callback": "Returned the patient's call about scheduling.",
}
INBOUND_REASONS = ("scheduling", "question", "billing", "insurance")

# Salts that keep the hash streams of different choices apart.
_BOOKED, _UNBOOKED, _COMMLOG_CALL, _INBOUND, _CALLBACK = range(1, 6)


# --- stable hashing ----------------------------------------------------------------------


def _splitmix(x: np.ndarray) -> np.ndarray:
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def stable_hash(*parts: np.ndarray | int) -> np.ndarray:
    """A uint64 hash per element of the broadcast ``parts`` (ints), the same on every run."""
    arrays = np.broadcast_arrays(*(np.asarray(p, dtype=np.int64) for p in parts))
    h = np.zeros(arrays[0].shape, dtype=np.uint64)
    for part in arrays:
        h = _splitmix(h ^ part.astype(np.uint64))
    return h


def unit(h: np.ndarray, salt: int = 0) -> np.ndarray:
    """A float in [0, 1) per hash (``salt`` draws another independent value)."""
    return (stable_hash(h.view(np.int64), salt) >> np.uint64(11)).astype(np.float64) / 2.0**53


def stable_id(h: np.ndarray) -> np.ndarray:
    """A positive 53-bit id (exact in JSON numbers) per hash."""
    return (h >> np.uint64(11)).astype(np.int64)


def office_code(office: OfficeSpec) -> int:
    digest = hashlib.blake2b(office.key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2**62 - 1)


def _between(h: np.ndarray, salt: int, low: float, high: float) -> np.ndarray:
    return (low + unit(h, salt) * (high - low)).astype(np.int64)


# --- shared office context ---------------------------------------------------------------


@dataclass
class _Office:
    slot: int
    spec: OfficeSpec
    code: int
    now: int  # local epoch seconds
    first_day: int  # the world's first history day: stable as the clock moves
    entry_days: np.ndarray  # SecDateEntry day per PatNum - 1 (non-decreasing)
    # PatNum, person_id, first_name, last_name, nickname, phone, email, birthdate
    people: pl.DataFrame

    def patients_before(self, day: np.ndarray) -> np.ndarray:
        """How many patients existed when ``day`` began (PatNums follow creation order)."""
        return np.searchsorted(self.entry_days, day, side="left")


def _local_seconds(moment: datetime) -> int:
    return int((moment - EPOCH).total_seconds())


def _office(world: World, slot: int, spec: OfficeSpec) -> _Office:
    patients = world.table("patients", spec.key).select("PatNum", "SecDateEntry").sort("PatNum")
    links = world.table("truth_patient_links", spec.key).select("PatNum", "person_id")
    persons = world.table("truth_persons").select(
        "person_id", "first_name", "last_name", "nickname", "phone", "email", "birthdate"
    )
    people = links.join(_FIRST_SEEN_EMAILS.pin(world, persons), on="person_id", how="left")
    start = world.spec.now_utc - timedelta(days=world.spec.history_days)
    return _Office(
        slot=slot,
        spec=spec,
        code=office_code(spec),
        now=_local_seconds(world.office_now(spec.key)),
        first_day=_local_seconds(start.replace(tzinfo=None)) // DAY,
        entry_days=patients["SecDateEntry"].cast(pl.Int64).to_numpy(),
        people=people,
    )


class _FirstSeenEmails:
    """Each person's truth email as first seen, per world.

    The world keeps only a person's current email (a front-desk edit replaces it), but a request
    keeps what was typed when it was made: pinning the email seen first keeps request rows
    unchanged as the world advances. Held per world object, dropped with it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pins: dict[int, pl.DataFrame] = {}  # id(world) -> person_id, email

    def pin(self, world: World, persons: pl.DataFrame) -> pl.DataFrame:
        """``persons`` with ``email`` replaced by the email first seen for each person."""
        key = id(world)
        with self._lock:
            pins = self._pins.get(key)
            if pins is None:
                pins = persons.select("person_id", "email").clear()
                weakref.finalize(world, self._pins.pop, key, None)
            fresh = persons.select("person_id", "email").join(pins, on="person_id", how="anti")
            if fresh.height:
                pins = pl.concat([pins, fresh])
            self._pins[key] = pins
        return persons.drop("email").join(pins, on="person_id", how="left", maintain_order="left")


_FIRST_SEEN_EMAILS = _FirstSeenEmails()


def _daily_slots(
    office: _Office, salt: int, per_day: int, weekdays_only: bool
) -> tuple[np.ndarray, np.ndarray]:
    """(day, hash) of every potential event slot from the first history day to today."""
    days = np.arange(office.first_day, office.now // DAY + 1, dtype=np.int64)
    if weekdays_only:
        days = days[(days + 3) % 7 < 5]  # 1970-01-01 was a Thursday
    day = np.repeat(days, per_day)
    slot = np.tile(np.arange(per_day, dtype=np.int64), len(days))
    return day, stable_hash(office.code, salt, day, slot)


def _pick_patients(office: _Office, day: np.ndarray, h: np.ndarray, salt: int) -> np.ndarray:
    """A PatNum that existed before ``day`` (0 where the office had no patients yet)."""
    count = office.patients_before(day)
    return np.where(count > 0, 1 + (unit(h, salt) * count).astype(np.int64), 0)


def _seconds(series: pl.Series) -> np.ndarray:
    return series.dt.epoch("s").to_numpy()


def _ts(seconds: np.ndarray) -> pl.Series:
    return pl.Series((np.asarray(seconds, dtype=np.int64) * 1_000_000).astype("datetime64[us]"))


def _synthetic_people(h: np.ndarray) -> pl.DataFrame:
    """Names and 10-digit phones of people who are nobody's patient (from the name pools)."""

    def pick(pool: tuple[str, ...], salt: int) -> pl.Series:
        return pl.Series(pool).gather((unit(h, salt) * len(pool)).astype(np.int64))

    line = pl.Series(2_000_000 + (unit(h, 32) * 8_000_000).astype(np.int64)).cast(pl.String)
    return pl.DataFrame(
        {
            "first_name": pick(names.MALE_FIRST + names.FEMALE_FIRST, 33),
            "last_name": pick(names.LAST_NAMES, 34),
            "phone": pick(names.AREA_CODES, 31) + line,
        }
    )


# --- appointment requests ----------------------------------------------------------------


def appointment_requests(world: World, account: Account) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(wire rows with the STAMP column, truth rows) of every request the account has by now."""
    wire, truth = [], []
    for slot, spec in account.slots():
        office = _office(world, slot, spec)
        for part in (_booked_requests(world, office), _unbooked_requests(office)):
            w, t = _render_requests(office, part)
            wire.append(w)
            truth.append(t)
    return pl.concat(wire), pl.concat(truth)


def _booked_requests(world: World, office: _Office) -> pl.DataFrame:
    # Online booking is recent: only visits booked within the world's history window.
    apts = world.table("appointments", office.spec.key).filter(
        pl.col("AptStatus").is_in(("Scheduled", "Complete", "Broken"))
        & (pl.col("SecDateTEntry").dt.epoch("s") >= office.first_day * DAY)
    )
    apt = apts["AptNum"].to_numpy()
    h = stable_hash(office.code, _BOOKED, apt)
    new_patient = apts["IsNewPatient"].to_numpy()
    chosen = unit(h) < np.where(new_patient, 0.35, 0.06)
    apts, h, new_patient = apts.filter(pl.lit(chosen)), h[chosen], new_patient[chosen]
    booked = _seconds(apts["SecDateTEntry"])
    asked = booked - _between(h, 1, 10 * MINUTE, 30 * HOUR)
    # Not yet a patient: they asked before the day the office created their record.
    new_person = new_patient & (unit(h, 2) < 0.8)
    pat = apts["PatNum"].to_numpy()
    created_day = office.entry_days[pat - 1]
    asked = np.where(
        new_person, np.minimum(asked, created_day * DAY - _between(h, 3, 5 * MINUTE, 10 * HOUR)),
        asked,
    )  # fmt: skip
    visit_day = _seconds(apts["AptDateTime"]) // DAY
    reason = np.where(
        new_patient, 0, np.where(apts["IsHygiene"].to_numpy(), 1, 2 + (unit(h, 4) < 0.5))
    )
    return pl.DataFrame(
        {
            "h": h,
            "kind": "booked",
            "PatNum": pat,
            "AptNum": apts["AptNum"],
            "new_person": new_person,
            "asked": asked,
            "changed": booked,
            "status": "Booked",
            "preferred_day": np.maximum(visit_day - _between(h, 5, 0, 4), asked // DAY),
            "reason": reason,
        }
    )


def _unbooked_requests(office: _Office) -> pl.DataFrame:
    day, h = _daily_slots(office, _UNBOOKED, per_day=2, weekdays_only=False)
    asked = day * DAY + 7 * HOUR + _between(h, 1, 0, 15 * HOUR)
    keep = (unit(h) < 0.2) & (asked <= office.now)
    day, h, asked = day[keep], h[keep], asked[keep]
    pat = np.where(unit(h, 2) < 0.4, _pick_patients(office, day, h, 3), 0)
    dismissed = asked + PENDING_HOURS * HOUR
    closed = dismissed <= office.now
    return pl.DataFrame(
        {
            "h": h,
            "kind": "unbooked",
            "PatNum": pat,
            "AptNum": np.zeros(len(h), dtype=np.int64),
            "new_person": pat == 0,
            "asked": asked,
            "changed": np.where(closed, dismissed, asked),
            "status": np.where(closed, "Dismissed", "Pending"),
            "preferred_day": day + _between(h, 4, 1, 15),
            "reason": (unit(h, 5) * len(REQUEST_REASONS)).astype(np.int64),
        }
    )


def _who(
    office: _Office, pat: np.ndarray, h: np.ndarray, facts: tuple[str, ...] = ()
) -> pl.DataFrame:
    """first_name, last_name, phone (10 digits) and person_id (null for strangers) per row, plus
    the known person's ``facts`` (truth columns such as email; null for strangers)."""
    known = pl.DataFrame({"PatNum": pat}).join(
        office.people, on="PatNum", how="left", maintain_order="left"
    )
    stranger = _synthetic_people(h)
    is_known = (pat > 0) & known["person_id"].is_not_null().to_numpy()
    return pl.DataFrame(
        {
            column: pl.Series(
                np.where(is_known, known[column].to_numpy(), stranger[column].to_numpy()),
                dtype=pl.String,
            )
            for column in ("first_name", "last_name", "phone")
        }
    ).with_columns(
        person_id=known["person_id"],
        **{fact: pl.when(pl.lit(is_known)).then(known[fact]) for fact in facts},
    )


def _render_requests(office: _Office, rows: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    h = rows["h"].to_numpy()
    who = _who(office, rows["PatNum"].to_numpy(), h, facts=("nickname", "email", "birthdate"))
    typed = _typed_form(who, h, rows["asked"].to_numpy() // DAY)
    tz = office.spec.timezone
    frame = pl.concat([rows, who, typed], how="horizontal").with_columns(
        asked_at=_ts(rows["asked"].to_numpy()),
        changed_at=_ts(rows["changed"].to_numpy()),
        booked=pl.col("kind") == "booked",
    )
    wire = frame.select(
        id=pl.lit(stable_id(h)),
        locationId=pl.lit(office.slot, pl.Int64),
        # A stranger's request names no patient until the office books it.
        patientId=pl.when(pl.col("booked") | ~pl.col("new_person"))
        .then(account_id_of(pl.col("PatNum"), office.slot))
        .otherwise(None),
        appointmentId=account_id_of(pl.col("AptNum"), office.slot),
        firstName="typed_first_name",
        lastName="typed_last_name",
        dateOfBirth="typed_birth_date",
        email="typed_email",
        phone="typed_phone",
        isNewPatient="new_person",
        reason=pl.col("reason").replace_strict(dict(enumerate(REQUEST_REASONS))),
        preferredDate=_ts(rows["preferred_day"].to_numpy() * DAY).dt.strftime("%Y-%m-%d"),
        status="status",
        createdOn=utc_text(to_utc(pl.col("asked_at"), tz)),
        lastModifiedOn=utc_text(to_utc(pl.col("changed_at"), tz)),
        **{STAMP: to_utc(pl.col("changed_at"), tz)},
    )
    truth = frame.select(
        office=pl.lit(office.spec.key),
        id=pl.lit(stable_id(h)),
        requester=pl.when(pl.col("new_person"))
        .then(pl.lit("new_person"))
        .otherwise(pl.lit("existing_patient")),
        person_id="person_id",
        PatNum=pl.when(pl.col("PatNum") > 0).then(pl.col("PatNum")),
        AptNum=pl.when(pl.col("AptNum") > 0).then(pl.col("AptNum")),
        outcome=pl.col("status").str.to_lowercase(),
        became_patient=pl.col("booked") & pl.col("new_person"),
    )
    return wire, truth


# --- what a requester types into the booking form ----------------------------------------

# Salts of the form's draws, apart from those that choose and time requests. A slip uses four
# consecutive salts (whether, which edit, where, which letter).
_EMAIL_DOMAIN, _EMAIL_NUMBER = 40, 41
_NICKNAME, _FIRST_SLIP, _FIRST_LOWER = 50, 51, 55
_LAST_SLIP, _LAST_LOWER = 56, 60
_OTHER_PHONE, _OTHER_AREA, _OTHER_LINE, _PHONE_STYLE = 61, 62, 63, 64
_OWN_EMAIL = 65
_DOB_GIVEN, _DOB_SLIP, _DOB_SLIP_WAY, _STRANGER_AGE = 66, 67, 68, 69

ALPHABET = string.ascii_lowercase
# "(555) 123-4567", "555-123-4567", "5551234567", "+1 555 123 4567"
PHONE_STYLE_WEIGHTS = (0.55, 0.25, 0.12, 0.08)
_SLIP_SUBSTITUTE, _SLIP_DROP, _SLIP_SWAP, _SLIP_INSERT = range(4)


def _typed_form(who: pl.DataFrame, h: np.ndarray, asked_day: np.ndarray) -> pl.DataFrame:
    """typed_first_name, typed_last_name, typed_email, typed_phone and typed_birth_date
    ("YYYY-MM-DD" or null) per request. Known persons type their own details with the usual
    slips; strangers type their synthetic name and phone as they are. Everyone formats the
    phone their own way."""
    known = who["person_id"].is_not_null().to_numpy()
    first = who["first_name"].to_numpy().astype(object)
    nickname = who["nickname"].fill_null("").to_numpy().astype(object)
    by_nickname = known & (nickname != "") & (unit(h, _NICKNAME) < 0.12)
    first = np.where(by_nickname, nickname, first)
    first = _lower(_slip(first, h, _FIRST_SLIP, 0.03, known), h, _FIRST_LOWER, 0.03, known)
    last = who["last_name"].to_numpy().astype(object)
    last = _lower(_slip(last, h, _LAST_SLIP, 0.03, known), h, _LAST_LOWER, 0.02, known)
    # A cell the office does not have on file.
    other = known & (unit(h, _OTHER_PHONE) < 0.08)
    area = np.array(names.AREA_CODES)[(unit(h, _OTHER_AREA) * len(names.AREA_CODES)).astype(int)]
    line = (2_000_000 + unit(h, _OTHER_LINE) * 8_000_000).astype(np.int64).astype(str)
    digits = np.where(other, np.char.add(area, line), who["phone"].to_numpy().astype(str))
    style = np.searchsorted(np.cumsum(PHONE_STYLE_WEIGHTS), unit(h, _PHONE_STYLE), side="right")
    own_email = who["email"].fill_null("").to_numpy().astype(object)
    by_own_email = known & (own_email != "") & (unit(h, _OWN_EMAIL) < 0.6)
    return pl.DataFrame(
        {
            "typed_first_name": pl.Series(first, dtype=pl.String),
            "typed_last_name": pl.Series(last, dtype=pl.String),
            "typed_email": pl.Series(
                np.where(by_own_email, own_email, _made_up_emails(who, h)), dtype=pl.String
            ),
            "typed_phone": pl.select(_typed_phone(pl.lit(pl.Series(digits)), style)).to_series(),
            "typed_birth_date": pl.Series(
                _typed_birth_dates(who, h, asked_day, known), dtype=pl.String
            ),
        }
    )


def _made_up_emails(who: pl.DataFrame, h: np.ndarray) -> np.ndarray:
    """first.last<number>@<domain>, from the true (or synthetic) name."""
    domain = np.array(names.EMAIL_DOMAINS)[
        (unit(h, _EMAIL_DOMAIN) * len(names.EMAIL_DOMAINS)).astype(int)
    ]
    return (
        who.select(
            pl.concat_str(
                pl.col("first_name").str.to_lowercase(),
                pl.lit("."),
                pl.col("last_name").str.to_lowercase().str.replace_all(r"[^a-z]", ""),
                pl.lit((unit(h, _EMAIL_NUMBER) * 100).astype(np.int64)).cast(pl.String),
                pl.lit("@"),
                pl.lit(domain),
            )
        )
        .to_series()
        .to_numpy()
        .astype(object)
    )


def _lower(
    typed: np.ndarray, h: np.ndarray, salt: int, rate: float, eligible: np.ndarray
) -> np.ndarray:
    """About ``rate`` of the eligible names typed all lower-case."""
    hit = eligible & (unit(h, salt) < rate)
    return np.array(
        [n.lower() if lower and n else n for n, lower in zip(typed, hit, strict=True)], dtype=object
    )


def _slip(
    typed: np.ndarray, h: np.ndarray, salt: int, rate: float, eligible: np.ndarray
) -> np.ndarray:
    """A one-letter slip (substitute, drop, swap, insert) after the first letter, which people
    rarely mistype, in about ``rate`` of the eligible names of three letters or more."""
    out = typed.copy()
    hit = eligible & (unit(h, salt) < rate)
    edit = (unit(h, salt + 1) * 4).astype(np.int64)
    where = unit(h, salt + 2)
    letter = (unit(h, salt + 3) * len(ALPHABET)).astype(np.int64)
    for i in np.flatnonzero(hit):
        name = out[i]
        if name and len(name) >= 3:
            out[i] = _slipped(name, int(edit[i]), 1 + int(where[i] * (len(name) - 1)), letter[i])
    return out


def _slipped(name: str, edit: int, i: int, letter: int) -> str:
    """``name`` with one edit at position ``i`` (1 .. len - 1); never the same name."""
    if edit == _SLIP_SUBSTITUTE:
        typed = ALPHABET[letter]
        if typed == name[i].lower():
            typed = ALPHABET[(letter + 1) % len(ALPHABET)]
        return name[:i] + typed + name[i + 1 :]
    if edit == _SLIP_INSERT:
        return name[:i] + ALPHABET[letter] + name[i:]
    if edit == _SLIP_SWAP and i + 1 < len(name) and name[i] != name[i + 1]:
        return name[:i] + name[i + 1] + name[i] + name[i + 2 :]
    return name[:i] + name[i + 1 :]  # a dropped letter (also where a swap would change nothing)


def _typed_phone(digits: pl.Expr, style: np.ndarray) -> pl.Expr:
    """10 digits the ways people type them into a web form (styles of PHONE_STYLE_WEIGHTS)."""
    a, b, c = digits.str.slice(0, 3), digits.str.slice(3, 3), digits.str.slice(6, 4)
    s = pl.lit(style)
    return (
        pl.when(s == 0).then(pl.concat_str(pl.lit("("), a, pl.lit(") "), b, pl.lit("-"), c))
        .when(s == 1).then(pl.concat_str(a, pl.lit("-"), b, pl.lit("-"), c))
        .when(s == 2).then(digits)
        .otherwise(pl.concat_str(pl.lit("+1 "), a, pl.lit(" "), b, pl.lit(" "), c))
    )  # fmt: skip


def _typed_birth_dates(
    who: pl.DataFrame, h: np.ndarray, asked_day: np.ndarray, known: np.ndarray
) -> list[str | None]:
    """About 75% of requesters give a birth date: a known person their own (1% mistyped), a
    stranger a plausible adult one (18 to 85 years before the request)."""
    given = unit(h, _DOB_GIVEN) < 0.75
    slipped = unit(h, _DOB_SLIP) < 0.01
    down = unit(h, _DOB_SLIP_WAY) < 0.5
    stranger_day = asked_day - _between(h, _STRANGER_AGE, 18 * 365.25, 85 * 365.25)
    epoch = date(1970, 1, 1)
    typed: list[str | None] = []
    for i, birthdate in enumerate(who["birthdate"].to_list()):
        if known[i]:
            day = birthdate
            if day is not None and slipped[i]:
                day = _mistyped_date(day, bool(down[i]))
        else:
            day = epoch + timedelta(days=int(stranger_day[i]))
        typed.append(day.isoformat() if given[i] and day is not None else None)
    return typed


def _mistyped_date(day: date, down: bool) -> date:
    """Day and month swapped when that is another valid date, else the day one off."""
    if day.day <= 12 and day.day != day.month:
        return day.replace(month=day.day, day=day.month)
    step = -1 if down else 1
    try:
        return day.replace(day=day.day + step)
    except ValueError:  # past the month's end or before its first day
        return day.replace(day=day.day - step)


# --- CS Conversation calls ---------------------------------------------------------------


def conversation_calls(world: World, account: Account) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(wire rows with the STAMP column, truth rows) of every call the account has by now."""
    wire, truth = [], []
    for slot, spec in account.slots():
        office = _office(world, slot, spec)
        inbound = _inbound_calls(office)
        calls = pl.concat([_commlog_calls(world, office), inbound, _callbacks(inbound)])
        w, t = _render_calls(office, calls)
        wire.append(w)
        truth.append(t)
    return pl.concat(wire), pl.concat(truth)


def _calls(
    h: np.ndarray,
    pat: np.ndarray,
    kind: np.ndarray,
    start: np.ndarray,
    duration: np.ndarray,
    reason: np.ndarray,
    commlog: np.ndarray | None = None,
    returns: np.ndarray | None = None,
) -> pl.DataFrame:
    """One office's calls under construction (PatNum 0 = a number that is no patient's)."""
    n = len(h)
    zeros = np.zeros(n, dtype=np.int64)
    return pl.DataFrame(
        {
            "h": h,
            "PatNum": pat,
            "type": kind,
            "start": start,
            "duration": duration,
            "reason": reason,
            "CommlogNum": zeros if commlog is None else commlog,
            "returns": zeros if returns is None else returns,
        },
        schema_overrides={"reason": pl.String},
    )


def _commlog_calls(world: World, office: _Office) -> pl.DataFrame:
    """Phone commlogs written after a call: cancellations, no-show follow-ups, balance calls."""
    types = world.table("definitions", office.spec.key).filter(pl.col("Category") == 27)
    logs = (
        world.table("commlogs", office.spec.key)
        .filter(pl.col("Mode_") == "Phone")
        .join(types.select(CommType="DefNum", type_name="ItemName"), on="CommType", how="left")
    )
    appt = (logs["type_name"] == "ApptRelated").to_numpy()
    sent = (logs["SentOrReceived"] == "Sent").to_numpy()
    balance = (logs["type_name"] == "Financial").to_numpy() & sent
    keep = appt | balance
    logs, appt, sent = logs.filter(pl.lit(keep)), appt[keep], sent[keep]
    cancel = appt & ~sent
    h = stable_hash(office.code, _COMMLOG_CALL, logs["CommlogNum"].to_numpy())
    answered = unit(h, 1) < np.where(cancel, 1.0, np.where(appt, 0.3, 0.6))
    kind = np.where(cancel, RECEIVED, np.where(answered, MADE, ATTEMPTED))
    duration = np.where(kind == ATTEMPTED, _between(h, 2, 10, 50), _between(h, 3, 40, 400))
    start = _seconds(logs["CommDateTime"]) - duration - _between(h, 4, 0, 120)
    reason = np.where(cancel, "cancel", np.where(appt, "no_show", "balance"))
    pat = logs["PatNum"].to_numpy()
    return _calls(h, pat, kind, start, duration, reason, commlog=logs["CommlogNum"].to_numpy())


def _inbound_calls(office: _Office) -> pl.DataFrame:
    day, h = _daily_slots(office, _INBOUND, per_day=5, weekdays_only=True)
    keep = unit(h) < 0.5
    day, h = day[keep], h[keep]
    start = day * DAY + 8 * HOUR + _between(h, 1, 0, 10 * HOUR)
    pat = np.where(unit(h, 2) < 0.85, _pick_patients(office, day, h, 3), 0)
    r = unit(h, 4)
    kind = np.where(r < 0.55, RECEIVED, np.where(r < 0.8, MISSED, VOICEMAIL))
    duration = np.select(
        [kind == RECEIVED, kind == MISSED],
        [8 + (unit(h, 5) ** 2 * 592).astype(np.int64), _between(h, 6, 5, 35)],
        _between(h, 7, 6, 90),
    )
    reason = np.array(INBOUND_REASONS)[(unit(h, 8) * len(INBOUND_REASONS)).astype(np.int64)]
    return _calls(h, pat, kind, start, duration, reason)


def _callbacks(inbound: pl.DataFrame) -> pl.DataFrame:
    """The office returns most missed calls and voicemails of patients."""
    h0 = inbound["h"].to_numpy()
    kind0 = inbound["type"].to_numpy()
    pat = inbound["PatNum"].to_numpy()
    back = np.isin(kind0, [MISSED, VOICEMAIL]) & (pat > 0) & (unit(h0, 9) < 0.6)
    h0, pat = h0[back], pat[back]
    h = stable_hash(h0.view(np.int64), _CALLBACK)
    end0 = (inbound["start"] + inbound["duration"]).to_numpy()[back]
    start = end0 + _between(h, 1, 5 * MINUTE, 3 * HOUR)
    kind = np.where(unit(h, 2) < 0.6, MADE, ATTEMPTED)
    duration = np.where(kind == MADE, _between(h, 3, 30, 300), _between(h, 4, 12, 40))
    reason = np.full(len(h), "callback")
    return _calls(h, pat, kind, start, duration, reason, returns=stable_id(h0))


def _render_calls(office: _Office, calls: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    kind = calls["type"].to_numpy()
    duration = calls["duration"].to_numpy()
    summarised = np.isin(kind, [MADE, RECEIVED, VOICEMAIL]) & (duration > SUMMARY_MIN_SECONDS)
    # Transcription takes a moment: the record is final (and served) once its summary exists.
    changed = calls["start"].to_numpy() + duration + np.where(summarised, 45, 0)
    keep = changed <= office.now
    calls = calls.filter(pl.lit(keep))
    summarised, changed = summarised[keep], changed[keep]
    h = calls["h"].to_numpy()
    ids = stable_id(h)
    who = _who(office, calls["PatNum"].to_numpy(), h)
    tz = office.spec.timezone
    frame = pl.concat([calls, who], how="horizontal").with_columns(
        id=pl.lit(ids),
        summarised=pl.lit(summarised),
        start_at=_ts(calls["start"].to_numpy()),
        changed_at=_ts(changed),
    )
    wire = frame.select(
        "id",
        locationId=pl.lit(office.slot, pl.Int64),
        patientId=account_id_of(pl.col("PatNum"), office.slot),
        callType=pl.col("type").replace_strict(dict(enumerate(CALL_TYPES))),
        phoneNumber=pl.concat_str(pl.lit("+1"), pl.col("phone")),
        startTime=utc_text(to_utc(pl.col("start_at"), tz)),
        duration="duration",
        summary=pl.when("summarised").then(
            pl.col("reason").replace_strict(SUMMARIES, return_dtype=pl.String)
        ),
        recordingUrl=pl.when("summarised").then(pl.format(RECORDING_URL, pl.col("id"))),
        lastModifiedOn=utc_text(to_utc(pl.col("changed_at"), tz)),
        **{STAMP: to_utc(pl.col("changed_at"), tz)},
    )
    outcome = {MADE: "answered", RECEIVED: "answered", ATTEMPTED: "no_answer"}
    truth = frame.select(
        office=pl.lit(office.spec.key),
        id="id",
        PatNum=pl.when(pl.col("PatNum") > 0).then(pl.col("PatNum")),
        person_id="person_id",
        reason="reason",
        outcome=pl.col("type").replace_strict(
            {**outcome, MISSED: "missed", VOICEMAIL: "voicemail"}, return_dtype=pl.String
        ),
        CommlogNum=pl.when(pl.col("CommlogNum") > 0).then(pl.col("CommlogNum")),
        returns_call_id=pl.when(pl.col("returns") > 0).then(pl.col("returns")),
    )
    return wire, truth
