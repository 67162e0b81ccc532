"""Open Dental API wire format: how a World row becomes API JSON, and how query values are read.

The connector and the dbt staging models parse exactly this, so the quirks are deliberate:
booleans are the strings "true"/"false", "no date" is 0001-01-01, and in payments ``PayAmt`` and
``ClinicNum`` are JSON strings while every other number is a JSON number.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import polars as pl

DATE_FORMAT = "%Y-%m-%d"
DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"
NULL_DATE = "0001-01-01"
NULL_DATETIME = "0001-01-01 00:00:00"

# definition.Category -> the DefCat name the API puts in the derived ``category`` field.
DEF_CATEGORIES: dict[int, str] = {
    1: "AdjTypes",
    2: "ApptConfirmed",
    4: "BillingTypes",
    10: "PaymentTypes",
    13: "RecallUnschedStatus",
    27: "CommLogTypes",
    29: "PaySplitUnearnedType",
    32: "InsurancePaymentType",
    35: "ProviderSpecialties",
}

# Numeric columns the API sends as JSON strings.
STRING_NUMBERS: dict[str, frozenset[str]] = {"payments": frozenset({"PayAmt", "ClinicNum"})}


@dataclass(frozen=True)
class Derived:
    """A lowercase read-only text field the API adds right after its source id column."""

    name: str
    lookup: str  # "definitions" (DefNum -> ItemName), "providers" (ProvNum -> Abbr), "categories"


DERIVED: dict[str, dict[str, Derived]] = {
    "appointments": {
        "Confirmed": Derived("confirmed", "definitions"),
        "ProvNum": Derived("provAbbr", "providers"),
    },
    "payments": {"PayType": Derived("payType", "definitions")},
    "adjustments": {"AdjType": Derived("adjType", "definitions")},
    "commlogs": {"CommType": Derived("commType", "definitions")},
    "definitions": {"Category": Derived("category", "categories")},
}

# Lookup name -> (table, key column, text column) the app reads per office.
LOOKUP_TABLES: dict[str, tuple[str, str, str]] = {
    "definitions": ("definitions", "DefNum", "ItemName"),
    "providers": ("providers", "ProvNum", "Abbr"),
}


def render_bool(value: bool | None) -> str:
    return "true" if value else "false"


def render_date(value: date | None) -> str:
    return NULL_DATE if value is None else value.strftime(DATE_FORMAT)


def render_datetime(value: datetime | None) -> str:
    return NULL_DATETIME if value is None else value.strftime(DATETIME_FORMAT)


def render_text(value: object) -> str:
    return "" if value is None else str(value)


def render_int(value: int | None) -> int:
    return 0 if value is None else value


def render_float(value: float | None) -> float:
    return 0.0 if value is None else value


def render_int_text(value: int | None) -> str:
    return str(render_int(value))


def render_money_text(value: float | None) -> str:
    """Shortest decimal text, as .NET prints a double: 339.0 -> "339", 12.25 -> "12.25"."""
    amount = render_float(value)
    return str(int(amount)) if amount.is_integer() else repr(amount)


def _converter(dtype: pl.DataType, as_text: bool) -> Callable[[Any], Any]:
    if dtype == pl.Boolean:
        return render_bool
    if dtype == pl.Date:
        return render_date
    if dtype == pl.Datetime:
        return render_datetime
    if dtype.is_integer():
        return render_int_text if as_text else render_int
    if dtype.is_float():
        return render_money_text if as_text else render_float
    return render_text


@dataclass(frozen=True)
class _Field:
    name: str
    convert: Callable[[Any], Any]
    derived: Derived | None


class RowRenderer:
    """Renders rows of one table; built from the frame schema so field order = column order."""

    def __init__(self, table: str, schema: Mapping[str, pl.DataType]) -> None:
        as_text = STRING_NUMBERS.get(table, frozenset())
        derived = DERIVED.get(table, {})
        self.fields = [
            _Field(name, _converter(dtype, name in as_text), derived.get(name))
            for name, dtype in schema.items()
            if name != "office"
        ]
        # Per-office lookups the caller must supply; "categories" is static.
        self.lookups_needed = sorted(
            {f.derived.lookup for f in self.fields if f.derived} - {"categories"}
        )

    @property
    def columns(self) -> list[str]:
        return [f.name for f in self.fields]

    def render(
        self,
        rows: Iterable[tuple[Any, ...]],
        lookups: Mapping[str, Mapping[int, str]],
        server_now: datetime,
    ) -> list[dict[str, Any]]:
        """``rows`` hold values in ``columns`` order; ``lookups`` resolve the derived fields."""
        stamp = render_datetime(server_now)
        lookups = {"categories": DEF_CATEGORIES, **lookups}
        rendered = []
        for row in rows:
            obj: dict[str, Any] = {}
            for spec, value in zip(self.fields, row, strict=True):
                obj[spec.name] = spec.convert(value)
                if spec.derived is not None:
                    obj[spec.derived.name] = lookups[spec.derived.lookup].get(value, "")
            obj["serverDateTime"] = stamp
            rendered.append(obj)
        return rendered


def parse_int(text: str) -> int:
    return int(text.strip())


def parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered not in ("true", "false"):
        raise ValueError(text)
    return lowered == "true"


def parse_date(text: str) -> date:
    return datetime.strptime(text.strip(), DATE_FORMAT).date()


def parse_datetime(text: str) -> datetime:
    """A "yyyy-MM-dd HH:mm:ss" stamp; a bare date means midnight."""
    text = text.strip()
    fmt = DATETIME_FORMAT if " " in text else DATE_FORMAT
    return datetime.strptime(text, fmt)
