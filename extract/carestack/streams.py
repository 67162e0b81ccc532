"""What we read from CareStack, and how each entity is read (vendor-apis.md section 2).

- ``snapshot``: reference lists read whole every time (``GET locations``, ``appointment-status``,
  ``providers``, ``operatories``). The status list is the practice's own, so a status added in
  CareStack appears with the next sync.
- ``sync``: ``GET sync/<feed>?modifiedSince=<ISO>&continueToken=<opaque>`` answers
  ``{results, continueToken}``. Incrementally we ask from the last cursor minus the overlap; the
  next cursor is the largest ``lastModifiedOn`` seen (never later than the server's own clock, so
  re-reading from it minus the overlap also catches late commits). The continueToken is the
  run's resume token: a crashed run continues on the page after its last durable batch.
  Online appointment requests and CS Conversation calls have unconfirmed endpoints: their paths
  are connection settings and they are assumed to page like the sync feeds.
- ``matches``: ``location_matches`` is no API resource: each run reads ``GET locations`` and
  matches CareStack's locations to the organisation's (``extract.carestack.locations``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from chairside.config import CareStackConnection
from extract.carestack import contracts

Kind = Literal["snapshot", "sync", "matches"]


@dataclass(frozen=True)
class Stream:
    entity: str
    path: str  # under base_url
    key: str
    kind: Kind
    contract: type[contracts._Record] | None  # None: our own record (location_matches)
    # For the unconfirmed endpoints: the connection setting that holds the path instead.
    path_setting: str | None = None

    def path_for(self, connection: CareStackConnection) -> str:
        return getattr(connection, self.path_setting) if self.path_setting else self.path


STREAMS: dict[str, Stream] = {
    s.entity: s
    for s in (
        Stream("locations", "/locations", "Id", "snapshot", contracts.Location),
        Stream(
            "appointment_statuses",
            "/appointment-status",
            "Id",
            "snapshot",
            contracts.AppointmentStatus,
        ),
        Stream("providers", "/providers", "Id", "snapshot", contracts.Provider),
        Stream("operatories", "/operatories", "Id", "snapshot", contracts.Operatory),
        Stream("patients", "/sync/patients", "id", "sync", contracts.Patient),
        Stream("appointments", "/sync/appointments", "id", "sync", contracts.Appointment),
        Stream(
            "appointment_requests",
            "/sync/appointment-requests",
            "id",
            "sync",
            contracts.AppointmentRequest,
            path_setting="appointment_requests_path",
        ),
        Stream(
            "conversation_calls",
            "/sync/conversation-calls",
            "id",
            "sync",
            contracts.ConversationCall,
            path_setting="conversation_calls_path",
        ),
        Stream("location_matches", "/locations", "matchKey", "matches", None),
    )
}

# Extraction order within one connection: the status list before the appointments using it.
ENTITIES: tuple[str, ...] = tuple(STREAMS)
