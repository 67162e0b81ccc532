"""Seeded, vectorised generation of the Open Dental world described in ``simulators/world.py``.

Everything is drawn with numpy from generators seeded by ``spec.seed`` and assembled into polars
frames, so the same spec gives identical tables and a million persons take seconds. Times are
handled as integer seconds of the office's naive local wall clock ("local epoch seconds"), dates
as integer days since 1970-01-01.

The building blocks below (``make_persons``, ``new_appointments``, ``build_payments`` ...) are also
used by ``simulators.evolve`` so that rows created while the world runs look like generated ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

from simulators import names
from simulators.world import OfficeSpec, World, WorldSpec

DAY = 86_400
HOUR = 3_600
MINUTE = 60
FUTURE_DAYS = 200
_EPOCH = datetime(1970, 1, 1)

# ---------------------------------------------------------------------------------------------
# Column schemas: every API table is ``office`` + the Open Dental columns, in this order.

I64, F64, BOOL, STR, DATE = pl.Int64, pl.Float64, pl.Boolean, pl.String, pl.Date
DTIME = pl.Datetime("us")

SCHEMAS: dict[str, dict[str, pl.DataType]] = {
    "definitions": {
        "office": STR,
        "DefNum": I64,
        "Category": I64,
        "ItemName": STR,
        "ItemValue": STR,
        "ItemOrder": I64,
        "IsHidden": BOOL,
    },
    "clinics": {
        "office": STR,
        "ClinicNum": I64,
        "Description": STR,
        "Abbr": STR,
        "Address": STR,
        "Address2": STR,
        "City": STR,
        "State": STR,
        "Zip": STR,
        "Phone": STR,
        "IsHidden": BOOL,
    },
    "providers": {
        "office": STR,
        "ProvNum": I64,
        "Abbr": STR,
        "LName": STR,
        "FName": STR,
        "Suffix": STR,
        "Specialty": I64,
        "IsSecondary": BOOL,
        "IsHidden": BOOL,
        "NationalProvID": STR,
        "DateTStamp": DTIME,
        "IsNotPerson": BOOL,
        "ProvStatus": STR,
    },
    "operatories": {
        "office": STR,
        "OperatoryNum": I64,
        "OpName": STR,
        "Abbrev": STR,
        "IsHidden": BOOL,
        "ProvDentist": I64,
        "ProvHygienist": I64,
        "IsHygiene": BOOL,
        "ClinicNum": I64,
    },
    "patients": {
        "office": STR,
        "PatNum": I64,
        "LName": STR,
        "FName": STR,
        "MiddleI": STR,
        "Preferred": STR,
        "PatStatus": STR,
        "Gender": STR,
        "Position": STR,
        "Birthdate": DATE,
        "Address": STR,
        "Address2": STR,
        "City": STR,
        "State": STR,
        "Zip": STR,
        "HmPhone": STR,
        "WkPhone": STR,
        "WirelessPhone": STR,
        "Guarantor": I64,
        "Email": STR,
        "EstBalance": F64,
        "BalTotal": F64,
        "PriProv": I64,
        "SecProv": I64,
        "BillingType": STR,
        "ChartNumber": STR,
        "DateFirstVisit": DATE,
        "ClinicNum": I64,
        "PreferConfirmMethod": STR,
        "PreferContactMethod": STR,
        "PreferRecallMethod": STR,
        "Language": STR,
        "TxtMsgOk": STR,
        "DateTStamp": DTIME,
        "SuperFamily": I64,
        "SecDateEntry": DATE,
    },
    "appointments": {
        "office": STR,
        "AptNum": I64,
        "PatNum": I64,
        "AptStatus": STR,
        "Pattern": STR,
        "Confirmed": I64,
        "Op": I64,
        "Note": STR,
        "ProvNum": I64,
        "ProvHyg": I64,
        "AptDateTime": DTIME,
        "NextAptNum": I64,
        "UnschedStatus": I64,
        "IsNewPatient": BOOL,
        "ProcDescript": STR,
        "ClinicNum": I64,
        "IsHygiene": BOOL,
        "DateTStamp": DTIME,
        "DateTimeArrived": DTIME,
        "DateTimeSeated": DTIME,
        "DateTimeDismissed": DTIME,
        "AppointmentTypeNum": I64,
        "SecDateTEntry": DTIME,
        "Priority": STR,
    },
    "payments": {
        "office": STR,
        "PayNum": I64,
        "PayType": I64,
        "PayDate": DATE,
        "PayAmt": F64,
        "CheckNum": STR,
        "BankBranch": STR,
        "PayNote": STR,
        "PatNum": I64,
        "ClinicNum": I64,
        "DateEntry": DATE,
        "DepositNum": I64,
        "IsRecurringCC": BOOL,
        "SecDateTEdit": DTIME,
        "PaymentSource": STR,
        "ProcessStatus": STR,
    },
    "paysplits": {
        "office": STR,
        "SplitNum": I64,
        "SplitAmt": F64,
        "PatNum": I64,
        "PayNum": I64,
        "ProvNum": I64,
        "PayPlanNum": I64,
        "DatePay": DATE,
        "ProcNum": I64,
        "DateEntry": DATE,
        "UnearnedType": I64,
        "ClinicNum": I64,
        "SecDateTEdit": DTIME,
        "AdjNum": I64,
    },
    "adjustments": {
        "office": STR,
        "AdjNum": I64,
        "AdjDate": DATE,
        "AdjAmt": F64,
        "PatNum": I64,
        "AdjType": I64,
        "ProvNum": I64,
        "AdjNote": STR,
        "ProcDate": DATE,
        "ProcNum": I64,
        "DateEntry": DATE,
        "ClinicNum": I64,
        "SecUserNumEntry": I64,
        "SecDateTEdit": DTIME,
    },
    "commlogs": {
        "office": STR,
        "CommlogNum": I64,
        "PatNum": I64,
        "CommDateTime": DTIME,
        "CommType": I64,
        "Note": STR,
        "Mode_": STR,
        "SentOrReceived": STR,
        "UserNum": I64,
        "DateTStamp": DTIME,
        "CommSource": STR,
        "DateTEntry": DTIME,
    },
    "truth_persons": {
        "person_id": I64,
        "household_id": I64,
        "first_name": STR,
        "last_name": STR,
        "nickname": STR,
        "gender": STR,
        "birthdate": DATE,
        "phone": STR,
        "email": STR,
        "address": STR,
        "city": STR,
        "state": STR,
        "zip": STR,
    },
    "truth_patient_links": {"office": STR, "PatNum": I64, "person_id": I64, "household_id": I64},
    "truth_appointments": {"office": STR, "AptNum": I64, "broken_reason": STR},
}

PRIMARY_KEYS = {
    "definitions": "DefNum",
    "clinics": "ClinicNum",
    "providers": "ProvNum",
    "operatories": "OperatoryNum",
    "patients": "PatNum",
    "appointments": "AptNum",
    "payments": "PayNum",
    "paysplits": "SplitNum",
    "adjustments": "AdjNum",
    "commlogs": "CommlogNum",
}

_DEFAULTS = {I64: 0, F64: 0.0, BOOL: False, STR: ""}


def table_frame(table: str, n: int, **cols: object) -> pl.DataFrame:
    """Build ``table`` rows in schema order; omitted columns get OD's empty value (0, "", null)."""
    data = []
    for name, dtype in SCHEMAS[table].items():
        value = cols.pop(name, _DEFAULTS.get(dtype))
        if isinstance(value, pl.Series):
            series = value.alias(name)
        elif isinstance(value, np.ndarray):
            series = pl.Series(name, value)
        else:
            series = pl.repeat(value, n, dtype=dtype, eager=True).alias(name)
        data.append(series.cast(dtype))
    if cols:
        raise ValueError(f"{table}: unknown columns {sorted(cols)}")
    return pl.DataFrame(data)


