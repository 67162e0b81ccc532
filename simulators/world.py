"""The seeded world: one consistent truth for a dental group that every simulator serves.

Tables hold the practice-management records exactly as the PMS stores them (Open Dental column
names, native Python/polars types, office-local naive datetimes) plus a ``office`` column naming
the Open Dental database (= connection) the row lives in. Ground truth that no API exposes (which
patient records are the same person, households, why an appointment broke) lives in tables whose
names start with ``truth_``.

The world is shared between a simulator thread and a test thread, so every read or mutation of
``tables`` happens under ``lock``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl


@dataclass(frozen=True)
class OfficeSpec:
    """One practice-management database (an office) and the PMS that holds it.

    ``pms`` says which simulator serves the office: "opendental" (``customer_key`` is its ODFHIR
    customer key), "carestack" or "nexhealth" (the credential that simulator accepts). Records
    are generated the same way for every PMS, in Open Dental's shape; each simulator renders
    them in its own vendor's wire format. ``clinics`` empty means the office has no clinics.
    """

    key: str
    name: str
    timezone: str
    customer_key: str
    clinics: tuple[str, ...] = ()
    pms: str = "opendental"


@dataclass(frozen=True)
class WorldSpec:
    seed: int = 7
    n_persons: int = 400
    offices: tuple[OfficeSpec, ...] = (
        OfficeSpec(
            key="od_riverside",
            name="Riverside Dental",
            timezone="America/New_York",
            customer_key="cust-riverside",
            clinics=("Riverside Family", "Riverside Kids"),
        ),
        OfficeSpec(
            key="od_lakeside",
            name="Lakeside Smiles",
            timezone="America/Chicago",
            customer_key="cust-lakeside",
        ),
        # Two CareStack locations under one CareStack account (customer_key = account id).
        OfficeSpec(
            key="cs_hillcrest",
            name="Hillcrest Family Dentistry",
            timezone="America/Denver",
            customer_key="cs-account-1001",
            pms="carestack",
        ),
        OfficeSpec(
            key="cs_bayview",
            name="Bayview Dental Care",
            timezone="America/Los_Angeles",
            customer_key="cs-account-1001",
            pms="carestack",
        ),
        # Two Dentrix offices reached through NexHealth (customer_key = institution subdomain).
        OfficeSpec(
            key="nx_oakridge",
            name="Oakridge Dental Group",
            timezone="America/New_York",
            customer_key="demo-dental-group",
            pms="nexhealth",
        ),
        OfficeSpec(
            key="nx_pinegrove",
            name="Pine Grove Dentistry",
            timezone="America/Chicago",
            customer_key="demo-dental-group",
            pms="nexhealth",
        ),
    )
    # History covered by generated appointments/payments, ending at ``now_utc``.
    history_days: int = 365
    now_utc: datetime = datetime(2026, 11, 1, 15, 0, tzinfo=UTC)


@dataclass
class World:
    spec: WorldSpec
    now_utc: datetime
    tables: dict[str, pl.DataFrame]
    lock: threading.RLock = field(default_factory=threading.RLock)

    def office(self, key: str) -> OfficeSpec:
        for office in self.spec.offices:
            if office.key == key:
                return office
        raise KeyError(f"unknown office {key!r}")

    def office_now(self, key: str) -> datetime:
        """The office's wall clock (naive, local), as Open Dental would stamp a change."""
        tz = ZoneInfo(self.office(key).timezone)
        return self.now_utc.astimezone(tz).replace(tzinfo=None, microsecond=0)

    def offices_on(self, pms: str) -> list[OfficeSpec]:
        return [office for office in self.spec.offices if office.pms == pms]

    def table(self, name: str, office: str | None = None) -> pl.DataFrame:
        with self.lock:
            frame = self.tables[name]
        return frame if office is None else frame.filter(pl.col("office") == office)

    def export_truth(self, directory: Path) -> None:
        """Write every table (API-visible and ``truth_*``) to ``directory/<table>.parquet``."""
        directory.mkdir(parents=True, exist_ok=True)
        with self.lock:
            for name, frame in self.tables.items():
                frame.write_parquet(directory / f"{name}.parquet")

    def advance(self, delta: timedelta, *, seed: int | None = None) -> dict[str, int]:
        """Move the clock forward and create/edit records stamped inside the new interval.

        Returns counts of created and edited rows per table.
        """
        from simulators.evolve import advance_world

        return advance_world(self, delta, seed=seed)
