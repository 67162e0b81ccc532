"""What NexHealth holds that the world does not: its ids, institutions, locations, syncs and
appointment types. Every function here is pure and deterministic in the world's spec, so ids
stay stable while the world advances.

Ids: a world office is one NexHealth location (one sync of one PMS database). Its location id is
``LOCATION_ID_BASE + the office's position in the world spec``. A record's NexHealth id is
``location_id * ID_SPACE + the PMS's own key`` (PatNum, AptNum, ...): unique within the
institution, as NexHealth ids are, reversible (tests map a record back to the world), and within
the int32 range the OAS gives most ids (up to 10 million records per location).
An institution's id is a hash of its subdomain (the world's ``customer_key``).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from simulators.generate.reference import office_cities
from simulators.world import OfficeSpec, World

PMS = "nexhealth"
LOCATION_ID_BASE = 100
ID_SPACE = 10**7

# (name, minutes) per location. Which one an appointment gets: see wire.appointments_frame.
APPOINTMENT_TYPES: tuple[tuple[str, int], ...] = (
    ("New Patient Exam", 90),
    ("Hygiene Recall", 60),
    ("Restorative Treatment", 60),
)
NEW_PATIENT_TYPE, HYGIENE_TYPE, TREATMENT_TYPE = 1, 2, 3


@dataclass(frozen=True)
class Location:
    """One NexHealth location: a world office reached through one NexHealth sync."""

    id: int
    office: str  # the world office key
    name: str
    timezone: str
    subdomain: str
    institution_id: int
    ehr: str  # the PMS the sync reads, e.g. "dentrix"
    onboarded_at: datetime  # UTC: when the sync was installed (created_at of reference rows)

    @property
    def foreign_id_type(self) -> str:
        # NexHealth names the integrated system in every record's foreign_id_type, e.g.
        # "msg-dentrix-DataSource-100" (OAS example); our data source number is the location id.
        return f"msg-{self.ehr}-DataSource-{self.id}"


def institution_id(subdomain: str) -> int:
    return 100 + zlib.crc32(subdomain.encode()) % 900_000


def institution_name(subdomain: str) -> str:
    return " ".join(part.capitalize() for part in subdomain.split("-"))


def nex_id(location_id: int, native: int) -> int:
    return location_id * ID_SPACE + native


def native_key(nexhealth_id: int) -> tuple[int, int]:
    """(location_id, the PMS's own key) of a NexHealth id."""
    return divmod(nexhealth_id, ID_SPACE)


def locations(world: World, ehr_by_office: dict[str, str], default_ehr: str) -> list[Location]:
    """Every NexHealth location of the world, in id order."""
    onboarded = world.spec.now_utc - timedelta(days=world.spec.history_days)
    return [
        Location(
            id=LOCATION_ID_BASE + index,
            office=office.key,
            name=office.name,
            timezone=office.timezone,
            subdomain=office.customer_key,
            institution_id=institution_id(office.customer_key),
            ehr=ehr_by_office.get(office.key, default_ehr),
            onboarded_at=onboarded,
        )
        for index, office in enumerate(world.spec.offices)
        if office.pms == PMS
    ]


def location_address(office: OfficeSpec, location_id: int) -> dict[str, str]:
    city, state, zip3 = office_cities(office)[0]
    return {
        "street_address": f"{100 + location_id % 900} Main St",
        "city": city,
        "state": state,
        "zip_code": f"{zip3}{location_id % 100:02d}",
        "phone_number": f"555{zlib.crc32(office.key.encode()) % 10_000_000:07d}",
    }


def appointment_types(location: Location) -> list[dict]:
    return [
        {
            "id": nex_id(location.id, number),
            "name": name,
            "parent_type": "Location",
            "parent_id": location.id,
            "minutes": minutes,
            "bookable_online": number != TREATMENT_TYPE,
        }
        for number, (name, minutes) in enumerate(APPOINTMENT_TYPES, start=1)
    ]