# ---------------------------------------------------------------------------------------------
# Time and random helpers.


def local_seconds(now_utc: datetime, timezone: str) -> int:
    """The office's wall clock at ``now_utc`` as naive local epoch seconds."""
    local = now_utc.astimezone(ZoneInfo(timezone)).replace(tzinfo=None, microsecond=0)
    return int((local - _EPOCH).total_seconds())


def ts(seconds: np.ndarray, null: np.ndarray | None = None) -> pl.Series:
    """Local epoch seconds -> naive Datetime series; ``null`` marks empty values."""
    values = (np.asarray(seconds, dtype=np.int64) * 1_000_000).astype("datetime64[us]")
    if null is not None:
        values[null] = np.datetime64("NaT")
    return pl.Series(values)


def days_to_dates(days: np.ndarray, null: np.ndarray | None = None) -> pl.Series:
    values = np.asarray(days, dtype=np.int64).astype("datetime64[D]")
    if null is not None:
        values[null] = np.datetime64("NaT")
    return pl.Series(values)


def pick(pool: tuple[str, ...] | list[str], idx: np.ndarray) -> pl.Series:
    """Vectorised ``pool[idx]`` for string pools."""
    return pl.Series(list(pool), dtype=pl.String).gather(np.asarray(idx, dtype=np.int64))


def concat(*parts: pl.Series | pl.Expr) -> pl.Series:
    """Element-wise string concatenation of equal-length series (and literals)."""
    return pl.select(
        pl.concat_str([pl.lit(p) if isinstance(p, pl.Series) else p for p in parts])
    ).to_series()


def choose(rng: np.random.Generator, n: int, weights: tuple[float, ...]) -> np.ndarray:
    """Category indices drawn with the given (unnormalised) weights."""
    p = np.asarray(weights, dtype=float)
    return rng.choice(len(p), size=n, p=p / p.sum())


def uniform_int(rng: np.random.Generator, low, high, size: int | None = None) -> np.ndarray:
    """Integers in [low, high] (inclusive, elementwise; ``size`` when both bounds are scalars)."""
    low = np.asarray(low, dtype=np.int64)
    high = np.maximum(np.asarray(high, dtype=np.int64), low)
    shape = np.broadcast_shapes(low.shape, high.shape, () if size is None else (size,))
    return low + (rng.random(shape) * (high - low + 1)).astype(np.int64)


