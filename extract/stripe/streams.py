"""What we read from Stripe, and how each list can be read incrementally.

Stripe lists page by object id, newest first (``starting_after`` = the last id of the previous
page, ``has_more``), and filter only by creation time (``created[gte]``). Objects do change after
creation, though: a payout goes pending -> in_transit -> paid (or failed) within a few days, a
balance transaction becomes available N business days after the charge, a dispute moves from
needs_response to won/lost over weeks, and a charge's refunded/disputed flags follow its
refunds and disputes. So:

- ``created``: charges, refunds, balance transactions, payouts. Each run reads
  ``created >= cursor - overlap`` where the cursor is the newest ``created`` seen; the overlap
  (``overlap_minutes``, 5 days by default for Stripe) re-reads the days in which payouts and
  balance transactions still change state. Later changes (a charge refunded weeks later) are
  caught by the daily full sync, which re-reads every list whole. Re-read versions collapse in
  staging (latest extraction wins).
- ``snapshot``: disputes, read whole every run: they are few, and their status changes over
  weeks, longer than any sensible overlap.
- ``payout_items``: the itemization of each automatic payout (``GET
  /v1/balance_transactions?payout=po_...``), for the payouts that landed since the last run;
  this is the only link from a balance transaction to the payout that paid it out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel

from extract.stripe import contracts

Kind = Literal["created", "snapshot", "payout_items"]


@dataclass(frozen=True)
class Stream:
    entity: str
    path: str
    kind: Kind
    contract: type[BaseModel]


STREAMS: dict[str, Stream] = {
    s.entity: s
    for s in (
        Stream("charges", "/charges", "created", contracts.Charge),
        Stream("refunds", "/refunds", "created", contracts.Refund),
        Stream("disputes", "/disputes", "snapshot", contracts.Dispute),
        Stream(
            "balance_transactions", "/balance_transactions", "created", contracts.BalanceTransaction
        ),
        Stream("payouts", "/payouts", "created", contracts.Payout),
        Stream(
            "payout_balance_transactions",
            "/balance_transactions",
            "payout_items",
            contracts.BalanceTransaction,
        ),
    )
}

# Extraction order: payouts before the itemization that reads them from the landing zone.
ENTITIES: tuple[str, ...] = tuple(STREAMS)
