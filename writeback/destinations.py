"""The write side of each connection: which Destination (writeback/deliver.py) sends its rows."""

from __future__ import annotations

from pathlib import Path

from chairside.config import Organisation


class NoWriteSide(LookupError):
    """The connection's vendor takes no writes from Chairside (or none are built yet)."""


def destination_for(organisation: Organisation, target: str, landing_root: Path):
    """The Destination for the connection ``target``, built from the organisation config."""
    connection = organisation.connection(target)
    settings = organisation.writeback
    # Imported here: each vendor's write side loads only when its connection has writes.
    if connection.vendor == "opendental":
        from writeback.opendental import OpenDentalDestination

        return OpenDentalDestination.for_connection(connection, settings, landing_root)
    if connection.vendor == "nexhealth":
        from writeback.nexhealth import NexHealthDestination

        return NexHealthDestination.for_connection(connection, settings, landing_root)
    if connection.vendor == "quickbooks":
        from writeback.quickbooks import QuickBooksDestination

        return QuickBooksDestination.for_connection(connection, settings, landing_root)
    raise NoWriteSide(f"connection {target!r} ({connection.vendor}) takes no writebacks")
