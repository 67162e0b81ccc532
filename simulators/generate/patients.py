"""Patient records: one office's view of persons, rendered with front-desk noise.

``Records`` holds an office's patients as parallel arrays indexed by PatNum - 1 (guarantor,
clinic, providers, status, entry time); ``patient_rows`` renders them as Open Dental patient rows
with typos, nicknames, phone formats and missing fields. Also here: status and contact pools,
``guarantors`` (the household's first member in the office) and ``family_totals`` (BalTotal).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from simulators import names
from simulators.generate.arrays import (
    DAY,
    choose,
    concat,
    days_to_dates,
    pick,
    run_starts,
    ts,
)
from simulators.generate.people import PHONE_SPACE, household_phones
from simulators.generate.reference import OfficeCtx, pick_per_clinic
from simulators.generate.schemas import table_frame

PAT_STATUS = ("Patient", "NonPatient", "Inactive", "Archived", "Deleted", "Deceased", "Prospective")
PATIENT, PROSPECTIVE = 0, 6
STATUS_WEIGHTS = (0.86, 0.01, 0.08, 0.03, 0.005, 0.005, 0.0)

POSITIONS = ("Single", "Married", "Child", "Widowed", "Divorced")
CONTACT = (
    "None",
    "DoNotCall",
    "HmPhone",
    "WkPhone",
    "WirelessPh",
    "Email",
    "SeeNotes",
    "Mail",
    "TextMessage",
)
TXT_OK = ("Unknown", "Yes", "No")


def _typo(column: str, rng: np.random.Generator, n: int, rate: float) -> pl.Expr:
    """One-letter edit (substitute, drop, swap, insert) in about ``rate`` of the names."""
    hit = rng.random(n) < rate
    kind = rng.integers(0, 4, n)
    pos = pl.lit(rng.random(n)) * (pl.col(column).str.len_chars() - 1).clip(1)
    i = pos.cast(pl.Int64).clip(1)  # keep the first letter (people rarely mistype it)
    letter = pl.lit(pick("abcdefghijklmnopqrstuvwxyz", rng.integers(0, 26, n)))
    col = pl.col(column)
    head, rest = col.str.slice(0, i), col.str.slice(i + 1)
    edited = (
        pl.when(pl.lit(kind) == 0)
        .then(pl.concat_str(head, letter, rest))
        .when(pl.lit(kind) == 1)
        .then(pl.concat_str(head, rest))
        .when(pl.lit(kind) == 2)
        .then(
            pl.concat_str(head, col.str.slice(i + 1, 1), col.str.slice(i, 1), col.str.slice(i + 2))
        )
        .otherwise(pl.concat_str(head, letter, col.str.slice(i)))
    )
    return (
        pl.when(pl.lit(hit) & (col.str.len_chars() > 2)).then(edited).otherwise(col).alias(column)
    )


def format_phone(digits: pl.Expr, style: np.ndarray) -> pl.Expr:
    """Render 10 digits the ways front desks type them (style 0 is OD's auto-format)."""
    a, b, c = digits.str.slice(0, 3), digits.str.slice(3, 3), digits.str.slice(6, 4)
    s = pl.lit(style)
    return (
        pl.when(s == 0)
        .then(pl.concat_str(pl.lit("("), a, pl.lit(")"), b, pl.lit("-"), c))
        .when(s == 1)
        .then(pl.concat_str(pl.lit("("), a, pl.lit(") "), b, pl.lit("-"), c))
        .when(s == 2)
        .then(pl.concat_str(a, pl.lit("."), b, pl.lit("."), c))
        .when(s == 3)
        .then(digits)
        .when(s == 4)
        .then(pl.concat_str(a, pl.lit("-"), b, pl.lit("-"), c))
        .otherwise(pl.concat_str(b, pl.lit("-"), c))  # area code left off
    )


PHONE_STYLE_WEIGHTS = (0.70, 0.10, 0.05, 0.06, 0.07, 0.02)


@dataclass
class Records:
    """One office's patient records being built: parallel arrays indexed by PatNum - 1."""

    persons: pl.DataFrame  # truth_persons rows, one per record
    patnum: np.ndarray
    guarantor: np.ndarray
    clinic: np.ndarray
    priprov: np.ndarray
    secprov: np.ndarray
    status: np.ndarray  # index into PAT_STATUS
    created: np.ndarray  # local epoch seconds of SecDateEntry


def assign_care(rng: np.random.Generator, ctx: OfficeCtx, clinic: np.ndarray):
    """Primary dentist and (usually) a hygienist from the patient's clinic."""
    pri = pick_per_clinic(rng, ctx.dentists, clinic)
    sec = np.where(rng.random(len(clinic)) < 0.7, pick_per_clinic(rng, ctx.hygienists, clinic), 0)
    return pri, sec


def patient_rows(
    rng: np.random.Generator,
    ctx: OfficeCtx,
    rec: Records,
    *,
    est_balance: np.ndarray,
    bal_total: np.ndarray,
    first_visit: np.ndarray,
    stamp: np.ndarray,
) -> pl.DataFrame:
    """Render records as Open Dental patient rows (noise differs per office, as in real life)."""
    n = len(rec.patnum)
    p = rec.persons
    age_years = (ctx.today - p["birthdate"].cast(pl.Int64).to_numpy()) / 365.25
    child = age_years < 18
    nick = p["nickname"].to_numpy() != ""
    fname_is_nick = nick & (rng.random(n) < 0.15)
    preferred_nick = nick & ~fname_is_nick & (rng.random(n) < 0.45)
    upper = rng.random(n) < 0.01
    frame = p.select(
        pl.when(pl.lit(upper))
        .then(pl.col("last_name").str.to_uppercase())
        .otherwise(pl.col("last_name"))
        .alias("LName"),
        pl.when(pl.lit(fname_is_nick))
        .then(pl.col("nickname"))
        .otherwise(pl.col("first_name"))
        .alias("FName"),
        pl.when(pl.lit(preferred_nick))
        .then(pl.col("nickname"))
        .otherwise(pl.lit(""))
        .alias("Preferred"),
        pl.col("phone"),
        pl.col("email"),
        pl.col("gender"),
        pl.col("address"),
        pl.col("city"),
        pl.col("state"),
        pl.col("zip"),
        pl.col("birthdate"),
    ).with_columns(_typo("LName", rng, n, 0.03), _typo("FName", rng, n, 0.03))
    phones = _patient_phones(rng, frame, child)
    return table_frame(
        "patients",
        n,
        office=ctx.key,
        PatNum=rec.patnum,
        LName=frame["LName"],
        FName=frame["FName"],
        MiddleI=pl.select(
            pl.when(pl.lit(rng.random(n) < 0.35))
            .then(pl.lit(pick("ABCDEFGHJKLMNPRSTW", rng.integers(0, 18, n))))
            .otherwise(pl.lit(""))
        ).to_series(),
        Preferred=frame["Preferred"],
        PatStatus=pick(PAT_STATUS, rec.status),
        Gender=_record_gender(rng, frame["gender"]),
        Position=pick(POSITIONS, np.where(child, 2, choose(rng, n, (0.33, 0.5, 0, 0.06, 0.11)))),
        Birthdate=frame.select(
            pl.when(pl.lit(rng.random(n) < 0.01)).then(None).otherwise(pl.col("birthdate"))
        ).to_series(),
        Address=frame["address"],
        Address2=_unit(rng, n),
        City=frame["city"],
        State=frame["state"],
        Zip=frame["zip"],
        **phones,
        Guarantor=rec.guarantor,
        Email=frame.select(_email_noise(rng, n)).to_series(),
        EstBalance=est_balance,
        BalTotal=bal_total,
        PriProv=rec.priprov,
        SecProv=rec.secprov,
        BillingType=pick(("Standard Account", "Insurance Only"), (rng.random(n) < 0.05)),
        ChartNumber=_chart_numbers(rng, rec.patnum),
        DateFirstVisit=first_visit_dates(first_visit),
        ClinicNum=rec.clinic,
        PreferConfirmMethod=pick(CONTACT, choose(rng, n, (20, 1, 8, 1, 10, 10, 0, 0, 50))),
        PreferContactMethod=pick(CONTACT, choose(rng, n, (30, 2, 20, 3, 25, 8, 1, 1, 10))),
        PreferRecallMethod=pick(CONTACT, choose(rng, n, (25, 1, 5, 0, 5, 30, 0, 4, 30))),
        Language=pick(("eng", "spa", ""), choose(rng, n, (0.7, 0.1, 0.2))),
        TxtMsgOk=pick(TXT_OK, choose(rng, n, (0.4, 0.5, 0.1))),
        DateTStamp=ts(stamp),
        SecDateEntry=days_to_dates(rec.created // DAY),
    )


def first_visit_dates(first_visit: np.ndarray) -> pl.Series:
    """Day numbers with -1 for "never seen" (OD's 0001-01-01) -> nullable Date series."""
    return days_to_dates(np.maximum(first_visit, 0), null=first_visit < 0)


def _record_gender(rng, gender: pl.Series) -> pl.Series:
    unknown = rng.random(len(gender)) < 0.01
    return pl.select(pl.when(pl.lit(unknown)).then(pl.lit("Unknown")).otherwise(gender)).to_series()


def _unit(rng, n) -> pl.Series:
    has = rng.random(n) < 0.08
    unit = concat(
        pick(names.UNIT_PREFIXES, rng.integers(0, 4, n)),
        pl.lit(" "),
        pl.Series(rng.integers(1, 40, n)).cast(pl.String),
    )
    return pl.select(pl.when(pl.lit(has)).then(unit).otherwise(pl.lit(""))).to_series()


def _chart_numbers(rng, patnum) -> pl.Series:
    has = rng.random(len(patnum)) < 0.3
    chart = concat(pl.lit("C"), pl.Series(patnum).cast(pl.String).str.zfill(5))
    return pl.select(pl.when(pl.lit(has)).then(chart).otherwise(pl.lit(""))).to_series()


def _email_noise(rng, n) -> pl.Expr:
    """Some records lack the email, a few were typed in capitals."""
    missing = rng.random(n) < 0.08
    shout = rng.random(n) < 0.03
    return (
        pl.when(pl.lit(missing))
        .then(pl.lit(""))
        .when(pl.lit(shout))
        .then(pl.col("email").str.to_uppercase())
        .otherwise(pl.col("email"))
    )


def _patient_phones(rng, frame: pl.DataFrame, child: np.ndarray) -> dict[str, pl.Series]:
    """Children carry the household (guarantor's) number as HmPhone; adults vary."""
    n = len(child)
    digits = pl.col("phone")
    home = ~((~child) & (rng.random(n) < 0.12))
    wireless = (~child) & (rng.random(n) < 0.55)
    work = (~child) & (rng.random(n) < 0.1)
    work_digits = pl.lit(household_phones(rng.integers(0, PHONE_SPACE, n), 17))
    style = choose(rng, n, PHONE_STYLE_WEIGHTS)
    out = frame.select(
        pl.when(pl.lit(home))
        .then(format_phone(digits, style))
        .otherwise(pl.lit(""))
        .alias("HmPhone"),
        pl.when(pl.lit(work))
        .then(format_phone(work_digits, style))
        .otherwise(pl.lit(""))
        .alias("WkPhone"),
        pl.when(pl.lit(wireless))
        .then(format_phone(digits, np.minimum(style, 4)))
        .otherwise(pl.lit(""))
        .alias("WirelessPhone"),
    )
    return {c: out[c] for c in out.columns}


def guarantors(household: np.ndarray, person: np.ndarray, patnum: np.ndarray) -> np.ndarray:
    """Each record's guarantor: the PatNum of its household's first member in this office."""
    order = np.lexsort((person, household))
    hh_sorted = household[order]
    first = run_starts(hh_sorted)
    head_pos = np.maximum.accumulate(np.where(first, np.arange(len(order)), 0))
    result = np.empty_like(patnum)
    result[order] = patnum[order][head_pos]
    return result


def family_totals(guarantor: np.ndarray, est_cents: np.ndarray) -> np.ndarray:
    """BalTotal lives on the guarantor (sum of the family); other members show 0."""
    n = len(guarantor)
    total = np.bincount(guarantor - 1, weights=est_cents, minlength=n).astype(np.int64)
    return np.where(guarantor == np.arange(1, n + 1), total, 0)
