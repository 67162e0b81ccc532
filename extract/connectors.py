"""Every source Chairside can extract, in one registry the orchestration layer iterates.

A connector is a vendor package under ``extract/<vendor>/`` that exposes ``CONNECTOR``: the
entities it extracts (in dependency order), which entity each one reads from the landing zone
(its parent), and ``sync_entity(connection, entity, *, landing_root, mode)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Connector:
    vendor: str
    # Entity -> one-line description; dict order is extraction order (parents first).
    entities: dict[str, str]
    # (connection, entity, *, landing_root, mode) -> extract.sync.SyncResult
    sync_entity: Callable
    # Entity -> the entity whose landed records it reads (children of parents).
    parents: dict[str, str] = field(default_factory=dict)


def connectors() -> dict[str, Connector]:
    # Imported here so that loading one vendor never requires another's optional pieces.
    from extract.carestack.connector import CONNECTOR as carestack
    from extract.nexhealth.connector import CONNECTOR as nexhealth
    from extract.opendental.connector import CONNECTOR as opendental
    from extract.quickbooks.connector import CONNECTOR as quickbooks
    from extract.stripe.connector import CONNECTOR as stripe
    from extract.twilio.connector import CONNECTOR as twilio

    return {c.vendor: c for c in (opendental, carestack, nexhealth, twilio, stripe, quickbooks)}


def prepare_landing(landing_root, organisation=None) -> None:
    """Make every dbt source readable: the zero-row schema file of every registered entity
    (sources read as empty before a vendor's first sync) and the organisation snapshot."""
    from extract.landing import Landing
    from extract.organisation import land_organisation, organisation_dir

    landing = Landing(landing_root)
    for connector in connectors().values():
        for entity in connector.entities:
            landing.ensure_entity(connector.vendor, entity)
    if organisation is not None or not organisation_dir(landing_root).exists():
        land_organisation(organisation, landing_root)
    from writeback import snapshot

    if not snapshot.snapshot_path(landing_root).exists():
        snapshot.export(None, landing_root)  # no outbox yet: the mart reads an empty table
