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
        from writeback import opendental

        return opendental.open_destination(
            connection,
            opendental.OpenDentalWriteSettings(
                confirmed_definition=settings.statuses.confirmed_definition,
                commlog_type=settings.commlogs.commlog_type,
            ),
        )
    if connection.vendor == "nexhealth":
        from writeback import nexhealth

        return nexhealth.open_destination(connection)
    if connection.vendor == "quickbooks":
        from writeback import quickbooks

        return quickbooks.open_destination(connection, settings.quickbooks, landing_root)
    raise NoWriteSide(f"connection {target!r} ({connection.vendor}) takes no writebacks")
