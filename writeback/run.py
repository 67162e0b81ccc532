"""One writeback run: plan from the marts, send what is due to every target, export the outbox.

``python -m writeback.run`` does the same from the command line (used by the crash-injection
tests to kill a real sender process at every step boundary).
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from chairside.config import Organisation, load_organisation
from writeback import snapshot
from writeback.deliver import DeliveryReport, deliver
from writeback.destinations import destination_for
from writeback.outbox import Outbox
from writeback.plan import plan

log = logging.getLogger(__name__)


@dataclass
class RunReport:
    planned: dict[str, int] = field(default_factory=dict)
    deliveries: list[DeliveryReport] = field(default_factory=list)


def plan_writes(
    organisation: Organisation, outbox: Outbox, database: Path, now: datetime
) -> dict[str, int]:
    counts = outbox.plan(plan(database, organisation, now))
    log.info("writeback plan: %s", counts)
    return counts


def send_due(
    organisation: Organisation,
    outbox: Outbox,
    landing_root: Path,
    now: datetime,
    targets: list[str] | None = None,
) -> list[DeliveryReport]:
    """Deliver every due row, one target after the other."""
    wanted = targets or sorted({row.target for row in outbox.rows()})
    reports = []
    for target in wanted:
        with destination_for(organisation, target, landing_root) as destination:
            max_attempts = organisation.writeback.max_attempts
            reports.append(deliver(outbox, destination, now=now, max_attempts=max_attempts))
    return reports


def quickbooks_mapping_problems(organisation: Organisation, landing_root: Path) -> list[str]:
    """The QuickBooks mapping checked against the company's live chart of accounts (none when
    QuickBooks writeback is off): one line per name that does not resolve, naming the setting."""
    books = organisation.writeback.quickbooks
    if not books.enabled:
        return []
    from writeback.quickbooks import config_mapping

    with destination_for(organisation, books.connection, landing_root) as destination:
        return destination.validate_mapping(config_mapping(books))


def run(
    organisation: Organisation,
    outbox: Outbox,
    database: Path,
    landing_root: Path,
    now: datetime | None = None,
    *,
    plan_first: bool = True,
    targets: list[str] | None = None,
) -> RunReport:
    """Plan (unless told not to), send what is due, and export the outbox for dbt."""
    now = now or datetime.now(UTC)
    report = RunReport()
    try:
        if plan_first:
            report.planned = plan_writes(organisation, outbox, database, now)
        report.deliveries = send_due(organisation, outbox, landing_root, now, targets)
    finally:
        snapshot.export(outbox, landing_root)
    return report


def main(argv: list[str] | None = None) -> int:
    from chairside import paths

    parser = argparse.ArgumentParser(description="Plan and send Chairside's writebacks.")
    parser.add_argument("--send-only", action="store_true", help="send due rows, plan nothing")
    parser.add_argument("--target", action="append", help="only this connection (repeatable)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    report = run(
        load_organisation(paths.config_path()),
        Outbox(paths.outbox_path()),
        paths.analyst_copy_path(),
        paths.landing_root(),
        plan_first=not args.send_only,
        targets=args.target,
    )
    return 1 if any(d.failed or d.unknown for d in report.deliveries) else 0


if __name__ == "__main__":
    raise SystemExit(main())
