"""Ground-truth persons grouped into households (the ``truth_persons`` table).

``make_persons`` draws household sizes, ages, genders, names, a shared household phone (a
collision-free permutation of the phone number space, salted by ``phone_salt``), emails and one
address per household near its home office. Patient records in every office are noisy views of
these persons.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from simulators import names
from simulators.generate.arrays import choose, concat, days_to_dates, pick
from simulators.generate.schemas import SCHEMAS
from simulators.world import WorldSpec

HOUSEHOLD_SIZE_WEIGHTS = (0.28, 0.30, 0.17, 0.15, 0.07, 0.03)
_PHONE_BLOCK = 8_000_000  # seven-digit numbers whose exchange starts 2-9
PHONE_SPACE = len(names.AREA_CODES) * _PHONE_BLOCK
_PHONE_MULTIPLIER = 2_654_435_761  # odd, not divisible by 3 or 5: a bijection mod the space


def household_phones(household_id: np.ndarray, salt: int) -> pl.Series:
    """Unique 10-digit phone per household: an affine permutation of the number space."""
    slot = (household_id.astype(np.int64) * _PHONE_MULTIPLIER + salt) % PHONE_SPACE
    area = pick(names.AREA_CODES, slot // _PHONE_BLOCK)
    return concat(area, pl.Series(slot % _PHONE_BLOCK + 2_000_000).cast(pl.String))


def phone_salt(spec: WorldSpec) -> int:
    """Offset of the household phone permutation (shared by generation and evolution)."""
    return spec.seed * 7919


def _household_sizes(rng: np.random.Generator, n: int) -> np.ndarray:
    sizes = choose(rng, n // 2 + 8, HOUSEHOLD_SIZE_WEIGHTS) + 1
    while sizes.sum() < n:
        sizes = np.concatenate([sizes, choose(rng, n // 2 + 8, HOUSEHOLD_SIZE_WEIGHTS) + 1])
    total = np.cumsum(sizes)
    last = int(np.searchsorted(total, n))
    sizes = sizes[: last + 1].copy()
    sizes[-1] -= total[last] - n
    return sizes


def make_persons(
    rng: np.random.Generator,
    n: int,
    *,
    first_person_id: int,
    first_household_id: int,
    today: int,
    n_offices: int,
    office_weights: np.ndarray,
    salt: int,
    cities: list[tuple[tuple[str, str, str], ...]],
) -> tuple[pl.DataFrame, np.ndarray]:
    """``n`` persons in fresh households -> (truth_persons rows, home office index per person)."""
    sizes = _household_sizes(rng, n)
    n_households = len(sizes)
    household = np.repeat(np.arange(n_households), sizes)
    member = np.arange(n) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    home = rng.choice(n_offices, n_households, p=office_weights / office_weights.sum())

    adult, age_days = _ages(rng, member, household)
    gender = _genders(rng, member, household)
    first = _first_names(rng, gender)
    last = _last_names(rng, member, household, n_households, adult)
    household_id = first_household_id + household
    persons = pl.DataFrame(
        {
            "person_id": np.arange(first_person_id, first_person_id + n, dtype=np.int64),
            "household_id": household_id,
            "first_name": first,
            "last_name": last,
            "gender": pick(("Male", "Female", "Other"), gender),
            "birthdate": days_to_dates(today - age_days),
            "phone": household_phones(household_id, salt),
        }
    ).with_columns(nickname=pl.col("first_name").replace_strict(names.NICKNAMES, default=""))
    persons = persons.with_columns(
        email=_emails(rng, persons, member, household, n_households, adult),
        **_addresses(rng, household, n_households, home, cities),
    )
    return persons.select(list(SCHEMAS["truth_persons"])), home[household]


def _ages(rng, member, household) -> tuple[np.ndarray, np.ndarray]:
    """Head and (usually) spouse are adults, the rest mostly children younger than the head."""
    n = len(member)
    spouse = (member == 1) & (rng.random(n) < 0.7)
    adult = (member == 0) | spouse | ((member >= 1) & (rng.random(n) < 0.08))
    has_kids = np.bincount(household, weights=~adult, minlength=household.max() + 1) > 0
    head_years = np.where(has_kids[household], 25 + rng.random(n) * 30, 19 + rng.random(n) * 70)
    head_years = head_years[np.searchsorted(household, household)]  # the head's draw, per member
    years = np.where(
        member == 0,
        head_years,
        np.where(
            spouse,
            np.clip(head_years + rng.normal(0, 4, n), 19, 95),
            np.where(
                adult,
                18 + rng.random(n) * 70,
                1 + rng.random(n) * np.clip(head_years - 19, 1, 16.9),
            ),
        ),
    )
    return adult, (years * 365.25).astype(np.int64)


def _genders(rng, member, household) -> np.ndarray:
    """0 Male, 1 Female, 2 Other; spouses are usually the head's opposite."""
    n = len(member)
    draw = (rng.random(n) < 0.5).astype(np.int64)
    head = draw[np.searchsorted(household, household)]
    gender = np.where((member == 1) & (rng.random(n) < 0.93), 1 - head, draw)
    return np.where(rng.random(n) < 0.004, 2, gender)


