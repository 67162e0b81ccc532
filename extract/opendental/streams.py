"""What we read from Open Dental, and how each entity can be read incrementally.

Open Dental offers different change filters per resource (vendor-apis.md section 1.2):

- ``stamped``: ``DateTStamp`` (rows changed at or after a server time): patients, appointments,
  commlogs, providers. The next cursor is the server's clock at the start of the run
  (``serverDateTime`` on the first rows), re-read with an overlap window.
- ``dated``: payments only filter by ``DateEntry`` (a date, on or after).
- ``children``: paysplits and adjustments have no change filter. Incrementally we ask for the
  children of parents that landed since the last run (paysplits of new payments; adjustments of
  patients whose row changed, which Open Dental stamps when their balance changes). A full sync
  reads all paysplits, and the adjustments of every landed patient (the API requires PatNum).
- ``snapshot``: small reference lists read whole every time: clinics, operatories, definitions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from extract.opendental import contracts

Kind = Literal["stamped", "dated", "children", "snapshot"]


@dataclass(frozen=True)
class Stream:
    entity: str
    path: str
    key: str
    kind: Kind
    contract: type[contracts._Record]
    cursor_param: str | None = None
    # For children: (parent entity, parent key field, query parameter naming the parent).
    parent: tuple[str, str, str] | None = None
    # Fixed query parameters (e.g. include hidden definitions old records still point at).
    params: tuple[tuple[str, str], ...] = ()


STREAMS: dict[str, Stream] = {
    s.entity: s
    for s in (
        Stream(
            "definitions",
            "/definitions",
            "DefNum",
            "snapshot",
            contracts.Definition,
            params=(("includeHidden", "true"),),
        ),
        Stream("clinics", "/clinics", "ClinicNum", "snapshot", contracts.Clinic),
        Stream("operatories", "/operatories", "OperatoryNum", "snapshot", contracts.Operatory),
        Stream(
            "providers",
            "/providers",
            "ProvNum",
            "stamped",
            contracts.Provider,
            cursor_param="DateTStamp",
        ),
        Stream(
            "patients",
            "/patients/Simple",
            "PatNum",
            "stamped",
            contracts.Patient,
            cursor_param="DateTStamp",
        ),
        Stream(
            "appointments",
            "/appointments",
            "AptNum",
            "stamped",
            contracts.Appointment,
            cursor_param="DateTStamp",
        ),
        Stream(
            "commlogs",
            "/commlogs",
            "CommlogNum",
            "stamped",
            contracts.Commlog,
            cursor_param="DateTStamp",
        ),
        Stream(
            "payments", "/payments", "PayNum", "dated", contracts.Payment, cursor_param="DateEntry"
        ),
        Stream(
            "paysplits",
            "/paysplits",
            "SplitNum",
            "children",
            contracts.PaySplit,
            parent=("payments", "PayNum", "PayNum"),
        ),
        Stream(
            "adjustments",
            "/adjustments",
            "AdjNum",
            "children",
            contracts.Adjustment,
            parent=("patients", "PatNum", "PatNum"),
        ),
    )
}

# Extraction order within one connection: parents before the children that read them.
ENTITIES: tuple[str, ...] = tuple(STREAMS)