def weekday_shift(days: np.ndarray) -> np.ndarray:
    """Move weekend days to the next Monday (offices are closed; never moves backwards)."""
    dow = (days + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    return days + np.where(dow >= 5, 7 - dow, 0)


def run_starts(values: np.ndarray) -> np.ndarray:
    """For sorted ``values``: True where a new run of equal values begins."""
    starts = np.ones(len(values), dtype=bool)
    starts[1:] = values[1:] != values[:-1]
    return starts


def cents(amount: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(amount) * 100).astype(np.int64)


def money(cents_: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(cents_, dtype=np.int64) / 100.0, 2)


# ---------------------------------------------------------------------------------------------
# Definitions, clinics, providers, operatories.

# (Category, ItemName, ItemValue, IsHidden); DefNums 69/70/71 are OD's stock payment types.
DEFINITIONS = (
    (1, "Misc Pos Adjustment", "+", False),
    (1, "Misc Neg Adjustment", "-", False),
    (1, "Write Off", "-", False),
    (1, "NSF fee", "+", False),
    (1, "Old Discount", "-", True),
    (2, "Unconfirmed", "unc", False),
    (2, "Left Msg", "lm", False),
    (2, "Appointment Confirmed", "conf", False),
    (2, "Texted", "txt", False),
    (4, "Standard Account", "", False),
    (4, "Insurance Only", "", False),
    (10, "Check", "", False),
    (10, "Cash", "", False),
    (10, "Credit Card", "", False),
    (10, "Care Credit", "", False),
    (10, "Patient Portal", "", False),
    (13, "Contact", "", False),
    (13, "Left Msg", "", False),
    (27, "ApptRelated", "APPT", False),
    (27, "Insurance", "", False),
    (27, "Financial", "FIN", False),
    (27, "Recall", "RECALL", False),
    (27, "Misc", "MISC", False),
    (29, "Prepayment", "", False),
    (35, "General", "", False),
    (35, "Hygienist", "", False),
    (35, "Orthodontics", "", False),
)
_FIXED_DEFNUMS = {(10, "Check"): 69, (10, "Cash"): 70, (10, "Credit Card"): 71}


def _stock_defnums() -> dict[tuple[int, str], int]:
    nums, counter = {}, 1
    for cat, name, _, _ in DEFINITIONS:
        fixed = _FIXED_DEFNUMS.get((cat, name))
        while fixed is None and counter in _FIXED_DEFNUMS.values():
            counter += 1
        nums[(cat, name)] = fixed if fixed is not None else counter
        counter += fixed is None
    return nums


STOCK_DEFNUMS = _stock_defnums()


def definitions_frame(office: str) -> pl.DataFrame:
    nums, orders, per_cat = [], [], {}
    for cat, name, _, _ in DEFINITIONS:
        nums.append(STOCK_DEFNUMS[(cat, name)])
        orders.append(per_cat.get(cat, 0))
        per_cat[cat] = orders[-1] + 1
    return table_frame(
        "definitions",
        len(DEFINITIONS),
        office=office,
        DefNum=np.array(nums),
        Category=np.array([d[0] for d in DEFINITIONS]),
        ItemName=pl.Series([d[1] for d in DEFINITIONS]),
        ItemValue=pl.Series([d[2] for d in DEFINITIONS]),
        ItemOrder=np.array(orders),
        IsHidden=np.array([d[3] for d in DEFINITIONS]),
    )


def _cities(spec: OfficeSpec) -> tuple[tuple[str, str, str], ...]:
    return names.CITIES_BY_TIMEZONE.get(spec.timezone, names.DEFAULT_CITIES)


def clinics_frame(spec: OfficeSpec, rng: np.random.Generator) -> pl.DataFrame:
    n = len(spec.clinics)
    cities = _cities(spec)
    city = [cities[i % len(cities)] for i in range(n)]
    return table_frame(
        "clinics",
        n,
        office=spec.key,
        ClinicNum=np.arange(1, n + 1, dtype=np.int64),
        Description=pl.Series(list(spec.clinics), dtype=pl.String),
        Abbr=pl.Series(
            ["".join(w[:3] for w in c.split()).upper() for c in spec.clinics], dtype=pl.String
        ),
        Address=pl.Series([f"{100 + 37 * i} Main St" for i in range(n)], dtype=pl.String),
        City=pl.Series([c[0] for c in city], dtype=pl.String),
        State=pl.Series([c[1] for c in city], dtype=pl.String),
        Zip=pl.Series([f"{c[2]}{10 + i:02d}" for i, c in enumerate(city)], dtype=pl.String),
        Phone=pl.Series(
            [f"{names.AREA_CODES[i]}555{rng.integers(1000, 9999)}" for i in range(n)],
            dtype=pl.String,
        ),
    )


@dataclass(frozen=True)
class Staffing:
    """Per clinic (ClinicNum 0 when the office has no clinics): how many chairs and people."""

    dentists: int
    hygienists: int


def _staffing(spec: OfficeSpec) -> dict[int, Staffing]:
    if not spec.clinics:
        return {0: Staffing(3, 3)}
    return {c: Staffing(2, 2) for c in range(1, len(spec.clinics) + 1)}


def providers_frame(spec: OfficeSpec, rng: np.random.Generator, now: int) -> pl.DataFrame:
    """Dentists then hygienists per clinic, plus one retired (Deleted, hidden) dentist."""
    staffing = _staffing(spec)
    hygienist = []
    for staff in staffing.values():
        hygienist += [False] * staff.dentists + [True] * staff.hygienists
    hygienist.append(False)
    n = len(hygienist)
    hyg = np.array(hygienist)
    male = rng.random(n) < 0.45
    first = np.where(
        male,
        rng.integers(0, len(names.MALE_FIRST), n),
        len(names.MALE_FIRST) + rng.integers(0, len(names.FEMALE_FIRST), n),
    )
    counters = np.where(hyg, np.cumsum(hyg), np.cumsum(~hyg))
    abbr = [f"{'HYG' if h else 'DOC'}{c}" for h, c in zip(hygienist, counters, strict=True)]
    retired = np.arange(n) == n - 1
    specialty = np.where(hyg, STOCK_DEFNUMS[(35, "Hygienist")], STOCK_DEFNUMS[(35, "General")])
    return table_frame(
        "providers",
        n,
        office=spec.key,
        ProvNum=np.arange(1, n + 1, dtype=np.int64),
        Abbr=pl.Series(abbr, dtype=pl.String),
        LName=pick(names.LAST_NAMES, rng.integers(0, len(names.LAST_NAMES), n)),
        FName=pick(names.MALE_FIRST + names.FEMALE_FIRST, first),
        Suffix=pl.Series(np.where(hyg, "RDH", np.where(rng.random(n) < 0.5, "DDS", "DMD"))),
        Specialty=specialty,
        IsSecondary=hyg,
        IsHidden=retired,
        NationalProvID=pl.Series(rng.integers(1_000_000_000, 1_999_999_999, n).astype(str)),
        DateTStamp=ts(now - rng.integers(30 * DAY, 700 * DAY, n)),
        ProvStatus=pl.Series(np.where(retired, "Deleted", "Active")),
    )


def operatories_frame(spec: OfficeSpec) -> pl.DataFrame:
    """One chair per provider (dentist ops carry ProvDentist, hygiene ops ProvHygienist)."""
    rows, prov = [], 1
    for clinic, staff in _staffing(spec).items():
        prefix = f"{''.join(w[0] for w in spec.clinics[clinic - 1].split())} " if clinic else ""
        for i in range(staff.dentists):
            rows.append((f"{prefix}Op {i + 1}", f"OP{i + 1}", False, prov, 0, False, clinic))
            prov += 1
        for i in range(staff.hygienists):
            rows.append((f"{prefix}Hyg {i + 1}", f"HYG{i + 1}", False, 0, prov, True, clinic))
            prov += 1
    rows.append(("Old Op", "OLD", True, 0, 0, False, max(_staffing(spec))))
    columns = list(zip(*rows, strict=True))
    return table_frame(
        "operatories",
        len(rows),
        office=spec.key,
        OperatoryNum=np.arange(1, len(rows) + 1, dtype=np.int64),
        OpName=pl.Series(columns[0], dtype=pl.String),
        Abbrev=pl.Series(columns[1], dtype=pl.String),
        IsHidden=np.array(columns[2]),
        ProvDentist=np.array(columns[3]),
        ProvHygienist=np.array(columns[4]),
        IsHygiene=np.array(columns[5]),
        ClinicNum=np.array(columns[6]),
    )


# ---------------------------------------------------------------------------------------------
# Office context: what row builders need to know about one office.


def _padded(groups: dict[int, list[int]], n_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Ragged per-clinic lists -> (table[clinic, i], counts[clinic]) for vectorised picks."""
    width = max((len(v) for v in groups.values()), default=1)
    table = np.zeros((n_rows, max(width, 1)), dtype=np.int64)
    counts = np.zeros(n_rows, dtype=np.int64)
    for clinic, values in groups.items():
        table[clinic, : len(values)] = values
        counts[clinic] = len(values)
    return table, counts


@dataclass
class OfficeCtx:
    key: str
    index: int
    now: int  # local epoch seconds
    clinic_nums: np.ndarray  # ClinicNums patients are assigned to ([0] without clinics)
    dentists: tuple[np.ndarray, np.ndarray]
    hygienists: tuple[np.ndarray, np.ndarray]
    dentist_ops: tuple[np.ndarray, np.ndarray]
    hygiene_ops: tuple[np.ndarray, np.ndarray]
    defs: dict[tuple[int, str], int]
    cities: tuple[tuple[str, str, str], ...]

    @property
    def today(self) -> int:
        return self.now // DAY

    def defnum(self, category: int, name: str) -> int:
        return self.defs[(category, name)]

    def defnums(self, category: int, pool: tuple[str, ...], idx: np.ndarray) -> np.ndarray:
        return np.array([self.defnum(category, n) for n in pool], dtype=np.int64)[idx]


def office_context(
    spec: OfficeSpec, index: int, now: int, operatories: pl.DataFrame, definitions: pl.DataFrame
) -> OfficeCtx:
    """Derive staffing from the office's own operatory/definition rows (works for a live world)."""
    ops = operatories.filter(~pl.col("IsHidden"))
    n_rows = len(spec.clinics) + 1

    def group(frame: pl.DataFrame, column: str) -> tuple[np.ndarray, np.ndarray]:
        grouped: dict[int, list[int]] = {}
        for clinic, value in frame.select("ClinicNum", column).iter_rows():
            grouped.setdefault(clinic, []).append(value)
        return _padded(grouped, n_rows)

    dentist_ops = ops.filter(~pl.col("IsHygiene"))
    hygiene_ops = ops.filter(pl.col("IsHygiene"))
    defs = {
        (cat, name): num
        for cat, name, num in definitions.select("Category", "ItemName", "DefNum").iter_rows()
    }
    clinic_nums = np.arange(1, n_rows, dtype=np.int64) if spec.clinics else np.zeros(1, np.int64)
    return OfficeCtx(
        key=spec.key,
        index=index,
        now=now,
        clinic_nums=clinic_nums,
        dentists=group(dentist_ops, "ProvDentist"),
        hygienists=group(hygiene_ops, "ProvHygienist"),
        dentist_ops=group(dentist_ops, "OperatoryNum"),
        hygiene_ops=group(hygiene_ops, "OperatoryNum"),
        defs=defs,
        cities=_cities(spec),
    )


def pick_per_clinic(
    rng: np.random.Generator, staff: tuple[np.ndarray, np.ndarray], clinic: np.ndarray
) -> np.ndarray:
    table, counts = staff
    return table[clinic, (rng.random(len(clinic)) * counts[clinic]).astype(np.int64)]


# ---------------------------------------------------------------------------------------------
# Persons and households (ground truth).

HOUSEHOLD_SIZE_WEIGHTS = (0.28, 0.30, 0.17, 0.15, 0.07, 0.03)
_PHONE_BLOCK = 8_000_000  # seven-digit numbers whose exchange starts 2-9
_PHONE_SPACE = len(names.AREA_CODES) * _PHONE_BLOCK
_PHONE_MULTIPLIER = 2_654_435_761  # odd, not divisible by 3 or 5: a bijection mod the space


def household_phones(household_id: np.ndarray, salt: int) -> pl.Series:
    """Unique 10-digit phone per household: an affine permutation of the number space."""
    slot = (household_id.astype(np.int64) * _PHONE_MULTIPLIER + salt) % _PHONE_SPACE
    area = pick(names.AREA_CODES, slot // _PHONE_BLOCK)
    return concat(area, pl.Series(slot % _PHONE_BLOCK + 2_000_000).cast(pl.String))


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


# ---------------------------------------------------------------------------------------------
# Patient records: one office's view of persons, with front-desk noise.

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
    work_digits = pl.lit(household_phones(rng.integers(0, _PHONE_SPACE, n), 17))
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


# ---------------------------------------------------------------------------------------------
# Appointments.

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
        descript=_pool_index(rng, kind, _DESCRIPT_OFFSET, _DESCRIPT_COUNT),
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


def business_time(rng: np.random.Generator, day: np.ndarray) -> np.ndarray:
    """A moment during front-desk hours (8:00-17:00) on ``day``."""
    return day * DAY + 8 * HOUR + rng.integers(0, 9 * HOUR, len(day))


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


# ---------------------------------------------------------------------------------------------
# Per-office generation.


def _seed(spec: WorldSpec, *parts: int) -> np.random.Generator:
    return np.random.default_rng([spec.seed, *parts])


def generate_world(spec: WorldSpec) -> World:
    """Build every table for ``spec`` (deterministic in ``spec.seed``)."""
    offices = spec.offices
    today_utc = int((spec.now_utc.replace(tzinfo=None) - _EPOCH).total_seconds()) // DAY
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
        cities=[_cities(o) for o in offices],
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


def phone_salt(spec: WorldSpec) -> int:
    """Offset of the household phone permutation (shared by generation and evolution)."""
    return spec.seed * 7919


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
    appts, charge = _appointment_history(_seed(spec, 20 + index), ctx, rec, window_start)
    ledger = _ledger(_seed(spec, 30 + index), ctx, rec, appts, charge, window_start)
    commlogs = _commlogs(_seed(spec, 40 + index), ctx, rec, appts, window_start)
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


def assign_keys(created: np.ndarray, first: int) -> np.ndarray:
    """Primary keys in creation order (ties keep generation order), starting at ``first``."""
    order = np.argsort(created, kind="stable")
    keys = np.empty(len(created), dtype=np.int64)
    keys[order] = np.arange(first, first + len(created))
    return keys


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


def _appointment_history(rng, ctx: OfficeCtx, rec: Records, window_start: int):
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
    planned.descript = _pool_index(rng, planned.kind, _DESCRIPT_OFFSET, _DESCRIPT_COUNT)
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


# ---------------------------------------------------------------------------------------------
# Ledger: payments with splits, adjustments.

PAY_TYPES = ("Check", "Cash", "Credit Card", "Care Credit", "Patient Portal")
VISIT_PAY_WEIGHTS = (0.15, 0.17, 0.6, 0.08, 0.0)
LATER_PAY_WEIGHTS = (0.4, 0.0, 0.1, 0.0, 0.5)
AT_VISIT, LATER, PREPAY = range(3)
PAY_NOTES = ("", "", "", "", "Paid at checkout", "Copay", "Statement payment", "Thank you!")
ADJ_TYPES = ("Misc Pos Adjustment", "Misc Neg Adjustment", "Write Off", "NSF fee")
ADJ_SIGN = np.array([1, -1, -1, 1])  # matches each type's ItemValue
ADJ_NOTES = {
    "Misc Pos Adjustment": ("Balance correction", "Late fee"),
    "Misc Neg Adjustment": ("Courtesy discount", "Senior discount", "Family discount"),
    "Write Off": ("Insurance write-off", "PPO write-off", "Small balance write-off"),
    "NSF fee": ("Returned check fee",),
}


@dataclass
class Family:
    """PatNums grouped by guarantor, for picking other members of a patient's family."""

    guarantor: np.ndarray
    order: np.ndarray
    start: np.ndarray
    size: np.ndarray

    @staticmethod
    def of(guarantor: np.ndarray) -> Family:
        order = np.argsort(guarantor, kind="stable")
        size = np.bincount(guarantor, minlength=len(guarantor) + 1)
        return Family(guarantor, order, np.cumsum(size) - size, size)

    def member(self, rng: np.random.Generator, pat: np.ndarray) -> np.ndarray:
        g = self.guarantor[pat - 1]
        pos = self.start[g] + (rng.random(len(pat)) * self.size[g]).astype(np.int64)
        return self.order[pos] + 1


@dataclass
class Ledger:
    payments: pl.DataFrame
    paysplits: pl.DataFrame
    adjustments: pl.DataFrame
    split_pat: np.ndarray
    split_cents: np.ndarray
    split_stamp: np.ndarray
    adj_pat: np.ndarray
    adj_cents: np.ndarray
    adj_stamp: np.ndarray


@dataclass
class PaymentDraft:
    """Payments to build: who, for which provider/clinic, when, how much and how."""

    pat: np.ndarray
    prov: np.ndarray
    provhyg: np.ndarray
    clinic: np.ndarray
    entry: np.ndarray  # local epoch seconds the payment was entered
    cents: np.ndarray
    channel: np.ndarray

    @staticmethod
    def concat(parts: list[PaymentDraft]) -> PaymentDraft:
        return PaymentDraft(
            **{k: np.concatenate([vars(p)[k] for p in parts]) for k in vars(parts[0])}
        )


def visit_payments(rng, a: Appts, idx: np.ndarray, charge: np.ndarray, now: int) -> PaymentDraft:
    """Most patients pay part of the bill at checkout, some pay the rest by statement later."""
    pay = idx[(charge[idx] > 0) & (rng.random(len(idx)) < 0.7)]
    checkout = np.where(
        a.dismissed[pay] != NO_TIME, a.dismissed[pay], a.start[pay] + a.duration[pay]
    )
    at_visit = cents(money(charge[pay]) * rng.uniform(0.4, 1.0, len(pay)))
    later = idx[(charge[idx] > 0) & (rng.random(len(idx)) < 0.25)]
    later_when = business_time(
        rng, weekday_shift(a.start[later] // DAY + rng.integers(14, 46, len(later)))
    )
    keep = later_when <= now
    later = later[keep]
    return PaymentDraft(
        pat=np.r_[a.pat[pay], a.pat[later]],
        prov=np.r_[a.prov[pay], a.prov[later]],
        provhyg=np.r_[a.provhyg[pay], a.provhyg[later]],
        clinic=np.r_[a.clinic[pay], a.clinic[later]],
        entry=np.r_[
            np.minimum(checkout + rng.integers(MINUTE, 15 * MINUTE, len(pay)), now),
            later_when[keep],
        ],
        cents=np.maximum(
            np.r_[at_visit, cents(money(charge[later]) * rng.uniform(0.3, 0.9, len(later)))], 500
        ),
        channel=np.r_[np.full(len(pay), AT_VISIT), np.full(len(later), LATER)],
    )


def prepayments(
    rng, ctx: OfficeCtx, rec: Records, pat: np.ndarray, entry: np.ndarray
) -> PaymentDraft:
    """Money paid ahead of treatment: one unearned split with no provider."""
    n = len(pat)
    return PaymentDraft(
        pat=pat,
        prov=np.zeros(n, np.int64),
        provhyg=np.zeros(n, np.int64),
        clinic=rec.clinic[pat - 1],
        entry=entry,
        cents=cents(rng.uniform(100, 1000, n)),
        channel=np.full(n, PREPAY),
    )


def deposit_time(pay_day: np.ndarray) -> np.ndarray:
    """Checks and cash go to the bank in a 16:30 batch on the next business day."""
    return weekday_shift(pay_day + 1) * DAY + 16 * HOUR + 30 * MINUTE


def build_payments(
    rng: np.random.Generator,
    ctx: OfficeCtx,
    family: Family,
    d: PaymentDraft,
    *,
    first_paynum: int,
    first_splitnum: int,
    deposits_until: int,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Payment rows and their paysplits (PayAmt == sum of SplitAmt, to the cent).

    Checks and cash whose bank deposit ran by ``deposits_until`` carry its DepositNum and stamp.
    """
    n = len(d.pat)
    order = np.argsort(d.entry, kind="stable")
    d = PaymentDraft(**{k: v[order] for k, v in vars(d).items()})
    paynum = np.arange(first_paynum, first_paynum + n, dtype=np.int64)
    payer = np.where(
        (d.channel != PREPAY) & (rng.random(n) < 0.6), family.guarantor[d.pat - 1], d.pat
    )
    weights = np.where(d.channel[:, None] == LATER, LATER_PAY_WEIGHTS, VISIT_PAY_WEIGHTS)
    cum = np.cumsum(weights, axis=1)
    paytype = (rng.random(n)[:, None] * cum[:, -1:] > cum).sum(axis=1)
    day = d.entry // DAY
    office_kind = paytype < 2  # checks and cash get deposited
    deposit_at = deposit_time(day)
    deposited = office_kind & (deposit_at <= deposits_until)
    deposit_num = np.where(deposited, 1 + dense_rank(deposit_at, deposited), 0)
    portal = paytype == 4
    terminal = (paytype == 2) & (rng.random(n) < 0.3)
    source = np.where(portal, np.where(rng.random(n) < 0.6, 2, 3), np.where(terminal, 1, 0))
    status = np.where(portal, np.where(d.entry > ctx.now - DAY, 2, 1), 0)
    splits = _splits(rng, family, d, paynum)
    payments = table_frame(
        "payments",
        n,
        office=ctx.key,
        PayNum=paynum,
        PayType=ctx.defnums(10, PAY_TYPES, paytype),
        PayDate=days_to_dates(day),
        PayAmt=money(d.cents),
        CheckNum=_check_numbers(rng, paytype == 0),
        BankBranch=pl.select(
            pl.when(pl.lit(paytype == 0))
            .then(pl.lit(pick(names.BANKS, rng.integers(0, len(names.BANKS), n))))
            .otherwise(pl.lit(""))
        ).to_series(),
        PayNote=pick(PAY_NOTES, rng.integers(0, len(PAY_NOTES), n)),
        PatNum=payer,
        ClinicNum=d.clinic,
        DateEntry=days_to_dates(day),
        DepositNum=deposit_num,
        IsRecurringCC=(paytype == 2) & (rng.random(n) < 0.03),
        SecDateTEdit=ts(np.where(deposited, deposit_at, d.entry)),
        PaymentSource=pick(
            ("None", "XServer", "XWeb", "PayConnect", "PaySimple", "CareCredit", "API"), source
        ),
        ProcessStatus=pick(("OfficeProcessed", "OnlineProcessed", "OnlinePending"), status),
    )
    return payments, table_frame(
        "paysplits",
        len(splits["pat"]),
        office=ctx.key,
        SplitNum=np.arange(first_splitnum, first_splitnum + len(splits["pat"])),
        **_split_columns(ctx, splits),
    )


def dense_rank(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    ranks = np.zeros(len(values), dtype=np.int64)
    uniq = np.unique(values[mask])
    ranks[mask] = np.searchsorted(uniq, values[mask])
    return ranks


def _check_numbers(rng, is_check: np.ndarray) -> pl.Series:
    nums = pl.Series(rng.integers(1001, 9999, len(is_check))).cast(pl.String)
    return pl.select(pl.when(pl.lit(is_check)).then(nums).otherwise(pl.lit(""))).to_series()


def _splits(rng, family: Family, d: PaymentDraft, paynum: np.ndarray) -> dict:
    """1-3 splits per payment: extra splits go to family members or the hygienist."""
    n = len(paynum)
    k = np.where(d.channel == PREPAY, 1, choose(rng, n, (0.8, 0.15, 0.05)) + 1)
    k = np.minimum(k, np.maximum(d.cents // 100, 1))
    owner = np.repeat(np.arange(n), k)
    nth = np.arange(len(owner)) - np.repeat(np.cumsum(k) - k, k)
    share = rng.uniform(0.2, 1.0, len(owner))
    share_sum = np.bincount(owner, weights=share, minlength=n)
    part = np.floor(d.cents[owner] * share / share_sum[owner]).astype(np.int64)
    last = np.ones(len(owner), dtype=bool)
    last[:-1] = owner[1:] != owner[:-1]
    part[last] += d.cents - np.bincount(owner, weights=part, minlength=n).astype(np.int64)
    extra = nth > 0
    member = family.member(rng, d.pat[owner])
    to_hyg = extra & (member == d.pat[owner]) & (d.provhyg[owner] > 0)
    return {
        "pat": np.where(extra, member, d.pat[owner]),
        "cents": part,
        "prov": np.where(to_hyg, d.provhyg[owner], d.prov[owner]),
        "paynum": paynum[owner],
        "day": d.entry[owner] // DAY,
        "entry": d.entry[owner],
        "clinic": d.clinic[owner],
        "prepay": d.channel[owner] == PREPAY,
    }


def _split_columns(ctx: OfficeCtx, s: dict) -> dict:
    return {
        "SplitAmt": money(s["cents"]),
        "PatNum": s["pat"],
        "PayNum": s["paynum"],
        "ProvNum": s["prov"],
        "DatePay": days_to_dates(s["day"]),
        "DateEntry": days_to_dates(s["day"]),
        "UnearnedType": np.where(s["prepay"], ctx.defnum(29, "Prepayment"), 0),
        "ClinicNum": s["clinic"],
        "SecDateTEdit": ts(s["entry"]),
    }


@dataclass
class AdjustmentDraft:
    pat: np.ndarray
    adjtype: np.ndarray  # index into ADJ_TYPES
    when: np.ndarray  # local epoch seconds entered
    cents: np.ndarray  # positive; the sign comes from the type
    prov: np.ndarray
    clinic: np.ndarray
    proc_day: np.ndarray  # -1 = no procedure date

    @staticmethod
    def concat(parts: list[AdjustmentDraft]) -> AdjustmentDraft:
        return AdjustmentDraft(
            **{k: np.concatenate([vars(p)[k] for p in parts]) for k in vars(parts[0])}
        )


def visit_adjustments(rng, a: Appts, idx: np.ndarray, now: int) -> AdjustmentDraft:
    """Write-offs on treatment, courtesy discounts and the odd positive correction."""
    n = len(idx)
    r = rng.random(n)
    kind = np.where(
        a.kind[idx] == TREATMENT,
        np.where(r < 0.1, 2, np.where(r < 0.13, 1, -1)),
        np.where(r < 0.03, 1, np.where(r < 0.04, 0, -1)),
    )
    keep = kind >= 0
    idx, kind = idx[keep], kind[keep]
    day = a.start[idx] // DAY + np.where(kind == 2, rng.integers(0, 31, len(idx)), 0)
    when = np.minimum(business_time(rng, weekday_shift(day)), now)
    amount = np.select(
        [kind == 2, kind == 1],
        [rng.uniform(5, 200, len(idx)), rng.uniform(10, 100, len(idx))],
        rng.uniform(5, 50, len(idx)),
    )
    when = np.maximum(when, a.stamp[idx])
    return AdjustmentDraft(
        pat=a.pat[idx],
        adjtype=kind,
        when=np.minimum(when, now),
        cents=cents(amount),
        prov=a.prov[idx],
        clinic=a.clinic[idx],
        proc_day=np.where(kind == 2, a.start[idx] // DAY, -1),
    )


def nsf_fees(rng, rec: Records, pat: np.ndarray, pay_day: np.ndarray, now: int) -> AdjustmentDraft:
    """A bounced check costs a flat fee a week or so later."""
    when = business_time(rng, weekday_shift(pay_day + rng.integers(3, 11, len(pat))))
    keep = when <= now
    n = keep.sum()
    return AdjustmentDraft(
        pat=pat[keep],
        adjtype=np.full(n, 3),
        when=when[keep],
        cents=np.where(rng.random(n) < 0.5, 2500, 3500),
        prov=rec.priprov[pat[keep] - 1],
        clinic=rec.clinic[pat[keep] - 1],
        proc_day=np.full(n, -1),
    )


def build_adjustments(rng, ctx: OfficeCtx, d: AdjustmentDraft, first_adjnum: int) -> pl.DataFrame:
    """Adjustment rows numbered in entry order (so rows come out in AdjNum order)."""
    d = AdjustmentDraft(**{k: v[np.argsort(d.when, kind="stable")] for k, v in vars(d).items()})
    n = len(d.pat)
    notes = [ADJ_NOTES[t] for t in ADJ_TYPES]
    flat = tuple(s for pool in notes for s in pool)
    sizes = np.array([len(p) for p in notes])
    note = (np.cumsum(sizes) - sizes)[d.adjtype] + (rng.random(n) * sizes[d.adjtype]).astype(int)
    day = d.when // DAY
    return table_frame(
        "adjustments",
        n,
        office=ctx.key,
        AdjNum=np.arange(first_adjnum, first_adjnum + n, dtype=np.int64),
        AdjDate=days_to_dates(day),
        AdjAmt=money(signed_adjustment_cents(d)),
        PatNum=d.pat,
        AdjType=ctx.defnums(1, ADJ_TYPES, d.adjtype),
        ProvNum=d.prov,
        AdjNote=pick(flat, note),
        ProcDate=days_to_dates(np.maximum(d.proc_day, 0), d.proc_day < 0),
        DateEntry=days_to_dates(day),
        ClinicNum=d.clinic,
        SecUserNumEntry=rng.integers(1, 7, n),
        SecDateTEdit=ts(d.when),
    )


def signed_adjustment_cents(d: AdjustmentDraft) -> np.ndarray:
    return d.cents * ADJ_SIGN[d.adjtype]


def _ledger(rng, ctx: OfficeCtx, rec: Records, a: Appts, charge, window_start) -> Ledger:
    visits = np.flatnonzero((a.status == COMPLETE) & (a.start // DAY >= window_start))
    family = Family.of(rec.guarantor)
    pre = np.flatnonzero((rec.status == PATIENT) & (rng.random(len(rec.patnum)) < 0.02))
    pre_when = business_time(
        rng,
        weekday_shift(
            uniform_int(rng, np.maximum(window_start, rec.created[pre] // DAY + 1), ctx.today - 1)
        ),
    )
    pre_when = np.minimum(pre_when, ctx.now - MINUTE)
    draft = PaymentDraft.concat(
        [
            visit_payments(rng, a, visits, charge, ctx.now),
            prepayments(rng, ctx, rec, rec.patnum[pre], pre_when),
        ]
    )
    payments, paysplits = build_payments(
        rng, ctx, family, draft, first_paynum=1, first_splitnum=1, deposits_until=ctx.now
    )
    checks = payments.filter(pl.col("PayType") == ctx.defnum(10, "Check"))
    bounced = rng.random(len(checks)) < 0.03
    adj = AdjustmentDraft.concat(
        [
            visit_adjustments(rng, a, visits, ctx.now),
            nsf_fees(
                rng,
                rec,
                checks["PatNum"].to_numpy()[bounced],
                checks["PayDate"].cast(pl.Int64).to_numpy()[bounced],
                ctx.now,
            ),
        ]
    )
    adjustments = build_adjustments(rng, ctx, adj, 1)
    return Ledger(
        payments=payments,
        paysplits=paysplits,
        adjustments=adjustments,
        split_pat=paysplits["PatNum"].to_numpy(),
        split_cents=cents(paysplits["SplitAmt"].to_numpy()),
        split_stamp=seconds_of(paysplits["SecDateTEdit"]),
        adj_pat=adj.pat,
        adj_cents=signed_adjustment_cents(adj),
        adj_stamp=adj.when,
    )


def seconds_of(series: pl.Series) -> np.ndarray:
    return series.dt.epoch("s").to_numpy()


# ---------------------------------------------------------------------------------------------
# Commlogs.

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


def _commlogs(rng, ctx: OfficeCtx, rec: Records, a: Appts, window_start):
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


# ---------------------------------------------------------------------------------------------
# Final patient rows: balances, first visit and last-change stamps.


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


def family_totals(guarantor: np.ndarray, est_cents: np.ndarray) -> np.ndarray:
    """BalTotal lives on the guarantor (sum of the family); other members show 0."""
    n = len(guarantor)
    total = np.bincount(guarantor - 1, weights=est_cents, minlength=n).astype(np.int64)
    return np.where(guarantor == np.arange(1, n + 1), total, 0)


def first_complete_days(a: Appts, n: int) -> np.ndarray:
    """DateFirstVisit as day numbers (-1 = never completed a visit)."""
    done = a.status == COMPLETE
    first = np.full(n, np.iinfo(np.int64).max)
    np.minimum.at(first, a.pat[done] - 1, a.start[done] // DAY)
    return np.where(first == np.iinfo(np.int64).max, -1, first)
