"""Reference tables of one office and the ``OfficeCtx`` row builders derive from them.

Definitions (with OD's stock DefNums), clinics, providers and operatories are generated once per
office from its ``OfficeSpec``. ``office_context`` reads an office's own operatory and definition
rows back into per-clinic staffing arrays (``OfficeCtx``), so it works for a freshly generated
world and for a live one being advanced by ``simulators.evolve``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from simulators import names
from simulators.generate.arrays import DAY, pick, ts
from simulators.generate.schemas import table_frame
from simulators.world import OfficeSpec

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


def office_cities(spec: OfficeSpec) -> tuple[tuple[str, str, str], ...]:
    return names.CITIES_BY_TIMEZONE.get(spec.timezone, names.DEFAULT_CITIES)


def clinics_frame(spec: OfficeSpec, rng: np.random.Generator) -> pl.DataFrame:
    n = len(spec.clinics)
    cities = office_cities(spec)
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
        cities=office_cities(spec),
    )


def pick_per_clinic(
    rng: np.random.Generator, staff: tuple[np.ndarray, np.ndarray], clinic: np.ndarray
) -> np.ndarray:
    table, counts = staff
    return table[clinic, (rng.random(len(clinic)) * counts[clinic]).astype(np.int64)]
