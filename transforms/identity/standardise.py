"""Standardise the traits patient matching compares: phone numbers, emails, names, birth dates.

Every function works on whole polars columns and runs its Python library (phonenumbers,
nameparser, nicknames) once per distinct value: a million patients carry a few hundred thousand
distinct numbers and a few thousand distinct names.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from functools import cache

import phonenumbers
import polars as pl
from nameparser import HumanName
from nicknames import NickNamer

_NOT_LETTERS = re.compile(r"[^a-z' -]")
_SPACES = re.compile(r"[\s'-]+")
# Birth dates front desks type when they do not know one.
_PLACEHOLDER_BIRTH_DATES = (date(1900, 1, 1), date(1901, 1, 1))
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$")


def _map_distinct(column: pl.Series, function, dtype) -> pl.Series:
    """``function`` applied once per distinct non-null value of ``column``."""
    distinct = column.drop_nulls().unique()
    mapping = pl.DataFrame(
        {"key": distinct, "value": pl.Series([function(v) for v in distinct], dtype=dtype)}
    )
    return (
        column.to_frame("key")
        .join(mapping, on="key", how="left", maintain_order="left")["value"]
        .alias(column.name)
    )


# --- phone numbers -----------------------------------------------------------------------


def e164(raw: str | None, region: str = "US") -> str | None:
    """The number in E.164, or None when it cannot be a valid number (too short, unassigned
    area code, a 7-digit local number without its area code). Extensions are dropped."""
    if not raw or not raw.strip():
        return None
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def phones_e164(column: pl.Series, region: str = "US") -> pl.Series:
    """E.164 per value (null when empty or invalid); parsed once per distinct digit string."""
    # Keep '+' and digits only: "(555) 123-4567" and "555.123.4567" parse once, as one value.
    digits = column.str.replace_all(r"[^0-9+xX#]", "").replace("", None)
    return _map_distinct(digits, lambda raw: e164(raw, region), pl.String).alias(column.name)


# --- emails ------------------------------------------------------------------------------


def emails(column: pl.Series) -> pl.Series:
    """Trimmed, lower-case; null when empty or not shaped like an address."""
    lowered = column.str.strip_chars().str.to_lowercase()
    return (
        pl.select(pl.when(lowered.str.contains(_EMAIL.pattern)).then(lowered).otherwise(None))
        .to_series()
        .alias(column.name)
    )


# --- names -------------------------------------------------------------------------------


def _ascii_lower(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()


@cache
def clean_name(raw: str, part: str) -> str | None:
    """One name part (``first`` or ``last``), lower-case ASCII letters only.

    nameparser drops titles and suffixes typed into the field ("Dr. John", "Smith Jr.") and
    keeps the first given name of "Mary Ann"; punctuation, hyphens and spaces are removed so
    "O'Neil", "ONeil" and "o neil" compare equal.
    """
    text = _NOT_LETTERS.sub(" ", _ascii_lower(raw)).strip()
    if not text:
        return None
    parsed = HumanName(text)
    # A field holding one name parses as a first name, or a last name after a title.
    if part == "first":
        value = parsed.first or parsed.last
    else:
        value = " ".join(p for p in (parsed.first, parsed.middle, parsed.last) if p)
    value = _SPACES.sub("", value or text)
    return value or None


def names(column: pl.Series, part: str) -> pl.Series:
    return _map_distinct(column, lambda raw: clean_name(raw, part), pl.String)


@cache
def _nicknames() -> NickNamer:
    return NickNamer()


@cache
def name_forms(first_name: str) -> tuple[str, ...]:
    """The name with the formal names it is a nickname of ("bob" -> bob, robert, ...): two
    first names are nickname-equivalent when their forms share a name."""
    return tuple(sorted({first_name} | _nicknames().canonicals_of(first_name)))


def first_name_forms(column: pl.Series) -> pl.Series:
    return _map_distinct(column, lambda name: list(name_forms(name)), pl.List(pl.String))


# --- birth dates -------------------------------------------------------------------------


def birth_dates(column: pl.Series, today: date) -> pl.Series:
    """Null for placeholders and impossible dates (in the future, over 120 years ago)."""
    earliest = date(today.year - 120, 1, 1)
    return (
        pl.select(
            pl.when(
                column.is_in(_PLACEHOLDER_BIRTH_DATES).not_() & column.is_between(earliest, today)
            )
            .then(column)
            .otherwise(None)
        )
        .to_series()
        .alias(column.name)
    )