def _first_names(rng, gender) -> pl.Series:
    n = len(gender)
    male = (gender == 0) | ((gender == 2) & (rng.random(n) < 0.5))
    idx = np.where(
        male,
        rng.integers(0, len(names.MALE_FIRST), n),
        len(names.MALE_FIRST) + rng.integers(0, len(names.FEMALE_FIRST), n),
    )
    return pick(names.MALE_FIRST + names.FEMALE_FIRST, idx)


def _last_names(rng, member, household, n_households, adult) -> pl.Series:
    """Households share a surname; some spouses/adults keep their own."""
    n = len(member)
    family = rng.integers(0, len(names.LAST_NAMES), n_households)[household]
    own = (member > 0) & adult & (rng.random(n) < 0.18)
    return pick(names.LAST_NAMES, np.where(own, rng.integers(0, len(names.LAST_NAMES), n), family))


def _emails(rng, persons: pl.DataFrame, member, household, n_households, adult) -> pl.Series:
    """Head owns the family address; children share it, other adults often have their own."""
    n = len(member)
    domain = pick(names.EMAIL_DOMAINS, rng.integers(0, len(names.EMAIL_DOMAINS), n_households))
    style = rng.integers(0, 3, n)
    local = persons.select(
        pl.when(pl.lit(style) == 0)
        .then(pl.concat_str(pl.col("first_name"), pl.lit("."), pl.col("last_name")))
        .when(pl.lit(style) == 1)
        .then(pl.concat_str(pl.col("first_name").str.slice(0, 1), pl.col("last_name")))
        .otherwise(pl.concat_str(pl.col("last_name"), pl.col("first_name").str.slice(0, 1)))
        .str.to_lowercase()
        .str.replace_all("'", "")
        + pl.col("household_id").cast(pl.String)
    ).to_series()
    own = pl.concat_str(local, pl.lit("@"), domain.gather(household))
    head_row = np.searchsorted(household, household)
    has_email = rng.random(n_households)[household] < 0.9
    own_email = (member == 0) | (adult & (rng.random(n) < 0.55))
    shares = ~own_email & (rng.random(n) < np.where(adult, 0.3, 0.75))
    email = pl.select(
        pl.when(pl.lit(~has_email))
        .then(pl.lit(""))
        .when(pl.lit(own_email))
        .then(own)
        .when(pl.lit(shares))
        .then(own.gather(head_row))
        .otherwise(pl.lit(""))
    ).to_series()
    return email.alias("email")


def _addresses(rng, household, n_households, home, cities) -> dict[str, pl.Series]:
    """One address per household, in a town near its home office."""
    flat = [c for office_cities in cities for c in office_cities]
    sizes = np.array([len(c) for c in cities])
    city_idx = (np.cumsum(sizes) - sizes)[home] + (rng.random(n_households) * sizes[home]).astype(
        int
    )
    street = concat(
        pl.Series(rng.integers(1, 9_900, n_households)).cast(pl.String),
        pl.lit(" "),
        pick(names.STREET_NAMES, rng.integers(0, len(names.STREET_NAMES), n_households)),
        pl.lit(" "),
        pick(names.STREET_SUFFIXES, rng.integers(0, len(names.STREET_SUFFIXES), n_households)),
    )
    zip_code = concat(
        pick([c[2] for c in flat], city_idx),
        pl.Series(rng.integers(0, 100, n_households)).cast(pl.String).str.zfill(2),
    )
    return {
        "address": street.gather(household),
        "city": pick([c[0] for c in flat], city_idx).gather(household),
        "state": pick([c[1] for c in flat], city_idx).gather(household),
        "zip": zip_code.gather(household),
    }
