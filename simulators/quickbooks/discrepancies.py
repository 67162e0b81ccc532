"""Every reconciliation discrepancy of the derived processor and books, as one truth table.

``truth_reconciliation_discrepancies`` (exported by the books simulator, which derives the
processor too): one row per object and code of docs/reconciliation.md, the processor's own
(``simulators.stripe.discrepancies``) and the bookkeeping slips'. A payout the books skipped is
listed once it is paid; the marts flag it only after the grace period, so a reader compares
``arrival_date`` with its own as-of date.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from simulators.stripe.discrepancies import Discrepancy, discrepancy, processor_discrepancies

if TYPE_CHECKING:
    from simulators.quickbooks.data import QuickBooksData

# What each slip makes the books disagree on (a deposit's gross - fee = its total, so a wrong
# component always moves a second one).
SLIP_CODES = {
    "duplicate_deposit": ("duplicate_posting",),
    "late_dated": ("timing_difference",),
    "net_as_income": ("amount_mismatch_gross", "amount_mismatch_fee"),
    "mistyped_fee": ("amount_mismatch_fee", "amount_mismatch_net"),
    "mistyped_income": ("amount_mismatch_gross", "amount_mismatch_net"),
}
SCHEMA = {
    "object_kind": pl.String,
    "object_id": pl.String,
    "code": pl.String,
    "payout_id": pl.String,
    "arrival_date": pl.Date,
    "office": pl.String,
    "pms": pl.String,
    "detail": pl.String,
}


def reconciliation_discrepancies(books: QuickBooksData) -> list[Discrepancy]:
    payouts = books.processor.payouts_by_id
    out = processor_discrepancies(books.processor)
    out += [
        discrepancy("payout", payout_id, "missing_deposit", "never booked", payouts[payout_id])
        for payout_id in books.unbooked
    ]
    for deposit in books.deposits:
        if deposit.slip == "orphan_deposit":
            detail = f"names {deposit.key}, which the processor does not have"
            out.append(discrepancy("deposit", deposit.id, "orphan_deposit", detail))
        elif deposit.slip is not None:
            payout, detail = payouts[deposit.key], f"{deposit.slip} (deposit {deposit.id})"
            out += [
                discrepancy("payout", payout.id, code, detail, payout)
                for code in SLIP_CODES[deposit.slip]
            ]
    return out


def discrepancy_frame(books: QuickBooksData) -> pl.DataFrame:
    rows = reconciliation_discrepancies(books)
    return pl.DataFrame(rows, schema=SCHEMA).sort("object_kind", "object_id", "code")
