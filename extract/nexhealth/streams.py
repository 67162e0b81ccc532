"""What we read from NexHealth, and how each entity is read.

A connection is one institution (``subdomain``); records live in its locations, so every stream
but ``locations`` is read location by location (the connection's ``location_ids``, or every
location GET /locations lists when that is empty).

- ``snapshot``: small lists read whole every run: locations (GET /locations lists institutions,
  each with its locations; we land the location objects) and appointment types.
- ``incremental``: ``updated_since`` (records updated at or after a UTC time) with cursor paging:
  providers, operatories, patients, appointments, payments. How the next cursor is chosen is in
  ``extract.nexhealth.connector``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from extract.nexhealth import contracts

Kind = Literal["snapshot", "incremental"]


@dataclass(frozen=True)
class Stream:
    entity: str
    path: str
    kind: Kind
    contract: type[contracts._Record]
    per_location: bool = True
    # GET /appointments also requires a start/end window on start_time.
    window: bool = False


STREAMS: dict[str, Stream] = {
    s.entity: s
    for s in (
        Stream("locations", "/locations", "snapshot", contracts.Location, per_location=False),
        Stream("appointment_types", "/appointment_types", "snapshot", contracts.AppointmentType),
        Stream("providers", "/providers", "incremental", contracts.Provider),
        Stream("operatories", "/operatories", "incremental", contracts.Operatory),
        Stream("patients", "/patients", "incremental", contracts.Patient),
        Stream("appointments", "/appointments", "incremental", contracts.Appointment, window=True),
        Stream("payments", "/payments", "incremental", contracts.Payment),
    )
}

# Extraction order within one connection (no entity reads another's landing).
ENTITIES: tuple[str, ...] = tuple(STREAMS)
